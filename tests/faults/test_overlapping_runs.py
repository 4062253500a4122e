"""A "Send to" and a sync of one connection started at the same moment never duplicate a CRM record.

Both runs push the same new contacts. Before the run lock covered sends, each run decided "not
linked yet: create it" for the same contact, and the vendor got two records (200 of 200 in
Salesforce, 599 of 600 in PlanMill) while both runs said ``succeeded``. The runs here are real
threads on one real database and real HTTP to each connector's sandbox.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from leadbridge.db import db
from leadbridge.models import Contact, Link, SyncRun
from leadbridge.sync import default_mappings, run_sync, send_contacts
from sqlalchemy import func, select

CONNECTORS = ["example", "planmill", "salesforce", "constantcontact"]
TRIALS = 20
PER_TRIAL = 10


@pytest.fixture(params=CONNECTORS)
def connection_plugin(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _add_contacts(trial: int) -> list[int]:
    rows = []
    for i in range(PER_TRIAL):
        person = Contact(first_name="Race", last_name=f"T{trial}N{i}", company_name=f"Race {trial} Oy")
        person.set_email(f"race{trial}.{i}@overlap.example")
        rows.append(person)
    db.session.add_all(rows)
    db.session.commit()
    return [c.id for c in rows]


def _in_thread(app: Flask, work: Callable[[], SyncRun], out: list[int], start: threading.Barrier) -> Any:
    def main() -> None:
        with app.app_context():
            start.wait()
            out.append(work().id)

    thread = threading.Thread(target=main)
    thread.start()
    return thread


def test_a_send_and_a_sync_started_together_create_each_record_once(
    app: Flask, connection: Any, sandbox: Any
) -> None:
    default_mappings(connection)
    db.session.commit()
    conn_id = connection.id
    run_sync(conn_id, direction="to_crm")  # whatever the hub held before: pushed, out of the count
    before = sandbox.contact_count()
    for trial in range(TRIALS):
        ids = _add_contacts(trial)
        runs: list[int] = []
        start = threading.Barrier(2)
        threads = [
            _in_thread(app, lambda: run_sync(conn_id, direction="to_crm"), runs, start),
            _in_thread(app, lambda ids=ids: send_contacts(conn_id, ids, with_action=False), runs, start),
        ]
        for thread in threads:
            thread.join(120)
        assert len(runs) == 2
        db.session.expire_all()
        statuses = {
            r.details.get("mode", "sync"): r.status
            for r in db.session.scalars(select(SyncRun).where(SyncRun.id.in_(runs)))
        }
        # The send always lands (it waits for a sync holding the lock); a sync finding the send
        # running is cancelled, and says so, instead of racing it.
        assert statuses["send"] == "succeeded", statuses
        assert statuses["sync"] in ("succeeded", "cancelled"), statuses
        assert sandbox.contact_count() == before + PER_TRIAL * (trial + 1), f"trial {trial}: duplicates"
    per_contact = db.session.execute(
        select(Link.hub_id, func.count())
        .where(Link.connection_id == conn_id, Link.hub_kind == "contact")
        .group_by(Link.hub_id)
        .having(func.count() > 1)
    ).all()
    assert per_contact == [], "a contact got two links"
    linked = db.session.scalar(
        select(func.count())
        .select_from(Link)
        .where(Link.connection_id == conn_id, Link.hub_kind == "contact")
    )
    assert linked == db.session.scalar(select(func.count()).select_from(Contact))
