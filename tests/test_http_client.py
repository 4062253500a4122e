"""VendorClient against the ExampleCRM sandbox over real loopback HTTP: retries, Retry-After,
connection resets, token renewal (once, and once across threads), revoked grants and redaction."""

from __future__ import annotations

import io
import logging
import socket
import threading
from typing import Any

import pytest
import requests
from flask import Flask
from leadbridge.connections import client_for
from leadbridge.db import db
from leadbridge.errors import AuthError, NeedsReconnect, RateLimited, TransientError
from leadbridge.http import AuthManager, CallStats, VendorClient, redact_text
from leadbridge.models import Connection, DebugEntry
from leadbridge.types import Credentials
from leadbridge_example.sandbox import ExampleSandbox
from sqlalchemy import select

TOKEN = "/oauth/token"
NEW_CONTACT = {"email": "Ada.Lovelace@Example.com", "last_name": "Lovelace", "first_name": "Ada"}


def logged_in(conn: Connection, **kw: Any) -> VendorClient:
    """A client for ``conn`` that already holds a token (so faults hit the API call, not the login)."""
    client = client_for(conn, **kw)
    assert client.auth is not None
    client.auth.headers()
    return client


def calls(sandbox: ExampleSandbox, path: str, method: str | None = None) -> int:
    return sandbox.count_calls(method, path)


# -- transient errors -------------------------------------------------------------------------------


def test_transient_5xx_is_retried_on_get(connection: Connection, sandbox: ExampleSandbox) -> None:
    client = logged_in(connection)
    sandbox.fail_next(503, path_prefix="/api/fields")
    response = client.get("api/fields", params={"object": "contact"})
    assert response.status_code == 200
    assert calls(sandbox, "/api/fields") == 2
    assert client.stats.retries == 1


def test_transient_5xx_is_not_retried_on_post(connection: Connection, sandbox: ExampleSandbox) -> None:
    client = logged_in(connection)
    contact_id = sandbox.add_contacts(1)[0]
    sandbox.fail_next(503, path_prefix="/api/actions")
    with pytest.raises(TransientError):
        client.post("api/actions", json={"contact_id": contact_id, "title": "Webinar"})
    assert calls(sandbox, "/api/actions") == 1
    assert client.stats.retries == 0
    assert sandbox.actions == []


def test_transient_5xx_is_retried_on_post_marked_idempotent(
    connection: Connection, sandbox: ExampleSandbox
) -> None:
    client = logged_in(connection)
    sandbox.fail_next(502, path_prefix="/api/contacts/batch")
    response = client.post("api/contacts/batch", json={"records": [NEW_CONTACT]}, idempotent=True)
    assert response.json()["results"][0]["status"] == "created"
    assert calls(sandbox, "/api/contacts/batch") == 2
    assert sandbox.contact_count() == 1


def test_persistent_5xx_gives_up_after_max_attempts(connection: Connection, sandbox: ExampleSandbox) -> None:
    client = logged_in(connection)
    client.max_attempts = 3
    sandbox.fail_next(500, times=5, path_prefix="/api/fields")
    with pytest.raises(TransientError):
        client.get("api/fields")
    assert calls(sandbox, "/api/fields") == 3


# -- Retry-After ------------------------------------------------------------------------------------


def _gap_after(sandbox: ExampleSandbox, status: int) -> float:
    """Seconds between the answer with ``status`` and the next call the sandbox saw."""
    i = next(i for i, c in enumerate(sandbox.calls) if c.status == status)
    return sandbox.calls[i + 1].at - sandbox.calls[i].at


def test_retry_after_on_503_is_honoured(connection: Connection, sandbox: ExampleSandbox) -> None:
    client = logged_in(connection)
    sandbox.fail_next(503, headers={"Retry-After": "1"}, path_prefix="/api/fields")
    assert client.get("api/fields").status_code == 200
    assert calls(sandbox, "/api/fields") == 2
    assert _gap_after(sandbox, 503) >= 0.9  # a lower bound: sleeping never ends early


