"""The webhook inbox: a delivery is accepted in its request, applied in the background.

Vendors wait only seconds for an answer (Pipedrive: 10 s, then retries, then a ban after ten
failures), so the request does the least that makes the delivery safe: the connector verifies and
parses it (``handle_webhook``), its events are stored here (one row per vendor event id: a
duplicate delivery adds nothing), the transaction commits, and the vendor gets 200. A ``webhook``
run then applies the rows in arrival order through the engine's pull rules (:mod:`.webhooks`),
each row deleted in the same transaction as the delivery id it leaves behind.

One drain per connection at a time: a delivery starts one only when none is queued or running,
and a finishing drain looks again after it has ended (a row stored meanwhile is never stranded;
the scheduler's sweep is the last resort). A row that keeps failing is retried by later drains and
parked after :data:`MAX_ATTEMPTS`, so it can neither be lost nor block the events behind it forever.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app
from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from ..db import db, utcnow
from ..errors import QuotaExhausted, RateLimited, RecordError
from ..models import SyncRun, WebhookDelivery, WebhookInbox
from ..state import get_executor
from ..types import Action, Company, Contact, Direction, HubKind, LogSide, Outcome, RunStatus, WebhookEvent
from . import locks
from .context import RunContext
from .events import apply_event
from .runlog import empty_counts

log = logging.getLogger(__name__)

#: Failed attempts of one event before it is parked (kept, logged, no longer retried); the waits
#: between them back off, so an outage of a few hours is ridden out, not a burst of drains.
MAX_ATTEMPTS = 6
BACKOFF = (timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10), timedelta(minutes=30),
           timedelta(hours=2))  # fmt: skip
#: Events one drain applies before it ends and the next one starts (bounds a run's length).
MAX_EVENTS_PER_DRAIN = 2000
#: The trigger of the push a drain starts for what it changed (not "webhook": it is no drain).
RELAY_TRIGGER = "webhook_relay"
#: The drain lock of a drain on another host is stale after this without a heartbeat.
STALE_DRAIN = timedelta(minutes=15)
#: How long a new drain may take to start and take the drain lock (threads: milliseconds).
DRAIN_START_GRACE = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class Accepted:
    """What a delivery added to the inbox."""

    queued: int
    duplicates: int
    drain_run_id: int | None = None


# -- events as JSON ---------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _typed(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$dt"}:
            return datetime.fromisoformat(value["$dt"])
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    return value


def encode_event(event: WebhookEvent) -> dict[str, Any]:
    """``event`` as JSON data (datetimes tagged, so they come back as datetimes)."""
    return _plain(dataclasses.asdict(event))  # type: ignore[no-any-return]


def decode_event(data: dict[str, Any]) -> WebhookEvent:
    raw = _typed(data)

    def contact(d: dict[str, Any] | None) -> Contact | None:
        if d is None:
            return None
        return Contact(**{**d, "company": company(d.get("company"))})

    def company(d: dict[str, Any] | None) -> Company | None:
        return Company(**d) if d is not None else None

    action = raw.get("action")
    if action is not None:
        found = contact(action["contact"])
        assert found is not None
        action = Action(**{**action, "contact": found, "company": company(action.get("company"))})
    return WebhookEvent(
        kind=raw["kind"],
        object_type=raw["object_type"],
        event_id=raw["event_id"],
        contact=contact(raw.get("contact")),
        company=company(raw.get("company")),
        data=raw.get("data") or {},
        action=action,
    )


# -- accepting ----------------------------------------------------------------------------------------


def accept(conn_id: int, events: Sequence[WebhookEvent]) -> Accepted:
    """Store ``events`` not seen before (applied or waiting); commits. Returns the counts."""
    queued = duplicates = 0
    for event in events:
        if db.session.get(WebhookDelivery, (conn_id, event.event_id)) is not None:  # applied already
            duplicates += 1
            continue
        try:
            with db.session.begin_nested():  # already waiting (or a parallel delivery won)
                db.session.add(
                    WebhookInbox(connection_id=conn_id, event_id=event.event_id, event=encode_event(event))
                )
            queued += 1
        except IntegrityError:
            duplicates += 1
    db.session.commit()
    return Accepted(queued, duplicates)


def _due(conn_id: int | None = None) -> Any:
    """Rows a drain may apply now: not parked, not backing off."""
    now = utcnow()
    clause = and_(
        WebhookInbox.parked_at.is_(None), or_(WebhookInbox.retry_at.is_(None), WebhookInbox.retry_at <= now)
    )
    return clause if conn_id is None else and_(WebhookInbox.connection_id == conn_id, clause)


def pending(conn_id: int) -> bool:
    """The connection has events a drain may apply now."""
    return bool(db.session.execute(select(exists().where(_due(conn_id)))).scalar())


def start_drain(conn_id: int, app: Flask | None = None) -> int | None:
    """Queue a ``webhook`` run applying the connection's inbox, unless one is queued or running
    (it will see the new rows). Returns the new run's id."""
    active = (
        SyncRun.connection_id == conn_id,
        SyncRun.trigger == "webhook",
        SyncRun.status.in_((RunStatus.QUEUED, RunStatus.RUNNING)),
    )
    busy = db.session.execute(select(func.min(SyncRun.started_at)).where(*active)).scalar()
    if busy is not None and _dead_drain(conn_id, busy):
        # A drain is never locked by the run lock, so one killed with its process would look busy forever.
        db.session.execute(
            update(SyncRun)
            .where(*active)
            .values(status=RunStatus.FAILED, finished_at=utcnow(), error="interrupted (the process stopped)")
        )
        db.session.commit()
        busy = None
    if busy is not None or not pending(conn_id):
        return None
    run = SyncRun(
        connection_id=conn_id,
        status=RunStatus.QUEUED,
        trigger="webhook",
        direction=Direction.FROM_CRM.value,
        started_at=utcnow(),
        counts=empty_counts(),
        details={"mode": "webhook"},
    )
    db.session.add(run)
    db.session.commit()
    get_executor(app or current_app._get_current_object()).submit(run.id)  # type: ignore[attr-defined]
    return run.id


