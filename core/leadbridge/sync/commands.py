"""CLI commands of the engine: ``leadbridge sync``, ``leadbridge scheduler``, ``leadbridge worker``."""

from __future__ import annotations

import json
import signal
import sys
import threading
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext

from ..db import db
from ..errors import LeadbridgeError
from ..models import SyncRun
from ..types import Direction, RunStatus


def run_summary(run: SyncRun) -> dict[str, Any]:
    """A run as plain data (``--json`` output, API)."""
    duration = (run.finished_at - run.started_at).total_seconds() if run.finished_at else None
    return {
        "id": run.id,
        "connection_id": run.connection_id,
        "status": run.status,
        "trigger": run.trigger,
        "direction": run.direction,
        "dry_run": run.dry_run,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "duration_seconds": duration,
        "counts": run.counts,
        "api_calls": run.api_calls,
        "error": run.error,
        "resumes_at": run.resumes_at.isoformat() if run.resumes_at else None,
    }


def _progress_printer(enabled: bool) -> Any:
    # On a terminal one line is redrawn; in a log (CI, cron) each update is a line of its own.
    tty = sys.stderr.isatty()
    prefix, end = ("\r", False) if tty else ("", True)

    def show(done: int, total: int | None) -> None:
        if not enabled:
            return
        if total:
            width = 30
            filled = min(width, int(width * done / max(total, 1)))
            bar = "#" * filled + "-" * (width - filled)
            click.echo(f"{prefix}[{bar}] {done}/{total}", nl=end, err=True)
        else:
            click.echo(f"{prefix}{done} records", nl=end, err=True)

    return show


@click.command("sync")
@click.argument("connection")
@click.option(
    "--direction", type=click.Choice([d.value for d in Direction]), help="Default: the connection's."
)
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing, keep the cursor.")
@click.option("--full", is_flag=True, help="Ignore the saved cursor (re-read and re-check everything).")
@click.option("--json", "as_json", is_flag=True, help="Print the finished run as JSON.")
@with_appcontext
def sync_command(connection: str, direction: str | None, dry_run: bool, full: bool, as_json: bool) -> None:
    """Sync one connection (by id or name) now, with a progress bar; ends with the run's counts."""
    from . import resolve_connection, run_sync

    try:
        conn = resolve_connection(connection)
        conn_id = conn.id
        db.session.commit()
        run = run_sync(
            conn_id,
            trigger="manual",
            direction=direction,
            dry_run=dry_run,
            full=full,
            progress=_progress_printer(not as_json),
        )
    except LeadbridgeError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    if as_json:
        click.echo(json.dumps(run_summary(run), indent=2))
    else:
        click.echo("", err=True)
        title = "Dry run" if run.dry_run else "Run"
        click.echo(f"{title} #{run.id}: {run.status} ({run.direction}, {run.api_calls} API calls)")
        click.echo(f"{'':<6}{'created':>9}{'updated':>9}{'skipped':>9}{'deleted':>9}{'failed':>9}")
        for side, label in (("crm", "CRM"), ("hub", "hub")):
            c = (run.counts or {}).get(side, {})
            click.echo(
                f"{label:<6}"
                + "".join(f"{c.get(k, 0):>9}" for k in ("created", "updated", "skipped", "deleted", "failed"))
            )
        if run.error:
            click.echo(f"Error: {run.error}")
    sys.exit(0 if RunStatus(run.status).finished_ok else 1)


@click.command("scheduler")
@with_appcontext
def scheduler_command() -> None:
    """Run the scheduler alone (refuses to start when another scheduler holds the lock)."""
    from ..scheduling import SCHEDULER_LOCK, LeadbridgeScheduler
    from . import locks

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):  # before starting: a stop request must never be lost
        signal.signal(sig, lambda *_: stop.set())
    sched = LeadbridgeScheduler(app)
    if not sched.start():
        click.echo(
            f"Error: another scheduler is running ({locks.holder(SCHEDULER_LOCK, app=app)}).", err=True
        )
        sys.exit(1)
    click.echo(f"Scheduler running ({len(sched.job_ids()) - 1} connection jobs). Ctrl+C to stop.")
    try:
        while not stop.wait(1.0):
            if not sched.running:
                break
    finally:
        sched.shutdown()


@click.command("worker")
@click.option("--concurrency", default=2, show_default=True, type=int)
@with_appcontext
def worker_command(concurrency: int) -> None:
    """Run a Celery worker (needs REDIS_URL and a PostgreSQL database)."""
    from ..tasks import run_worker
    from .executors import celery_configured

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if not celery_configured(app):
        click.echo("Error: Celery mode needs LEADBRIDGE_REDIS_URL and a PostgreSQL database.", err=True)
        sys.exit(2)
    run_worker(app, concurrency=concurrency)


def register(group: click.Group) -> None:
    """Add the engine's commands to the ``leadbridge`` command group."""
    for command in (sync_command, scheduler_command, worker_command):
        group.add_command(command)