def test_rate_limit_429_is_waited_out_once(connection: Connection, sandbox: ExampleSandbox) -> None:
    client = logged_in(connection)
    sandbox.fail_next(429, mode="rate_limit", retry_after=1, path_prefix="/api/contacts")
    # A 429 means nothing was applied, so even a plain POST is retried after the wait.
    response = client.post("api/contacts/batch", json={"records": [NEW_CONTACT]})
    assert response.json()["results"][0]["status"] == "created"
    assert calls(sandbox, "/api/contacts/batch") == 2
    assert client.stats.rate_limited == 1
    assert _gap_after(sandbox, 429) >= 0.9


def test_token_bucket_429_carries_retry_after_and_is_not_hammered(
    connection: Connection, sandbox: ExampleSandbox
) -> None:
    client = logged_in(connection)
    sandbox.set_rate_limit(2, 2.0, available=0)  # two calls per two seconds, bucket empty now
    assert client.get("api/fields").status_code == 200
    assert sandbox.rate_limited_count == 1
    assert calls(sandbox, "/api/fields") == 2
    limited = next(c for c in sandbox.calls if c.status == 429)
    assert limited.path == "/api/fields"
    assert _gap_after(sandbox, 429) >= 0.9


def test_a_retry_after_beyond_the_cap_is_raised_not_slept(
    connection: Connection, sandbox: ExampleSandbox
) -> None:
    client = logged_in(connection)
    sandbox.fail_next(429, headers={"Retry-After": "3600"}, path_prefix="/api/fields")
    with pytest.raises(RateLimited) as caught:
        client.get("api/fields")
    assert caught.value.retry_after == 3600
    assert calls(sandbox, "/api/fields") == 1


def test_rate_limit_headers_pace_calls_before_the_vendor_refuses(
    connection: Connection, sandbox: ExampleSandbox
) -> None:
    sandbox.set_rate_limit(3, 1.0)  # three calls per second, announced in X-RateLimit-* headers
    client = logged_in(connection)
    for _ in range(6):
        assert client.get("api/fields").status_code == 200
    assert sandbox.rate_limited_count == 0  # slowed down by the headers, never refused
    assert client.stats.rate_limited == 0
    assert client.pacer.waited > 0


def test_rate_limit_without_retry_after_still_waits(connection: Connection, sandbox: ExampleSandbox) -> None:
    client = logged_in(connection)
    sandbox.fail_next(429, body={"error": "slow_down"}, path_prefix="/api/fields")
    assert client.get("api/fields").status_code == 200
    assert calls(sandbox, "/api/fields") == 2
    # At least half the first backoff step (backoff_base / 2), never an immediate retry.
    assert _gap_after(sandbox, 429) >= client.backoff_base / 2 - 0.05


def test_a_post_that_never_reached_the_vendor_is_resent() -> None:
    with socket.socket() as probe:  # a port nobody listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = VendorClient(f"http://127.0.0.1:{port}", max_attempts=2, backoff_base=0.01)
    with pytest.raises(TransientError):
        client.post("api/actions", json={"title": "x"})
    assert client.stats.calls == 2 and client.stats.retries == 1


# -- connection resets ------------------------------------------------------------------------------


def test_reset_fault_applies_the_request_and_answers_nothing(
    sandbox_server: Any, sandbox: ExampleSandbox
) -> None:
    """The sandbox's "reset" is a real dropped connection after the write, not an error response."""
    token = sandbox.auth.issue_grant(sandbox.client_id)["access_token"]
    sandbox.fail_next(0, mode="reset", path_prefix="/api/contacts/batch")
    with pytest.raises(requests.ConnectionError):
        requests.post(
            f"{sandbox_server.url}/api/contacts/batch",
            json={"records": [NEW_CONTACT]},
            headers={"Authorization": f"Bearer {token}"},
            timeout=5,
        )
    assert sandbox.find_contact("ada.lovelace@example.com") is not None
    assert calls(sandbox, "/api/contacts/batch") == 1


