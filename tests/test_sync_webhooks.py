"""Webhook deliveries through the engine: verified, applied, de-duplicated, out-of-order safe."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from leadbridge import clock as clocks
from leadbridge.db import db
from leadbridge.errors import AuthError
from leadbridge.models import Connection, Contact, SyncRun
from leadbridge.sync import default_mappings, fieldcache, receive_webhook, run_sync
from leadbridge.types import WebhookRequest
from sqlalchemy import func, select


@pytest.fixture
def conn(connection: Connection) -> Connection:
    default_mappings(connection)
    db.session.commit()
    return connection


def delivery(sandbox: Any, events: list[dict[str, Any]], secret: str | None = None) -> WebhookRequest:
    body, headers = sandbox.webhook_delivery(events, secret=secret)
    return WebhookRequest(method="POST", headers=headers, body=body, query={})


def updated(event_id: str, rid: str, when: datetime, **values: Any) -> dict[str, Any]:
    data = {"id": rid, "email": f"person{rid}@example.net", "updated_at": when.isoformat(), **values}
    return {"id": event_id, "type": "contact.updated", "data": data}


def test_webhook_updates_once_and_ignores_repeats_and_stale_events(conn: Connection, sandbox: Any) -> None:
    [rid] = sandbox.add_contacts(1)
    run_sync(conn.id, direction="from_crm")
    now = clocks.utcnow() + timedelta(seconds=1)
    run = receive_webhook(conn.id, delivery(sandbox, [updated("ev1", rid, now, first_name="Hooked")]))
    assert run.trigger == "webhook" and run.status == "succeeded", run.error
    assert run.counts["hub"]["updated"] == 1
    assert db.session.execute(select(Contact.first_name)).scalar_one() == "Hooked"
    again = receive_webhook(conn.id, delivery(sandbox, [updated("ev1", rid, now, first_name="Hooked")]))
    assert again.counts["hub"]["updated"] == 0
    stale = receive_webhook(
        conn.id, delivery(sandbox, [updated("ev0", rid, now - timedelta(minutes=1), first_name="Older")])
    )
    assert stale.counts["hub"]["updated"] == 0
    assert db.session.execute(select(Contact.first_name)).scalar_one() == "Hooked"


def test_webhook_with_a_bad_signature_stores_nothing(conn: Connection, sandbox: Any) -> None:
    [rid] = sandbox.add_contacts(1)
    before = db.session.execute(select(func.count(SyncRun.id))).scalar_one()
    with pytest.raises(AuthError):
        receive_webhook(conn.id, delivery(sandbox, [updated("x", rid, clocks.utcnow())], secret="wrong"))
    assert db.session.execute(select(func.count(SyncRun.id))).scalar_one() == before
    assert db.session.execute(select(func.count(Contact.id))).scalar_one() == 0


def test_webhook_delete_follows_the_delete_policy(conn: Connection, sandbox: Any) -> None:
    row = db.session.get(Connection, conn.id)
    row.options = {**row.options, "delete_policy": {"from_crm": "unsubscribe"}}
    db.session.commit()
    [rid] = sandbox.add_contacts(1)
    run_sync(conn.id, direction="from_crm")
    event = {
        "id": "del1",
        "type": "contact.deleted",
        "data": {"id": rid, "updated_at": (clocks.utcnow() + timedelta(seconds=1)).isoformat()},
    }
    run = receive_webhook(conn.id, delivery(sandbox, [event]))
    assert run.status == "succeeded", run.error
    assert db.session.execute(select(Contact.unsubscribed)).scalar_one() is True


def test_a_webhook_that_cannot_be_applied_asks_for_redelivery(conn: Connection, sandbox: Any) -> None:
    from leadbridge.errors import TransientError

    [rid] = sandbox.add_contacts(1)
    fieldcache.invalidate(conn.id)  # the delivery has to fetch the fields, and the vendor is down
    db.session.commit()
    sandbox.fail_next(503, times=5, path_prefix="/api/fields")
    event = updated("ev-retry", rid, clocks.utcnow(), first_name="Later")
    with pytest.raises(TransientError):
        receive_webhook(conn.id, delivery(sandbox, [event]))
    assert db.session.execute(select(func.count(Contact.id))).scalar_one() == 0
    run = receive_webhook(conn.id, delivery(sandbox, [event]))  # re-delivered: applied now
    assert run.counts["hub"]["created"] == 1
