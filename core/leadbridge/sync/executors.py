"""The run executors: where a queued run executes. ``create_app`` picks one per app (``EXECUTOR``).

* ``inline`` — in the caller's thread, before :meth:`submit` returns (CLI, deterministic tests).
* ``thread`` — a thread of this process per run (the embedded default: one process, SQLite).
* ``celery`` — a Celery worker (``leadbridge worker``); needs ``REDIS_URL`` and PostgreSQL, which the
  workers and every web process share. The default when both are configured.

Every run — scheduled, "Sync now", "Send to", "Import from", form- and API-triggered pushes — is a
``queued`` :class:`~leadbridge.models.SyncRun` row before it is submitted, so its progress and outcome
are read from the database, by any process. (A webhook delivery is executed in its request, because
the answer to the vendor depends on it.)
"""

from __future__ import annotations

import logging
import threading
import time
from enum import StrEnum

from flask import Flask

from ..errors import ConfigError
from ..state import Executor
from .runner import execute

log = logging.getLogger(__name__)


class ExecutorKind(StrEnum):
    INLINE = "inline"
    THREAD = "thread"
    CELERY = "celery"


def celery_configured(app: Flask) -> bool:
    """A Redis URL is configured and the database is PostgreSQL (shared with the workers)."""
    if not app.config.get("REDIS_URL"):
        return False
    return str(app.config["SQLALCHEMY_DATABASE_URI"]).startswith("postgresql")


def choose_executor(app: Flask) -> Executor:
    """The executor ``EXECUTOR`` names, or Celery when it is configured, else threads."""
    wanted = app.config.get("EXECUTOR") or (
        ExecutorKind.CELERY if celery_configured(app) else ExecutorKind.THREAD
    )
    try:
        kind = ExecutorKind(str(wanted).lower())
    except ValueError:
        choices = ", ".join(k.value for k in ExecutorKind)
        raise ConfigError(f"EXECUTOR must be one of {choices}, not {wanted!r}") from None
    if kind is ExecutorKind.CELERY:
        if not celery_configured(app):
            raise ConfigError("EXECUTOR=celery needs REDIS_URL and a PostgreSQL database")
        return CeleryExecutor(app)
    if kind is ExecutorKind.INLINE:
        return InlineExecutor(app)
    return ThreadExecutor(app)


class InlineExecutor:
    """Executes the run at once, in the caller's thread and app context."""

    name = ExecutorKind.INLINE.value

    def __init__(self, app: Flask) -> None:
        self.app = app

    def submit(self, run_id: int) -> None:
        with self.app.app_context():
            execute(run_id)

    def wait(self, timeout: float | None = None) -> None:
        return None  # nothing runs in the background


class ThreadExecutor:
    """One daemon thread per run, each with its own app context (and database session)."""

    name = ExecutorKind.THREAD.value

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._threads: dict[int, threading.Thread] = {}

    def submit(self, run_id: int) -> None:
        thread = threading.Thread(
            target=self._main, args=(run_id,), name=f"leadbridge-run-{run_id}", daemon=True
        )
        with self._lock:
            self._threads = {i: t for i, t in self._threads.items() if t.is_alive()}
            self._threads[run_id] = thread
        thread.start()

    def _main(self, run_id: int) -> None:
        with self.app.app_context():
            try:
                execute(run_id)
            except Exception:  # execute records failures on the run; this is a crash of the runner itself
                log.exception("background run #%s crashed", run_id)

    def wait(self, timeout: float | None = None) -> None:
        """Until every run has ended, including runs those runs started (a webhook drain starts
        its relay push); real time on purpose: it waits for other threads."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                alive = [t for t in self._threads.values() if t.is_alive()]
            if not alive:
                return
            for thread in alive:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                thread.join(left)
            if deadline is not None and time.monotonic() >= deadline:
                return


class CeleryExecutor:
    """Sends the run's id to the Celery workers (the row is the truth: a lost message loses no data)."""

    name = ExecutorKind.CELERY.value

    def __init__(self, app: Flask) -> None:
        self.app = app

    def submit(self, run_id: int) -> None:
        from ..tasks import enqueue_run

        enqueue_run(self.app, run_id)

    def wait(self, timeout: float | None = None) -> None:
        return None  # the workers are other processes: poll the run rows
