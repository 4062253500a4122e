"""Writes at hook level: per-record error codes, duplicate rules, external-id upserts, deletes, tasks."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from leadbridge.db import db
from leadbridge.errors import ConfigError
from leadbridge.models import Connection
from leadbridge.testing import ConnectorHarness
from leadbridge.types import Action, Company, Contact, Outcome
from leadbridge_salesforce.errors import duplicate_ids
from leadbridge_salesforce.sandbox import SalesforceSandbox

MakeConnection = Callable[..., Connection]


def _lead(i: int, **fields: Any) -> Contact:
    base = {"LastName": f"Last{i}", "Company": "Example Oy"}
    return Contact(email=f"p{i}@example.fi", fields={**base, **fields}, ref=str(i))


def _upsert(harness: ConnectorHarness, contacts: list[Contact]) -> list[Any]:
    return harness.call("upsert_contact", object_type="Lead", contacts=contacts)  # type: ignore[no-any-return]


def test_per_record_errors_become_outcomes_with_the_vendors_code(
    harness: ConnectorHarness, sandbox: SalesforceSandbox
) -> None:
    sandbox.store.validation_rules["Lead"] = lambda _t, r: (
        "Title must not be TEST" if r.get("Title") == "TEST" else None
    )
    missing = Contact(email="p2@example.fi", fields={"LastName": "NoCompany"}, ref="2")
    results = _upsert(harness, [_lead(1), missing, _lead(3, Title="TEST"), _lead(4, Email="not-an-email")])
    assert [r.outcome for r in results] == [Outcome.CREATED, Outcome.FAILED, Outcome.FAILED, Outcome.FAILED]
    assert [r.code for r in results[1:]] == [
        "REQUIRED_FIELD_MISSING",
        "FIELD_CUSTOM_VALIDATION_EXCEPTION",
        "INVALID_EMAIL_ADDRESS",
    ]
    assert results[1].extra["fields"] == ["Company"]
    assert [r.ref for r in results] == ["1", "2", "3", "4"]
    assert sandbox.contact_count() == 1


def test_duplicate_rule_block_is_a_per_record_outcome(
    harness: ConnectorHarness, sandbox: SalesforceSandbox
) -> None:
    sandbox.store.duplicate_rule = True
    sandbox.store.duplicate_rule_fields = ("LastName", "Company")
    sandbox.store.save(
        "Lead", {"LastName": "Same", "Company": "Twin Oy", "Email": "other@example.fi"}, allow_duplicates=True
    )
    results = _upsert(harness, [_lead(1, LastName="Same", Company="Twin Oy"), _lead(2)])
    assert results[0].outcome is Outcome.FAILED and results[0].code == "DUPLICATES_DETECTED"
    assert results[1].outcome is Outcome.CREATED


def test_single_record_duplicate_answer_carries_the_misspelled_key(
    harness: ConnectorHarness, sandbox: SalesforceSandbox
) -> None:
    sandbox.store.duplicate_rule = True
    first = sandbox.store.save("Contact", {"LastName": "A", "Email": "twin@example.fi"})[0]
    harness.login()
    response = harness.client.post(
        "services/data/v66.0/sobjects/Contact",
        json={"LastName": "B", "Email": "twin@example.fi"},
        ok_statuses=frozenset({400}),
    )
    body = response.json()
    assert "duplicateResut" in body[0] and body[0]["errorCode"] == "DUPLICATES_DETECTED"
    assert duplicate_ids(body[0]) == [first]
    assert duplicate_ids({"duplicateResult": body[0]["duplicateResut"]}) == [first]  # the fixed spelling too


def test_external_id_upsert_makes_a_resend_create_nothing(
    make_connection: MakeConnection, sandbox: SalesforceSandbox, sandbox_server: Any
) -> None:
    settings, secrets = sandbox.connection_settings(sandbox_server.url)
    conn = make_connection({**settings, **secrets, "external_id_field": "leadbridge_id__c"})
    harness = ConnectorHarness(conn, sandbox)
    people = [_lead(i) for i in range(3)]
    first = _upsert(harness, people)
    assert [r.outcome for r in first] == [Outcome.CREATED] * 3
    assert sandbox.count_calls("PATCH", "/services/data/v66.0/composite/sobjects/Lead/Leadbridge_Id__c") == 1
    # A crash lost the results: the same batch goes again, still without remote ids.
    for p in people:
        p.email = p.email.upper() if p.email else None  # and the lookup by email is not what saves us
    sandbox.store.records["Lead"] = {
        k: {**v, "Email": None} for k, v in sandbox.store.records["Lead"].items()
    }
    again = _upsert(harness, people)
    assert [r.outcome for r in again] == [Outcome.UPDATED] * 3
    assert [r.remote_id for r in again] == [r.remote_id for r in first]
    assert sandbox.contact_count() == 3


def test_more_than_200_records_go_in_collections_of_200(
    harness: ConnectorHarness, sandbox: SalesforceSandbox
) -> None:
    results = _upsert(harness, [_lead(i) for i in range(450)])
    assert all(r.outcome is Outcome.CREATED for r in results)
    assert sandbox.count_calls("POST", "/services/data/v66.0/composite/sobjects") == 3
    lookups = [c for c in sandbox.calls if c.path == "/services/data/v66.0/composite"]
    assert len(lookups) == 1  # one Composite call looks up all 450 emails (leads and contacts)


def test_deleting_leads_and_leaving_contacts_alone(
    harness: ConnectorHarness, sandbox: SalesforceSandbox
) -> None:
    lead = sandbox.store.save("Lead", {"LastName": "L", "Company": "C"})[0]
    contact = sandbox.store.save("Contact", {"LastName": "C"})[0]
    results = harness.call("delete_contacts", object_type="Lead", remote_ids=[lead, contact, lead])
    assert [r.outcome for r in results] == [Outcome.DELETED, Outcome.SKIPPED, Outcome.DELETED]
    assert sandbox.store.get("Contact", contact) is not None


def test_contacts_are_never_written(harness: ConnectorHarness, sandbox: SalesforceSandbox) -> None:
    with pytest.raises(ConfigError, match="Contact records are never written to Salesforce"):
        harness.call("upsert_contact", object_type="Contact", contacts=[_lead(1)])
    with pytest.raises(ConfigError, match="never written"):
        harness.call("delete_contacts", object_type="Contact", remote_ids=["003x"])
    assert sandbox.count_calls("POST") == 0 and sandbox.count_calls("PATCH") == 0


def test_tasks_name_the_account_only_for_contacts(
    harness: ConnectorHarness, sandbox: SalesforceSandbox, connection: Connection
) -> None:
    connection.settings = {**connection.settings, "action_title": "leadbridge: {title}"}
    db.session.commit()  # the core fills the template; the connector takes action.title verbatim
    account = sandbox.store.save("Account", {"Name": "Acme"})[0]
    contact = sandbox.store.save("Contact", {"LastName": "C", "AccountId": account})[0]
    lead = sandbox.store.save("Lead", {"LastName": "L", "Company": "Acme"})[0]
    company = Company(name="Acme", remote_id=account)
    when = datetime(2026, 3, 1, 12, tzinfo=UTC)
    for who in (contact, lead):
        action = Action(
            title="Downloaded the guide",
            contact=Contact(email=None, remote_id=who),
            company=company,
            kind="form",
            occurred_at=when,
        )
        result = harness.call("create_action", action=action)
        assert result.outcome is Outcome.CREATED
        task = sandbox.store.get("Task", result.remote_id)
        assert task is not None and task["Subject"] == "Downloaded the guide"
        assert task["ActivityDate"] == "2026-03-01" and task["Status"] == "Completed"
        assert task["WhatId"] == (account if who == contact else None)


def test_an_account_in_whoid_is_refused_by_the_sandbox(
    harness: ConnectorHarness, sandbox: SalesforceSandbox
) -> None:
    account = sandbox.store.save("Account", {"Name": "Acme"})[0]
    from leadbridge.errors import RecordError

    with pytest.raises(RecordError) as caught:
        harness.call(
            "create_action", action=Action(title="x", contact=Contact(email=None, remote_id=account))
        )
    assert caught.value.code == "FIELD_INTEGRITY_EXCEPTION"


def test_lookups_stay_under_soqls_statement_limit(
    harness: ConnectorHarness, sandbox: SalesforceSandbox
) -> None:
    people = [
        Contact(email=f"{'x' * 200}{i}@example.fi", fields={"LastName": "L", "Company": "C"}, ref=str(i))
        for i in range(400)
    ]
    harness.call("upsert_contact", object_type="Lead", contacts=people)
    composite = [r for r in sandbox.requests_seen if r["path"].endswith("/composite")]
    statements = [s["url"] for r in composite for s in r["json"]["compositeRequest"]]
    assert len(statements) > 2 and all(len(s) < 100_000 for s in statements)
