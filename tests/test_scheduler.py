"""The scheduler: one per install, connection jobs, paused runs resumed; the debounced push; CLI."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from leadbridge.cli import main
from leadbridge.db import db, utcnow
from leadbridge.models import Connection, Contact, SyncRun
from leadbridge.scheduling import MISFIRE_GRACE_SECONDS, SCHEDULER_LOCK, LeadbridgeScheduler
from leadbridge.sync import default_mappings, locks, notify_contacts_changed, start_run, wait_for_runs
from leadbridge.sync.notify import debouncer
from sqlalchemy import select


@pytest.fixture
def conn(connection: Connection) -> Connection:
    default_mappings(connection)
    db.session.commit()
    return connection


def add_contact(email: str) -> int:
    c = Contact(first_name="Form", last_name="Filler")
    c.set_email(email)
    db.session.add(c)
    db.session.commit()
    return c.id


def test_a_second_scheduler_refuses_to_start(app_ctx: Flask) -> None:
    first, second = LeadbridgeScheduler(app_ctx), LeadbridgeScheduler(app_ctx)
    second.owner = "other-host:1:abc:scheduler"  # as if it ran on another machine
    assert first.start()
    try:
        assert not second.start()
        assert locks.holder(SCHEDULER_LOCK) == first.owner
    finally:
        first.shutdown()
    assert second.start()
    second.shutdown()


def test_scheduler_cli_refuses_while_another_runs(app_ctx: Flask) -> None:
    assert locks.acquire(SCHEDULER_LOCK, "other-host:1:abc:scheduler")
    result = app_ctx.test_cli_runner().invoke(main, ["scheduler"])
    assert result.exit_code == 1
    assert "another scheduler is running" in result.output


def test_jobs_follow_connection_schedules(app_ctx: Flask, conn: Connection) -> None:
    sched = LeadbridgeScheduler(app_ctx)
    assert sched.start()
    try:
        job = sched.scheduler.get_job(f"sync:{conn.id}")
        assert job is not None and job.coalesce and job.max_instances == 1
        assert job.misfire_grace_time == MISFIRE_GRACE_SECONDS
        assert "interval" in str(job.trigger)
        row = db.session.get(Connection, conn.id)
        row.schedule_cron = "*/15 * * * *"
        db.session.commit()
        sched.reconcile()
        assert "cron" in str(sched.scheduler.get_job(f"sync:{conn.id}").trigger)
        row = db.session.get(Connection, conn.id)
        row.enabled = False
        db.session.commit()
        sched.reconcile()
        assert sched.job_ids() == ["reconcile"]
    finally:
        sched.shutdown()


def test_scheduled_job_runs_in_app_context_skips_paused(app: Flask, conn: Connection, sandbox: Any) -> None:
    add_contact("sched@example.org")
    sched = LeadbridgeScheduler(app)
    run_id = sched.run_connection(conn.id)  # queued for the app's executor (threads here)
    wait_for_runs(app, timeout=60)
    db.session.rollback()
    run = db.session.get(SyncRun, run_id)
    assert run.trigger == "schedule" and run.status == "succeeded"
    assert sandbox.contact_count() == 1
    row = db.session.get(Connection, conn.id)
    row.state, row.paused_until = "paused", utcnow() + timedelta(hours=1)
    db.session.commit()
    assert sched.run_connection(conn.id) is None


def test_paused_connection_resumes_when_the_pause_ends(app: Flask, conn: Connection, sandbox: Any) -> None:
    add_contact("paused@example.org")
    row = db.session.get(Connection, conn.id)
    row.state, row.paused_until = "paused", utcnow() - timedelta(seconds=1)
    db.session.commit()
    sched = LeadbridgeScheduler(app)
    assert sched.start()
    try:
        assert f"resume:{conn.id}" in sched.job_ids() or _wait_for(lambda: _runs(conn.id) >= 1)
        assert _wait_for(lambda: _runs(conn.id) >= 1)
    finally:
        sched.shutdown()
    db.session.expire_all()
    assert db.session.get(Connection, conn.id).state == "ok"
    assert sandbox.contact_count() == 1


def _runs(conn_id: int) -> int:
    db.session.expire_all()
    return len(
        db.session.execute(
            select(SyncRun).where(SyncRun.connection_id == conn_id, SyncRun.status == "succeeded")
        )
        .scalars()
        .all()
    )


def _wait_for(check: Any, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return bool(check())


def test_sync_now_runs_in_the_background(app_ctx: Flask, conn: Connection, sandbox: Any) -> None:
    add_contact("now@example.org")
    run_id = start_run(conn.id, trigger="manual")
    wait_for_runs(timeout=60)
    db.session.expire_all()
    run = db.session.get(SyncRun, run_id)
    assert run.status == "succeeded" and run.trigger == "manual"
    assert sandbox.find_contact("now@example.org") is not None


def test_form_change_is_pushed_debounced(app_ctx: Flask, conn: Connection, sandbox: Any) -> None:
    app_ctx.config["PUSH_DEBOUNCE_SECONDS"] = 0.2
    first = add_contact("form1@example.org")
    second = add_contact("form2@example.org")
    notify_contacts_changed([first], "form")
    notify_contacts_changed([second], "form")  # within the window: one push for both
    pusher = debouncer()
    assert _wait_for(lambda: len(pusher.runs) >= 1)
    assert _wait_for(lambda: sandbox.contact_count() == 2)
    assert sandbox.count_calls("POST", "/api/contacts/batch") == 1
    # The vendor holds the contacts before the run row records its counts: wait for the run to end.
    wait_for_runs(timeout=60)
    db.session.expire_all()
    run = db.session.get(SyncRun, pusher.runs[0])
    assert run.status == "succeeded"
    assert run.trigger == "form" and run.counts["crm"]["created"] == 2


def test_sync_cli_prints_counts_and_json(app_ctx: Flask, conn: Connection, sandbox: Any) -> None:
    sandbox.add_contacts(3)
    runner = app_ctx.test_cli_runner()
    dry = runner.invoke(main, ["sync", conn.name, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "Dry run" in dry.output and "hub" in dry.output
    result = runner.invoke(main, ["sync", str(conn.id), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["status"] == "succeeded" and data["counts"]["hub"]["created"] == 3
    missing = runner.invoke(main, ["sync", "no such connection"])
    assert missing.exit_code == 2 and "no connection" in missing.output
