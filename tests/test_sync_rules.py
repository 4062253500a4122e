"""Conflicts, deletes, explicit sends, campaign imports and the CSV export, through the engine."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import pytest
from leadbridge import clock as clocks
from leadbridge.db import db
from leadbridge.models import Connection, Contact, ContactList, ListMembership, SyncRecord, SyncRun
from leadbridge.sync import default_mappings, export_run_csv, import_campaign, run_sync, send_contacts
from sqlalchemy import select


@pytest.fixture
def conn(connection: Connection) -> Connection:
    default_mappings(connection)
    db.session.commit()
    return connection


def set_options(conn: Connection, **options: Any) -> None:
    row = db.session.get(Connection, conn.id)
    row.options = {**row.options, **options}
    db.session.commit()


def remote_edit(sandbox: Any, rid: str, **values: Any) -> None:
    with sandbox.lock:
        rec = sandbox.contacts[int(rid)]
        rec.values.update(values)
        rec.updated_at = clocks.utcnow()


def hub_edit(**values: Any) -> None:
    contact = db.session.execute(select(Contact)).scalar_one()
    for key, value in values.items():
        setattr(contact, key, value)
    db.session.commit()


def conflicts(run: SyncRun) -> list[SyncRecord]:
    return list(
        db.session.execute(
            select(SyncRecord).where(SyncRecord.run_id == run.id, SyncRecord.outcome == "conflict")
        ).scalars()
    )


def test_newest_change_wins_a_conflict_and_both_values_are_logged(conn: Connection, sandbox: Any) -> None:
    [rid] = sandbox.add_contacts(1)
    run_sync(conn.id)
    remote_edit(sandbox, rid, job_title="CRM title")
    hub_edit(title="Hub title")  # later: the hub wins
    run = run_sync(conn.id)
    [c] = conflicts(run)
    assert c.diff == {"title": {"hub": "Hub title", "crm": "CRM title", "winner": "hub"}}
    assert sandbox.contact(rid)["job_title"] == "Hub title"
    assert db.session.execute(select(Contact.title)).scalar_one() == "Hub title"
    hub_edit(title="Hub again")
    remote_edit(sandbox, rid, job_title="CRM newest")  # later: the CRM wins
    run = run_sync(conn.id)
    [c] = conflicts(run)
    assert c.diff["title"]["winner"] == "crm"
    assert db.session.execute(select(Contact.title)).scalar_one() == "CRM newest"
    assert sandbox.contact(rid)["job_title"] == "CRM newest"


def test_fixed_winner_per_connection(conn: Connection, sandbox: Any) -> None:
    set_options(conn, conflict="crm")
    [rid] = sandbox.add_contacts(1)
    run_sync(conn.id)
    remote_edit(sandbox, rid, job_title="CRM title")
    hub_edit(title="Hub title")  # newer, but the CRM always wins here
    run = run_sync(conn.id)
    assert conflicts(run)[0].diff["title"]["winner"] == "crm"
    assert sandbox.contact(rid)["job_title"] == "CRM title"
    assert db.session.execute(select(Contact.title)).scalar_one() == "CRM title"


def test_write_policy_if_empty_and_never(conn: Connection, sandbox: Any) -> None:
    from leadbridge.models import FieldMapping

    contact_rows = select(FieldMapping).where(FieldMapping.object_type == "contact")
    rows = {m.hub_field: m for m in db.session.execute(contact_rows).scalars()}
    rows["title"].write_policy = "if_empty"
    rows["phone"].write_policy = "never"
    db.session.commit()
    [rid] = sandbox.add_contacts(1)
    remote_edit(sandbox, rid, phone="+358 1", job_title=None)
    run_sync(conn.id)
    remote_edit(sandbox, rid, phone="+358 2", job_title="Set in CRM")
    run_sync(conn.id)
    contact = db.session.execute(select(Contact)).scalar_one()
    assert contact.phone == "+358 1"  # never overwritten after creation
    assert contact.title == "Set in CRM"  # was empty, so filled


def test_delete_policies_from_the_crm(conn: Connection, sandbox: Any) -> None:
    a, b = sandbox.add_contacts(2)
    run_sync(conn.id)
    with sandbox.lock:
        for rid in (a, b):
            sandbox.contacts[int(rid)].deleted = True
            sandbox.contacts[int(rid)].updated_at = clocks.utcnow()
    run = run_sync(conn.id)  # default: ignore
    assert run.counts["hub"]["deleted"] == 0
    assert db.session.execute(select(Contact).where(Contact.deleted_at.is_not(None))).first() is None
    # an ignored CRM delete is never recreated by a later hub edit
    contact = db.session.execute(select(Contact).order_by(Contact.id)).scalars().first()
    contact.title = "edited"
    db.session.commit()
    run = run_sync(conn.id)
    assert run.counts["crm"]["created"] == 0 and sandbox.contact_count() == 0


def test_delete_policy_from_crm_delete_marks_hub_contact(conn: Connection, sandbox: Any) -> None:
    set_options(conn, delete_policy={"from_crm": "delete"})
    [rid] = sandbox.add_contacts(1)
    run_sync(conn.id)
    with sandbox.lock:
        sandbox.contacts[int(rid)].deleted = True
        sandbox.contacts[int(rid)].updated_at = clocks.utcnow()
    run = run_sync(conn.id)
    assert run.counts["hub"]["deleted"] == 1
    assert db.session.execute(select(Contact.deleted_at)).scalar_one() is not None


def test_delete_policies_to_the_crm(conn: Connection, sandbox: Any) -> None:
    contact = Contact(first_name="Gone", last_name="Soon")
    contact.set_email("gone@example.org")
    db.session.add(contact)
    db.session.commit()
    run_sync(conn.id, direction="to_crm")
    contact = db.session.get(Contact, contact.id)
    contact.deleted_at = clocks.utcnow()
    db.session.commit()
    run_sync(conn.id, direction="to_crm")  # default: ignore, nothing destructive
    assert sandbox.contact_count() == 1
    set_options(conn, delete_policy={"to_crm": "delete"})
    dry = run_sync(conn.id, direction="to_crm", dry_run=True)
    assert dry.counts["crm"]["deleted"] == 1 and sandbox.contact_count() == 1
    run = run_sync(conn.id, direction="to_crm")
    assert run.counts["crm"]["deleted"] == 1 and sandbox.contact_count() == 0
    again = run_sync(conn.id, direction="to_crm")
    assert again.counts["crm"]["deleted"] == 0


def test_send_contacts_company_first_then_contact_then_action(conn: Connection, sandbox: Any) -> None:
    from leadbridge.models import Company

    acme = Company(name="Acme Oy", name_key="acme oy", domain="acme.example")
    db.session.add(acme)
    db.session.flush()
    ids = []
    for i in range(3):
        c = Contact(first_name="S", last_name=f"Send {i}", company_id=acme.id, company_name="Acme Oy")
        c.set_email(f"send{i}@example.org")
        db.session.add(c)
        db.session.flush()
        ids.append(c.id)
    bad = Contact(first_name="No", last_name=None)
    bad.set_email("nolast@example.org")
    db.session.add(bad)
    db.session.commit()
    sandbox.reset_calls()
    run = send_contacts(conn.id, [*ids, bad.id])
    assert run.status == "succeeded", run.error
    assert sandbox.count_calls("POST", "/api/companies/batch") == 1  # one company upsert per run
    assert sandbox.company_count() == 1
    assert run.counts["crm"]["created"] == 1 + 3 + 3  # company, contacts, actions
    assert run.counts["crm"]["skipped"] == 1  # missing last name; the others went on
    titles = (
        {a["title"] for a in sandbox.actions.values()}
        if isinstance(sandbox.actions, dict)
        else {a["title"] for a in sandbox.actions}
    )
    assert titles == {"Web lead from leadbridge (Acme Oy)"}
    company_id = next(iter(sandbox.companies))
    assert sandbox.find_contact("send0@example.org")["company_id"] == str(company_id)


def test_action_titles_fill_every_documented_placeholder(conn: Connection, sandbox: Any) -> None:
    from leadbridge.connections import update_settings

    row = db.session.get(Connection, conn.id)
    settings, secrets = sandbox.connection_settings(row.options["base_url"])
    update_settings(row, {**settings, **secrets, "action_title": "Call {first_name} {last_name} ({company})"})
    db.session.commit()
    ada = Contact(first_name="Ada", last_name="Lovelace", company_name="Analytical Oy")
    ada.set_email("ada@example.org")
    db.session.add(ada)
    db.session.commit()
    run = send_contacts(conn.id, [ada.id])
    assert run.status == "succeeded", run.error
    actions = list(sandbox.actions.values()) if isinstance(sandbox.actions, dict) else sandbox.actions
    assert [a["title"] for a in actions] == ["Call Ada Lovelace (Analytical Oy)"]


def test_import_campaign_into_a_list(conn: Connection, sandbox: Any) -> None:
    ids = sandbox.add_contacts(3) + sandbox.add_contacts(1, with_email=False)
    campaign = sandbox.add_campaign("Webinar", ids)
    target = ContactList(name="Webinar list")
    db.session.add(target)
    db.session.commit()
    run = import_campaign(conn.id, list_id=target.id, campaign_id=campaign, status="registered")
    assert run.status == "succeeded", run.error
    assert run.counts["hub"]["created"] == 3 and run.counts["hub"]["skipped"] == 1
    in_list = select(ListMembership).where(ListMembership.list_id == target.id)
    members = db.session.execute(in_list).scalars().all()
    assert {m.status for m in members} == {"registered"} and len(members) == 3
    skipped = db.session.execute(
        select(SyncRecord).where(SyncRecord.run_id == run.id, SyncRecord.outcome == "skipped")
    ).scalar_one()
    assert skipped.reason == "no email"
    again = import_campaign(conn.id, list_id=target.id, campaign_id=campaign, status="attended")
    assert again.counts["hub"]["created"] == 0
    members = db.session.execute(in_list).scalars().all()
    assert {m.status for m in members} == {"attended"} and len(members) == 3


def test_csv_export_escapes_formulas(conn: Connection, sandbox: Any) -> None:
    contact = Contact(first_name='=HYPERLINK("x")', last_name="-2+3")
    contact.set_email("@csv@example.org")
    db.session.add(contact)
    plain = Contact(first_name="Plain", last_name="Person")
    plain.set_email("plain@example.org")
    db.session.add(plain)
    db.session.commit()
    run = run_sync(conn.id, direction="to_crm", dry_run=True)
    text = export_run_csv(run.id)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["outcome"] for r in rows} == {"created"}
    labels = {r["label"] for r in rows}
    assert "'@csv@example.org" in labels and "plain@example.org" in labels
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t"))
    only_failed = export_run_csv(run.id, outcome="failed")
    assert only_failed.count("\n") == 1  # header only


def test_companies_sync_both_ways_before_contacts(conn: Connection, sandbox: Any) -> None:
    from leadbridge.models import Company

    remote_company = sandbox.add_company("Northwind Ltd", domain="northwind.example")
    [rid] = sandbox.add_contacts(1)
    with sandbox.lock:
        sandbox.contacts[int(rid)].values["company_id"] = remote_company
    hub_company = Company(name="Globex SA", name_key="globex sa", domain="globex.example")
    db.session.add(hub_company)
    db.session.commit()
    run = run_sync(conn.id)
    assert run.status == "succeeded", run.error
    pulled = db.session.execute(select(Company).where(Company.name_key == "northwind ltd")).scalar_one()
    assert pulled.domain == "northwind.example"
    contact = db.session.execute(select(Contact)).scalar_one()
    assert contact.company_id == pulled.id and contact.company_name == "Northwind Ltd"
    names = {r.values["name"] for r in sandbox.companies.values()}
    assert names == {"Northwind Ltd", "Globex SA"}
    sandbox.reset_calls()
    again = run_sync(conn.id)
    assert sandbox.count_calls("POST", "/api/companies/batch") == 0
    assert again.counts["crm"]["created"] == 0 and again.counts["hub"]["created"] == 0


def test_debug_mode_records_redacted_exchanges(conn: Connection, sandbox: Any) -> None:
    from leadbridge.models import DebugEntry

    set_options(conn, debug=True)
    sandbox.add_contacts(1)
    run = run_sync(conn.id)
    entries = db.session.execute(select(DebugEntry).where(DebugEntry.run_id == run.id)).scalars().all()
    assert entries and any("/api/contacts" in e.url for e in entries)
    secret = sandbox.client_secret
    for entry in entries:
        assert secret not in (entry.request or "") and secret not in (entry.response or "")
        assert "Bearer ex_" not in (entry.request or "")


def test_send_goes_on_when_one_batch_hits_an_outage(conn: Connection, sandbox: Any) -> None:
    ids = []
    for i in range(150):
        c = Contact(first_name="Out", last_name=f"Age {i}")
        c.set_email(f"outage{i}@example.org")
        db.session.add(c)
        db.session.flush()
        ids.append(c.id)
    db.session.commit()
    sandbox.fail_next(503, times=10, path_prefix="/api/contacts/batch")
    run = send_contacts(conn.id, ids, with_action=False)
    assert run.status == "partial"
    assert run.counts["crm"]["failed"] == 100 and run.counts["crm"]["created"] == 50
    assert sandbox.contact_count() == 50


def test_value_map_translates_options_both_ways(conn: Connection, sandbox: Any) -> None:
    from leadbridge.models import FieldMapping

    mapping = db.session.execute(
        select(FieldMapping).where(FieldMapping.object_type == "contact", FieldMapping.hub_field == "status")
    ).scalar_one()
    mapping.value_map = {"customer": "customer", "marketing_qualified": "lead", "subscriber": "subscriber"}
    db.session.commit()
    contact = Contact(first_name="Val", last_name="Map", status="marketing_qualified")
    contact.set_email("valuemap@example.org")
    db.session.add(contact)
    db.session.commit()
    run_sync(conn.id)
    remote = sandbox.find_contact("valuemap@example.org")
    assert remote["lifecycle_stage"] == "lead"
    remote_edit(sandbox, remote["id"], lifecycle_stage="customer")
    run_sync(conn.id)
    assert db.session.execute(select(Contact.status)).scalar_one() == "customer"


def test_first_run_honours_sync_records_from(conn: Connection, sandbox: Any) -> None:
    sandbox.set_now(datetime(2020, 1, 1, tzinfo=UTC))
    sandbox.add_contacts(2)  # changed long ago
    sandbox.set_now(None)
    sandbox.add_contacts(1)
    row = db.session.get(Connection, conn.id)
    row.sync_from = datetime(2025, 1, 1, tzinfo=UTC)
    db.session.commit()
    run = run_sync(conn.id, direction="from_crm")
    assert run.counts["hub"]["created"] == 1


def test_scheduled_push_creates_actions_when_enabled(conn: Connection, sandbox: Any) -> None:
    from leadbridge.sync import export_runs_csv
    from leadbridge.sync.runner import create_run, execute

    set_options(conn, push_actions_on_schedule=True)
    for i in range(3):
        c = Contact(first_name="Act", last_name=f"Ion {i}")
        c.set_email(f"action{i}@example.org")
        db.session.add(c)
    db.session.commit()
    manual = run_sync(conn.id, direction="to_crm")
    assert sandbox.actions == [] and manual.progress_done == manual.progress_total == 3
    contact = db.session.execute(select(Contact).order_by(Contact.id)).scalars().first()
    contact.title = "Changed"
    db.session.commit()
    run = create_run(conn.id, trigger="schedule", direction="to_crm")
    db.session.commit()
    scheduled = execute(run.id)
    assert scheduled.counts["crm"]["updated"] == 1
    assert len(sandbox.actions) == 1  # only for what the scheduled push wrote
    rows = list(csv.DictReader(io.StringIO(export_runs_csv(conn.id))))
    assert [r["trigger"] for r in rows] == ["schedule", "manual"]
    assert rows[1]["crm_created"] == "3" and rows[0]["crm_updated"] == "1"
