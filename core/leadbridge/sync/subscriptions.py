"""The webhook lifecycle, owned by the core: register on enable/save, unregister on disable/delete/revoke.

A connection *wants* webhooks when it is enabled, pulls from the CRM, its connector implements
``register_webhooks`` and its options do not turn them off (``options["webhooks"] = False``). The
core then calls ``register_webhooks`` with the connection's webhook URL
(``HUB_URL/webhooks/<connection id>``) and a shared secret, and keeps the vendor ids it returns in a
:class:`~leadbridge.models.WebhookSubscription` row. Registration is idempotent at the connector
(list first, reuse), so saving again duplicates nothing; ids that a new registration no longer
returns (a setting turned one event family off) are unregistered. When the connection stops wanting
webhooks, every id is unregistered (``unregister_webhooks``). A vendor error never blocks the change
that caused it: the row says ``failed`` with the reason, and the panel shows it.

The secret is the connection's own ``webhook_secret`` setting when it has one, else a random one the
core generates once, stores encrypted and hands to the connector through the connection view
(``connection.setting("webhook_secret")``), so ``handle_webhook`` can verify deliveries.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from flask import current_app
from sqlalchemy import func, select

from .. import clock as clocks
from ..connections import client_for, generated_webhook_secret, view
from ..db import db
from ..errors import LeadbridgeError
from ..models import Connection, SyncRun, WebhookSubscription
from ..state import get_plugins, get_vault
from ..types import Direction

log = logging.getLogger(__name__)


class SubscriptionStatus(StrEnum):
    REGISTERED = "registered"
    REMOVED = "removed"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class WebhookStatus:
    """What the panel shows about a connection's webhooks."""

    supported: bool
    wanted: bool
    status: SubscriptionStatus | None
    url: str
    remote_ids: tuple[str, ...]
    error: str | None
    changed_at: datetime | None
    last_delivery_at: datetime | None


def webhook_url(conn_id: int) -> str:
    """The public URL vendors deliver this connection's webhooks to."""
    return f"{str(current_app.config['HUB_URL']).rstrip('/')}/webhooks/{conn_id}"


def supported(conn: Connection) -> bool:
    plugins = get_plugins()
    try:
        return plugins.implements(conn.plugin, "register_webhooks")
    except LeadbridgeError:
        return False


def wanted(conn: Connection) -> bool:
    """True when the connection should have its webhooks registered at the vendor right now."""
    return (
        conn.enabled
        and conn.state != "needs_reconnect"
        and Direction(conn.direction).includes(Direction.FROM_CRM)
        and (conn.options or {}).get("webhooks", True) is not False
        and supported(conn)
    )


def reconcile(conn: Connection) -> WebhookStatus:
    """Make the vendor's webhooks match what the connection wants; call after committing a change.

    Registers (idempotently) when wanted, unregisters every known id when not. Commits.
    """
    if wanted(conn):
        _register(conn)
    else:
        remove(conn)
    return status(conn)


def remove(conn: Connection) -> None:
    """Unregister every webhook the core registered for ``conn`` (before delete or revoke). Commits."""
    sub = db.session.get(WebhookSubscription, conn.id)
    if sub is None or not sub.remote_ids:
        return
    ids = list(sub.remote_ids)
    db.session.commit()  # no transaction held across the vendor call
    try:
        _unregister(conn, ids)
    except LeadbridgeError as exc:
        _record(conn.id, SubscriptionStatus.FAILED, ids, error=f"could not remove the webhooks: {exc}")
        return
    _record(conn.id, SubscriptionStatus.REMOVED, [], error=None)


def status(conn: Connection) -> WebhookStatus:
    sub = db.session.get(WebhookSubscription, conn.id)
    last = db.session.execute(
        select(func.max(SyncRun.started_at)).where(
            SyncRun.connection_id == conn.id, SyncRun.trigger == "webhook"
        )
    ).scalar_one_or_none()
    return WebhookStatus(
        supported=supported(conn),
        wanted=wanted(conn),
        status=SubscriptionStatus(sub.status) if sub is not None else None,
        url=webhook_url(conn.id),
        remote_ids=tuple(sub.remote_ids or ()) if sub is not None else (),
        error=sub.error if sub is not None else None,
        changed_at=sub.changed_at if sub is not None else None,
        last_delivery_at=last,
    )


# -- internals ----------------------------------------------------------------------------------


def _register(conn: Connection) -> None:
    conn_id = conn.id
    secret = _ensure_secret(conn)
    url = webhook_url(conn_id)
    sub = db.session.get(WebhookSubscription, conn_id)
    before = list(sub.remote_ids or []) if sub is not None else []
    db.session.commit()
    try:
        ids = get_plugins().connector(view(conn)).register_webhooks(client_for(conn), url, secret)
    except LeadbridgeError as exc:
        log.warning("registering the webhooks of connection %s failed: %s", conn_id, exc)
        _record(conn_id, SubscriptionStatus.FAILED, before, error=f"could not register the webhooks: {exc}")
        return
    stale = [i for i in before if i not in ids]
    error = None
    if stale:
        try:
            _unregister(conn, stale)
        except LeadbridgeError as exc:
            error = f"registered, but could not remove webhooks no longer wanted ({', '.join(stale)}): {exc}"
            ids = ids + stale
    _record(conn_id, SubscriptionStatus.REGISTERED, ids, error=error, url=url)


def _unregister(conn: Connection, ids: list[str]) -> None:
    plugins = get_plugins()
    if not plugins.implements(conn.plugin, "unregister_webhooks"):
        raise LeadbridgeError(f"{conn.plugin} cannot remove webhooks: delete them at the vendor")
    plugins.connector(view(conn)).unregister_webhooks(client_for(conn), ids)


def _ensure_secret(conn: Connection) -> str:
    own = view(conn).setting("webhook_secret")
    if own:
        return str(own)
    existing = generated_webhook_secret(conn.id)
    if existing:
        return existing
    generated = secrets.token_urlsafe(32)
    sub = db.session.get(WebhookSubscription, conn.id)
    if sub is None:
        sub = WebhookSubscription(
            connection_id=conn.id, remote_ids=[], status=SubscriptionStatus.REMOVED.value
        )
        db.session.add(sub)
    sub.secret_encrypted = get_vault().encrypt({"secret": generated})
    db.session.commit()
    return generated


def _record(
    conn_id: int, state: SubscriptionStatus, ids: list[str], *, error: str | None, url: str | None = None
) -> None:
    sub = db.session.get(WebhookSubscription, conn_id)
    if sub is None:
        if db.session.get(Connection, conn_id) is None:
            return  # deleted meanwhile
        sub = WebhookSubscription(connection_id=conn_id)
        db.session.add(sub)
    sub.status, sub.remote_ids, sub.error = state.value, list(ids), error
    if url is not None:
        sub.url = url
    sub.changed_at = clocks.utcnow()
    db.session.commit()
