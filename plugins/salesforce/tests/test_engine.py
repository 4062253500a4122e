"""Acceptance through the sync engine, against the sandbox on loopback and a real database."""

from __future__ import annotations

from typing import Any

import pytest
from leadbridge.db import db
from leadbridge.models import Company as HubCompany
from leadbridge.models import Connection, FieldMapping, Link, SyncRecord
from leadbridge.models import Contact as HubContact
from leadbridge.sync import default_mappings, run_sync
from leadbridge_salesforce.sandbox import SalesforceSandbox
from sqlalchemy import func, select

WRITE_PREFIX = "/services/data/v66.0/composite/sobjects"


def _setup(conn: Connection, **options: Any) -> None:
    conn.options = {**conn.options, **options}
    default_mappings(conn)
    db.session.commit()


def _hub(email: str) -> HubContact:
    row = db.session.execute(select(HubContact).where(HubContact.email_key == email.lower())).scalar_one()
    return row


def _lead(sandbox: SalesforceSandbox, lead_id: str) -> dict[str, Any]:
    rec = sandbox.store.get("Lead", lead_id)
    assert rec is not None
    return rec


def _writes(sandbox: SalesforceSandbox) -> int:
    return sum(
        1
        for c in sandbox.calls
        if c.method in ("POST", "PATCH", "DELETE", "PUT")
        and c.path[-10:] != "/composite"
        and ("/sobjects" in c.path or "/jobs/" in c.path)
    )


def test_lead_changed_on_each_side_syncs_both_ways_per_field_direction(
    connection: Connection, sandbox: SalesforceSandbox
) -> None:
    lead_id, _ = sandbox.store.save(
        "Lead",
        {
            "FirstName": "Ann",
            "LastName": "Lee",
            "Company": "Example Oy",
            "Email": "ann@example.fi",
            "Title": "CTO",
        },
    )
    _setup(connection, objects=["Lead"])
    first = run_sync(connection.id)
    assert first.status == "succeeded", first.error
    hub = _hub("ann@example.fi")
    assert (hub.first_name, hub.last_name, hub.title, hub.company_name) == ("Ann", "Lee", "CTO", "Example Oy")

    sandbox.store.save("Lead", {"Title": "CEO", "Score__c": "7"}, lead_id)  # changed in Salesforce
    hub.first_name, hub.score, hub.status = "Annie", 42, "customer"  # changed in the hub
    db.session.commit()
    second = run_sync(connection.id)
    assert second.status == "succeeded", second.error
    lead = _lead(sandbox, lead_id)
    assert lead["FirstName"] == "Annie"  # two-way field: hub → CRM
    assert (lead["Score__c"], lead["Status__c"]) == ("42", "customer")  # push-only fields
    assert lead["Leadbridge_URL__c"].endswith(f"/contacts/{hub.id}")  # the brief's link back
    db.session.refresh(hub)
    assert hub.title == "CEO"  # two-way field: CRM → hub
    assert hub.score == 42  # Score__c is push-only: Salesforce's "7" never comes back
    assert sandbox.contact_count() == 1


def test_only_flagged_contacts_arrive_and_are_never_written_back(
    connection: Connection, sandbox: SalesforceSandbox
) -> None:
    account, _ = sandbox.store.save("Account", {"Name": "Acme Oy"})
    flagged, _ = sandbox.store.save(
        "Contact",
        {
            "LastName": "Yes",
            "Email": "yes@acme.example",
            "AccountId": account,
            "Sync_To_Leadbridge__c": "Yes",
        },
    )
    sandbox.store.save(
        "Contact", {"LastName": "No", "Email": "no@acme.example", "Sync_To_Leadbridge__c": "No"}
    )
    sandbox.store.save("Contact", {"LastName": "Unset", "Email": "unset@acme.example"})
    _setup(connection)
    run = run_sync(connection.id)
    assert run.status == "succeeded", run.error
    emails = set(db.session.execute(select(HubContact.email_key)).scalars())
    assert emails == {"yes@acme.example"}
    hub = _hub("yes@acme.example")
    assert hub.company is not None and hub.company.name == "Acme Oy"

    before = dict(sandbox.store.get("Contact", flagged) or {})
    sandbox.reset_calls()
    hub.first_name = "Changed in the hub"
    db.session.commit()
    again = run_sync(connection.id)
    assert again.status in ("succeeded", "partial"), again.error
    assert sandbox.store.get("Contact", flagged) == before  # never written back
    assert _writes(sandbox) == 0  # and not pushed as a Lead either
    assert sandbox.contact_count() == 0  # no lead was created for the Salesforce contact
    pushed = (
        db.session.execute(select(SyncRecord).where(SyncRecord.side == "crm", SyncRecord.hub_id == hub.id))
        .scalars()
        .all()
    )
    assert pushed and all(r.outcome != "failed" and r.remote_id == flagged for r in pushed)
    assert all("is Salesforce Contact" in (r.reason or "") for r in pushed)

    third = run_sync(connection.id)  # the link follows the Contact: no lookup, no write
    assert third.status == "succeeded", third.error
    assert _writes(sandbox) == 0


