"""The scheduler: exactly one per install, per-connection interval or cron, paused runs resumed,
webhook events left in the inbox applied.

``leadbridge scheduler`` runs it alone; ``serve`` and ``demo`` embed it
(:func:`start_embedded_scheduler`). A database lock (``lock`` row ``scheduler``, with heartbeat)
makes a second scheduler refuse to start; a scheduler whose process died is replaced once its
heartbeat is stale (or at once on the same host). Jobs coalesce missed runs, have an explicit
misfire grace time and never overlap for one connection (``max_instances=1`` here, the run lock
across processes). In Celery mode the jobs only enqueue runs for the workers.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from flask import Flask
from sqlalchemy import select

from .db import db, utcnow
from .errors import ConfigError
from .models import Connection
from .sync import inbox, locks

log = logging.getLogger(__name__)
# APScheduler logs every job start and end at INFO (a line every 30 s); its warnings and errors stay.
logging.getLogger("apscheduler").setLevel(logging.WARNING)

SCHEDULER_LOCK = "scheduler"
SCHEDULER_KEY = "leadbridge.scheduler"
DEFAULT_INTERVAL_MINUTES = 120
#: a run that starts later than this after its due time is skipped (the next one coalesces it)
MISFIRE_GRACE_SECONDS = 600
#: how often the scheduler re-reads connections, beats its lock and resumes paused connections
RECONCILE_SECONDS = 30
#: a scheduler lock older than this without heartbeat is taken over
STALE_AFTER_SECONDS = 120


def trigger_for(conn: Connection) -> tuple[Any, str]:
    """The APScheduler trigger of a connection's schedule and a signature to detect changes."""
    if conn.schedule_cron:
        try:
            return CronTrigger.from_crontab(conn.schedule_cron, timezone=UTC), f"cron:{conn.schedule_cron}"
        except ValueError as exc:
            raise ConfigError(f"invalid cron expression {conn.schedule_cron!r}: {exc}") from None
    minutes = conn.schedule_interval_minutes or DEFAULT_INTERVAL_MINUTES
    return IntervalTrigger(minutes=minutes, timezone=UTC), f"interval:{minutes}"


class LeadbridgeScheduler:
    """APScheduler wrapped with the single-scheduler lock and the connection schedules."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.owner = locks.owner_id("scheduler")
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE_SECONDS},
        )
        self._signatures: dict[str, str] = {}
        self._lock = threading.Lock()
        self.running = False

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> bool:
        """Take the scheduler lock and start; ``False`` (nothing started) when another one runs."""
        if not locks.acquire(SCHEDULER_LOCK, self.owner, stale_after=STALE_AFTER_SECONDS, app=self.app):
            other = locks.holder(SCHEDULER_LOCK, app=self.app)
            log.warning("another scheduler is running (%s); this one does not start", other)
            return False
        self.reconcile()
        self.scheduler.add_job(
            self.reconcile,
            IntervalTrigger(seconds=RECONCILE_SECONDS, timezone=UTC),
            id="reconcile",
            replace_existing=True,
        )
        self.scheduler.start()
        self.running = True
        log.info("scheduler started (%s)", self.owner)
        return True

    def shutdown(self) -> None:
        if self.running:
            self.scheduler.shutdown(wait=False)
            self.running = False
        locks.release(SCHEDULER_LOCK, self.owner, app=self.app)

    # -- jobs -----------------------------------------------------------------------------------

    def reconcile(self) -> None:
        """Beat the lock, match jobs to the enabled connections' schedules, resume due paused ones."""
        with self._lock, self.app.app_context():
            if not locks.heartbeat(SCHEDULER_LOCK, self.owner, app=self.app) and self.running:
                log.error("the scheduler lock was taken over; stopping this scheduler")
                self.scheduler.shutdown(wait=False)
                self.running = False
                return
            wanted: set[str] = set()
            due: list[int] = []
            now = utcnow()
            conns = db.session.execute(select(Connection).where(Connection.enabled.is_(True))).scalars().all()
            for conn in conns:
                job_id = f"sync:{conn.id}"
                try:
                    trigger, signature = trigger_for(conn)
                except ConfigError as exc:
                    log.warning("connection %s: %s", conn.id, exc)
                    continue
                wanted.add(job_id)
                if self._signatures.get(job_id) != signature or self.scheduler.get_job(job_id) is None:
                    self.scheduler.add_job(
                        self.run_connection,
                        trigger,
                        args=[conn.id],
                        id=job_id,
                        replace_existing=True,
                        name=f"sync {conn.name}",
                    )
                    self._signatures[job_id] = signature
                if conn.state == "paused" and conn.paused_until is not None and conn.paused_until <= now:
                    due.append(conn.id)
            for job in self.scheduler.get_jobs():
                if job.id.startswith("sync:") and job.id not in wanted:
                    job.remove()
                    self._signatures.pop(job.id, None)
            db.session.commit()
            try:
                # Webhook events a drain has not applied yet (a failed drain, a process that died).
                inbox.sweep()
            except Exception:
                db.session.rollback()
                log.exception("the webhook inbox sweep failed")
        for conn_id in due:
            # Resumed once when the pause ends; a run that pauses again moves paused_until: no hot loop.
            self.scheduler.add_job(
                self.run_connection, args=[conn_id], id=f"resume:{conn_id}", replace_existing=True
            )

    def run_connection(self, conn_id: int) -> int | None:
        """The scheduled job: queue one sync of ``conn_id`` for the app's executor; the run id."""
        from .sync import start_run

        with self.app.app_context():
            conn = db.session.get(Connection, conn_id)
            if conn is None or not conn.enabled or conn.state == "needs_reconnect":
                return None
            if conn.paused_until is not None and conn.paused_until > utcnow():
                return None  # paused until the quota resets
            db.session.commit()
            return start_run(conn_id, trigger="schedule")

    def job_ids(self) -> list[str]:
        return sorted(job.id for job in self.scheduler.get_jobs())


def start_embedded_scheduler(app: Flask) -> LeadbridgeScheduler | None:
    """Start the scheduler inside this process (``serve``, ``demo``); ``None`` when another one runs."""
    sched = LeadbridgeScheduler(app)
    if not sched.start():
        return None
    app.extensions[SCHEDULER_KEY] = sched
    return sched


def sync_now(conn_id: int, *, trigger: str = "manual") -> int:
    """ "Sync now": start a run in the background at once; returns its id."""
    from .sync import start_run

    return start_run(conn_id, trigger=trigger)
