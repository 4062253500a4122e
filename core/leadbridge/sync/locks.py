"""Named database locks (the ``lock`` table): one scheduler per install, one run per connection.

A lock row names its owner (``host:pid:nonce``) and carries a heartbeat. A lock whose owner process
is gone (same host: its pid is dead) or, for an owner on another host, whose heartbeat is older than
``stale_after`` seconds is taken over, so a SIGKILLed run or scheduler never blocks the next one
for good. Each operation runs in its own app context, so it never joins (or commits) the caller's
transaction.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from datetime import timedelta

from flask import Flask, current_app
from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError

from ..db import db, utcnow
from ..models import Lock

HOST = socket.gethostname()
_PROCESS_NONCE = uuid.uuid4().hex[:8]


def owner_id(role: str = "") -> str:
    """An owner name unique to this process (and ``role`` within it)."""
    return f"{HOST}:{os.getpid()}:{_PROCESS_NONCE}{':' + role if role else ''}"


def _alive(owner: str) -> bool:
    parts = owner.split(":")
    if len(parts) < 3 or parts[0] != HOST:
        return True  # another machine: only the heartbeat can tell
    try:
        pid = int(parts[1])
    except ValueError:
        return True
    if pid == os.getpid():
        return parts[2] == _PROCESS_NONCE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _app(app: Flask | None) -> Flask:
    return app or current_app._get_current_object()  # type: ignore[attr-defined]


def acquire(name: str, owner: str, *, stale_after: float = 300.0, app: Flask | None = None) -> bool:
    """Take lock ``name`` for ``owner``; ``False`` when a live owner holds it (re-entrant for ``owner``)."""
    with _app(app).app_context():
        now = utcnow()
        db.session.add(Lock(name=name, owner=owner, acquired_at=now, heartbeat_at=now))
        try:
            db.session.commit()
            return True
        except IntegrityError:
            db.session.rollback()
        held = db.session.get(Lock, name)
        if held is None:  # released meanwhile: try once more
            db.session.rollback()
            return acquire(name, owner, stale_after=stale_after, app=app)
        if held.owner == owner:
            return True
        if held.owner.split(":", 1)[0] == HOST:
            stale = not _alive(held.owner)  # this machine can tell for sure, however long a wait lasts
        else:
            stale = held.heartbeat_at < now - timedelta(seconds=stale_after)
        if not stale:
            db.session.rollback()
            return False
        # Compare-and-swap on the old owner: of two processes taking over, only one wins.
        result = db.session.execute(
            update(Lock)
            .where(Lock.name == name, Lock.owner == held.owner)
            .values(owner=owner, acquired_at=now, heartbeat_at=now)
        )
        db.session.commit()
        return bool(getattr(result, "rowcount", 0))


def acquire_waiting(
    name: str,
    owner: str,
    *,
    timeout: float,
    poll: float = 0.2,
    stale_after: float = 300.0,
    app: Flask | None = None,
) -> bool:
    """Take lock ``name``, waiting up to ``timeout`` seconds for a live holder to release it.

    The wait is in real time on purpose: it waits for another thread or process to finish its
    work, which a virtual clock cannot hurry. ``False`` when the lock is still held at the end.
    """
    deadline = time.monotonic() + max(0.0, timeout)
    while True:
        if acquire(name, owner, stale_after=stale_after, app=app):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll)


def heartbeat(name: str, owner: str, *, app: Flask | None = None) -> bool:
    """Refresh the heartbeat; ``False`` when ``owner`` no longer holds the lock."""
    with _app(app).app_context():
        result = db.session.execute(
            update(Lock).where(Lock.name == name, Lock.owner == owner).values(heartbeat_at=utcnow())
        )
        db.session.commit()
        return bool(getattr(result, "rowcount", 0))


def release(name: str, owner: str, *, app: Flask | None = None) -> None:
    """Give the lock up (only when ``owner`` holds it)."""
    with _app(app).app_context():
        db.session.execute(delete(Lock).where(Lock.name == name, Lock.owner == owner))
        db.session.commit()


def live_holder(name: str, *, stale_after: float = 300.0, app: Flask | None = None) -> str | None:
    """The owner of ``name`` when it is alive (its process runs on this host, or, from another
    host, its heartbeat is younger than ``stale_after`` seconds); ``None`` otherwise."""
    with _app(app).app_context():
        row = db.session.get(Lock, name)
        if row is None:
            return None
        if row.owner.split(":", 1)[0] == HOST:
            return row.owner if _alive(row.owner) else None
        return row.owner if row.heartbeat_at >= utcnow() - timedelta(seconds=stale_after) else None


def holder(name: str, *, app: Flask | None = None) -> str | None:
    """The current owner of ``name``, if any."""
    with _app(app).app_context():
        row = db.session.get(Lock, name)
        return row.owner if row else None
