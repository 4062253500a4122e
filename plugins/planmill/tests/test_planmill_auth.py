"""OAuth2 client credentials against the instance's token endpoint; expired tokens renewed once."""

from __future__ import annotations

import pytest
from flask import Flask
from leadbridge import connections
from leadbridge.app import get_plugins
from leadbridge.connections import client_for, view
from leadbridge.errors import AuthError, ConnectionDisabled
from leadbridge.http import CallStats
from leadbridge.types import Company, Contact
from leadbridge_planmill.sandbox import PlanMillSandbox
from planmill_testkit import Hooks


def test_test_connection_authenticates_and_reads_fields(
    app_ctx: Flask, connection, pm: PlanMillSandbox
) -> None:
    ok, message = connections.test_connection(connection)
    assert ok, message
    assert pm.grants == 1
    token_calls = [r for r in pm.requests if r[1] == "/acme/api/oauth2/token"]
    assert [(method, query) for method, _, query, _ in token_calls] == [("POST", {})]  # secret not in the URL
    assert pm.count_calls("POST", "/acme/api/oauth2/token") == 1


def test_wrong_secret_is_an_auth_error_and_never_retried(
    app_ctx: Flask, make_connection, pm: PlanMillSandbox
) -> None:
    conn = make_connection(bad=True)
    ok, message = connections.test_connection(conn)
    assert not ok and "invalid_client" in message
    assert pm.count_calls("POST", "/acme/api/oauth2/token") == 1
    with pytest.raises(AuthError):
        get_plugins().call(view(conn), "list_campaigns", client=client_for(conn))


@pytest.mark.parametrize("expired_status", [401, 400])
def test_a_token_expiring_mid_run_is_renewed_once(
    hooks: Hooks, pm: PlanMillSandbox, expired_status: int
) -> None:
    pm.expired_status = expired_status
    person = Contact(
        email="renew@example.com", fields={"lastName": "Renew"}, company=Company(name="Renew Oy")
    )
    assert hooks("upsert_contact", object_type="contact", contacts=[person])[0].ok
    assert pm.grants == 1
    pm.expire_tokens()
    again = Contact(
        email="renew2@example.com", fields={"lastName": "Renew"}, company=Company(name="Renew Oy")
    )
    assert hooks("upsert_contact", object_type="contact", contacts=[again])[0].ok
    assert pm.grants == 2
    assert hooks.stats.renewals == 1
    rejected = [c for c in pm.calls if c.status == expired_status]
    assert len(rejected) == 1


def test_a_token_past_its_lifetime_is_renewed_before_use(
    app_ctx: Flask, make_connection, pm: PlanMillSandbox
) -> None:
    pm.token_lifetime = 30  # shorter than the core's renewal margin: every call renews first
    conn = make_connection()
    stats = CallStats()
    client = client_for(conn, stats=stats)
    get_plugins().call(view(conn), "list_campaigns", client=client)
    get_plugins().call(view(conn), "list_campaigns", client=client)
    assert pm.grants == 2
    assert not [c for c in pm.calls if c.status in (400, 401)]


def test_a_disabled_connection_sends_nothing(app_ctx: Flask, make_connection, pm: PlanMillSandbox) -> None:
    conn = make_connection(enabled=False)  # the brief's "Enabled" is the connection's own switch
    with pytest.raises(ConnectionDisabled):
        get_plugins().call(view(conn), "list_campaigns", client=client_for(conn))
    assert pm.calls == []
