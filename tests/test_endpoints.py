"""Named endpoints and static keys: one connection, two vendor APIs, each with its own credentials,
pacer, error rules and call counts, all through the core's client (the Pipedrive → Maileon shape).

The connector here is installed like any other (a dist-info on ``sys.path``) and talks to one
loopback sandbox that serves both APIs' path trees, as the Pipedrive → Maileon sandbox will.
"""

from __future__ import annotations

import base64
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, jsonify, request
from leadbridge.apikeys import ApiKeyHeader, BasicAuth
from leadbridge.connections import (
    client_for,
    create_connection,
    load_credentials,
    store_credentials,
    update_settings,
)
from leadbridge.db import db
from leadbridge.errors import ConfigError, NeedsReconnect, PluginError, RecordError
from leadbridge.metadata import AuthKind, ConnectorInfo, Endpoint, Setting, SettingType, validate_info
from leadbridge.models import Connection
from leadbridge.sandbox import Sandbox, SandboxServer
from leadbridge.testing.distinfo import install_entry_point
from leadbridge.types import Credentials

PLUGIN = textwrap.dedent(
    """
    from leadbridge import hookimpl
    from leadbridge.apikeys import ApiKeyHeader, BasicAuth
    from leadbridge.errors import RecordError
    from leadbridge.metadata import AuthKind, ConnectorInfo, Endpoint, ObjectSpec, RateLimit
    from leadbridge.metadata import Setting, SettingType
    from leadbridge.types import Direction, HubKind

    CLASSIFIED = []

    @hookimpl
    def connector_info():
        return ConnectorInfo(
            name="twoapi", display_name="Two APIs", description="", version="1.0",
            auth_kind=AuthKind.API_KEY,
            settings=(
                Setting("crm_token", "CRM token", SettingType.SECRET, required=True),
                Setting("mail_key", "Mail key", SettingType.SECRET, required=True),
            ),
            objects=(ObjectSpec("person", "Persons", HubKind.CONTACT, frozenset({Direction.FROM_CRM})),),
            auth=ApiKeyHeader("crm_token", header="x-api-token"),
            rate_limits=(RateLimit(20, 2),),
            endpoints=(
                Endpoint("mail", "MailVendor", base_url="https://api.mail.example/1.0",
                         auth=BasicAuth("mail_key", key_only=True), rate_limits=(RateLimit(5, 1),)),
            ),
        )

    @hookimpl
    def api_base_url(connection):
        return "https://api.crm.example/api/v2"

    @hookimpl
    def classify_error(connection, response, endpoint):
        CLASSIFIED.append((endpoint, response.status_code))
        if endpoint == "mail" and response.status_code == 400:
            return RecordError("mail vendor refused: " + response.text, code="mail_400")
        return None
    """
)


class TwoApis(Sandbox):
    name = "twoapi"
    CRM_TOKEN = "crm-token-1234"
    MAIL_KEY = "mail-key-5678"

    def setup_routes(self) -> None:
        app = self.app

        @app.get("/api/v2/persons")
        def persons() -> Any:
            if (
                request.headers.get("x-api-token") != self.CRM_TOKEN
                or "token" in request.query_string.decode()
            ):
                return jsonify({"success": False, "error": "unauthorized access"}), 401
            return jsonify({"success": True, "data": [{"id": 1, "email": "jane@example.org"}]})

        @app.put("/1.0/contacts/email/<email>")
        def contact(email: str) -> Any:
            expected = "Basic " + base64.b64encode(self.MAIL_KEY.encode()).decode()  # the key alone, no colon
            if request.headers.get("Authorization") != expected:
                return "", 401
            if "@" not in email:
                return "invalid email", 400
            return "", 201


@pytest.fixture(autouse=True)
def twoapi_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "lb_twoapi.py").write_text(PLUGIN, encoding="utf-8")
    install_entry_point(site, dist_name="lb-twoapi", name="twoapi", module="lb_twoapi")
    monkeypatch.syspath_prepend(str(site))


@pytest.fixture()
def server() -> Iterator[SandboxServer]:
    with SandboxServer(TwoApis()) as running:
        yield running


def connect(server: SandboxServer, *, mail_key: str = TwoApis.MAIL_KEY) -> Connection:
    values = {"crm_token": TwoApis.CRM_TOKEN, "mail_key": mail_key}
    conn = create_connection("twoapi", "Two", values, enabled=True, options={"base_url": server.url})
    db.session.commit()
    return conn