def test_reset_is_retried_on_idempotent_calls(connection: Connection, sandbox: ExampleSandbox) -> None:
    client = logged_in(connection)
    sandbox.fail_next(0, mode="reset", path_prefix="/api/contacts/batch")
    response = client.post("api/contacts/batch", json={"records": [NEW_CONTACT]}, idempotent=True)
    # The first attempt was applied before the connection dropped; the retry finds the record.
    assert response.json()["results"][0]["status"] == "unchanged"
    assert sandbox.contact_count() == 1
    assert calls(sandbox, "/api/contacts/batch") == 2

    sandbox.fail_next(0, mode="reset", path_prefix="/api/fields")
    assert client.get("api/fields").status_code == 200
    assert calls(sandbox, "/api/fields") == 2


def test_reset_is_not_retried_on_a_plain_post(connection: Connection, sandbox: ExampleSandbox) -> None:
    client = logged_in(connection)
    contact_id = sandbox.add_contacts(1)[0]
    sandbox.fail_next(0, mode="reset", path_prefix="/api/actions")
    with pytest.raises(TransientError):
        client.post("api/actions", json={"contact_id": contact_id, "title": "Webinar"})
    # An ambiguous write: applied once, never repeated.
    assert len(sandbox.actions) == 1
    assert calls(sandbox, "/api/actions") == 1


# -- token renewal ------------------------------------------------------------------------------------


def test_401_triggers_exactly_one_renewal(connection: Connection, sandbox: ExampleSandbox) -> None:
    client = logged_in(connection)
    assert calls(sandbox, TOKEN) == 1
    sandbox.expire_tokens()
    assert client.get("api/fields").status_code == 200
    assert calls(sandbox, TOKEN) == 2
    assert client.stats.renewals == 1
    assert calls(sandbox, "/api/fields") == 2  # rejected once, then accepted


def test_token_rejected_after_renewal_is_an_auth_error_not_a_loop(
    connection: Connection, sandbox: ExampleSandbox
) -> None:
    client = logged_in(connection)
    sandbox.fail_next(401, times=5, body={"error": "invalid_token"}, path_prefix="/api/fields")
    with pytest.raises(AuthError, match="still rejected"):
        client.get("api/fields")
    assert calls(sandbox, "/api/fields") == 2
    assert calls(sandbox, TOKEN) == 2
    assert client.stats.renewals == 1


def test_renewed_credentials_are_stored_encrypted_before_use(
    connection: Connection, sandbox: ExampleSandbox
) -> None:
    client = logged_in(connection)
    sandbox.expire_tokens()
    client.get("api/fields")
    db.session.expire_all()
    stored = db.session.get(Connection, connection.id)
    assert stored is not None and stored.credentials_encrypted
    assert client.auth is not None and client.auth.credentials is not None
    token = client.auth.credentials.access_token
    assert token and token not in stored.credentials_encrypted
    # A new client (another worker) starts from the stored token: no login needed.
    other = client_for(stored)
    assert other.get("api/fields").status_code == 200
    assert calls(sandbox, TOKEN) == 2


def test_two_threads_with_an_expired_token_renew_once(
    app_ctx: Flask, connection: Connection, sandbox: ExampleSandbox
) -> None:
    logged_in(connection)
    app = app_ctx
    barrier = threading.Barrier(2)
    statuses: list[int] = []
    errors: list[BaseException] = []
    clients: list[VendorClient] = []
    for _ in range(2):  # both load the soon-expired token before either call goes out
        with app.app_context():
            row = db.session.get(Connection, connection.id)
            assert row is not None
            clients.append(client_for(row))
    sandbox.expire_tokens()

    def work(client: VendorClient) -> None:
        try:
            with app.app_context():
                barrier.wait(timeout=10)
                statuses.append(client.get("api/fields").status_code)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    assert statuses == [200, 200]
    assert calls(sandbox, TOKEN) == 2  # the first login + one renewal for both threads
    assert sum(c.stats.renewals for c in clients) == 2  # both saw the 401...
    assert sum(c.auth.renewals for c in clients if c.auth) == 1  # ...but only one called the vendor


