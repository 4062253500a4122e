"""Celery mode: with PostgreSQL and Redis the scheduler and "sync now" only enqueue; a real
`leadbridge worker` subprocess executes the runs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from leadbridge.db import db
from leadbridge.models import Connection, Contact, SyncRun
from leadbridge.scheduling import LeadbridgeScheduler
from leadbridge.sync import default_mappings, start_run

REDIS_URL = "redis://127.0.0.1:6379/0"


def _redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


pytestmark = [
    pytest.mark.skipif(
        not os.environ.get("LEADBRIDGE_TEST_DATABASE_URL", "").startswith("postgresql"),
        reason="Celery mode needs PostgreSQL: set LEADBRIDGE_TEST_DATABASE_URL",
    ),
    pytest.mark.skipif(not _redis_answers(), reason="no Redis answering on 127.0.0.1:6379"),
    pytest.mark.slow,
]


def _wait_finished(run_id: int, timeout: float = 90.0) -> SyncRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.expire_all()
        run = db.session.get(SyncRun, run_id)
        if run is not None and run.status not in ("queued", "running"):
            return run
        db.session.commit()
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not finish")


def test_worker_executes_enqueued_runs(app_ctx: Flask, connection: Connection, sandbox: Any) -> None:
    queue = f"leadbridge-test-{uuid.uuid4().hex[:8]}"
    app_ctx.config.update(REDIS_URL=REDIS_URL, CELERY_QUEUE=queue)
    default_mappings(connection)
    for i in range(3):
        c = Contact(first_name="Cel", last_name=f"Ery {i}")
        c.set_email(f"celery{i}@example.org")
        db.session.add(c)
    db.session.commit()
    env = dict(os.environ)
    env.update(
        LEADBRIDGE_SQLALCHEMY_DATABASE_URI=str(app_ctx.config["SQLALCHEMY_DATABASE_URI"]),
        LEADBRIDGE_SECRET_KEYS=str(app_ctx.config["SECRET_KEYS"]),
        LEADBRIDGE_ALLOW_BASE_URL_OVERRIDE="true",
        LEADBRIDGE_REDIS_URL=REDIS_URL,
        LEADBRIDGE_CELERY_QUEUE=queue,
        LEADBRIDGE_INSTANCE_PATH=app_ctx.instance_path,
    )
    exe = Path(sys.executable).with_name("leadbridge")
    worker = subprocess.Popen([str(exe), "worker", "--concurrency", "1"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        run_id = start_run(connection.id, trigger="manual")
        run = _wait_finished(run_id)
        assert run.status == "succeeded", run.error
        assert sandbox.contact_count() == 3
        # the scheduler only enqueues in Celery mode; the worker runs it
        c = Contact(first_name="Cel", last_name="Later")
        c.set_email("celery-later@example.org")
        db.session.add(c)
        db.session.commit()
        scheduled = LeadbridgeScheduler(app_ctx).run_connection(connection.id)
        assert scheduled is not None
        run = _wait_finished(scheduled)
        assert run.trigger == "schedule" and run.status == "succeeded", run.error
        assert sandbox.contact_count() == 4
    finally:
        worker.terminate()
        try:
            output = worker.communicate(timeout=20)[0].decode(errors="replace")
        except subprocess.TimeoutExpired:
            worker.kill()
            output = worker.communicate()[0].decode(errors="replace")
    assert "Traceback" not in output, output[-3000:]
