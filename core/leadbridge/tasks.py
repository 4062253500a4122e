"""Celery mode: runs execute on workers (``leadbridge worker``) while the scheduler only enqueues.

Enabled when ``REDIS_URL`` is set and the database is PostgreSQL (workers and the web app share
it). A task carries only a run id: the run row (queued) is the source of truth, so a lost or
duplicated message cannot duplicate work (the run lock refuses a second execution at once, and a
finished run is not executed again). ``CELERY_QUEUE`` names the queue (default ``leadbridge``).
"""

from __future__ import annotations

from typing import Any

from flask import Flask

CELERY_KEY = "leadbridge.celery"
TASK_NAME = "leadbridge.execute_run"


def make_celery(app: Flask) -> Any:
    """The Celery app bound to ``app`` (created once per Flask app)."""
    existing = app.extensions.get(CELERY_KEY)
    if existing is not None:
        return existing
    from celery import Celery

    celery = Celery("leadbridge", broker=app.config["REDIS_URL"])
    queue = app.config.get("CELERY_QUEUE") or "leadbridge"
    celery.conf.update(
        task_default_queue=queue,
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        task_ignore_result=True,
        worker_hijack_root_logger=False,
    )

    @celery.task(name=TASK_NAME)  # type: ignore[untyped-decorator]
    def execute_run(run_id: int) -> str:
        from .db import db
        from .models import SyncRun
        from .sync.runner import execute
        from .types import RunStatus

        with app.app_context():
            run = db.session.get(SyncRun, run_id)
            if run is None or run.status != RunStatus.QUEUED:
                return "skipped"  # a re-delivered message for a run already done
            db.session.commit()
            return execute(run_id).status

    app.extensions[CELERY_KEY] = celery
    return celery


def enqueue_run(app: Flask, run_id: int) -> None:
    """Send a queued run to the workers."""
    make_celery(app).send_task(TASK_NAME, args=[run_id], queue=app.config.get("CELERY_QUEUE") or "leadbridge")


def run_worker(app: Flask, *, concurrency: int = 2, loglevel: str = "INFO") -> None:
    """Run a Celery worker for ``app`` in this process (threads: one DB engine, no fork)."""
    celery = make_celery(app)
    queue = app.config.get("CELERY_QUEUE") or "leadbridge"
    celery.worker_main(
        [
            "worker",
            f"--loglevel={loglevel}",
            "--pool=threads",
            f"--concurrency={concurrency}",
            "-Q",
            queue,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
    )