def test_revoked_refresh_token_marks_the_connection_needs_reconnect(
    connection: Connection, sandbox: ExampleSandbox
) -> None:
    client = logged_in(connection)
    sandbox.revoke_refresh_tokens()
    sandbox.expire_tokens()
    with pytest.raises(NeedsReconnect) as caught:
        client.get("api/fields")
    assert caught.value.code == "invalid_grant"
    db.session.expire_all()
    stored = db.session.get(Connection, connection.id)
    assert stored is not None
    assert stored.state == "needs_reconnect"
    assert stored.state_message and "reconnect" in stored.state_message


def test_refresh_token_rotation_is_saved(connection: Connection, sandbox: ExampleSandbox) -> None:
    client = logged_in(connection)
    assert client.auth is not None and client.auth.credentials is not None
    first_refresh = client.auth.credentials.refresh_token
    sandbox.expire_tokens()
    client.get("api/fields")
    assert client.auth.credentials is not None
    assert client.auth.credentials.refresh_token not in (None, first_refresh)
    # The old refresh token was used up (rotation): only the saved new one works from here.
    assert first_refresh not in sandbox.refresh_tokens
    sandbox.expire_tokens()
    db.session.expire_all()
    stored = db.session.get(Connection, connection.id)
    assert stored is not None
    assert client_for(stored).get("api/fields").status_code == 200


def test_a_connector_that_needs_no_login_is_asked_once() -> None:
    """``authenticate`` may answer ``None`` (headers from settings): no reason to call it per request."""
    asked: list[Credentials | None] = []
    saved: list[Credentials | None] = []

    def authenticate(previous: Credentials | None) -> Credentials | None:
        asked.append(previous)
        return None

    auth = AuthManager(authenticate, load=lambda: None, save=saved.append, lock_key=("no-login", id(asked)))
    assert auth.headers() == {}
    assert auth.headers() == {}
    assert len(asked) == 1 and saved == [None]
    auth.token_rejected({})  # a 401 still asks once more
    assert len(asked) == 2


# -- redaction ----------------------------------------------------------------------------------------


def _secrets_in_play(sandbox: ExampleSandbox) -> list[str]:
    values = [sandbox.client_secret, sandbox.webhook_secret, *sandbox.auth.issued]
    assert len(values) >= 4
    return values


