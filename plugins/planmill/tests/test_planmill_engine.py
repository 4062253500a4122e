"""Acceptance through the engine (leadbridge.sync): real SQLite/PostgreSQL, real HTTP to the sandbox."""

from __future__ import annotations

from typing import Any

import pytest
from leadbridge.db import db
from leadbridge.models import Company, Connection, Contact, ContactList, ListMembership, SyncRecord
from leadbridge.sync import default_mappings, import_campaign, run_sync, send_contacts
from leadbridge_planmill.sandbox import PlanMillSandbox
from planmill_testkit import validate_request_bodies
from sqlalchemy import func, select


@pytest.fixture
def conn(connection: Connection) -> Connection:
    default_mappings(connection)
    db.session.commit()
    return connection


def hub_people(company: str, n: int = 3, prefix: str = "p") -> list[int]:
    org = Company(name=company, name_key=company.casefold())
    db.session.add(org)
    db.session.flush()
    ids = []
    for i in range(n):
        person = Contact(
            first_name=f"First{i}",
            last_name=f"Last{i}",
            title="Buyer",
            company_id=org.id,
            company_name=company,
        )
        person.set_email(f"{prefix}{i}@{company.split()[0].lower()}.example")
        db.session.add(person)
        db.session.flush()
        ids.append(person.id)
    db.session.commit()
    return ids


def records(run_id: int, **match: Any) -> list[SyncRecord]:
    query = select(SyncRecord).where(SyncRecord.run_id == run_id)
    for key, value in match.items():
        query = query.where(getattr(SyncRecord, key) == value)
    return list(db.session.execute(query).scalars())


def test_send_three_contacts_of_a_new_company_then_again(conn: Connection, pm: PlanMillSandbox) -> None:
    ids = hub_people("Brightside Oy")
    accounts, contacts, actions = pm.company_count(), pm.contact_count(), len(pm.records["actions"])

    run = send_contacts(conn.id, ids)
    assert run.status == "succeeded", run.error
    assert pm.company_count() == accounts + 1
    assert pm.contact_count() == contacts + 3
    assert len(pm.records["actions"]) == actions + 3
    account = pm.find("accounts", name="Brightside Oy")[0]
    people = pm.find("contacts", account=account["id"])
    assert sorted(p["lastName"] for p in people) == ["Last0", "Last1", "Last2"]
    new_actions = [a for a in pm.records["actions"].values() if a.get("contact") in {p["id"] for p in people}]
    assert [a["subject"] for a in new_actions] == ["Sent from leadbridge (Brightside Oy)"] * 3
    assert len(records(run.id, object_type="action", outcome="created")) == 3
    assert run.counts["crm"]["created"] >= 3

    again = send_contacts(conn.id, ids)
    assert again.status == "succeeded", again.error
    assert pm.company_count() == accounts + 1  # no new account
    assert pm.contact_count() == contacts + 3  # no new contact
    assert len(pm.records["actions"]) == actions + 6  # actions are events
    assert len(records(again.id, object_type="action", outcome="created")) == 3
    validate_request_bodies(pm)


def test_one_contacts_failure_never_stops_the_others(conn: Connection, pm: PlanMillSandbox) -> None:
    ids = hub_people("Mixed Oy")
    bad = db.session.get(Contact, ids[1])
    assert bad is not None
    bad.set_email("not-an-email@nodot")
    db.session.commit()
    run = send_contacts(conn.id, ids)
    assert run.status == "partial", run.error
    failed = records(run.id, side="crm", outcome="failed", object_type="contact")
    assert len(failed) == 1 and failed[0].hub_id == ids[1]
    assert failed[0].code == "00018" and "email" in (failed[0].reason or "")
    assert len(records(run.id, object_type="action", outcome="created")) == 2


def test_import_a_campaign_into_a_list(conn: Connection, pm: PlanMillSandbox) -> None:
    account = pm.add_account("Campaign Oy")
    members = [
        pm.add_contact(
            None if i < 7 else f"camp{i}@campaign.example",
            account=account,
            firstName="C",
            lastName=f"Member {i}",
        )
        for i in range(250)
    ]
    campaign = pm.add_campaign("Autumn seminar", members)
    hub_list = ContactList(name="Autumn seminar")
    db.session.add(hub_list)
    db.session.commit()

    run = import_campaign(conn.id, list_id=hub_list.id, campaign_id=str(campaign), status="registered")
    assert run.status == "succeeded", run.error
    statuses = db.session.execute(
        select(ListMembership.status, func.count())
        .where(ListMembership.list_id == hub_list.id)
        .group_by(ListMembership.status)
    ).all()
    assert [tuple(s) for s in statuses] == [("registered", 243)]
    skipped = records(run.id, side="hub", outcome="skipped")
    assert len(skipped) == 7 and {r.reason for r in skipped} == {"no email"}
    assert run.counts["hub"]["skipped"] == 7


