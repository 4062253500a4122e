"""Background jobs for panel actions whose engine call is synchronous ("Send to", "Import from").

A job runs the call in a thread with its own app context; the page polls :func:`status` and finds the
run's live progress through the newest :class:`~leadbridge.models.SyncRun` of the connection started
after the job. Jobs live in memory: one web process, as ``leadbridge serve`` runs.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import Flask, current_app

from .. import clock as clocks
from ..db import db

JOBS_KEY = "leadbridge.web_jobs"


@dataclass
class Job:
    id: str
    connection_id: int
    label: str
    done_url: str
    started_at: datetime = field(default_factory=clocks.utcnow)
    finished: bool = False
    run_id: int | None = None
    error: str | None = None
    summary: str | None = None
    thread: threading.Thread | None = field(default=None, repr=False)

    def wait(self, timeout: float | None = None) -> None:
        """Join the job's thread (tests, shutdown)."""
        if self.thread is not None:
            self.thread.join(timeout)


def _jobs(app: Flask) -> dict[str, Job]:
    return app.extensions.setdefault(JOBS_KEY, {})  # type: ignore[no-any-return]


def start(connection_id: int, label: str, done_url: str, work: Callable[[], Any]) -> Job:
    """Run ``work`` (which returns a SyncRun) in a thread; returns the job to poll."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    job = Job(id=uuid.uuid4().hex, connection_id=connection_id, label=label, done_url=done_url)
    _jobs(app)[job.id] = job

    def runner() -> None:
        with app.app_context():
            try:
                run = work()
                job.run_id = getattr(run, "id", None)
                counts = getattr(run, "counts", None) or {}
                job.summary = _summary(counts)
            except Exception as exc:  # shown to the user on the job page; the engine logs details
                db.session.rollback()
                job.error = str(exc) or type(exc).__name__
            finally:
                job.finished = True
                db.session.remove()

    job.thread = threading.Thread(target=runner, name=f"panel-job-{job.id[:8]}", daemon=True)
    job.thread.start()
    return job


def get(job_id: str) -> Job | None:
    return get_for(current_app._get_current_object(), job_id)  # type: ignore[attr-defined]


def get_for(app: Flask, job_id: str) -> Job | None:
    return _jobs(app).get(job_id)


def _summary(counts: dict[str, dict[str, int]]) -> str:
    parts = []
    for side, label in (("crm", "CRM"), ("hub", "leadbridge")):
        c = counts.get(side) or {}
        nums = ", ".join(f"{v} {k}" for k, v in c.items() if v)
        if nums:
            parts.append(f"{label}: {nums}")
    return "; ".join(parts) or "nothing to do"
