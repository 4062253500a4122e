"""Webhook deliveries: verified by the connector, de-duplicated, applied like a pull, logged as a run.

A delivery is accepted in its request and applied in the background (:mod:`.inbox`); each event
is applied by :mod:`.events`.
"""

from __future__ import annotations

from dataclasses import replace

from ..connections import client_for, view
from ..db import db
from ..errors import TransientError
from ..models import SyncRun
from ..state import get_plugins
from ..types import RunStatus, WebhookRequest
from . import events, inbox
from .runner import create_run, execute, resolve_connection

DELETIONS = events.DELETIONS


def accept_webhook(connection_id: int, request: WebhookRequest) -> inbox.Accepted:
    """Verify a delivery with the connector's ``handle_webhook``, keep its new events in the inbox
    and start applying them in the background; what the web endpoint answers the vendor with.

    :raises AuthError: the delivery failed verification (answer 401; nothing was stored).
    :raises TransientError: the connector could not parse it now (answer 503: the vendor re-delivers).
    """
    conn = resolve_connection(connection_id)
    conn_id = conn.id
    db.session.commit()
    events = get_plugins().connector(view(conn)).handle_webhook(client_for(conn), request)
    accepted = inbox.accept(conn_id, events)
    drain = inbox.start_drain(conn_id) if accepted.queued else None
    return replace(accepted, drain_run_id=drain)


def receive_webhook(connection_id: int, request: WebhookRequest) -> SyncRun:
    """Accept a delivery and apply the connection's inbox now, in this thread (CLI and tests).

    :raises AuthError: the delivery failed verification (nothing was stored).
    :raises TransientError: applying failed; the events wait in the inbox for the next drain.
    :returns: the finished ``webhook`` run, one record per applied event.
    """
    conn = resolve_connection(connection_id)
    conn_id = conn.id
    db.session.commit()
    events = get_plugins().connector(view(conn)).handle_webhook(client_for(conn), request)
    inbox.accept(conn_id, events)
    run = create_run(conn_id, trigger="webhook", direction="from_crm", details={"mode": "webhook"})
    db.session.commit()
    done = execute(run.id)
    if done.status in (RunStatus.FAILED, RunStatus.PAUSED):
        raise TransientError(f"webhook run #{done.id} {done.status}: {done.error}")
    return done
