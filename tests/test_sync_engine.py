"""The sync engine against the example connector's sandbox over real loopback HTTP."""

from __future__ import annotations

from datetime import UTC, datetime
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


def test_pull_creates_hub_contacts_and_suppresses_the_echo(conn: Connection, sandbox: Any) -> None:
    sandbox.add_contacts(5)
    run = run_sync(conn.id, direction="both")
    assert run.status == "succeeded", run.error
    assert run.counts["hub"]["created"] == 5
    assert db.session.execute(select(func.count(Contact.id))).scalar_one() == 5
    # What the sync itself wrote is not a local change: nothing goes back to the CRM.
    assert sandbox.count_calls("POST", BATCH) == 0
    sandbox.reset_calls()
    again = run_sync(conn.id, direction="both")
    assert sandbox.count_calls("POST", BATCH) == 0
    assert again.counts["hub"]["created"] == again.counts["hub"]["updated"] == 0


def test_hub_change_is_pushed_once_and_not_pulled_back(conn: Connection, sandbox: Any) -> None:
    [rid] = sandbox.add_contacts(1)
    run_sync(conn.id)
    contact = db.session.execute(select(Contact)).scalar_one()
    contact.title = "Head of Growth"
    db.session.commit()
    run = run_sync(conn.id)
    assert run.counts["crm"]["updated"] == 1
    assert sandbox.contact(rid)["job_title"] == "Head of Growth"
    [rec] = records(run, side="crm", outcome="updated")
    assert rec.diff == {"title": [None, "Head of Growth"]}
    sandbox.reset_calls()
    third = run_sync(conn.id)
    assert sandbox.count_calls("POST", BATCH) == 0
    assert third.counts["hub"]["updated"] == 0


def test_dry_run_leaves_cursor_and_data_untouched(conn: Connection, sandbox: Any) -> None:
    sandbox.add_contacts(3)
    add_contact("local@example.org")
    run = run_sync(conn.id, dry_run=True)
    assert run.status == "succeeded", run.error
    assert run.counts["hub"]["created"] == 3
    assert run.counts["crm"]["created"] == 1
    assert sandbox.count_calls("POST", BATCH) == 0
    assert sandbox.contact_count() == 3
    assert db.session.execute(select(func.count(Contact.id))).scalar_one() == 1
    assert db.session.execute(select(func.count(Link.id))).scalar_one() == 0
    assert db.session.execute(select(func.count()).select_from(SyncState)).scalar_one() == 0
    [would] = records(run, side="crm", outcome="created")
    assert would.diff["last_name"] == [None, "Lovelace"]
    # The real run afterwards still has everything to do.
    real = run_sync(conn.id)
    assert real.counts["hub"]["created"] == 3 and real.counts["crm"]["created"] == 1


def test_no_email_or_missing_required_field_is_skipped_with_reason(conn: Connection, sandbox: Any) -> None:
    sandbox.add_contacts(1, with_email=False)
    add_contact(None, first_name="No", last_name="Mail")
    add_contact("nolast@example.org", last_name=None)
    run = run_sync(conn.id)
    reasons = {(r.side, r.reason) for r in records(run, outcome="skipped")}
    assert ("hub", "no email") in reasons
    assert ("crm", "no email") in reasons
    assert ("crm", "missing required field Last name") in reasons
    assert run.counts["crm"]["skipped"] == 2 and run.counts["hub"]["skipped"] == 1


def test_duplicate_emails_in_one_page_make_one_hub_contact(conn: Connection, sandbox: Any) -> None:
    a, b = sandbox.add_contacts(2)
    with sandbox.lock:
        sandbox.contacts[int(b)].values["email"] = sandbox.contacts[int(a)].values["email"].upper()
    run = run_sync(conn.id, direction="from_crm")
    assert db.session.execute(select(func.count(Contact.id))).scalar_one() == 1
    assert run.counts["hub"]["created"] == 1
    [dup] = records(run, code="duplicate")
    assert dup.outcome == "skipped"


def test_email_change_updates_the_linked_record(conn: Connection, sandbox: Any) -> None:
    contact = add_contact("old@example.org")
    run_sync(conn.id)
    [rid] = [str(k) for k in sandbox.contacts]
    contact = db.session.get(Contact, contact.id)
    contact.set_email("new@example.org")
    db.session.commit()
    run = run_sync(conn.id)
    assert run.counts["crm"]["updated"] == 1 and run.counts["crm"]["created"] == 0
    assert sandbox.contact_count() == 1
    assert sandbox.contact(rid)["email"] == "new@example.org"
    # and from the CRM side: the hub contact follows, no duplicate
    with sandbox.lock:
        rec = sandbox.contacts[int(rid)]
        rec.values["email"] = "newer@example.org"
        rec.updated_at = sandbox.now()
    run_sync(conn.id)
    assert db.session.execute(select(Contact.email)).scalars().all() == ["newer@example.org"]