def test_no_secret_reaches_the_logs_at_debug(
    connection: Connection,
    sandbox: ExampleSandbox,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("urllib3", "requests_oauthlib", "oauthlib", "leadbridge"):
        caplog.set_level(logging.DEBUG, logger=name)
    # An operator's own handler on a library logger runs before any root handler: it must see
    # redacted records too.
    own = io.StringIO()
    own_handler = logging.StreamHandler(own)
    logging.getLogger("urllib3").addHandler(own_handler)
    request.addfinalizer(lambda: logging.getLogger("urllib3").removeHandler(own_handler))
    client = logged_in(connection)
    sandbox.expire_tokens()  # a renewal through the refresh grant, logged too
    client.get("api/fields", params={"object": "contact"})
    token = client.auth.credentials.access_token if client.auth and client.auth.credentials else ""
    # A vendor that takes its key in the query string (Pipedrive's api_token) must not leak it either.
    client.get("api/fields", params={"object": "company", "api_token": token})
    sandbox.fail_next(400, body={"error": "BAD", "echo": f"token {token}"}, path_prefix="/api/fields")
    with pytest.raises(Exception, match="400"):
        client.get("api/fields")
    logging.getLogger("leadbridge.test").warning("the vendor said: %s", token)

    captured = caplog.text + capfd.readouterr().err + own.getvalue()
    assert "api_token=" in own.getvalue()
    assert "GET /api/fields" in captured or "/api/fields" in captured, "urllib3 debug lines were not captured"
    for secret in _secrets_in_play(sandbox):
        assert secret not in captured


def test_debug_exchanges_are_redacted(connection: Connection, sandbox: ExampleSandbox) -> None:
    stats = CallStats()
    client = client_for(connection, debug=True, stats=stats)
    assert client.auth is not None
    client.auth.headers()
    client.get("api/fields", params={"object": "contact"})
    client.post(
        "api/webhooks", json={"url": "https://hub.example/webhooks/1", "secret": sandbox.webhook_secret}
    )
    # A secret leadbridge never stored (so no exact-value match): the key name alone must mask it.
    client.post(
        "api/webhooks", json={"url": "https://hub.example/webhooks/2", "secret": "whsec-unknown-1234"}
    )
    entries = db.session.execute(select(DebugEntry).order_by(DebugEntry.id)).scalars().all()
    assert len(entries) == stats.calls == 4
    text = "\n".join(f"{e.url} {e.request} {e.response}" for e in entries)
    assert "***" in text  # the Authorization header and the token answer were masked...
    assert "/api/fields" in text  # ...while the rest stays readable
    for secret in [*_secrets_in_play(sandbox), "whsec-unknown-1234"]:
        assert secret not in text


def test_known_secrets_stay_bounded_and_keep_what_is_in_use() -> None:
    from leadbridge.http.redact import _KnownSecrets

    secrets = _KnownSecrets(limit=100)
    secrets.add("client-secret-in-use")
    for i in range(300):
        secrets.add(f"expired-token-{i:04d}")
        if i % 50 == 0:
            secrets.add("client-secret-in-use")  # every connection view re-adds its secrets
    kept = secrets.snapshot()
    assert len(kept) == 100
    assert "client-secret-in-use" in kept and "expired-token-0299" in kept
    assert "expired-token-0000" not in kept
    assert redact_text("token expired-token-0299 and client-secret-in-use", kept) == "token *** and ***"


# -- base URL named by the credentials ---------------------------------------------------------------


def test_first_request_goes_to_the_host_the_login_named(
    connection: Connection, sandbox: ExampleSandbox, sandbox_server: Any
) -> None:
    """Like Salesforce's instance_url: the URL is built after authenticating, from the new base."""
    from dataclasses import replace

    from leadbridge.connections import load_credentials

    logged_in(connection)  # a real token from the sandbox, saved on the connection
    db.session.refresh(connection)
    real = load_credentials(connection)
    assert real is not None
    auth = AuthManager(
        lambda previous: replace(real, extra={"instance_url": sandbox_server.url}),
        load=lambda: None,
        save=lambda creds: None,
        lock_key=("test-instance-url", connection.id),
    )
    client = VendorClient("http://127.0.0.1:9/", auth=auth)  # port 9 (discard): nothing listens
    auth.listeners.append(lambda creds: setattr(client, "base_url", creds.extra["instance_url"] + "/"))
    response = client.get("api/fields", params={"object": "contact"})
    assert response.status_code == 200
    assert client.stats.calls == 1
    assert calls(sandbox, "/api/fields") == 1


def test_the_run_cache_lives_with_its_client_and_is_shared_by_derived_clients() -> None:
    client = VendorClient("https://vendor.example.com/")
    client.run_cache("accounts")["acme"] = "42"
    assert client.unauthenticated().run_cache("accounts") == {"acme": "42"}
    assert client.with_auth(None).run_cache("accounts")["acme"] == "42"
    assert VendorClient("https://vendor.example.com/").run_cache("accounts") == {}  # the next run
