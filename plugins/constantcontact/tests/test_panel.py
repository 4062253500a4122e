"""Connect and Revoke access through the panel, with the sandbox as Constant Contact's login page."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import current_app, g
from flask import url_for as _url_for
from leadbridge.connections import load_credentials
from leadbridge.db import db
from leadbridge.models import Connection

PASSWORD = "correct horse battery staple"


def url_for(endpoint: str, **values: Any) -> str:
    with current_app.test_request_context():
        return _url_for(endpoint, **values)


@pytest.fixture
def admin_client(app: Any) -> Any:
    from leadbridge.users import create_user

    create_user("admin", PASSWORD)
    db.session.commit()
    client = app.test_client()
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)  # type: ignore[union-attr]
    client.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token})
    return client


def csrf(client: Any, path: str) -> str:
    # The test shares one app context with the client's requests; Flask-WTF caches the token in
    # ``g``, which would still hold the pre-login session's token.
    g.pop("csrf_token", None)
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


def connect(admin_client: Any, conn: Connection) -> dict[str, str]:
    """Press Connect; follow the vendor's login page like a browser; return the callback's query."""
    settings_path = url_for("integrations.settings", conn_id=conn.id)
    response = admin_client.post(
        url_for("integrations.connect", conn_id=conn.id),
        data={"csrf_token": csrf(admin_client, settings_path)},
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    authorize = response.headers["Location"]
    query = parse_qs(urlsplit(authorize).query)
    assert query["code_challenge_method"] == ["S256"] and query["state"][0]
    assert query["scope"] == ["contact_data offline_access"]
    vendor = requests.get(authorize, allow_redirects=False, timeout=10)
    assert vendor.status_code == 302
    back = urlsplit(vendor.headers["Location"])
    assert back.path == url_for("integrations.oauth_callback")
    return {k: v[0] for k, v in parse_qs(back.query).items()}


@pytest.fixture
def fresh(app_ctx: Any, make_connection: Any) -> Connection:
    conn = make_connection()
    conn.credentials_encrypted = None
    db.session.commit()
    return conn


def test_connect_completes_the_browser_flow(
    app_ctx: Any, admin_client: Any, sandbox: Any, fresh: Connection
) -> None:
    answer = connect(admin_client, fresh)
    done = admin_client.get(url_for("integrations.oauth_callback", **answer))
    assert done.status_code == 302
    assert sandbox.auth.token_requests == 1
    db.session.expire_all()
    creds = load_credentials(db.session.get(Connection, fresh.id))
    assert creds is not None and creds.refresh_token and creds.access_token
    assert fresh.state == "ok"


def test_a_wrong_state_is_refused_without_calling_the_token_endpoint(
    app_ctx: Any, admin_client: Any, sandbox: Any, fresh: Connection
) -> None:
    answer = connect(admin_client, fresh)
    refused = admin_client.get(url_for("integrations.oauth_callback", code=answer["code"], state="forged"))
    assert refused.status_code == 400
    assert sandbox.auth.token_requests == 0
    db.session.expire_all()
    assert load_credentials(db.session.get(Connection, fresh.id)) is None


def test_revoke_access_forgets_the_grant_and_syncing_stops(
    app_ctx: Any, admin_client: Any, sandbox: Any, fresh: Connection
) -> None:
    admin_client.get(url_for("integrations.oauth_callback", **connect(admin_client, fresh)))
    settings_path = url_for("integrations.settings", conn_id=fresh.id)
    admin_client.post(
        url_for("integrations.revoke_access", conn_id=fresh.id),
        data={"csrf_token": csrf(admin_client, settings_path)},
    )
    db.session.expire_all()
    conn = db.session.get(Connection, fresh.id)
    assert load_credentials(conn) is None and conn.state == "needs_reconnect"