def test_each_endpoint_sends_its_own_key_and_is_counted_apart(app_ctx: Flask, server: SandboxServer) -> None:
    client = client_for(connect(server))
    persons = client.get("persons").json()["data"]
    mail = client.endpoint("mail")
    mail.put("contacts/email/jane@example.org")
    assert persons == [{"id": 1, "email": "jane@example.org"}]
    assert mail.base_url == "https://api.mail.example/1.0/"  # the real host; the override only redirects
    assert client.stats.calls == 2
    assert client.stats.calls_to(None) == 1 and client.stats.calls_to("mail") == 1
    assert client.stats.by_endpoint["mail PUT /1.0/contacts/email/jane@example.org"] == 1
    assert client.endpoint("mail") is mail  # one client per endpoint and run
    assert mail.pacer is not client.pacer  # its own allowance
    assert mail.run_cache("x") is client.run_cache("x")  # one run, one cache


def test_errors_are_classified_per_endpoint(app_ctx: Flask, server: SandboxServer) -> None:
    import lb_twoapi

    lb_twoapi.CLASSIFIED.clear()
    client = client_for(connect(server))
    with pytest.raises(RecordError, match="mail vendor refused: invalid email"):
        client.endpoint("mail").put("contacts/email/not-an-email")
    assert lb_twoapi.CLASSIFIED == [("mail", 400)]


def test_a_rejected_key_asks_the_admin_for_a_new_one(app_ctx: Flask, server: SandboxServer) -> None:
    conn = connect(server, mail_key="revoked-key-0000")
    client = client_for(conn)
    client.get("persons")  # the other API still works
    with pytest.raises(NeedsReconnect, match="MailVendor refused the key"):
        client.endpoint("mail").put("contacts/email/jane@example.org")
    db.session.expire_all()
    row = db.session.get(Connection, conn.id)
    assert row is not None and row.state == "needs_reconnect"
    assert "Enter a valid key" in (row.state_message or "")
    assert server.sandbox.count_calls("PUT") == 1  # a key is never "renewed" by asking again
    update_settings(row, {"crm_token": "", "mail_key": TwoApis.MAIL_KEY})  # the admin pastes a good key
    db.session.commit()
    assert row.state == "ok" and row.state_message is None
    client_for(row).endpoint("mail").put("contacts/email/jane@example.org")
    assert server.sandbox.count_calls("PUT") == 2


def test_a_new_endpoint_key_keeps_the_main_apis_grant(app_ctx: Flask, server: SandboxServer) -> None:
    conn = connect(server)
    store_credentials(
        conn,
        Credentials(headers={"Authorization": "Bearer main-grant-token-1"}, refresh_token="main-refresh-1"),
    )
    db.session.commit()
    update_settings(conn, {"crm_token": "", "mail_key": "a-new-mail-key-9999"})
    assert load_credentials(conn) is not None  # only the endpoint's key changed
    update_settings(conn, {"crm_token": "another-crm-token", "mail_key": ""})
    assert load_credentials(conn) is None  # the main API's credentials changed: the grant goes


def test_an_endpoint_without_a_base_url_of_its_own_is_refused(
    app_ctx: Flask, server: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    import lb_twoapi

    info = lb_twoapi.connector_info()
    unnamed = dataclasses.replace(info.endpoints[0], base_url=None)
    monkeypatch.setattr(
        "leadbridge.plugins.Plugins.info", lambda self, name: dataclasses.replace(info, endpoints=(unnamed,))
    )
    client = client_for(connect(server))
    with pytest.raises(ConfigError, match="no base URL of its own"):
        client.endpoint("mail")
    assert server.sandbox.count_calls() == 0  # the mail key never went to the CRM's host


def test_a_static_key_must_be_a_secret_setting() -> None:
    info = ConnectorInfo(
        name="leaky", display_name="Leaky", description="", version="1.0", auth_kind=AuthKind.API_KEY,
        settings=(Setting("token", "Token", SettingType.STRING),),
        objects=validate_objects(),
        endpoints=(Endpoint("mail", "Mail", base_url="https://x.example", auth=BasicAuth("token")),),
    )  # fmt: skip
    with pytest.raises(PluginError, match="'token', which is not a secret setting"):
        validate_info(info, entry_point_name="leaky", core_version="1.0")
    plain = ConnectorInfo(**{**_fields(info), "endpoints": (), "auth": ApiKeyHeader("token", header="x-key")})
    with pytest.raises(PluginError, match="not a secret setting"):
        validate_info(plain, entry_point_name="leaky", core_version="1.0")


def validate_objects() -> Any:
    from leadbridge.metadata import ObjectSpec
    from leadbridge.types import Direction, HubKind

    return (ObjectSpec("person", "Persons", HubKind.CONTACT, frozenset({Direction.FROM_CRM})),)


def _fields(info: ConnectorInfo) -> dict[str, Any]:
    return {name: getattr(info, name) for name in ConnectorInfo.__dataclass_fields__}
