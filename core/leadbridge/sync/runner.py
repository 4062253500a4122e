"""Run lifecycle: create the run row, hold the connection's run lock, execute, record the outcome.

Statuses: ``queued`` → ``running`` → ``succeeded`` | ``partial`` (some records failed) | ``failed``
| ``paused`` (quota: ``resumes_at`` says when; the scheduler resumes it) | ``cancelled`` (a sync
found another run of the connection in progress). Every run that writes to the vendor holds the
connection's run lock: a sync gives up when it is held, a send or import waits for it (see
:class:`LockPolicy`). A run interrupted by a crash is marked ``failed`` by the
next run of its connection, which resumes from the last committed checkpoint.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from enum import Enum
from typing import Any

from flask import Flask, current_app
from sqlalchemy import select, update

from ..db import db, utcnow
from ..errors import (
    ConfigError,
    ConnectionDisabled,
    LeadbridgeError,
    NeedsReconnect,
    QuotaExhausted,
    RateLimited,
)
from ..models import Connection, SyncRun
from ..state import get_executor
from ..types import Direction, HubKind, RunStatus
from . import inbox, locks
from .context import RunContext
from .pull import pull_object
from .push import count_candidates, push_companies, push_contacts, push_deletes
from .runlog import Progress, RunLog, empty_counts

log = logging.getLogger(__name__)

Body = Callable[[RunContext, dict[str, Any]], None]


def resolve_connection(ref: int | str) -> Connection:
    """A connection by id or by name; :class:`ConfigError` when there is none."""
    conn: Connection | None = None
    if isinstance(ref, int) or str(ref).isdigit():
        conn = db.session.get(Connection, int(ref))
    if conn is None:
        conn = db.session.execute(select(Connection).where(Connection.name == str(ref))).scalar_one_or_none()
    if conn is None:
        raise ConfigError(f"no connection {ref!r}")
    return conn


def create_run(
    connection_id: int,
    *,
    trigger: str,
    direction: str | None = None,
    dry_run: bool = False,
    details: dict[str, Any] | None = None,
) -> SyncRun:
    """Add a queued run row (the caller commits)."""
    conn = resolve_connection(connection_id)
    flow = Direction(direction or conn.direction)
    run = SyncRun(
        connection_id=conn.id,
        status=RunStatus.QUEUED,
        trigger=trigger,
        direction=flow.value,
        dry_run=dry_run,
        started_at=utcnow(),
        counts=empty_counts(),
        details=dict(details or {}),
    )
    db.session.add(run)
    db.session.flush()
    return run


def run_sync(
    connection_id: int,
    *,
    trigger: str = "manual",
    direction: str | None = None,
    dry_run: bool = False,
    full: bool = False,
    progress: Progress | None = None,
) -> SyncRun:
    """Run one sync of a connection now, in this thread, and return the finished run.

    Pulls (companies, then people) when the direction includes ``from_crm``, then pushes
    (companies, then people, then deletes) when it includes ``to_crm``. ``dry_run`` computes the
    same outcomes without writing anything or moving the cursor; ``full`` ignores the checkpoint
    (and re-sends every hub record). ``progress(done, total)`` is called after each batch.
    """
    run = create_run(
        connection_id, trigger=trigger, direction=direction, dry_run=dry_run, details={"full": full}
    )
    db.session.commit()
    return execute(run.id, progress=progress)


def execute(run_id: int, *, progress: Progress | None = None, body: Body | None = None) -> SyncRun:
    """Execute a queued run (``details["mode"]``: ``sync`` (default), ``send`` or ``import``).

    ``body`` replaces the mode's work (webhook deliveries carry their events in memory).
    """
    run = db.session.get(SyncRun, run_id)
    if run is None:
        raise ConfigError(f"no run #{run_id}")
    details = {**(run.details or {}), "trigger": run.trigger}
    mode = details.get("mode", "sync")
    conn_id = run.connection_id
    owner = locks.owner_id(f"run{run_id}")
    lock_name = run_lock_name(conn_id)
    policy = lock_policy(mode, dry_run=run.dry_run)
    if policy is LockPolicy.WAIT:
        wait = float(current_app.config.get("RUN_LOCK_WAIT_SECONDS", RUN_LOCK_WAIT_SECONDS))
        db.session.commit()  # hold no transaction open while waiting (the run stays "queued")
        got = locks.acquire_waiting(lock_name, owner, timeout=wait)
        if not got:
            return _finish_unstarted(
                run_id,
                RunStatus.FAILED,
                f"another run of this connection kept it busy for {wait:.0f} s; nothing was sent — "
                "try again once it has finished",
            )
    elif policy is LockPolicy.SKIP and not locks.acquire(lock_name, owner):
        return _finish_unstarted(run_id, RunStatus.CANCELLED, "another run of this connection is in progress")
    locked = policy is not LockPolicy.NONE
    try:
        if locked:
            recover_interrupted(conn_id, keep=run_id)
        done = _execute(
            run_id,
            mode,
            details,
            progress,
            heartbeat=(lambda: locks.heartbeat(lock_name, owner)) if locked else None,
            body=body,
        )
    finally:
        if locked:
            locks.release(lock_name, owner)
    if mode == "webhook" and body is None and RunStatus(done.status).finished_ok:
        # Events stored while this drain was finishing found it busy: look again now it has ended.
        inbox.start_drain(conn_id)
    return done


class LockPolicy(Enum):
    """How a run treats the connection's run lock."""

    #: Take it, or give up at once (``cancelled``): a sync missed now is caught up by the next one.
    SKIP = "skip"
    #: Take it, waiting for the holder to finish: a send or import must not be dropped.
    WAIT = "wait"
    #: No lock: dry runs write nothing; webhook drains write the hub and relay actions (events),
    #: never upserts (their drain lock keeps them one at a time).
    NONE = "none"


