"""Kill `leadbridge sync` (SIGKILL) at random batch points while it pushes thousands of contacts,
restart it, and check: nothing lost, nothing duplicated, at most one batch re-sent per kill."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from leadbridge.db import db
from leadbridge.models import Connection, Contact, Link, SyncRun
from leadbridge.sync import default_mappings
from sqlalchemy import func, select

BATCH = "/api/contacts/batch"
N = 2000
KILLS = 3

pytestmark = pytest.mark.slow


def child_env(app: Flask) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        LEADBRIDGE_SQLALCHEMY_DATABASE_URI=str(app.config["SQLALCHEMY_DATABASE_URI"]),
        LEADBRIDGE_SECRET_KEYS=str(app.config["SECRET_KEYS"]),
        LEADBRIDGE_ALLOW_BASE_URL_OVERRIDE="true",
        LEADBRIDGE_INSTANCE_PATH=app.instance_path,
    )
    return env


def leadbridge_sync(app: Flask, conn_id: int, direction: str = "to_crm") -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).with_name("leadbridge")
    return subprocess.Popen(
        [str(exe), "sync", str(conn_id), "--direction", direction, "--json"],
        env=child_env(app),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_sigkill_at_random_batch_points_loses_and_duplicates_nothing(
    app_ctx: Flask, connection: Connection, sandbox: Any
) -> None:
    default_mappings(connection)
    db.session.add_all(
        [Contact(first_name="Crash", last_name=f"Test {i}", email=f"crash{i}@example.org") for i in range(N)]
    )
    db.session.commit()
    conn_id = connection.id
    rng = random.Random()
    seed = rng.randrange(1_000_000)
    rng.seed(seed)
    batches = N // 100
    kills = 0
    for _ in range(KILLS):
        target = sandbox.count_calls("POST", BATCH) + rng.randint(1, 5)
        child = leadbridge_sync(app_ctx, conn_id)
        deadline = time.monotonic() + 120
        while (
            sandbox.count_calls("POST", BATCH) < target
            and child.poll() is None
            and time.monotonic() < deadline
        ):
            time.sleep(0.002)
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            kills += 1
        child.communicate(timeout=30)
    assert kills >= 1, "the sync finished before any kill"
    final = leadbridge_sync(app_ctx, conn_id)
    _out, err = final.communicate(timeout=300)
    assert final.returncode == 0, (seed, err.decode()[-2000:])

    db.session.expire_all()
    assert sandbox.contact_count() == N, f"seed {seed}"  # 0 lost, 0 duplicated on the vendor side
    emails = [(r.values.get("email") or "").lower() for r in sandbox.contacts.values() if not r.deleted]
    assert len(set(emails)) == N
    links = db.session.execute(select(func.count(Link.id)).where(Link.connection_id == conn_id)).scalar_one()
    assert links == N  # every hub contact is linked exactly once
    # at most one batch re-sent per kill (the one in flight when the process died)
    assert sandbox.count_calls("POST", BATCH) <= batches + kills, f"seed {seed}"
    runs = db.session.execute(select(SyncRun).where(SyncRun.connection_id == conn_id)).scalars().all()
    assert sum(1 for r in runs if r.status == "running") == 0  # interrupted runs were closed
    assert db.session.get(Connection, conn_id) is not None


def test_sigkill_during_a_pull_loses_and_duplicates_nothing(
    app_ctx: Flask, connection: Connection, sandbox: Any
) -> None:
    default_mappings(connection)
    db.session.commit()
    sandbox.add_contacts(N)
    conn_id = connection.id
    rng = random.Random()
    kills = 0
    for _ in range(KILLS):
        target = sandbox.count_calls("GET", "/api/contacts") + rng.randint(1, 4)
        child = leadbridge_sync(app_ctx, conn_id, "from_crm")
        deadline = time.monotonic() + 120
        while (
            sandbox.count_calls("GET", "/api/contacts") < target
            and child.poll() is None
            and time.monotonic() < deadline
        ):
            time.sleep(0.002)
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            kills += 1
        child.communicate(timeout=30)
    assert kills >= 1
    final = leadbridge_sync(app_ctx, conn_id, "from_crm")
    _out, err = final.communicate(timeout=300)
    assert final.returncode == 0, err.decode()[-2000:]
    db.session.expire_all()
    assert db.session.execute(select(func.count(Contact.id))).scalar_one() == N
    assert db.session.execute(select(func.count(Link.id))).scalar_one() == N
