"""Debounced push of contacts created or changed through a form or the API.

Changes arriving within :data:`DEBOUNCE_SECONDS` are collected and pushed together, one "send"
run per enabled connection that pushes (no action is created: only the explicit "Send to" does).
The runs go to the app's executor (threads, or the Celery workers).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from flask import Flask, current_app
from sqlalchemy import select

from ..db import db
from ..errors import LeadbridgeError
from ..models import Connection
from ..state import get_executor, get_plugins
from ..types import Direction, HubKind
from .runner import create_run

log = logging.getLogger(__name__)

DEBOUNCE_SECONDS = 2.0
DEBOUNCER_KEY = "leadbridge.debouncer"


class Debouncer:
    """Collects changed contact ids per trigger and pushes them once the changes settle."""

    def __init__(self, app: Flask, delay: float = DEBOUNCE_SECONDS) -> None:
        self.app = app
        self.delay = delay
        self._lock = threading.Lock()
        self._pending: dict[str, set[int]] = {}
        self._timer: threading.Timer | None = None
        self.runs: list[int] = []

    def add(self, contact_ids: Iterable[int], trigger: str) -> None:
        with self._lock:
            self._pending.setdefault(trigger, set()).update(int(i) for i in contact_ids)
            if self._timer is not None:
                self._timer.cancel()  # debounce: wait until changes stop arriving
            self._timer = threading.Timer(self.delay, self.flush)
            self._timer.daemon = True
            self._timer.start()

    def flush(self) -> list[int]:
        """Push what is pending now; returns the ids of the runs started."""
        with self._lock:
            pending, self._pending = self._pending, {}
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        started: list[int] = []
        if not pending:
            return started
        with self.app.app_context():
            for conn_id in pushing_connections():
                for trigger, ids in pending.items():
                    try:
                        run = create_run(
                            conn_id,
                            trigger=trigger,
                            direction="to_crm",
                            details={"mode": "send", "contact_ids": sorted(ids), "with_action": False},
                        )
                        db.session.commit()
                        started.append(run.id)
                        get_executor(self.app).submit(run.id)
                    except Exception:
                        db.session.rollback()
                        log.exception("push of changed contacts to connection %s failed", conn_id)
        self.runs.extend(started)
        return started


def pushing_connections() -> list[int]:
    """Enabled connections whose direction and connector push people to the CRM."""
    plugins = get_plugins()
    result = []
    for conn in db.session.execute(
        select(Connection).where(Connection.enabled.is_(True)).order_by(Connection.id)
    ).scalars():
        if not Direction(conn.direction).includes(Direction.TO_CRM) or conn.state == "needs_reconnect":
            continue
        try:
            info = plugins.info(conn.plugin)
        except LeadbridgeError:
            continue  # not loaded (broken, blocked, uninstalled): nothing to push to
        if any(
            any(d.includes(Direction.TO_CRM) for d in s.directions) for s in info.objects_of(HubKind.CONTACT)
        ):
            result.append(conn.id)
    return result


def debouncer(app: Flask | None = None) -> Debouncer:
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    existing: Debouncer | None = app.extensions.get(DEBOUNCER_KEY)
    if existing is None:
        existing = app.extensions.setdefault(
            DEBOUNCER_KEY, Debouncer(app, app.config.get("PUSH_DEBOUNCE_SECONDS", DEBOUNCE_SECONDS))
        )
    return existing


def notify_contacts_changed(contact_ids: Iterable[int], trigger: str) -> None:
    """A form or API call created/changed these contacts: push them to every pushing connection soon.

    Call after committing the change. Returns at once; the push runs within seconds in the
    background (``PUSH_DEBOUNCE_SECONDS`` config, default 2).
    """
    ids = [int(i) for i in contact_ids]
    if ids:
        debouncer().add(ids, trigger)
