"""The sync engine against the example connector's sandbox over real loopback HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from leadbridge.db import db
from leadbridge.models import Connection, Contact, Link, SyncRecord, SyncRun, SyncState
from leadbridge.sync import default_mappings, run_sync
from sqlalchemy import func, select

BATCH = "/api/contacts/batch"


@pytest.fixture
def conn(connection: Connection) -> Connection:
    default_mappings(connection)
    db.session.commit()
    return connection


def add_contact(email: str | None, **values: Any) -> Contact:
    contact = Contact(
        first_name=values.pop("first_name", "Ada"), last_name=values.pop("last_name", "Lovelace"), **values
    )
    contact.set_email(email)
    db.session.add(contact)
    db.session.commit()
    return contact


def records(run: SyncRun, **where: Any) -> list[SyncRecord]:
    query = select(SyncRecord).where(SyncRecord.run_id == run.id)
    for key, value in where.items():
        query = query.where(getattr(SyncRecord, key) == value)
    return list(db.session.execute(query).scalars())


def test_push_creates_then_costs_zero_writes(conn: Connection, sandbox: Any) -> None:
    for i in range(3):
        add_contact(f"p{i}@example.org", title="CMO")
    run = run_sync(conn.id, direction="to_crm")
    assert run.status == "succeeded", run.error
    assert run.counts["crm"]["created"] == 3
    assert sandbox.contact_count() == 3
    assert sandbox.find_contact("P1@example.org")["job_title"] == "CMO"
    sandbox.reset_calls()
    again = run_sync(conn.id, direction="to_crm")
    assert again.status == "succeeded"
    assert sandbox.count_calls("POST", BATCH) == 0
    assert again.counts["crm"] == {"created": 0, "updated": 0, "skipped": 0, "deleted": 0, "failed": 0}
