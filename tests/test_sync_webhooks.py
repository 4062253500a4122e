"""Webhook deliveries through the engine: verified, applied, de-duplicated, out-of-order safe."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import current_app
from leadbridge import clock as clocks
from leadbridge.db import db
from leadbridge.errors import AuthError
from leadbridge.models import Connection, Contact, SyncRun
from leadbridge.state import get_executor
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


def test_a_webhook_that_cannot_be_applied_waits_in_the_inbox_and_is_applied_after_its_back_off(
    conn: Connection, sandbox: Any
) -> None:
    from leadbridge.errors import TransientError

    [rid] = sandbox.add_contacts(1)
    fieldcache.invalidate(conn.id)  # the delivery has to fetch the fields, and the vendor is down
    db.session.commit()
    sandbox.fail_next(503, times=5, path_prefix="/api/fields")
    event = updated("ev-retry", rid, clocks.utcnow(), first_name="Later")
    with pytest.raises(TransientError):
        receive_webhook(conn.id, delivery(sandbox, [event]))
    assert db.session.execute(select(func.count(Contact.id))).scalar_one() == 0
    early = receive_webhook(conn.id, delivery(sandbox, [event]))  # re-delivered: a duplicate, backing off
    assert early.counts["hub"]["created"] == 0
    clocks.get_clock().advance(31)  # type: ignore[attr-defined]
    run = receive_webhook(conn.id, delivery(sandbox, [event]))
    assert run.counts["hub"]["created"] == 1


# -- the inbox: accepted at once, applied in the background -------------------------------------------


def test_events_round_trip_through_the_inbox_codec() -> None:
    from leadbridge.sync.inbox import decode_event, encode_event
    from leadbridge.types import Action, Company, WebhookEvent
    from leadbridge.types import Contact as Person

    when = datetime(2026, 12, 7, 10, 0, 0, 123000, tzinfo=clocks.UTC)
    person = Person("a@example.com", "7", {"first_name": "A", "tags": ["x"]}, Company("Acme", "3"), when)
    action = Action(
        "deal", Person(None, "7"), kind="pipedrive_deal_added", occurred_at=when, fields={"v": 1.5}
    )
    for event in (
        WebhookEvent("upsert", "contact", "e1", contact=person),
        WebhookEvent("x", "p", "e2", action=action),
    ):
        assert decode_event(encode_event(event)) == event


def test_a_failing_event_waits_in_the_inbox_is_retried_and_parked_after_max_attempts(
    conn: Connection, sandbox: Any
) -> None:
    from leadbridge.errors import TransientError
    from leadbridge.models import WebhookInbox
    from leadbridge.sync import inbox

    [rid] = sandbox.add_contacts(1)
    fieldcache.invalidate(conn.id)  # applying needs the field list, and the vendor is down
    db.session.commit()
    sandbox.fail_next(503, times=100, path_prefix="/api/fields")
    with pytest.raises(TransientError):
        receive_webhook(conn.id, delivery(sandbox, [updated("stuck", rid, clocks.utcnow(), first_name="S")]))
    row = db.session.execute(select(WebhookInbox)).scalar_one()
    assert row.attempts == 1 and row.parked_at is None and "503" in (row.last_error or "")
    assert inbox.sweep() == [], "a failed event backs off: no drain at once"
    for _ in range(inbox.MAX_ATTEMPTS - 1):
        clocks.get_clock().advance(3 * 3600)  # type: ignore[attr-defined]
        assert inbox.sweep(), "after its back-off a waiting event starts a drain"
        get_executor(current_app).wait(30)
    db.session.expire_all()
    row = db.session.execute(select(WebhookInbox)).scalar_one()
    assert row.attempts == inbox.MAX_ATTEMPTS and row.parked_at is not None  # kept, no longer retried
    assert inbox.sweep() == [] and db.session.execute(select(func.count(Contact.id))).scalar_one() == 0
    sandbox.faults.clear()
    run = receive_webhook(conn.id, delivery(sandbox, [updated("next", rid, clocks.utcnow(), first_name="N")]))
    assert run.status == "succeeded" and run.counts["hub"]["created"] == 1  # the parked one blocks nothing


def test_a_drain_left_running_by_a_dead_process_does_not_block_the_inbox(
    conn: Connection, sandbox: Any
) -> None:
    from leadbridge.sync import inbox
    from leadbridge.sync.runner import create_run
    from leadbridge.types import RunStatus

    dead = create_run(conn.id, trigger="webhook", direction="from_crm", details={"mode": "webhook"})
    dead.status = RunStatus.RUNNING
    db.session.commit()
    [rid] = sandbox.add_contacts(1)
    body = delivery(sandbox, [updated("late", rid, clocks.utcnow() + timedelta(seconds=1), first_name="L")])
    from leadbridge.sync import accept_webhook

    first = accept_webhook(conn.id, body)
    assert first.queued == 1 and first.drain_run_id is None  # a drain looks busy
    clocks.get_clock().advance(inbox.STALE_DRAIN.total_seconds() + 1)  # type: ignore[attr-defined]
    started = inbox.sweep()
    assert len(started) == 1
    get_executor(current_app).wait(30)
    db.session.expire_all()
    assert db.session.get(SyncRun, dead.id).status == "failed"
    assert db.session.execute(select(Contact.first_name)).scalar_one() == "L"