def test_duplicate_email_in_the_crm_yields_one_hub_contact_and_a_logged_duplicate(
    connection: Connection, sandbox: SalesforceSandbox
) -> None:
    older, _ = sandbox.store.save("Lead", {"LastName": "First", "Company": "A", "Email": "dup@example.fi"})
    newer, _ = sandbox.store.save("Lead", {"LastName": "Second", "Company": "B", "Email": "DUP@example.fi"})
    sandbox.store.save("Lead", {"Title": "touched later"}, older)  # the older one changes last
    _setup(connection, objects=["Lead"])
    run = run_sync(connection.id)
    assert run.status == "succeeded", run.error
    assert db.session.execute(select(func.count(HubContact.id))).scalar_one() == 1
    hub = _hub("dup@example.fi")
    assert hub.last_name == "First"  # deterministic: the oldest lead
    link = db.session.execute(
        select(Link).where(Link.hub_id == hub.id, Link.object_type == "Lead")
    ).scalar_one()
    assert link.remote_id == older
    logged = db.session.execute(select(SyncRecord).where(SyncRecord.code == "duplicate")).scalar_one()
    assert logged.remote_id == newer and older in (logged.reason or "")

    hub.first_name = "Pushed"
    db.session.commit()
    assert run_sync(connection.id).status == "succeeded"
    assert _lead(sandbox, older)["FirstName"] == "Pushed"
    assert _lead(sandbox, newer)["FirstName"] is None
    assert sandbox.contact_count() == 2  # never a third


def test_an_expired_session_mid_run_costs_one_relogin(
    connection: Connection, sandbox: SalesforceSandbox
) -> None:
    sandbox.add_contacts(12)
    sandbox.page_size = 5
    _setup(connection, objects=["Lead"])
    sandbox.expire_sessions_at_usage = sandbox.api_usage + 3  # expires between two pages
    run = run_sync(connection.id)
    assert run.status == "succeeded", run.error
    assert db.session.execute(select(func.count(HubContact.id))).scalar_one() == 12
    assert sandbox.logins == 2  # the first login and exactly one renewal
    rejected = [c for c in sandbox.calls if c.status == 401]
    assert len(rejected) == 1


def test_a_converted_lead_is_followed_to_its_contact_instead_of_failing(
    connection: Connection, sandbox: SalesforceSandbox
) -> None:
    lead_id, _ = sandbox.store.save(
        "Lead", {"LastName": "Convert", "Company": "C Oy", "Email": "conv@example.fi"}
    )
    _setup(connection, objects=["Lead"])
    assert run_sync(connection.id).status == "succeeded"
    contact_id, _ = sandbox.store.convert_lead(lead_id)
    hub = _hub("conv@example.fi")
    hub.title = "New title"
    db.session.commit()
    run = run_sync(connection.id, direction="to_crm")
    assert run.status == "succeeded", run.error
    record = db.session.execute(
        select(SyncRecord).where(SyncRecord.run_id == run.id, SyncRecord.hub_id == hub.id)
    ).scalar_one()
    assert record.outcome != "failed" and contact_id in (record.reason or "")
    link = db.session.execute(
        select(Link).where(Link.hub_id == hub.id, Link.object_type == "Lead")
    ).scalar_one()
    assert link.remote_id == contact_id
    sandbox.reset_calls()
    hub.title = "Newer title"
    db.session.commit()
    assert run_sync(connection.id, direction="to_crm").status == "succeeded"
    assert _writes(sandbox) == 0  # no further attempts on the read-only lead


def test_deleted_lead_feeds_the_delete_policy(connection: Connection, sandbox: SalesforceSandbox) -> None:
    lead_id, _ = sandbox.store.save("Lead", {"LastName": "Gone", "Company": "G", "Email": "gone@example.fi"})
    _setup(connection, objects=["Lead"], delete_policy={"from_crm": "unsubscribe"})
    assert run_sync(connection.id).status == "succeeded"
    sandbox.store.delete("Lead", lead_id)
    run = run_sync(connection.id, direction="from_crm")
    assert run.status == "succeeded", run.error
    assert _hub("gone@example.fi").unsubscribed is True
    assert any(c.path.endswith("/queryAll") for c in sandbox.calls)