#: How long a send or import waits for a running sync of its connection (``RUN_LOCK_WAIT_SECONDS``).
RUN_LOCK_WAIT_SECONDS = 900.0


def run_lock_name(conn_id: int) -> str:
    """The lock every vendor-writing run of a connection holds: one such run at a time."""
    return f"run:{conn_id}"


def lock_policy(mode: str, *, dry_run: bool) -> LockPolicy:
    """Every run that writes to the vendor or moves links holds the lock, so two runs never both
    decide "not linked yet, create it" for one record (that made duplicate CRM records)."""
    if dry_run or mode == "webhook":
        return LockPolicy.NONE
    return LockPolicy.SKIP if mode == "sync" else LockPolicy.WAIT


def _finish_unstarted(run_id: int, status: RunStatus, error: str) -> SyncRun:
    run = db.session.get(SyncRun, run_id)
    assert run is not None
    run.status, run.error, run.finished_at = status, error, utcnow()
    db.session.commit()
    return run


def recover_interrupted(conn_id: int, *, keep: int) -> int:
    """Mark runs of ``conn_id`` left ``running`` by a dead process as failed; returns how many."""
    result = db.session.execute(
        update(SyncRun)
        .where(
            SyncRun.connection_id == conn_id,
            SyncRun.status == RunStatus.RUNNING,
            SyncRun.id != keep,
            SyncRun.trigger != "webhook",  # webhook runs hold no lock: one may be live right now
        )
        .values(
            status=RunStatus.FAILED,
            finished_at=utcnow(),
            error="interrupted (the process stopped); the next run resumed from the last checkpoint",
        )
    )
    db.session.commit()
    return int(getattr(result, "rowcount", 0) or 0)


def _execute(
    run_id: int,
    mode: str,
    details: dict[str, Any],
    progress: Progress | None,
    *,
    heartbeat: Callable[[], Any] | None,
    body: Body | None = None,
) -> SyncRun:
    run = db.session.get(SyncRun, run_id)
    assert run is not None
    conn = db.session.get(Connection, run.connection_id)
    assert conn is not None
    started = utcnow()
    run.status, run.started_at = RunStatus.RUNNING, started
    db.session.commit()
    runlog = RunLog(run, progress=progress)
    if heartbeat is not None:
        inner = runlog.checkpoint

        def checkpoint_with_heartbeat() -> None:
            inner()
            heartbeat()

        runlog.checkpoint = checkpoint_with_heartbeat  # type: ignore[method-assign]
    status, error, resumes_at = RunStatus.SUCCEEDED, None, None
    ctx: RunContext | None = None
    try:
        if not conn.enabled:
            raise ConnectionDisabled(f"connection {conn.name!r} is disabled")
        ctx = RunContext.open(
            conn,
            runlog,
            started_at=started,
            direction=Direction(run.direction),
            dry_run=run.dry_run,
            full=bool(details.get("full")),
        )
        (body or BODIES[mode])(ctx, details)
        status = RunStatus.PARTIAL if runlog.failed else RunStatus.SUCCEEDED
    except QuotaExhausted as exc:
        status, error = RunStatus.PAUSED, str(exc)
        resumes_at = exc.resets_at or utcnow() + timedelta(hours=1)
    except RateLimited as exc:
        status, error = RunStatus.PAUSED, str(exc)
        resumes_at = utcnow() + timedelta(seconds=exc.retry_after or 60)
    except NeedsReconnect as exc:
        status, error = RunStatus.FAILED, f"{exc.message} — reconnect the connection"
    except LeadbridgeError as exc:
        status, error = RunStatus.FAILED, str(exc)
    except Exception as exc:  # the run log must say what happened, whatever it was
        log.exception("run #%s failed", run_id)
        status, error = RunStatus.FAILED, f"{type(exc).__name__}: {exc}"
    db.session.rollback()  # an unfinished batch is dropped; its checkpoint was not committed
    runlog.stage()
    run = db.session.get(SyncRun, run_id)
    conn = db.session.get(Connection, run.connection_id) if run else None
    assert run is not None and conn is not None
    run.status, run.error, run.resumes_at = status, error, resumes_at
    run.finished_at = utcnow()
    if ctx is not None:
        run.api_calls = ctx.stats.calls
        run.details = {
            **(run.details or {}),
            "retries": ctx.stats.retries,
            "renewals": ctx.stats.renewals,
            "rate_limited": ctx.stats.rate_limited,
        }
    if not run.dry_run:
        if status is RunStatus.PAUSED:
            conn.state, conn.paused_until = "paused", resumes_at
            conn.state_message = (
                f"Paused until {resumes_at:%Y-%m-%d %H:%M} UTC: {error}" if resumes_at else error
            )
        elif status.finished_ok and conn.state in ("paused", "error"):
            conn.state, conn.state_message, conn.paused_until = "ok", None, None
    db.session.commit()
    return run


