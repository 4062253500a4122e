"""Webhook deliveries: verified by the connector, de-duplicated, applied like a pull, logged as a run.

Each event's vendor delivery id is stored (``WebhookDelivery``) in the same transaction as its hub
writes, so a re-delivered event changes nothing. An event older than what the hub already stored
from that record (out of order) is ignored by the same rule the pull uses.
"""

from __future__ import annotations

from typing import Any

from ..connections import client_for, view
from ..db import db
from ..errors import ConfigError, TransientError
from ..models import SyncRun, WebhookDelivery
from ..state import get_plugins
from ..types import HubKind, LogSide, Outcome, RunStatus, WebhookEvent, WebhookEventKind, WebhookRequest
from .context import RunContext
from .pull import store
from .runner import create_run, execute, resolve_connection

#: event kinds that delete the record (``deleted``: what some connectors say)
DELETIONS = frozenset({WebhookEventKind.DELETE, "deleted"})


def receive_webhook(connection_id: int, request: WebhookRequest) -> SyncRun:
    """Verify a delivery with the connector's ``handle_webhook`` and apply its events.

    :raises AuthError: the delivery failed verification (answer 401; nothing was stored).
    :raises TransientError: applying failed (answer 503 so the vendor re-delivers; the run says why).
    :returns: the finished run (trigger ``webhook``) with one record per applied event.
    """
    conn = resolve_connection(connection_id)
    conn_id = conn.id
    db.session.commit()
    events = get_plugins().connector(view(conn)).handle_webhook(client_for(conn), request)
    run = create_run(
        conn_id, trigger="webhook", direction="from_crm", details={"mode": "webhook", "events": len(events)}
    )
    db.session.commit()

    def apply(ctx: RunContext, details: dict[str, Any]) -> None:
        for event in events:
            _apply_event(ctx, event)
            ctx.log.advance()
            ctx.log.checkpoint()  # the delivery id and its hub writes commit together

    done = execute(run.id, body=apply)
    if done.status in (RunStatus.FAILED, RunStatus.PAUSED):
        # Nothing of the failed event was kept: ask the vendor to deliver it again.
        raise TransientError(f"webhook run #{done.id} {done.status}: {done.error}")
    return done


def _apply_event(ctx: RunContext, event: WebhookEvent) -> None:
    if db.session.get(WebhookDelivery, (ctx.conn_id, event.event_id)) is not None:
        ctx.log.add(LogSide.HUB, event.object_type, Outcome.UNCHANGED)
        return
    try:
        spec = ctx.info.object(event.object_type)
    except ConfigError:
        ctx.log.note(f"webhook event for unknown object {event.object_type!r} ignored")
        return
    rules = ctx.mappings(spec).items  # may call the vendor (and commit): before the delivery is recorded
    db.session.add(WebhookDelivery(connection_id=ctx.conn_id, event_id=event.event_id))
    if event.contact is not None and spec.hub_kind is HubKind.CONTACT:
        if event.kind in DELETIONS:
            event.contact.deleted = True
        store(ctx, spec, rules, event.contact)
    elif event.company is not None and spec.hub_kind is HubKind.COMPANY:
        if event.kind in DELETIONS:
            event.company.deleted = True
        store(ctx, spec, rules, event.company)
    if ctx.dry_run:
        db.session.rollback()
