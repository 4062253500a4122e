"""``POST /webhooks/<connection id>``: vendor deliveries, authenticated by the connector's
``handle_webhook`` (signature, shared secret or basic auth) inside the engine's ``accept_webhook``,
answered as soon as their events are stored; a background run applies them (:mod:`leadbridge.sync.inbox`)."""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from ..db import db
from ..errors import AuthError, ConfigError, LeadbridgeError, RecordError
from ..models import Connection
from ..sync import accept_webhook
from ..types import WebhookRequest

bp = Blueprint("webhooks", __name__)
log = logging.getLogger(__name__)

#: Deliveries larger than this are refused before anything parses them.
MAX_BODY = 1024 * 1024


@bp.post("/webhooks/<int:conn_id>")
def receive(conn_id: int) -> ResponseReturnValue:
    conn = db.session.get(Connection, conn_id)
    if conn is None or not conn.enabled:
        return jsonify(error="unknown webhook"), 404  # the same answer for absent and disabled
    if (request.content_length or 0) > MAX_BODY:
        return jsonify(error="delivery too large"), 413
    delivery = WebhookRequest(
        method=request.method,
        headers=dict(request.headers),
        body=request.get_data(cache=False)[: MAX_BODY + 1],
        query=request.args.to_dict(),
        remote_addr=request.remote_addr,
    )
    db.session.commit()  # no open transaction while the engine calls the connector
    try:
        accepted = accept_webhook(conn_id, delivery)
    except AuthError:
        db.session.rollback()
        return jsonify(error="delivery not authenticated"), 401
    except RecordError as exc:
        db.session.rollback()
        return jsonify(error=exc.message), 400
    except ConfigError as exc:  # the connector cannot take webhooks (NotSupported, disabled meanwhile)
        db.session.rollback()
        return jsonify(error=exc.message), 404
    except LeadbridgeError as exc:  # the vendor or the store hiccuped: the vendor will re-deliver
        db.session.rollback()
        log.warning("webhook for connection %s failed: %s", conn_id, exc)
        return jsonify(error="try again later"), 503
    return jsonify(
        ok=True, queued=accepted.queued, duplicates=accepted.duplicates, run_id=accepted.drain_run_id
    )
