"""Celery mode: with PostgreSQL and Redis every run — scheduled, "Sync now", "Send to", "Import
from" — is only enqueued by the web process; a real `leadbridge worker` subprocess executes it, and
a second, separate web process shows its progress from the database."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from leadbridge.db import db
from leadbridge.models import Connection, Contact, ContactList, ListMembership, SyncRun
from leadbridge.scheduling import LeadbridgeScheduler
from leadbridge.state import get_executor
from leadbridge.sync import default_mappings, start_run
from leadbridge.users import create_user

PASSWORD = "correct horse battery staple"

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


@pytest.fixture
def leadbridge_app_config() -> dict[str, Any]:
    """The app is composed in Celery mode (the executor is chosen once, in create_app)."""
    return {"REDIS_URL": REDIS_URL, "CELERY_QUEUE": f"leadbridge-test-{uuid.uuid4().hex[:8]}"}


def _env(app: Flask) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        LEADBRIDGE_SQLALCHEMY_DATABASE_URI=str(app.config["SQLALCHEMY_DATABASE_URI"]),
        LEADBRIDGE_SECRET_KEYS=str(app.config["SECRET_KEYS"]),
        LEADBRIDGE_ALLOW_BASE_URL_OVERRIDE="true",
        LEADBRIDGE_REDIS_URL=REDIS_URL,
        LEADBRIDGE_CELERY_QUEUE=str(app.config["CELERY_QUEUE"]),
        LEADBRIDGE_INSTANCE_PATH=app.instance_path,
    )
    return env


def _start_worker(app: Flask) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).with_name("leadbridge")
    return subprocess.Popen(
        [str(exe), "worker", "--concurrency", "1"],
        env=_env(app),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _stop(process: subprocess.Popen[bytes]) -> str:
    process.terminate()
    try:
        return process.communicate(timeout=20)[0].decode(errors="replace")
    except subprocess.TimeoutExpired:
        process.kill()
        return process.communicate()[0].decode(errors="replace")


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
    assert get_executor(app_ctx).name == "celery"
    default_mappings(connection)
    for i in range(3):
        c = Contact(first_name="Cel", last_name=f"Ery {i}")
        c.set_email(f"celery{i}@example.org")
        db.session.add(c)
    db.session.commit()
    worker = _start_worker(app_ctx)
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
        output = _stop(worker)
    assert "Traceback" not in output, output[-3000:]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _login(base: str) -> requests.Session:
    session = requests.Session()
    deadline = time.monotonic() + 60
    while True:
        try:
            page = session.get(f"{base}/login", timeout=5)
            break
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    done = session.post(
        f"{base}/login",
        data={"username": "admin", "password": PASSWORD, "csrf_token": _csrf(page.text)},
        allow_redirects=False,
        timeout=10,
    )
    assert done.status_code == 302, done.text[:500]
    return session


def _csrf(html: str) -> str:
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert token, html[:500]
    return token.group(1)


def test_send_and_import_run_on_a_worker_and_show_in_another_web_process(
    app: Flask, connection: Connection, sandbox: Any
) -> None:
    with app.app_context():
        default_mappings(connection)
        create_user("admin", PASSWORD)
        people = []
        for i in range(4):
            c = Contact(first_name="Sent", last_name=f"Person {i}")
            c.set_email(f"sent{i}@example.org")
            db.session.add(c)
            people.append(c)
        lst = ContactList(name="Webinar")
        db.session.add(lst)
        db.session.commit()
        ids, list_id = [c.id for c in people], lst.id
    sandbox.seed_demo()
    campaign_id = str(min(sandbox.campaigns))
    members_at_vendor = len(sandbox.campaigns[int(campaign_id)].members)
    before = sandbox.contact_count()

    # two separate web processes on the same database: one takes the clicks, the other watches
    exe = Path(sys.executable).with_name("leadbridge")
    webs, bases = [], []
    for _ in range(2):
        port = _free_port()
        webs.append(
            subprocess.Popen(
                [str(exe), "serve", "--host", "127.0.0.1", "--port", str(port), "--no-scheduler"],
                env=_env(app),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
        )
        bases.append(f"http://127.0.0.1:{port}")
    worker = None
    try:
        panel, other = _login(bases[0]), _login(bases[1])
        token = _csrf(panel.get(f"{bases[0]}/settings/tokens", timeout=10).text)
        sent = panel.post(
            f"{bases[0]}/contacts/send",
            data={"csrf_token": token, "connection_id": connection.id, "contact_ids": ids},
            allow_redirects=False,
            timeout=30,
        )
        imported = panel.post(
            f"{bases[0]}/lists/{list_id}/import/{connection.id}",
            data={"csrf_token": token, "campaign_id": campaign_id, "status": "registered"},
            allow_redirects=False,
            timeout=30,
        )
        assert sent.status_code == 302 and imported.status_code == 302, (
            sent.text[-800:],
            imported.text[-800:],
        )
        job_urls = [sent.headers["Location"], imported.headers["Location"]]
        assert all("/jobs/" in u for u in job_urls), job_urls
        for job_url in job_urls:  # no worker yet: queued, and the other web process shows it so
            page = other.get(f"{bases[1]}{job_url}", timeout=10).text
            assert "waiting to start" in page and 'data-status="queued"' in page, page[-2000:]
        assert sandbox.contact_count() == before  # nothing ran in the web process
        worker = _start_worker(app)
        pages = []
        for job_url in job_urls:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                page = other.get(
                    f"http://127.0.0.1:{port}{job_url}", headers={"HX-Request": "true"}, timeout=10
                ).text
                if 'data-finished="yes"' in page:
                    break
                time.sleep(0.2)
            pages.append(page)
        assert "Done. CRM: 8 created" in pages[0], pages[0]  # 4 contacts + 4 actions
        assert "Done." in pages[1] and "leadbridge:" in pages[1] and "created" in pages[1], pages[1]
        assert sandbox.contact_count() == before + 4
        with app.app_context():
            members = db.session.query(ListMembership).filter_by(list_id=list_id).all()
            assert len(members) == members_at_vendor and {m.status for m in members} == {"registered"}
    finally:
        if worker is not None:
            output = _stop(worker)
            assert "Traceback" not in output, output[-3000:]
        for web in webs:
            _stop(web)
