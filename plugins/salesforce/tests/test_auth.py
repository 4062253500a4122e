"""Logging in: the three flows, login hosts, instance_url checks, version negotiation, reconnect advice."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from leadbridge import connections
from leadbridge.connection_view import ConnectionView
from leadbridge.db import db
from leadbridge.errors import AuthError, ConfigError, NeedsReconnect
from leadbridge.models import Connection
from leadbridge.testing import ConnectorHarness
from leadbridge_salesforce.hosts import checked_instance_url, login_url, my_domain_url
from leadbridge_salesforce.sandbox import SalesforceSandbox

MakeConnection = Callable[..., Connection]


def _values(sandbox: SalesforceSandbox, url: str, **changes: Any) -> dict[str, Any]:
    settings, secrets = sandbox.connection_settings(url)
    return {**settings, **secrets, **changes}


def _login(conn: Connection, sandbox: SalesforceSandbox) -> ConnectorHarness:
    harness = ConnectorHarness(conn, sandbox)
    harness.login()
    return harness


def test_client_credentials_on_my_domain_uses_basic_auth(
    make_connection: MakeConnection, sandbox: SalesforceSandbox, sandbox_server: Any
) -> None:
    conn = make_connection(
        _values(
            sandbox,
            sandbox_server.url,
            auth_flow="client_credentials",
            login_host="my_domain",
            my_domain="https://acme.my.salesforce.com/",
            password="",
            security_token="",
        )
    )
    harness = _login(conn, sandbox)
    assert harness.fields("Lead")
    assert sandbox.logins == 1


def test_client_credentials_refused_on_a_login_host_says_to_use_my_domain(
    make_connection: MakeConnection, sandbox: SalesforceSandbox, sandbox_server: Any
) -> None:
    sandbox.client_credentials_on_login_host = True
    conn = make_connection(
        _values(
            sandbox,
            sandbox_server.url,
            auth_flow="client_credentials",
            login_host="my_domain",
            my_domain="acme",
        )
    )
    with pytest.raises(AuthError, match="My Domain"):
        _login(conn, sandbox)


def test_client_credentials_without_my_domain_is_a_config_error() -> None:
    view = ConnectionView(id=1, name="x", plugin="salesforce", settings={"auth_flow": "client_credentials"})
    with pytest.raises(ConfigError, match="My Domain"):
        login_url(view)


def test_jwt_bearer_signs_with_the_private_key(
    make_connection: MakeConnection, sandbox: SalesforceSandbox, sandbox_server: Any
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    sandbox.jwt_public_key = key.public_key()
    conn = make_connection(
        _values(
            sandbox,
            sandbox_server.url,
            auth_flow="jwt_bearer",
            private_key=pem,
            consumer_secret="",
            password="",
        )
    )
    assert _login(conn, sandbox).fields("Contact")

    sandbox.jwt_approved = False
    sandbox.expire_tokens()
    other = make_connection(
        _values(sandbox, sandbox_server.url, auth_flow="jwt_bearer", private_key=pem), name="unapproved"
    )
    with pytest.raises(AuthError, match="Admin approved users"):
        _login(other, sandbox)


def test_expired_password_marks_the_connection_needs_reconnect_with_the_briefs_advice(
    make_connection: MakeConnection, sandbox: SalesforceSandbox, sandbox_server: Any
) -> None:
    conn = make_connection(_values(sandbox, sandbox_server.url, auth_flow="password"))
    sandbox.password_expired = True
    ok, message = connections.test_connection(conn)
    assert not ok and "authentication failure" in message
    db.session.refresh(conn)
    assert conn.state == "needs_reconnect"
    assert "security token" in (conn.state_message or "") and "reset" in (conn.state_message or "").lower()
    with pytest.raises(NeedsReconnect):
        _login(
            make_connection(_values(sandbox, sandbox_server.url, auth_flow="password"), name="again"), sandbox
        )


def test_an_instance_url_that_is_not_salesforce_is_refused(
    make_connection: MakeConnection, sandbox: SalesforceSandbox
) -> None:
    sandbox.instance_url = "https://evil.example.com"
    conn = make_connection()
    with pytest.raises(AuthError, match="not a Salesforce host"):
        _login(conn, sandbox)


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://acme.my.salesforce.com", True),
        ("https://eu11.salesforce.com/", True),
        ("https://acme--uat.sandbox.my.salesforce.com", True),
        ("http://acme.my.salesforce.com", False),
        ("https://acme.lightning.force.com", False),
        ("https://salesforce.com.evil.example", False),
        ("https://acme.my.salesforce.com:8443", False),
        ("https://user@acme.my.salesforce.com", False),
        ("https://acme.my.salesforce.com/services/data", False),
        ("https://127.0.0.1", False),
    ],
)
def test_instance_url_check(url: str, ok: bool) -> None:
    view = ConnectionView(id=1, name="x", plugin="salesforce", settings={})
    if ok:
        assert checked_instance_url(view, url).startswith("https://")
    else:
        with pytest.raises(AuthError):
            checked_instance_url(view, url)


@pytest.mark.parametrize(
    ("typed", "url"),
    [
        ("acme", "https://acme.my.salesforce.com"),
        ("https://Acme.my.salesforce.com/", "https://acme.my.salesforce.com"),
        ("https://acme.lightning.force.com", "https://acme.my.salesforce.com"),
        ("acme--uat.sandbox.my.salesforce.com", "https://acme--uat.sandbox.my.salesforce.com"),
    ],
)
def test_my_domain_as_admins_type_it(typed: str, url: str) -> None:
    assert my_domain_url(typed) == url


@pytest.mark.parametrize("typed", ["evil.com/x", "acme.my.salesforce.com.evil.com", "a b", "https://x@acme"])
def test_my_domain_refuses_other_hosts(typed: str) -> None:
    with pytest.raises(ConfigError):
        my_domain_url(typed)


def test_the_api_version_is_the_lower_of_configured_and_offered(
    make_connection: MakeConnection, sandbox: SalesforceSandbox
) -> None:
    sandbox.versions = ["58.0", "59.0"]
    harness = _login(make_connection(), sandbox)
    assert harness.fields("Lead")
    assert sandbox.count_calls("GET", "/services/data/v59.0/sobjects/Lead/describe") == 1


def test_without_override_data_calls_go_to_the_instance_url() -> None:
    from leadbridge.types import Credentials
    from leadbridge_salesforce.connector import api_base_url

    creds = Credentials(headers={}, extra={"instance_url": "https://acme.my.salesforce.com"})
    view = ConnectionView(
        id=1, name="x", plugin="salesforce", settings={"login_host": "sandbox"}, credentials=creds
    )
    assert api_base_url(connection=view) == "https://acme.my.salesforce.com"
    view.credentials = None
    assert api_base_url(connection=view) == "https://test.salesforce.com"


def test_invalid_session_is_renewed_once_then_given_up(
    make_connection: MakeConnection, sandbox: SalesforceSandbox
) -> None:
    harness = _login(make_connection(), sandbox)
    sandbox.session_lifetime = -1  # every session is already idle-expired: renewal cannot help
    with pytest.raises(AuthError, match="still rejected"):
        harness.fields("Lead")
    assert sandbox.logins == 2  # one renewal, no loop (an old client looped forever)


class _ToSandbox(requests.adapters.HTTPAdapter):
    """Routes https://*.salesforce.com to the loopback sandbox and remembers the hosts asked for."""

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target
        self.hosts: list[str] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        parts = urlsplit(request.url or "")
        self.hosts.append(parts.netloc)
        request.url = self.target + parts.path + (f"?{parts.query}" if parts.query else "")
        return super().send(request, **kwargs)


def test_production_hosts_login_on_my_domain_then_use_the_instance_url(
    make_connection: MakeConnection, sandbox: SalesforceSandbox, sandbox_server: Any
) -> None:
    """No operator override: the token goes to the My Domain host, data to the answer's instance_url."""
    sandbox.instance_url = "https://na211.salesforce.com"
    conn = make_connection(
        _values(
            sandbox, sandbox_server.url, login_host="my_domain", my_domain="https://acme.lightning.force.com"
        ),
        options={"base_url": None},
    )
    harness = ConnectorHarness(conn, sandbox)
    adapter = _ToSandbox(sandbox_server.url)
    harness.client.session.mount("https://", adapter)
    assert harness.fields("Lead")
    assert adapter.hosts == ["acme.my.salesforce.com", "na211.salesforce.com", "na211.salesforce.com"]
    assert harness.client.base_url == "https://na211.salesforce.com/"