def test_a_token_expiring_mid_run_is_renewed_once(conn: Connection, pm: PlanMillSandbox) -> None:
    hub_people("Renewal Oy", n=6, prefix="r")
    pm.expire_tokens_after(4)  # the token dies after the account and a few contact calls
    run = run_sync(conn.id, direction="to_crm")
    assert run.status == "succeeded", run.error
    assert len([c for c in pm.calls if c.status == 401]) == 1
    assert pm.grants == 2  # the first login and exactly one renewal
    assert run.details["renewals"] == 1
    assert len(pm.find("contacts", accountName="Renewal Oy")) == 6


def test_a_scheduled_push_adds_no_actions_unless_the_admin_turns_it_on(
    conn: Connection, pm: PlanMillSandbox
) -> None:
    hub_people("Scheduled Oy", n=2, prefix="s")
    actions = len(pm.records["actions"])
    run = run_sync(conn.id, direction="to_crm", trigger="schedule")
    assert run.status == "succeeded", run.error
    assert len(pm.find("contacts", accountName="Scheduled Oy")) == 2
    assert len(pm.records["actions"]) == actions

    conn.options = {**conn.options, "push_actions_on_schedule": True}
    db.session.commit()
    hub_people("Scheduled Two Oy", n=2, prefix="t")
    run = run_sync(conn.id, direction="to_crm", trigger="schedule")
    assert run.status == "succeeded", run.error
    assert len(pm.records["actions"]) == actions + 2


def test_a_no_change_resync_costs_zero_writes(conn: Connection, pm: PlanMillSandbox) -> None:
    hub_people("Steady Oy", n=4, prefix="n")
    first = run_sync(conn.id, direction="to_crm")
    assert first.status == "succeeded", first.error
    pm.reset_calls()
    second = run_sync(conn.id, direction="to_crm")
    assert second.status == "succeeded", second.error
    writes = [c for c in pm.calls if c.method in ("POST", "DELETE") and "/api/1.5/" in c.path]
    assert writes == []


def test_action_titles_fill_every_documented_placeholder(conn: Connection, pm: PlanMillSandbox) -> None:
    settings = dict(conn.settings)
    settings["action_title"] = "Call {first_name} {last_name} <{email}> of {company}"
    conn.settings = settings
    db.session.commit()
    ids = hub_people("Placeholder Oy", n=1, prefix="ph")
    run = send_contacts(conn.id, ids)
    assert run.status == "succeeded", run.error
    assert len(records(run.id, object_type="action", outcome="created")) == 1
    person = pm.find("contacts", email="ph0@placeholder.example")[0]
    subjects = [a["subject"] for a in pm.records["actions"].values() if a.get("contact") == person["id"]]
    assert subjects == ["Call First0 Last0 <ph0@placeholder.example> of Placeholder Oy"]


def test_a_spent_daily_quota_pauses_the_run_until_the_reset(conn: Connection, pm: PlanMillSandbox) -> None:
    hub_people("Quota Oy", n=5, prefix="q")
    before = pm.count_calls(prefix="/acme/api/1.5/")
    pm.quota = 4  # a few calls left today
    run = run_sync(conn.id, direction="to_crm")
    assert run.status == "paused", run.error
    assert run.resumes_at is not None and "quota" in (run.error or "").lower()
    assert pm.count_calls(prefix="/acme/api/1.5/") - before == 5  # stopped at the first refusal


def test_ordinary_429s_are_waited_out(conn: Connection, pm: PlanMillSandbox) -> None:
    hub_people("Busy Oy", n=2, prefix="b")
    pm.fail_next(429, mode="rate_limit", retry_after=1, times=2, path_prefix="/acme/api/1.5/contacts")
    run = run_sync(conn.id, direction="to_crm")
    assert run.status == "succeeded", run.error
    assert len(pm.find("contacts", accountName="Busy Oy")) == 2