def _dead_drain(conn_id: int, since: datetime) -> bool:
    """The queued or running drain is gone: no live process holds the drain lock (a running drain
    holds it from its first moment) although it was started more than DRAIN_START_GRACE ago."""
    alive = locks.live_holder(drain_lock(conn_id), stale_after=STALE_DRAIN.total_seconds()) is not None
    return not alive and utcnow() - since > DRAIN_START_GRACE


def sweep() -> list[int]:
    """Start a drain for every connection with waiting events (the scheduler runs this)."""
    conn_ids = db.session.execute(select(WebhookInbox.connection_id).where(_due()).distinct()).scalars()
    started = []
    for conn_id in list(conn_ids):
        run_id = start_drain(conn_id)
        if run_id is not None:
            started.append(run_id)
    return started


def next_rows(conn_id: int, after: int, limit: int = 100) -> list[WebhookInbox]:
    return list(
        db.session.execute(
            select(WebhookInbox)
            .where(_due(conn_id), WebhookInbox.id > after)
            .order_by(WebhookInbox.id)
            .limit(limit)
        ).scalars()
    )


def record_failure(row_id: int, exc: Exception) -> None:
    """A failed attempt of a row (in its own transaction): retried after a back-off, parked after
    MAX_ATTEMPTS. A rate limit is no attempt: the row waits as long as the vendor asked."""
    row = db.session.get(WebhookInbox, row_id)
    if row is None:
        return
    now = utcnow()
    row.last_error = str(exc)[:2000]
    if isinstance(exc, RateLimited):
        row.retry_at = now + timedelta(seconds=exc.retry_after or 60)
    elif isinstance(exc, QuotaExhausted):
        row.retry_at = exc.resets_at or now + timedelta(hours=1)
    else:
        row.attempts += 1
        if row.attempts >= MAX_ATTEMPTS:
            row.parked_at = now
            log.warning("webhook event %s of connection %s parked: %s", row.event_id, row.connection_id, exc)
        else:
            row.retry_at = now + BACKOFF[min(row.attempts, len(BACKOFF)) - 1]
    db.session.commit()


def drain_body(ctx: RunContext, details: dict[str, Any]) -> None:
    """The ``webhook`` run: apply the inbox in arrival order, each event with its delivery id.

    An event the connector refuses for good (``RecordError``) is logged failed and dropped; any other
    failure stops the drain (later events of the same record must not overtake it) and counts one
    attempt against the event, which is parked after :data:`MAX_ATTEMPTS`.
    """
    lock, owner = drain_lock(ctx.conn_id), locks.owner_id(f"drain{ctx.log.run_id}")
    if not locks.acquire(lock, owner, stale_after=STALE_DRAIN.total_seconds()):
        ctx.log.note("another drain of this connection is applying its webhook events")
        return
    try:
        after, applied, changed = 0, 0, set[int]()
        while applied < MAX_EVENTS_PER_DRAIN and (rows := next_rows(ctx.conn_id, after)):
            for row in rows:
                after, row_id, event_id = row.id, row.id, row.event_id
                try:
                    if (touched := apply_event(ctx, decode_event(row.event))) is not None:
                        changed.add(touched)
                except RecordError as exc:
                    db.session.rollback()
                    ctx.log.add(
                        LogSide.HUB, "webhook", Outcome.FAILED, remote_id=event_id, reason=exc.message
                    )
                except Exception as exc:
                    db.session.rollback()
                    record_failure(row_id, exc)
                    raise
                gone = db.session.get(WebhookInbox, row_id)
                if gone is not None:
                    db.session.delete(gone)
                ctx.log.advance()
                ctx.log.checkpoint()  # the delivery id, its hub writes and the inbox row go together
                applied += 1
                if applied % 50 == 0:
                    locks.heartbeat(lock, owner)  # alive, for a process on another host
        push_soon(ctx, sorted(changed))
    finally:
        locks.release(lock, owner)


def push_soon(ctx: RunContext, contact_ids: list[int]) -> int | None:
    """Relay what the webhooks changed to the connection's relaying object now (Pipedrive → Maileon:
    a new subscriber gets the DOI mail within seconds, not at the next scheduled sync). Only
    objects that push records pulled through another object relay (``push_only_linked_to``)."""
    if not contact_ids or ctx.dry_run or not Direction(ctx.conn.direction).includes(Direction.TO_CRM):
        return None
    relays = [
        s
        for s in ctx.info.objects_of(HubKind.CONTACT)
        if s.push_only_linked_to not in (None, s.name)
        and any(d.includes(Direction.TO_CRM) for d in s.directions)
    ]
    if not relays:
        return None
    run = SyncRun(
        connection_id=ctx.conn_id,
        status=RunStatus.QUEUED,
        trigger=RELAY_TRIGGER,
        direction=Direction.TO_CRM.value,
        started_at=utcnow(),
        counts=empty_counts(),
        details={"mode": "send", "contact_ids": contact_ids, "with_action": False},
    )
    db.session.add(run)
    db.session.commit()
    get_executor(current_app._get_current_object()).submit(run.id)  # type: ignore[attr-defined]
    return run.id


def drain_lock(conn_id: int) -> str:
    """Two drains of one connection never apply the same events (a delivery race starts two)."""
    return f"webhook-inbox:{conn_id}"
