"""Acceptance through the sync engine: the brief's sync log (7 ↔ 42), deletes per policy, debug log,
CSV, and a zero-write re-sync — against the sandbox over loopback HTTP with a real database."""

from __future__ import annotations

from typing import Any

import pytest
from leadbridge import clock as clocks
from leadbridge.db import db
from leadbridge.models import Connection, Contact, DebugEntry, SyncRecord, SyncRun
from leadbridge.sync import default_mappings, export_run_csv, run_sync
from sqlalchemy import func, select


@pytest.fixture
def conn(connection: Connection) -> Connection:
    default_mappings(connection)
    db.session.commit()
    return connection


def hub_contact(email: str | None, **values: Any) -> Contact:
    contact = Contact(
        first_name=values.pop("first_name", "Ada"), last_name=values.pop("last_name", "Hub"), **values
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


def set_options(conn: Connection, **options: Any) -> None:
    conn.options = {**(conn.options or {}), **options}
    db.session.commit()


def test_seven_here_and_forty_two_there_sync_both_ways(conn: Connection, sandbox: Any) -> None:
    sandbox.seed_demo()  # 42 contacts in Constant Contact
    for i in range(7):
        hub_contact(f"hub.{i}@example.com", first_name=f"Hub{i}", title="CMO", company_name="Acme Oy")
    run = run_sync(conn.id, direction="both")
    assert run.status == "succeeded", run.error
    assert run.counts["crm"]["created"] == 7  # the Constant Contact table
    assert run.counts["hub"]["created"] == 42  # the leadbridge table
    assert sandbox.contact_count() == 49
    assert db.session.execute(select(func.count(Contact.id))).scalar_one() == 49
    stored = sandbox.contact_by_email("hub.3@example.com")
    assert stored["job_title"] == "CMO" and stored["company_name"] == "Acme Oy"
    labels = {r.label for r in records(run, side="hub", outcome="created")}
    assert len(labels) == 42 and all(labels)
    created_crm = records(run, side="crm", outcome="created")
    assert {r.remote_id for r in created_crm} <= set(sandbox.contacts)
    csv_text = export_run_csv(run.id, side="crm", outcome="created")
    assert len(csv_text.strip().splitlines()) == 8  # header + the 7 records
    assert "Hub0" in csv_text
    # Nothing changed: the next run writes nothing on either side.
    sandbox.reset_calls()
    again = run_sync(conn.id, direction="both")
    assert again.status == "succeeded", again.error
    writes = sum(sandbox.count_calls(m, "/v3/") for m in ("POST", "PUT", "DELETE"))
    assert writes == 0
    assert again.counts["crm"]["created"] == again.counts["hub"]["created"] == 0


def test_changes_on_either_side_reach_the_other(conn: Connection, sandbox: Any) -> None:
    [cid] = sandbox.add_contacts(1)
    mine = hub_contact("mine@example.com", first_name="Mine")
    run_sync(conn.id)
    email = sandbox.contacts[cid]["email_address"]["address"]
    sandbox.edit_contact(cid, job_title="Conductor")
    mine.title = "Head of Growth"
    db.session.commit()
    run = run_sync(conn.id)
    assert run.status == "succeeded", run.error
    assert run.counts["hub"]["updated"] == 1 and run.counts["crm"]["updated"] == 1
    theirs = db.session.execute(select(Contact).where(Contact.email_key == email)).scalar_one()
    assert theirs.title == "Conductor"
    assert sandbox.contact_by_email("mine@example.com")["job_title"] == "Head of Growth"


def test_a_contact_deleted_in_constant_contact_is_deleted_here_per_policy(
    conn: Connection, sandbox: Any
) -> None:
    ids = sandbox.add_contacts(2)
    set_options(conn, delete_policy={"from_crm": "delete", "to_crm": "ignore"})
    run_sync(conn.id)
    sandbox.delete_contact(ids[0])
    run = run_sync(conn.id)
    assert run.status == "succeeded", run.error
    assert run.counts["hub"]["deleted"] == 1
    gone = sandbox.contacts[ids[0]]["email_address"]["address"]
    row = db.session.execute(select(Contact).where(Contact.email_key == gone)).scalar_one_or_none()
    assert row is None or row.deleted_at is not None


def test_a_contact_deleted_here_is_deleted_in_constant_contact_per_policy(
    conn: Connection, sandbox: Any
) -> None:
    doomed = hub_contact("doomed@example.com")
    hub_contact("stays@example.com")
    set_options(conn, delete_policy={"to_crm": "delete", "from_crm": "ignore"})
    run_sync(conn.id, direction="to_crm")
    remote = sandbox.contact_by_email("doomed@example.com")
    db.session.delete(doomed)
    db.session.commit()
    run = run_sync(conn.id, direction="to_crm")
    assert run.status == "succeeded", run.error
    assert run.counts["crm"]["deleted"] == 1
    assert remote["deleted_at"] and not sandbox.contact_by_email("stays@example.com").get("deleted_at")


def test_missing_mandatory_email_is_skipped_with_the_field_named(conn: Connection, sandbox: Any) -> None:
    hub_contact(None, first_name="Nomail")
    hub_contact("fine@example.com")
    run = run_sync(conn.id, direction="to_crm")
    assert run.counts["crm"]["created"] == 1 and run.counts["crm"]["skipped"] == 1
    [skipped] = records(run, side="crm", outcome="skipped")
    assert "email" in (skipped.reason or "").lower()


def test_debug_mode_logs_the_requests_of_a_run_without_secrets(conn: Connection, sandbox: Any) -> None:
    set_options(conn, debug=True)
    hub_contact("debug@example.com")
    run = run_sync(conn.id, direction="to_crm")
    entries = list(db.session.execute(select(DebugEntry).where(DebugEntry.run_id == run.id)).scalars())
    assert any("/v3/contacts/sign_up_form" in e.url for e in entries)
    text = " ".join(f"{e.url} {e.request} {e.response}" for e in entries)
    for grant in sandbox.auth.access:
        assert grant not in text
    assert "sandbox-cc-secret" not in text


def test_delete_policy_unsubscribe_marks_the_contact_unsubscribed_there(
    conn: Connection, sandbox: Any
) -> None:
    doomed = hub_contact("leaver@example.com")
    set_options(conn, delete_policy={"to_crm": "unsubscribe", "from_crm": "ignore"})
    run_sync(conn.id, direction="to_crm")
    db.session.delete(doomed)
    db.session.commit()
    run = run_sync(conn.id, direction="to_crm")
    assert run.status == "succeeded", run.error
    remote = sandbox.contact_by_email("leaver@example.com")
    assert remote["email_address"]["permission_to_send"] == "unsubscribed" and not remote.get("deleted_at")


def test_an_unsubscribe_in_constant_contact_reaches_the_hub(conn: Connection, sandbox: Any) -> None:
    [cid] = sandbox.add_contacts(1)
    run_sync(conn.id)
    email_obj = sandbox.contacts[cid]["email_address"]
    sandbox.edit_contact(cid, email_address={**email_obj, "permission_to_send": "unsubscribed"})
    run = run_sync(conn.id)
    assert run.status == "succeeded", run.error
    hub = db.session.execute(select(Contact).where(Contact.email_key == email_obj["address"])).scalar_one()
    assert hub.unsubscribed is True
    assert sandbox.count_calls("PUT") == 0  # nothing was echoed back


def test_first_sync_ignores_contacts_already_deleted_there_and_skips_sms_only_ones(
    conn: Connection, sandbox: Any
) -> None:
    ids = sandbox.add_contacts(3)
    sandbox.delete_contact(ids[0])
    sandbox.add_contacts(1, with_email=False)  # an SMS-only contact: no email to match on
    run = run_sync(conn.id, direction="from_crm")
    assert run.status == "succeeded", run.error
    assert run.counts["hub"]["created"] == 2
    assert db.session.execute(select(func.count(Contact.id))).scalar_one() == 2


def test_the_first_sync_reaches_back_only_to_sync_records_from(conn: Connection, sandbox: Any) -> None:
    from datetime import timedelta

    sandbox.clock_offset = -90 * 86400  # contacts last changed three months ago
    sandbox.add_contacts(3)
    sandbox.clock_offset = 0
    recent = sandbox.add_contacts(2)
    conn.sync_from = clocks.utcnow() - timedelta(days=30)
    db.session.commit()
    run = run_sync(conn.id, direction="from_crm")
    assert run.status == "succeeded", run.error
    assert run.counts["hub"]["created"] == 2
    emails = {sandbox.contacts[c]["email_address"]["address"] for c in recent}
    assert set(db.session.execute(select(Contact.email_key)).scalars()) == emails


def test_records_of_a_failed_import_are_sent_again_by_the_next_sync(conn: Connection, sandbox: Any) -> None:
    for i in range(50):
        hub_contact(f"retry.{i}@example.com")
    sandbox.fail_activities = 1
    first = run_sync(conn.id, direction="to_crm")
    assert first.counts["crm"]["failed"] == 50 and sandbox.contact_count() == 0
    second = run_sync(conn.id, direction="to_crm")
    assert second.counts["crm"]["created"] == 50 and sandbox.contact_count() == 50


def test_quota_exceeded_pauses_the_run_until_midnight_utc(conn: Connection, sandbox: Any) -> None:
    hub_contact("later@example.com")
    sandbox.daily_used = sandbox.daily_limit
    run = run_sync(conn.id, direction="to_crm")
    assert run.status == "paused", (run.status, run.error)
    assert run.resumes_at is not None
    assert (run.resumes_at.hour, run.resumes_at.minute) == (0, 0)
    assert sandbox.contact_count() == 0
