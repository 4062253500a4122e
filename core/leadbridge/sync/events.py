"""Applying one webhook event: like a pulled record (the pull's rules decide, so an event older
than what the hub stored from that record changes nothing), or relayed as an action.

The event's vendor delivery id (``WebhookDelivery``) is written in the same transaction as its hub
writes, so a re-delivered event changes nothing.
"""

from __future__ import annotations

from dataclasses import replace

from ..db import db
from ..errors import ConfigError, RecordError, TransientError
from ..metadata import ObjectSpec
from ..models import Contact as HubContact
from ..models import WebhookDelivery
from ..types import Contact, HubKind, LogSide, Outcome, RecordResult, WebhookEvent, WebhookEventKind
from . import links
from .context import RunContext
from .pull import store
from .push import HUB_WRITE_FACTS

#: event kinds that delete the record (``deleted``: what some connectors say)
DELETIONS = frozenset({WebhookEventKind.DELETE, "deleted"})


def apply_event(ctx: RunContext, event: WebhookEvent) -> int | None:
    """Apply one event; returns the id of the hub contact it created or changed, if any."""
    if db.session.get(WebhookDelivery, (ctx.conn_id, event.event_id)) is not None:
        ctx.log.add(LogSide.HUB, event.object_type, Outcome.UNCHANGED)
        return None
    try:
        spec = ctx.info.object(event.object_type)
    except ConfigError:
        ctx.log.note(f"webhook event for unknown object {event.object_type!r} ignored")
        return None
    if event.action is not None:
        _relay(ctx, spec, event)
        return None
    touched: int | None = None
    rules = ctx.mappings(spec).items  # may call the vendor (and commit): before the delivery is recorded
    db.session.add(WebhookDelivery(connection_id=ctx.conn_id, event_id=event.event_id))
    if event.contact is not None and spec.hub_kind is HubKind.CONTACT:
        if event.kind in DELETIONS:
            event.contact.deleted = True
        hub = store(ctx, spec, rules, event.contact)
        touched = getattr(hub, "id", None) if not event.contact.deleted else None
    elif event.company is not None and spec.hub_kind is HubKind.COMPANY:
        if event.kind in DELETIONS:
            event.company.deleted = True
        store(ctx, spec, rules, event.company)
    if ctx.dry_run:
        db.session.rollback()
    return touched


def _relay(ctx: RunContext, spec: ObjectSpec, event: WebhookEvent) -> None:
    """Send the event's action about a record of ``spec`` through ``create_action``, once.

    The delivery id is committed before the vendor call: an action is an event, and a retry after a
    lost answer must not send it twice. When the vendor refused it (any error answer, a rate limit)
    the id is forgotten again, so the event stays in the inbox and a later drain sends it.
    """
    action = event.action
    assert action is not None
    about = action.contact.remote_id
    link = links.by_remote_ids(ctx.conn_id, spec.name, [about]).get(about) if about else None
    hub = db.session.get(HubContact, link.hub_id) if link is not None else None
    log_object = str(event.kind)
    if ctx.dry_run:
        return
    delivery = WebhookDelivery(connection_id=ctx.conn_id, event_id=event.event_id)
    db.session.add(delivery)
    if hub is None or hub.deleted_at is not None:
        ctx.log.add(
            LogSide.CRM,
            log_object,
            Outcome.FAILED,
            remote_id=about,
            label=action.title,
            reason=f"{spec.label} {about} is not in the hub",
            code="unknown_contact",
        )
        return
    facts = {k: v for k in HUB_WRITE_FACTS if (v := getattr(hub, k)) not in (None, "")}
    relayed = replace(action, contact=Contact(email=hub.email, ref=str(hub.id), extra=facts), ref=str(hub.id))
    db.session.commit()
    try:
        result = ctx.hooks.create_action(ctx.client, relayed)
    except (TransientError, ConfigError) as exc:
        # Refused (a key, a rate limit, a quota, a 5xx answer): the event must be sent again. Only a
        # transport failure without any answer may have been applied, and keeps the id (never twice).
        ambiguous = type(exc) is TransientError and exc.code is None
        if not ambiguous:
            db.session.delete(delivery)
            db.session.commit()
        raise
    except RecordError as exc:
        result = RecordResult(Outcome.FAILED, ref=relayed.ref, reason=exc.message, code=exc.code)
    ctx.log.add(
        LogSide.CRM,
        log_object,
        Outcome.CREATED if result.ok else Outcome.FAILED,
        hub_id=hub.id,
        remote_id=result.remote_id,
        label=action.title,
        reason=result.reason,
        code=result.code,
    )
