"""PlanMill webhooks: registered once, authenticated by the URL key, applied through the hub endpoint."""

from __future__ import annotations

import json

import pytest
from flask import Flask
from flask.testing import FlaskClient
from leadbridge.connections import view
from leadbridge.db import db
from leadbridge.errors import AuthError
from leadbridge.models import Connection, Contact
from leadbridge.state import get_executor
from leadbridge.sync import default_mappings, subscriptions
from leadbridge.types import WebhookRequest
from leadbridge_planmill.sandbox import PlanMillSandbox
from leadbridge_planmill.webhooks import EVENTS, webhook_key
from planmill_testkit import Hooks
from sqlalchemy import select

HUB = "https://hub.example/webhooks/1"


def test_registering_twice_keeps_one_hook_per_event(hooks: Hooks, pm: PlanMillSandbox) -> None:
    first = hooks("register_webhooks", url=HUB, secret="ignored")
    again = hooks("register_webhooks", url=HUB, secret="ignored")
    assert first == again and len(first) == len(EVENTS)
    assert sorted(h["hook"] for h in pm.hooks.values()) == sorted(EVENTS)
    key = webhook_key(view(hooks.conn))
    assert {h["url"] for h in pm.hooks.values()} == {f"{HUB}?key={key}"}


def test_the_core_registers_on_enable_and_removes_on_disable(
    app_ctx: Flask, connection: Connection, pm
) -> None:
    """The core's webhook lifecycle against PlanMill's /hooks: once per event, reused, then removed."""
    first = subscriptions.reconcile(connection)
    again = subscriptions.reconcile(connection)
    assert first.status is subscriptions.SubscriptionStatus.REGISTERED and first.error is None
    assert again.remote_ids == first.remote_ids and len(pm.hooks) == len(EVENTS)
    assert {h["url"].split("?")[0] for h in pm.hooks.values()} == {subscriptions.webhook_url(connection.id)}
    subscriptions.remove(connection)
    assert pm.hooks == {}
    assert subscriptions.status(connection).status is subscriptions.SubscriptionStatus.REMOVED


def test_a_delivery_without_the_right_key_is_refused(hooks: Hooks) -> None:
    body = json.dumps({"hook": "contact.update", "Id": 1, "resource": {"email": "x@example.com"}}).encode()
    for query in ({}, {"key": "guess"}):
        forged = WebhookRequest(method="POST", headers={}, body=body, query=query)
        with pytest.raises(AuthError):
            hooks("handle_webhook", request=forged)


def _deliver(client: FlaskClient, conn: Connection, payload: dict[str, object]) -> dict[str, object]:
    url = f"/webhooks/{conn.id}?key={webhook_key(view(conn))}"
    answer = client.post(url, json=payload)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    get_executor(client.application).wait(30)  # accepted at once, applied in the background
    db.session.rollback()
    result: dict[str, object] = answer.get_json()
    return result


def test_a_contact_update_reaches_the_hub_once(
    app_ctx: Flask, connection: Connection, client: FlaskClient, pm: PlanMillSandbox
) -> None:
    default_mappings(connection)
    db.session.commit()
    rid = pm.add_contact(
        "hooked@example.com", account=pm.add_account("Hook Oy"), firstName="Hook", lastName="Ed"
    )
    row = pm.records["contacts"][rid]
    payload = {"hook": "contact.update", "eventUser": 50, "Id": rid, "subject": "Ed", "resource": row}
    _deliver(client, connection, payload)
    hub = db.session.execute(select(Contact).where(Contact.email_key == "hooked@example.com")).scalar_one()
    assert (hub.first_name, hub.last_name) == ("Hook", "Ed")
    again = _deliver(client, connection, payload)  # PlanMill may deliver twice
    assert again["duplicates"] == 1 and again["queued"] == 0
    assert (
        len(db.session.execute(select(Contact).where(Contact.email_key == "hooked@example.com")).all()) == 1
    )
