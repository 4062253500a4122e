"""Access control: first-run setup, login (argon2id, throttled), logout, session cookies, CSRF on every
state-changing route, login required on every non-public route, security headers."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from leadbridge.db import db
from leadbridge.models import User
from leadbridge.web.security import PUBLIC_ENDPOINTS
from panel_helpers import PASSWORD, csrf_from


def _login(client: FlaskClient, url: Callable[..., str], password: str, username: str = "admin") -> int:
    token = csrf_from(client.get(url("auth.login")).data)
    return client.post(
        url("auth.login"), data={"username": username, "password": password, "csrf_token": token}
    ).status_code


def test_first_run_asks_for_the_admin_then_setup_is_gone(app: Flask, client: FlaskClient, url) -> None:
    response = client.get(url("dashboard.index"))
    assert response.status_code == 302 and response.headers["Location"].endswith(url("auth.setup"))
    assert client.get(url("auth.login")).headers["Location"].endswith(url("auth.setup"))
    page = client.get(url("auth.setup"))
    assert b"no default password" in page.data
    token = csrf_from(page.data)
    refused = client.post(
        url("auth.setup"),
        data={"username": "boss", "password": "short", "password2": "short", "csrf_token": token},
    )
    assert refused.status_code == 400 and b"at least 10 characters" in refused.data
    done = client.post(
        url("auth.setup"),
        data={"username": "boss", "password": PASSWORD, "password2": PASSWORD, "csrf_token": token},
    )
    assert done.status_code == 302 and done.headers["Location"].endswith(url("integrations.index"))
    assert client.get(url("integrations.index")).status_code == 200  # signed in by the setup
    with app.app_context():
        user = db.session.query(User).one()
        assert user.username == "boss" and user.password_hash.startswith("$argon2id$")
    # Once a user exists the setup page cannot create another one.
    stranger = app.test_client()
    assert stranger.get(url("auth.setup")).headers["Location"].endswith(url("auth.login"))
    token = csrf_from(stranger.get(url("auth.login")).data)
    again = stranger.post(
        url("auth.setup"),
        data={"username": "eve", "password": PASSWORD, "password2": PASSWORD, "csrf_token": token},
    )
    assert again.status_code == 302 and again.headers["Location"].endswith(url("auth.login"))
    with app.app_context():
        assert db.session.query(User).count() == 1


def test_login_and_wrong_password(client: FlaskClient, admin: int, url) -> None:
    assert _login(client, url, "not the password") == 401
    assert client.get(url("dashboard.index")).status_code == 302
    assert _login(client, url, PASSWORD) == 302
    assert client.get(url("dashboard.index")).status_code == 200


def test_login_follows_only_local_next(client: FlaskClient, admin: int, url) -> None:
    for target, expected in (
        ("/contacts", "/contacts"),
        ("//evil.example/x", "/"),
        ("https://evil.example", "/"),
    ):
        token = csrf_from(client.get(url("auth.login")).data)
        response = client.post(
            url("auth.login", next=target),
            data={"username": "admin", "password": PASSWORD, "csrf_token": token},
        )
        assert response.headers["Location"] == expected
        client.post(
            url("auth.logout"), data={"csrf_token": csrf_from(client.get(url("settings.tokens")).data)}
        )


def test_failed_logins_are_rate_limited_per_ip_and_username(
    app: Flask, client: FlaskClient, admin: int, url
) -> None:
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        assert _login(client, url, "wrong password") == 401
    assert _login(client, url, PASSWORD) == 429  # even the right password waits out the window
    other_ip = app.test_client()
    token = csrf_from(other_ip.get(url("auth.login"), environ_base={"REMOTE_ADDR": "10.0.0.9"}).data)
    ok = other_ip.post(
        url("auth.login"),
        data={"username": "admin", "password": PASSWORD, "csrf_token": token},
        environ_base={"REMOTE_ADDR": "10.0.0.9"},
    )
    assert ok.status_code == 302


def test_logout_invalidates_every_copy_of_the_session(app: Flask, logged_in: FlaskClient, url) -> None:
    cookie = logged_in.get_cookie("session")
    assert cookie is not None
    stolen = app.test_client()
    stolen.set_cookie("session", cookie.value)
    assert stolen.get(url("dashboard.index")).status_code == 200
    token = csrf_from(logged_in.get(url("settings.tokens")).data)
    assert logged_in.post(url("auth.logout"), data={"csrf_token": token}).status_code == 302
    assert stolen.get(url("dashboard.index")).status_code == 302  # the old cookie no longer works
    with app.app_context():
        assert db.session.get(User, 1).session_version == 2


def test_logout_requires_a_session(client: FlaskClient, admin: int, url) -> None:
    assert client.post(url("auth.logout")).status_code in (302, 400)


def test_session_cookie_flags(client: FlaskClient, admin: int, url) -> None:
    token = csrf_from(client.get(url("auth.login")).data)
    plain = client.post(
        url("auth.login"), data={"username": "admin", "password": PASSWORD, "csrf_token": token}
    )
    cookie = plain.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    secure_client = client.application.test_client()
    page = secure_client.get(url("auth.login"), base_url="https://hub.example")
    secure = secure_client.post(
        url("auth.login"),
        base_url="https://hub.example",
        data={"username": "admin", "password": PASSWORD, "csrf_token": csrf_from(page.data)},
        headers={"Referer": "https://hub.example/login"},
    )
    assert secure.status_code == 302
    assert "Secure" in secure.headers["Set-Cookie"]


def test_security_headers_on_pages_and_api(client: FlaskClient, url) -> None:
    for path in (
        url("auth.setup"),
        url("health.health_check"),
        url("api.contacts_list"),
        url("static", filename="app.css"),
    ):
        headers = client.get(path).headers
        csp = headers["Content-Security-Policy"]
        for directive in (
            "default-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "frame-ancestors 'none'",
        ):
            assert directive in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"


def _routes(app: Flask, method: str) -> list[tuple[str, str]]:
    out = []
    for rule in app.url_map.iter_rules():
        if method not in (rule.methods or ()) or rule.endpoint.startswith("api."):
            continue
        values = {arg: (1 if arg.endswith("_id") else "example") for arg in rule.arguments}
        path = rule.build(values, append_unknown=False)[1] if rule.arguments else rule.rule
        out.append((rule.endpoint, path))
    return sorted(out)


def test_every_panel_page_requires_login(app: Flask, client: FlaskClient, admin: int) -> None:
    checked = 0
    for endpoint, path in _routes(app, "GET"):
        if endpoint in PUBLIC_ENDPOINTS:
            continue
        response = client.get(path)
        assert response.status_code == 302, endpoint
        assert "/login" in response.headers["Location"], endpoint
        checked += 1
    assert checked >= 20


def test_htmx_requests_get_401_with_a_redirect_header(client: FlaskClient, admin: int, url) -> None:
    response = client.get(url("runs.progress", run_id=1), headers={"HX-Request": "true"})
    assert response.status_code == 401 and response.headers["HX-Redirect"] == url("auth.login")


def test_every_state_changing_route_enforces_csrf(app: Flask, logged_in: FlaskClient) -> None:
    """POST without a token is refused (400) on every panel route except the token-authenticated ones."""
    exempt = {"forms.submit", "webhooks.receive"}  # token- and signature-authenticated, not browser forms
    checked = 0
    for endpoint, path in _routes(app, "POST"):
        if endpoint in exempt:
            continue
        response = logged_in.post(path, data={"x": "1"})
        assert response.status_code == 400, endpoint
        assert b"Form expired" in response.data or b"CSRF" in response.data, endpoint
        checked += 1
    assert checked >= 15


def test_public_endpoints_answer_without_login(client: FlaskClient, admin: int, url) -> None:
    assert client.get(url("health.health_check")).json["status"] == "ok"
    assert client.get(url("static", filename="vendor/htmx-2.0.11.min.js")).status_code == 200
    assert client.get(url("auth.login")).status_code == 200
    # The OAuth callback refuses a flow it did not start (see test_integrations for the full flow).
    assert client.get(url("integrations.oauth_callback", state="x", code="y")).status_code == 400
    assert client.post(url("forms.submit", form_id=1), data={"token": "x"}).status_code == 404


@pytest.mark.parametrize("endpoint", ["settings.password"])
def test_password_change_signs_out_other_sessions(
    app: Flask, logged_in: FlaskClient, url, endpoint: str
) -> None:
    other = app.test_client()
    assert _login(other, url, PASSWORD) == 302
    token = csrf_from(logged_in.get(url("settings.password")).data)
    wrong = logged_in.post(
        url("settings.password"),
        data={"current": "nope", "new": "x" * 12, "new2": "x" * 12, "csrf_token": token},
    )
    assert wrong.status_code == 400
    done = logged_in.post(
        url("settings.password"),
        data={
            "current": PASSWORD,
            "new": "a new password 1",
            "new2": "a new password 1",
            "csrf_token": token,
        },
    )
    assert done.status_code == 302
    assert logged_in.get(url("dashboard.index")).status_code == 200  # this session stays
    assert other.get(url("dashboard.index")).status_code == 302  # the other one is gone
    assert _login(app.test_client(), url, "a new password 1") == 302
