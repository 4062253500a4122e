"""The engine under vendor faults: rate limits, outages, ambiguous writes, token trouble, quotas."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from flask import Flask
from leadbridge.db import db
from leadbridge.models import Connection, Contact
from leadbridge.sync import default_mappings, run_sync, send_contacts
from sqlalchemy import select

BATCH = "/api/contacts/batch"
TOKEN = "/oauth/token"


@pytest.fixture
def conn(connection: Connection) -> Connection:
    default_mappings(connection)
    db.session.commit()
    return connection


def add_contacts(n: int, prefix: str = "c") -> list[int]:
    rows = []
    for i in range(n):
        c = Contact(first_name="F", last_name=f"L{i}")
        c.set_email(f"{prefix}{i}@example.org")
        rows.append(c)
    db.session.add_all(rows)
    db.session.commit()
    return [c.id for c in rows]


def test_429_storm_with_retry_after_is_waited_out(conn: Connection, sandbox: Any) -> None:
    add_contacts(3)
    sandbox.fail_next(429, times=2, headers={"Retry-After": "1"}, path_prefix=BATCH)
    run = run_sync(conn.id, direction="to_crm")
    assert run.status == "succeeded", run.error
    assert sandbox.contact_count() == 3
    assert sandbox.count_calls("POST", BATCH) == 3  # two refused, one applied: no burst
    assert run.details["rate_limited"] == 2


def test_429_storm_without_retry_after_backs_off(conn: Connection, sandbox: Any) -> None:
    add_contacts(2)
    sandbox.fail_next(429, times=3, path_prefix=BATCH)
    run = run_sync(conn.id, direction="to_crm")
    assert run.status == "succeeded", run.error
    assert sandbox.count_calls("POST", BATCH) == 4
    assert sandbox.contact_count() == 2


def test_outage_fails_the_run_and_the_next_run_resumes(conn: Connection, sandbox: Any) -> None:
    add_contacts(3)
    sandbox.fail_next(503, times=10, path_prefix=BATCH)
    run = run_sync(conn.id, direction="to_crm")
    assert run.status == "failed" and "503" in (run.error or "")
    assert sandbox.contact_count() == 0
    sandbox.faults.clear()
    again = run_sync(conn.id, direction="to_crm")
    assert again.status == "succeeded"
    assert again.counts["crm"]["created"] == 3 and sandbox.contact_count() == 3


def test_ambiguous_write_is_resent_without_duplicates(conn: Connection, sandbox: Any) -> None:
    add_contacts(4)
    sandbox.fail_next(200, mode="reset", path_prefix=BATCH)
    run = run_sync(conn.id, direction="to_crm")
    assert run.status == "succeeded", run.error
    assert sandbox.count_calls("POST", BATCH) == 2
    assert sandbox.contact_count() == 4


def test_token_expiry_mid_run_renews_once(conn: Connection, sandbox: Any) -> None:
    add_contacts(250)
    expired: list[int] = []

    def progress(done: int, total: int | None) -> None:
        if not expired:
            expired.append(done)
            sandbox.expire_tokens()

    sandbox.reset_calls()
    run = run_sync(conn.id, direction="to_crm", progress=progress)
    assert run.status == "succeeded", run.error
    assert expired and sandbox.contact_count() == 250
    assert sandbox.count_calls("POST", TOKEN) == 1
    assert run.details["renewals"] == 1


def test_two_runs_sharing_a_connection_refresh_once(app: Flask, conn: Connection, sandbox: Any) -> None:
    # A dry run holds no run lock, so it really runs beside the send (two vendor-writing runs of
    # one connection never overlap: tests/faults/test_overlapping_runs.py).
    ids = add_contacts(120)
    conn_id = conn.id
    sandbox.expire_tokens()
    sandbox.reset_calls()
    results: dict[str, str] = {}
    barrier = threading.Barrier(2)

    def sync() -> None:
        with app.app_context():
            barrier.wait()
            results["sync"] = run_sync(conn_id, direction="to_crm", dry_run=True).status

    def send() -> None:
        with app.app_context():
            barrier.wait()
            results["send"] = send_contacts(conn_id, ids[:5], with_action=False).status

    threads = [threading.Thread(target=sync), threading.Thread(target=send)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == {"sync": "succeeded", "send": "succeeded"}
    assert sandbox.count_calls("POST", TOKEN) == 1
    assert sandbox.contact_count() == 5


def test_revoked_refresh_token_fails_the_run_and_asks_for_reconnect(conn: Connection, sandbox: Any) -> None:
    add_contacts(1)
    run_sync(conn.id, direction="to_crm")  # holds a refresh token now
    sandbox.revoke_refresh_tokens()
    sandbox.expire_tokens()
    add_contacts(1, prefix="later")
    run = run_sync(conn.id, direction="to_crm")
    assert run.status == "failed"
    assert "reconnect" in (run.error or "").lower()
    db.session.expire_all()
    assert db.session.get(Connection, conn.id).state == "needs_reconnect"


def test_quota_exhausted_pauses_the_run_until_reset(conn: Connection, sandbox: Any) -> None:
    add_contacts(2)
    sandbox.fail_next(429, body={"error": "quota_exceeded"}, path_prefix=BATCH)
    run = run_sync(conn.id, direction="to_crm")
    assert run.status == "paused" and run.resumes_at is not None
    db.session.expire_all()
    row = db.session.get(Connection, conn.id)
    assert row.state == "paused" and row.paused_until == run.resumes_at
    resumed = run_sync(conn.id, direction="to_crm")
    assert resumed.status == "succeeded" and sandbox.contact_count() == 2
    db.session.expire_all()
    assert db.session.get(Connection, conn.id).state == "ok"


def test_runs_of_one_connection_never_overlap(app: Flask, conn: Connection, sandbox: Any) -> None:
    from leadbridge.sync import locks

    assert locks.acquire(f"run:{conn.id}", "someone-else-on-another-host:1:x")
    add_contacts(1)
    run = run_sync(conn.id)
    assert run.status == "cancelled"
    assert sandbox.count_calls("POST", BATCH) == 0
    locks.release(f"run:{conn.id}", "someone-else-on-another-host:1:x")
    assert run_sync(conn.id).status == "succeeded"
    assert db.session.execute(select(Contact)).scalars().all()


def test_a_send_waits_for_the_run_holding_the_connection_then_sends(
    app: Flask, conn: Connection, sandbox: Any
) -> None:
    from leadbridge.sync import locks

    other, name = "someone-else-on-another-host:1:x", f"run:{conn.id}"
    assert locks.acquire(name, other)
    ids = add_contacts(2)
    released = threading.Timer(0.5, lambda: locks.release(name, other, app=app))
    released.start()
    run = send_contacts(conn.id, ids, with_action=False)
    released.join()
    assert run.status == "succeeded", run.error
    assert sandbox.contact_count() == 2


def test_a_send_that_waited_too_long_fails_and_says_nothing_was_sent(
    app: Flask, conn: Connection, sandbox: Any
) -> None:
    from leadbridge.sync import locks

    app.config["RUN_LOCK_WAIT_SECONDS"] = 0.3
    assert locks.acquire(f"run:{conn.id}", "someone-else-on-another-host:1:x")
    run = send_contacts(conn.id, add_contacts(1), with_action=False)
    assert run.status == "failed"
    assert "nothing was sent" in (run.error or "")
    assert sandbox.count_calls("POST", BATCH) == 0
