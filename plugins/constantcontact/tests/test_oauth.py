"""Connect (authorization code + PKCE + state), refresh with rotation, reuse, revocation — against the
sandbox's authorization server over real loopback HTTP."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from leadbridge import clock as clocks
from leadbridge.connections import client_for, load_credentials, store_credentials, view
from leadbridge.db import db
from leadbridge.errors import AuthError, NeedsReconnect
from leadbridge.http import VendorClient, oauth
from leadbridge.types import Credentials
from leadbridge_constantcontact import auth
from leadbridge_constantcontact.sandbox.server import CLIENT_ID, CLIENT_SECRET

REDIRECT = "http://127.0.0.1:5000/oauth/callback"


def _authorize(url: str) -> dict[str, str]:
    """What the browser does: follow the authorize URL and read where it is sent back."""
    response = requests.get(url, allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.startswith(REDIRECT)
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def _start(base: str, scopes: tuple[str, ...] = ("contact_data", "offline_access")) -> tuple[str, str, str]:
    return oauth.authorization_url(f"{base}/oauth2/default/v1/authorize", CLIENT_ID, REDIRECT, list(scopes))


def _exchange(base: str, code: str, verifier: str) -> Credentials:
    return oauth.exchange_code(
        VendorClient(base),
        f"{base}/oauth2/default/v1/token",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        redirect_uri=REDIRECT,
        code=code,
        code_verifier=verifier,
    )


def test_connect_runs_the_code_flow_with_pkce_and_echoes_state(sandbox, sandbox_server) -> None:
    url, state, verifier = _start(sandbox_server.url)
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0]
    assert query["scope"] == ["contact_data offline_access"]
    answer = _authorize(url)
    assert answer["state"] == state
    creds = _exchange(sandbox_server.url, answer["code"], verifier)
    assert creds.refresh_token and creds.access_token
    assert creds.expires_at is not None and creds.expires_at > clocks.utcnow() + timedelta(hours=23)
    api = requests.get(f"{sandbox_server.url}/v3/contacts", headers=creds.headers, timeout=10)
    assert api.status_code == 200
    # The code is single-use.
    with pytest.raises(AuthError):
        _exchange(sandbox_server.url, answer["code"], verifier)


def test_a_wrong_pkce_verifier_is_refused(sandbox, sandbox_server) -> None:
    url, _, _ = _start(sandbox_server.url)
    answer = _authorize(url)
    with pytest.raises(AuthError, match="PKCE"):
        _exchange(sandbox_server.url, answer["code"], "x" * 50)


def test_the_redirect_uri_must_match_the_registered_one(sandbox, sandbox_server) -> None:
    sandbox.auth.apps[CLIENT_ID].redirect_uris = {"https://hub.example/oauth/callback"}
    url, _, _ = _start(sandbox_server.url)
    response = requests.get(url, allow_redirects=False, timeout=10)
    assert response.status_code == 400
    assert "redirect_uri" in response.text


def test_the_login_page_grants_only_when_allowed(sandbox, sandbox_server) -> None:
    sandbox.auth.auto_approve = False
    url, state, _ = _start(sandbox_server.url)
    page = requests.get(url, timeout=10)
    assert "Allow Access" in page.text
    form = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    denied = requests.post(
        url.split("?")[0], data={**form, "decision": "deny"}, allow_redirects=False, timeout=10
    )
    assert parse_qs(urlsplit(denied.headers["Location"]).query) == {
        "error": ["access_denied"],
        "state": [state],
    }
    allowed = requests.post(
        url.split("?")[0], data={**form, "decision": "allow"}, allow_redirects=False, timeout=10
    )
    assert "code" in parse_qs(urlsplit(allowed.headers["Location"]).query)


def test_without_offline_access_no_refresh_token_is_issued_and_renewal_asks_to_reconnect(
    app_ctx, sandbox, sandbox_server, connection
) -> None:
    url, _, verifier = _start(sandbox_server.url, ("contact_data",))
    creds = _exchange(sandbox_server.url, _authorize(url)["code"], verifier)
    assert creds.refresh_token is None
    with pytest.raises(NeedsReconnect) as caught:
        auth.authenticate(_view_without_bootstrap(connection), VendorClient(sandbox_server.url), creds)
    assert "offline_access" in (caught.value.advice or "")


def _view_without_bootstrap(connection):  # type: ignore[no-untyped-def]
    cv = view(connection)
    cv.secrets = type(cv.secrets)({k: v for k, v in cv.secrets.items() if k != "refresh_token"})
    return cv


def test_hook_authenticate_rotating_refresh_tokens_invalidate_the_old_one(
    app_ctx, sandbox, sandbox_server, connection
) -> None:
    first = load_credentials(connection)
    assert first is not None and first.refresh_token
    client = client_for(connection)
    client.get("contacts", params={"limit": 1})  # the stored access token has expired: one renewal
    db.session.expire_all()
    second = load_credentials(connection)
    assert second is not None and second.refresh_token not in (None, first.refresh_token)
    assert sandbox.auth.token_requests == 1
    # A stale copy of the old refresh token (a crash before saving, a second worker) is refused.
    with pytest.raises(NeedsReconnect, match="refresh token"):
        auth.authenticate(view(connection), VendorClient(sandbox_server.url), first)


def test_long_lived_refresh_tokens_come_back_unchanged(app_ctx, sandbox, sandbox_server, connection) -> None:
    sandbox.auth.apps[CLIENT_ID].refresh_mode = "long_lived"
    grant = sandbox.auth.issue_grant(CLIENT_ID)
    prev = Credentials(headers={}, refresh_token=grant["refresh_token"])
    again = auth.authenticate(view(connection), VendorClient(sandbox_server.url), prev)
    assert again.refresh_token == grant["refresh_token"]
    assert (
        auth.authenticate(view(connection), VendorClient(sandbox_server.url), again).refresh_token
        == (grant["refresh_token"])
    )


def test_a_reused_refresh_token_marks_the_connection_needs_reconnect(
    app_ctx, sandbox, sandbox_server, connection
) -> None:
    stale = load_credentials(connection)
    assert stale is not None
    client_for(connection).get("contacts", params={"limit": 1})  # rotates
    # Put the superseded pair back, as a restored backup would, and let the core renew it.
    store_credentials(connection, stale)
    db.session.commit()
    with pytest.raises(NeedsReconnect):
        client_for(connection).get("contacts", params={"limit": 1})
    db.session.expire_all()
    assert connection.state == "needs_reconnect"
    assert "Connect" in (connection.state_message or "")


def test_an_expired_access_token_is_renewed_once(app_ctx, sandbox, sandbox_server, connection) -> None:
    client = client_for(connection)
    client.get("contacts", params={"limit": 1})
    sandbox.expire_tokens()
    before = sandbox.auth.token_requests
    response = requests.get(
        f"{sandbox_server.url}/v3/contacts", headers=load_credentials(connection).headers, timeout=10
    )  # type: ignore[union-attr]
    assert response.status_code == 401
    assert response.json() == {"error_key": "unauthorized", "error_message": "Unauthorized"}
    assert client.get("contacts", params={"limit": 1}).status_code == 200
    assert sandbox.auth.token_requests == before + 1


def test_access_token_lifetime_follows_the_sandbox_setting(sandbox, sandbox_server) -> None:
    sandbox.auth.access_lifetime = 120
    url, _, verifier = _start(sandbox_server.url)
    creds = _exchange(sandbox_server.url, _authorize(url)["code"], verifier)
    assert creds.expires_at is not None and creds.expires_at < clocks.utcnow() + timedelta(seconds=121)


def test_body_credentials_are_refused_unless_the_sandbox_accepts_them(sandbox, sandbox_server) -> None:
    grant = sandbox.auth.issue_grant(CLIENT_ID)
    token_url = f"{sandbox_server.url}/oauth2/default/v1/token"
    prev = Credentials(headers={}, refresh_token=grant["refresh_token"])
    with pytest.raises(AuthError):
        oauth.refresh(
            VendorClient(sandbox_server.url), token_url, prev, CLIENT_ID, CLIENT_SECRET, in_body=True
        )
    sandbox.auth.accept_body_credentials = True
    creds = oauth.refresh(
        VendorClient(sandbox_server.url), token_url, prev, CLIENT_ID, CLIENT_SECRET, in_body=True
    )
    assert creds.access_token


def test_revoking_kills_the_grant(app_ctx, sandbox, sandbox_server, connection) -> None:
    client = client_for(connection)
    client.get("contacts", params={"limit": 1})
    db.session.expire_all()
    auth.revoke(view(connection), client)
    creds = load_credentials(connection)
    with pytest.raises(NeedsReconnect):
        auth.authenticate(view(connection), VendorClient(sandbox_server.url), creds)
    assert (
        requests.get(
            f"{sandbox_server.url}/v3/contacts",
            headers=creds.headers,  # type: ignore[union-attr]
            timeout=10,
        ).status_code
        == 401
    )


def test_a_missing_scope_answers_403(sandbox, sandbox_server) -> None:
    grant = sandbox.auth.issue_grant(CLIENT_ID, ("account_read",))
    response = requests.get(
        f"{sandbox_server.url}/v3/contacts",
        headers={"Authorization": f"Bearer {grant['access_token']}"},
        timeout=10,
    )
    assert response.status_code == 403
    assert response.json()[0]["error_key"] == "forbidden"


def test_token_url_outside_constant_contact_is_refused_by_the_settings(app_ctx) -> None:
    from leadbridge.app import get_plugins
    from leadbridge.errors import ConfigError
    from leadbridge.metadata import validate_settings

    info = get_plugins().info("constantcontact")
    with pytest.raises(ConfigError, match="Token URL"):
        validate_settings(
            info,
            {
                "client_id": "abcdefgh12",
                "client_secret": "s",
                "token_url": "https://evil.example/oauth2/default/v1/token",
            },
        )


def test_hook_revoke_credentials_revokes_the_grant_at_the_vendor(
    app_ctx, sandbox, sandbox_server, connection
) -> None:
    from leadbridge.connections import revoke

    client_for(connection).get("contacts", params={"limit": 1})
    db.session.expire_all()
    creds = load_credentials(connection)
    revoke(connection)  # what "Revoke access" calls
    db.session.commit()
    assert sandbox.count_calls("POST", "/oauth2/default/v1/revoke") == 1
    assert load_credentials(connection) is None and connection.state == "needs_reconnect"
    with pytest.raises(NeedsReconnect):
        auth.authenticate(view(connection), VendorClient(sandbox_server.url), creds)


def test_two_workers_with_an_expired_token_refresh_once(app_ctx, sandbox, sandbox_server, connection) -> None:
    import threading

    clients = [client_for(connection), client_for(connection)]  # two runs sharing one connection
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def work(client) -> None:  # type: ignore[no-untyped-def]
        barrier.wait()
        try:
            with app_ctx.app_context():  # each worker thread runs in its own app context
                client.get("contacts", params={"limit": 1})
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    # Rotating tokens: a second, concurrent refresh with the old token would have lost the grant.
    assert sandbox.auth.token_requests == 1
    db.session.expire_all()
    assert connection.state == "ok"


def test_an_access_token_about_to_expire_is_renewed_before_it_is_used(
    app_ctx, sandbox, sandbox_server, connection
) -> None:
    client = client_for(connection)
    client.get("contacts", params={"limit": 1})
    db.session.expire_all()
    creds = load_credentials(connection)
    assert creds is not None
    creds.expires_at = clocks.utcnow() + timedelta(seconds=20)  # inside the core's renewal margin
    store_credentials(connection, creds)
    db.session.commit()
    before = sandbox.auth.token_requests
    client_for(connection).get("contacts", params={"limit": 1})
    assert sandbox.auth.token_requests == before + 1
    assert sandbox.count_calls("GET", "/v3/contacts") == 2
    assert not [c for c in sandbox.calls if c.status == 401]  # renewed ahead, never refused