@pytest.mark.slow
def test_pushing_10000_new_leads_costs_at_most_55_calls_and_a_resync_writes_nothing(
    connection: Connection, sandbox: SalesforceSandbox
) -> None:
    company = HubCompany(name="Bulk Oy", name_key="bulk oy")
    db.session.add(company)
    db.session.flush()
    for i in range(10_000):
        contact = HubContact(
            first_name="Bulk",
            last_name=f"Person{i}",
            company_name="Bulk Oy",
            consent="none",
            unsubscribed=False,
            custom={},
            field_changed_at={},
        )
        contact.set_email(f"bulk{i}@example.fi")
        db.session.add(contact)
    db.session.commit()
    _setup(connection, objects=["Lead"])
    sandbox.reset_calls()
    push = run_sync(connection.id, direction="to_crm")
    assert push.status == "succeeded", push.error
    assert sandbox.contact_count() == 10_000
    assert push.counts["crm"]["created"] == 10_000
    total = len(sandbox.calls)
    assert total <= 55, sorted({c.path for c in sandbox.calls})
    assert sandbox.count_calls("POST", WRITE_PREFIX) == 50  # 200 records per collection call

    sandbox.reset_calls()
    resync = run_sync(connection.id)
    assert resync.status == "succeeded", resync.error
    assert _writes(sandbox) == 0
    assert resync.counts["crm"]["created"] == resync.counts["crm"]["updated"] == 0
    assert db.session.execute(select(func.count(FieldMapping.id))).scalar_one() > 0


def test_a_batch_resent_after_a_dropped_connection_creates_nothing_new(
    connection: Connection, sandbox: SalesforceSandbox
) -> None:
    for i in range(5):
        person = HubContact(
            first_name="Crash",
            last_name=f"P{i}",
            company_name="Crash Oy",
            consent="none",
            unsubscribed=False,
            custom={},
            field_changed_at={},
        )
        person.set_email(f"crash{i}@example.fi")
        db.session.add(person)
    db.session.commit()
    _setup(connection, objects=["Lead"])
    # Salesforce applies the create, then the connection drops before the answer arrives.
    sandbox.fail_next(200, mode="reset", path_prefix=WRITE_PREFIX)
    run = run_sync(connection.id, direction="to_crm")
    if run.status != "succeeded":  # the engine may resend in this run or leave it to the next one
        run = run_sync(connection.id, direction="to_crm")
    assert run.status == "succeeded", run.error
    assert sandbox.count_calls("POST", WRITE_PREFIX) == 1  # the create whose answer was lost
    assert sandbox.count_calls("PATCH", WRITE_PREFIX) == 1  # the resend: found by email, updated
    assert sandbox.contact_count() == 5  # nothing created twice
    links = db.session.execute(select(func.count(Link.id)).where(Link.object_type == "Lead")).scalar_one()
    assert links == 5


@pytest.mark.parametrize(
    ("template", "subject"),
    [
        ("leadbridge: {title}", "leadbridge: CTO"),  # was "leadbridge: leadbridge: CTO"
        ("Call {first_name} {last_name} ({company})", "Call Ada Lovelace (Analytical Oy)"),
        (None, "Sent from leadbridge"),  # the declared default, not the contact's job title
    ],
)
def test_a_send_names_its_task_with_the_template_filled_once(
    connection: Connection, sandbox: SalesforceSandbox, template: str | None, subject: str
) -> None:
    from leadbridge.sync import send_contacts

    if template is not None:
        connection.settings = {**connection.settings, "action_title": template}
    _setup(connection)
    org = HubCompany(name="Analytical Oy", name_key="analytical oy")
    db.session.add(org)
    db.session.flush()
    person = HubContact(
        first_name="Ada", last_name="Lovelace", title="CTO", company_id=org.id, company_name=org.name
    )
    person.set_email("ada@analytical.example")
    db.session.add(person)
    db.session.commit()
    run = send_contacts(connection.id, [person.id])
    assert run.status == "succeeded", run.error
    tasks = [r for r in sandbox.store.records["Task"].values() if not r["IsDeleted"]]
    assert [t["Subject"] for t in tasks] == [subject]