# -- bodies --------------------------------------------------------------------------------------


def _sync_body(ctx: RunContext, details: dict[str, Any]) -> None:
    companies = ctx.objects(HubKind.COMPANY)
    people = ctx.objects(HubKind.CONTACT)
    if ctx.direction is Direction.TO_CRM:
        ctx.log.total = sum(count_candidates(ctx, s) for s in people if ctx.allows(s, Direction.TO_CRM))
    if ctx.direction.includes(Direction.FROM_CRM):
        for spec in companies:
            if ctx.allows(spec, Direction.FROM_CRM) and ctx.implements("fetch_companies"):
                pull_object(ctx, spec)
        for spec in people:
            if ctx.allows(spec, Direction.FROM_CRM) and ctx.implements("fetch_contacts"):
                pull_object(ctx, spec)
    if ctx.direction.includes(Direction.TO_CRM):
        for spec in companies:
            if ctx.allows(spec, Direction.TO_CRM) and ctx.implements("upsert_company"):
                push_companies(ctx, spec)
        actions = bool(ctx.options.get("push_actions_on_schedule")) and details.get("trigger") == "schedule"
        for spec in people:
            if ctx.allows(spec, Direction.TO_CRM) and ctx.implements("upsert_contact"):
                push_contacts(ctx, spec, with_action=actions)
                push_deletes(ctx, spec)


def send_spec(ctx: RunContext) -> Any:
    """The person object explicit sends write to (``options["send_object"]`` or the first pushable one)."""
    chosen = ctx.options.get("send_object")
    for spec in ctx.info.objects_of(HubKind.CONTACT):
        if not chosen and spec.push_only_linked_to == spec.name:
            continue  # update-only (Pipedrive persons): a send must be able to create
        if (not chosen or spec.name == chosen) and any(d.includes(Direction.TO_CRM) for d in spec.directions):
            return spec
    raise ConfigError(f"{ctx.info.display_name} has no object contacts can be sent to")


def _send_body(ctx: RunContext, details: dict[str, Any]) -> None:
    ids = [int(i) for i in details.get("contact_ids") or []]
    spec = send_spec(ctx)
    ctx.log.total = len(ids)
    push_contacts(ctx, spec, contact_ids=ids, with_action=bool(details.get("with_action")))


def _import_body(ctx: RunContext, details: dict[str, Any]) -> None:
    from .imports import import_members

    import_members(ctx, details)


BODIES: dict[str, Callable[[RunContext, dict[str, Any]], None]] = {
    "sync": _sync_body,
    "send": _send_body,
    "import": _import_body,
    "webhook": inbox.drain_body,
}


# -- background runs -----------------------------------------------------------------------------


def start_run(
    connection_id: int,
    *,
    trigger: str,
    direction: str | None = None,
    dry_run: bool = False,
    full: bool = False,
) -> int:
    """Queue a sync and hand it to the app's executor (thread, Celery worker or inline); its id."""
    run = create_run(
        connection_id,
        trigger=trigger,
        direction=direction,
        dry_run=dry_run,
        details={"full": full, "trigger": trigger},
    )
    db.session.commit()
    get_executor().submit(run.id)
    return run.id


def wait_for_runs(app: Flask | None = None, timeout: float | None = None) -> None:
    """Wait for the runs this process's executor started (tests, shutdown)."""
    get_executor(app).wait(timeout)
