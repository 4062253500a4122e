"""PlanMill webhooks (``/hooks``): near-real-time contact and account changes.

PlanMill signs nothing and retries nothing. A delivery is authenticated by a key in the URL we
register: an HMAC of the connection id under the connection's client secret, so it needs no extra
setting and changes when the secret does (re-registering then replaces the hooks). Deliveries carry
no id of their own; ``hook:Id:modified`` identifies one for de-duplication.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from leadbridge.connection_view import ConnectionView
from leadbridge.errors import AuthError, RecordError
from leadbridge.http import VendorClient
from leadbridge.types import WebhookEvent, WebhookEventKind, WebhookRequest

from .reads import company_from_row, contact_from_row

#: The events subscribed to (PlanMill names them ``<resource>.<action>``; the full list is on its wiki).
EVENTS = ("contact.create", "contact.update", "contact.delete", "account.create", "account.update")
KEY_PARAM = "key"


def webhook_key(connection: ConnectionView) -> str:
    secret = str(connection.setting("client_secret", "") or "")
    if not secret:
        raise AuthError("PlanMill webhooks need the client secret to be set", code="no_secret")
    message = f"leadbridge-planmill-webhook:{connection.id}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:40]


def keyed_url(connection: ConnectionView, url: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != KEY_PARAM] + [
        (KEY_PARAM, webhook_key(connection))
    ]
    return urlunsplit(parts._replace(query=urlencode(query)))


def register(connection: ConnectionView, client: VendorClient, url: str) -> list[str]:
    """Subscribe every event once; hooks already pointing at the keyed URL are kept."""
    target = keyed_url(connection, url)
    existing = client.get("hooks").json()
    have = {
        (h.get("hook"), h.get("url")): str(h["id"])
        for h in (existing if isinstance(existing, list) else [])
        if isinstance(h, dict) and h.get("id") is not None
    }
    ids = []
    for event in EVENTS:
        found = have.get((event, target))
        if found is None:
            found = str(client.post("hooks", json={"hook": event, "url": target}).json()["id"])
        ids.append(found)
    return ids


def unregister(client: VendorClient, hook_ids: list[str]) -> None:
    for hook_id in hook_ids:
        client.delete(f"hooks/{hook_id}", ok_statuses=frozenset({404}))


def handle(connection: ConnectionView, request: WebhookRequest) -> list[WebhookEvent]:
    given = str(request.query.get(KEY_PARAM) or "")
    if not given or not hmac.compare_digest(given, webhook_key(connection)):
        raise AuthError("PlanMill webhook key missing or wrong", code="bad_key")
    try:
        payload = json.loads(request.body)
    except ValueError:
        raise RecordError("webhook body is not JSON", code="bad_body") from None
    deliveries = payload if isinstance(payload, list) else [payload]
    return [_event(d, request.body) for d in deliveries if isinstance(d, dict)]


def _event(delivery: dict[str, Any], body: bytes) -> WebhookEvent:
    hook = str(delivery.get("hook") or "")
    resource_name, _, action = hook.partition(".")
    rid = delivery.get("Id", delivery.get("id"))
    row = dict(delivery.get("resource") or {})
    if rid is None or resource_name not in ("contact", "account"):
        raise RecordError(f"unexpected PlanMill delivery {hook!r}", code="bad_body")
    row["id"] = rid
    stamp = row.get("modified") or hashlib.sha256(body).hexdigest()[:16]
    kind = WebhookEventKind.DELETE if action == "delete" else WebhookEventKind.UPSERT
    event = WebhookEvent(
        kind=kind, object_type=resource_name, event_id=f"{hook}:{rid}:{stamp}", data=delivery
    )
    if resource_name == "contact":
        event.contact = contact_from_row(row)
        event.contact.deleted = kind is WebhookEventKind.DELETE
    else:
        event.company = company_from_row(row)
        event.company.deleted = kind is WebhookEventKind.DELETE
    return event
