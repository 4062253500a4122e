"""Pipedrive webhook deliveries → hub events: verified by the Basic credentials set at
registration, de-duplicated by ``meta.id`` (the core), person changes applied in modified order
(the core's pull rule), the hub's own API changes ignored, deals relayed as Maileon transactions."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from typing import Any

from leadbridge.connection_view import ConnectionView
from leadbridge.errors import AuthError, RecordError
from leadbridge.http import VendorClient
from leadbridge.types import Action, Contact, WebhookEvent, WebhookEventKind, WebhookRequest

from .info import PERSON
from .pipedrive import WEBHOOK_USER, PersonReader, own_user_id, parse_time

DEAL_ADDED, DEAL_UPDATED = "pipedrive_deal_added", "pipedrive_deal_updated"
KINDS = {
    "create": WebhookEventKind.UPSERT,
    "change": WebhookEventKind.UPSERT,
    "delete": WebhookEventKind.DELETE,
}


def verify(connection: ConnectionView, request: WebhookRequest) -> None:
    header = next((v for k, v in request.headers.items() if k.lower() == "authorization"), "")
    scheme, _, encoded = header.partition(" ")
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        user = password = ""
    secret = str(connection.setting("webhook_secret") or "")
    ok_user = hmac.compare_digest(user.encode(), WEBHOOK_USER.encode())
    ok_password = bool(secret) and hmac.compare_digest(password.encode(), secret.encode())
    if scheme.lower() != "basic" or not (ok_user and ok_password):
        raise AuthError("webhook delivery without this connection's credentials")


def parse(connection: ConnectionView, client: VendorClient, request: WebhookRequest) -> list[WebhookEvent]:
    verify(connection, request)
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        raise RecordError("webhook body is not JSON") from None
    meta: dict[str, Any] = body.get("meta") or {}
    if meta.get("change_source") == "api" and str(meta.get("user_id")) == own_user_id(connection, client):
        # leadbridge's own write, echoed back (other apps' API changes are applied like any change).
        return []
    entity, action, event_id = meta.get("entity"), meta.get("action"), meta.get("id")
    if not event_id or action not in KINDS:
        return []
    if entity == "person" and connection.setting("contacts_sync", True):
        return [_person_event(connection, client, body, meta)]
    if entity == "deal" and connection.setting("deals_sync", False) and action != "delete":
        event = _deal_event(body, meta)
        return [event] if event else []
    return []


def _person_event(
    connection: ConnectionView, client: VendorClient, body: dict[str, Any], meta: dict[str, Any]
) -> WebhookEvent:
    deleted = meta["action"] == "delete"
    row = dict((body.get("previous") if deleted else body.get("data")) or {})
    row.setdefault("id", meta.get("entity_id"))
    # The event's time orders deliveries: it has milliseconds where update_time has whole seconds
    # (a create and a change within one second would tie), and a deletion happens at the event.
    row["update_time"] = meta.get("timestamp") or row.get("update_time")
    contact = PersonReader(connection, client, shared=True).contact(row, deleted=deleted)
    return WebhookEvent(KINDS[meta["action"]], PERSON, str(meta["id"]), contact=contact)


def _deal_event(body: dict[str, Any], meta: dict[str, Any]) -> WebhookEvent | None:
    deal = body.get("data") or {}
    person_id = deal.get("person_id")
    if isinstance(person_id, dict):
        person_id = person_id.get("value") or person_id.get("id")
    if not person_id:
        return None  # a deal without a person has nobody to attach the transaction to
    kind = DEAL_ADDED if meta["action"] == "create" else DEAL_UPDATED
    fields = {
        "deal_id": int(deal.get("id") or meta.get("entity_id")),
        "title": deal.get("title"),
        "value": float(deal["value"]) if deal.get("value") is not None else None,
        "currency": deal.get("currency"),
        "status": deal.get("status"),
        "stage_id": deal.get("stage_id"),
        "add_time": _sql_time(deal.get("add_time")),
        "update_time": _sql_time(deal.get("update_time")),
        "close_time": _sql_time(deal.get("close_time")),
        "expected_close_date": deal.get("expected_close_date"),
    }
    action = Action(
        title=f"{kind}: {deal.get('title') or fields['deal_id']}",
        kind=kind,
        contact=Contact(email=None, remote_id=str(person_id)),
        occurred_at=parse_time(meta.get("timestamp")),
        fields=fields,
    )
    return WebhookEvent(kind, PERSON, str(meta["id"]), action=action, data={"deal_id": fields["deal_id"]})


def _sql_time(value: Any) -> str | None:
    when = parse_time(value)
    return when.strftime("%Y-%m-%d %H:%M:%S") if when else None
