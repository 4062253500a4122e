""" "Connect" / "Revoke access" for an OAuth2 authorization-code connector (Constant Contact's sandbox):
state and PKCE kept in the session; a callback with a wrong or missing state never reaches the token
endpoint."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from leadbridge.connections import load_credentials
from leadbridge.db import db
from leadbridge.models import Connection


@pytest.fixture
def connection_plugin() -> str:
    return "constantcontact"


@pytest.fixture
def cc(make_connection, sandbox) -> Connection:
    sandbox.auth.auto_approve = True  # the sandbox's consent screen answers "Allow Access" itself
    conn: Connection = make_connection(name="Constant Contact")
    conn.credentials_encrypted = None  # not connected yet
    db.session.commit()
    return conn


def _start(client: FlaskClient, csrf: str, conn: Connection, url) -> dict[str, list[str]]:
    response = client.post(url("integrations.connect", conn_id=conn.id), data={"csrf_token": csrf})
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0]
    assert query["redirect_uri"][0].endswith(url("integrations.oauth_callback"))
    return {**query, "location": [response.headers["Location"]]}


def test_connect_exchanges_the_code_and_stores_the_grant(
    app: Flask, logged_in: FlaskClient, csrf: str, cc: Connection, sandbox, url
) -> None:
    page = logged_in.get(url("integrations.settings", conn_id=cc.id)).get_data(as_text=True)
    assert "Not connected yet" in page and ">Connect<" in page
    started = _start(logged_in, csrf, cc, url)
    consent = requests.get(started["location"][0], allow_redirects=False, timeout=10)
    assert consent.status_code == 302
    back = urlsplit(consent.headers["Location"])
    assert parse_qs(back.query)["state"] == started["state"]
    done = logged_in.get(f"{back.path}?{back.query}")
    assert done.status_code == 302
    assert sandbox.auth.token_requests == 1
    db.session.rollback()  # end the read snapshot: see what the request committed
    creds = load_credentials(db.session.get(Connection, cc.id))
    assert creds is not None and creds.refresh_token
    page = logged_in.get(url("integrations.settings", conn_id=cc.id)).get_data(as_text=True)
    assert "is connected" in page and "Revoke access" in page
    # The same callback twice: the pending flow was used up, nothing is exchanged again.
    assert logged_in.get(f"{back.path}?{back.query}").status_code == 400
    assert sandbox.auth.token_requests == 1


@pytest.mark.parametrize("state", ["forged", ""])
def test_callback_with_a_wrong_state_never_calls_the_token_endpoint(
    logged_in: FlaskClient, csrf: str, cc: Connection, sandbox, url, state: str
) -> None:
    started = _start(logged_in, csrf, cc, url)
    consent = requests.get(started["location"][0], allow_redirects=False, timeout=10)
    code = parse_qs(urlsplit(consent.headers["Location"]).query)["code"][0]
    refused = logged_in.get(url("integrations.oauth_callback", code=code, state=state))
    assert refused.status_code == 400 and b"does not match" in refused.data
    assert sandbox.auth.token_requests == 0
    db.session.rollback()  # end the read snapshot: see what the request committed
    assert db.session.get(Connection, cc.id).credentials_encrypted is None


def test_callback_without_a_started_flow_is_refused(
    client: FlaskClient, cc: Connection, sandbox, url
) -> None:
    assert client.get(url("integrations.oauth_callback", code="c", state="s")).status_code == 400
    assert sandbox.auth.token_requests == 0


def test_vendor_refusal_is_shown(logged_in: FlaskClient, csrf: str, cc: Connection, url) -> None:
    started = _start(logged_in, csrf, cc, url)
    response = logged_in.get(
        url("integrations.oauth_callback", state=started["state"][0], error="access_denied")
    )
    assert response.status_code == 302
    assert "The vendor refused access: access_denied" in logged_in.get(response.headers["Location"]).get_data(
        as_text=True
    )


def test_revoke_forgets_the_grant(logged_in: FlaskClient, csrf: str, make_connection, url) -> None:
    conn = make_connection(name="Connected")
    assert load_credentials(conn) is not None
    response = logged_in.post(url("integrations.revoke_access", conn_id=conn.id), data={"csrf_token": csrf})
    assert response.status_code == 302
    db.session.rollback()  # end the read snapshot: see what the request committed
    row = db.session.get(Connection, conn.id)
    assert row.credentials_encrypted is None and row.state == "needs_reconnect"