def test_partial_batch_failure_is_logged_per_record(conn: Connection, sandbox: Any) -> None:
    add_contact("good@example.org")
    stale = add_contact("stale@example.org")
    # linked to a CRM record that was removed without notice: the vendor refuses that one record
    db.session.add(
        Link(
            connection_id=conn.id,
            object_type="contact",
            hub_kind="contact",
            hub_id=stale.id,
            remote_id="999999",
            last_values={},
            synced_at=datetime(2020, 1, 1, tzinfo=UTC),
        )
    )
    db.session.commit()
    run = run_sync(conn.id, direction="to_crm")
    assert run.status == "partial"
    assert run.counts["crm"]["created"] == 1 and run.counts["crm"]["failed"] == 1
    [failed] = records(run, outcome="failed")
    assert failed.code == "NOT_FOUND" and failed.label == "stale@example.org"
    # The failed one is retried on the next run; the good one costs nothing.
    again = run_sync(conn.id, direction="to_crm")
    assert again.counts["crm"]["failed"] == 1 and again.counts["crm"]["created"] == 0


def test_an_option_the_crm_lacks_is_refused_before_sending(conn: Connection, sandbox: Any) -> None:
    from leadbridge.models import FieldMapping

    contact = add_contact("option@example.org")
    contact = db.session.get(Contact, contact.id)
    contact.custom = {"industry": "aerospace"}
    db.session.add(
        FieldMapping(
            connection_id=conn.id,
            object_type="contact",
            hub_field="custom.industry",
            remote_field="cf_industry",
            direction="to_crm",
        )
    )
    db.session.commit()
    run = run_sync(conn.id, direction="to_crm")
    [failed] = records(run, outcome="failed")
    assert failed.code == "invalid_option" and "extend the value map" in (failed.reason or "")
    assert sandbox.count_calls("POST", BATCH) == 0


def test_an_unmapped_connection_syncs_the_connector_presets(connection: Connection, sandbox: Any) -> None:
    from leadbridge.models import FieldMapping

    sandbox.add_contacts(2)
    dry = run_sync(connection.id, dry_run=True)
    assert dry.counts["hub"]["created"] == 2
    assert db.session.execute(select(func.count(FieldMapping.id))).scalar_one() == 0  # dry run: nothing saved
    run = run_sync(connection.id)
    assert run.counts["hub"]["created"] == 2
    objects = set(db.session.execute(select(FieldMapping.object_type)).scalars())
    assert objects == {"contact", "company"}  # every object gets its presets, not just the first
    assert db.session.execute(select(Contact.last_name).order_by(Contact.id)).scalars().all()[0]


def test_first_match_by_email_keeps_hub_values_the_crm_lacks(conn: Connection, sandbox: Any) -> None:
    [rid] = sandbox.add_contacts(1)
    email = sandbox.contact(rid)["email"]
    add_contact(email, title="Chief Explorer", first_name="Ada")
    run = run_sync(conn.id)
    assert run.status == "succeeded", run.error
    contact = db.session.execute(select(Contact)).scalar_one()
    assert contact.title == "Chief Explorer"  # not wiped by the CRM's empty job title
    assert sandbox.contact(rid)["job_title"] == "Chief Explorer"  # and sent there
    assert contact.last_name == sandbox.contact(rid)["last_name"]
    assert db.session.execute(select(func.count(Contact.id))).scalar_one() == 1


def test_email_handed_over_within_one_page(conn: Connection, sandbox: Any) -> None:
    [a] = sandbox.add_contacts(1)
    run_sync(conn.id, direction="from_crm")
    old = sandbox.contact(a)["email"]
    with sandbox.lock:
        rec = sandbox.contacts[int(a)]
        rec.values["email"] = "renamed@example.org"
        rec.updated_at = sandbox.now()
    [b] = sandbox.add_contacts(1)
    with sandbox.lock:
        sandbox.contacts[int(b)].values["email"] = old  # a new person takes the freed address
    run = run_sync(conn.id, direction="from_crm")
    assert run.counts["hub"] == {"created": 1, "updated": 1, "skipped": 0, "deleted": 0, "failed": 0}
    emails = sorted(db.session.execute(select(Contact.email)).scalars())
    assert emails == sorted([old, "renamed@example.org"])
