"""Reads at hook level: field discovery, value conversion, the contact flag, deletes and conversions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from leadbridge import clock as clocks
from leadbridge.errors import ConfigError
from leadbridge.models import Connection
from leadbridge.testing import ConnectorHarness
from leadbridge.types import Direction, FieldType
from leadbridge_salesforce.sandbox import SalesforceSandbox

MakeConnection = Callable[..., Connection]


def test_fields_come_from_describe_with_hub_types_and_presets(
    harness: ConnectorHarness, sandbox: SalesforceSandbox
) -> None:
    sandbox.store.hidden["Lead"] = {"AnnualRevenue"}
    lead = {f.name: f for f in harness.fields("Lead")}
    assert "AnnualRevenue" not in lead and "Address" not in lead  # hidden by FLS; compound
    assert lead["LastName"].required and lead["Company"].required and not lead["Email"].required
    assert not lead["Status"].required  # defaulted on create
    assert lead["Email"].type is FieldType.EMAIL and lead["Email"].hub_field == "email"
    assert lead["Interests__c"].type is FieldType.MULTISELECT and lead["Interests__c"].custom
    assert [c.value for c in lead["Industry"].choices] == [
        "Agriculture",
        "Banking",
        "Education",
        "Technology",
    ]
    assert lead["IsConverted"].writable is False
    assert lead["Score__c"].hub_field == "score" and lead["Score__c"].directions == {Direction.TO_CRM}
    assert lead["Status__c"].hub_field == "status" and lead["Status__c"].directions == {Direction.TO_CRM}
    assert lead["Leadbridge_URL__c"].directions == {Direction.TO_CRM}
    contact = {f.name: f for f in harness.fields("Contact")}
    assert all(f.directions == {Direction.FROM_CRM} and not f.writable for f in contact.values())
    assert contact["Email"].hub_field == "email"


def test_values_arrive_in_hub_terms_and_converted_leads_point_at_their_contact(
    harness: ConnectorHarness, sandbox: SalesforceSandbox
) -> None:
    lead, _ = sandbox.store.save(
        "Lead",
        {
            "LastName": "V",
            "Company": "C",
            "Email": "v@x.fi",
            "Interests__c": "CRM;Events",
            "Last_Form_Date__c": "2026-02-01",
        },
    )
    other, _ = sandbox.store.save("Lead", {"LastName": "W", "Company": "C", "Email": "w@x.fi"})
    contact, _ = sandbox.store.convert_lead(other)
    page = harness.call("fetch_contacts", object_type="Lead", since=None, cursor=None)
    by_id = {c.remote_id: c for c in page.items}
    v = by_id[lead]
    assert v.fields["Interests__c"] == ["CRM", "Events"] and v.fields["Last_Form_Date__c"] == "2026-02-01"
    assert v.modified_at is not None and v.modified_at.tzinfo is not None
    assert by_id[other].extra["converted_to"] == {"object_type": "Contact", "remote_id": contact}


def test_incremental_reads_include_deleted_rows(
    harness: ConnectorHarness, sandbox: SalesforceSandbox
) -> None:
    keep, _ = sandbox.store.save("Lead", {"LastName": "K", "Company": "C", "Email": "k@x.fi"})
    gone, _ = sandbox.store.save("Lead", {"LastName": "G", "Company": "C", "Email": "g@x.fi"})
    sandbox.store.delete("Lead", gone)
    since = clocks.utcnow() - timedelta(minutes=5)
    page = harness.call("fetch_contacts", object_type="Lead", since=since, cursor=None)
    assert {(c.remote_id, c.deleted) for c in page.items} == {(keep, False), (gone, True)}
    full = harness.call("fetch_contacts", object_type="Lead", since=None, cursor=None)
    assert [c.remote_id for c in full.items] == [keep]  # a full read skips the recycle bin


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({}, {"yes@x.fi"}),  # the default picklist flag, value "Yes"
        ({"contact_flag_values": "Yes, Maybe"}, {"yes@x.fi", "maybe@x.fi"}),
        ({"contact_flag_field": "hasoptedoutofemail"}, {"box@x.fi"}),  # a checkbox works too
    ],
)
def test_contact_flag_field_selects_the_contacts(
    make_connection: MakeConnection,
    sandbox: SalesforceSandbox,
    sandbox_server: Any,
    settings: dict[str, str],
    expected: set[str],
) -> None:
    account, _ = sandbox.store.save("Account", {"Name": "Acme"})
    for email, flag, box in [
        ("yes@x.fi", "Yes", False),
        ("maybe@x.fi", "Maybe", False),
        ("no@x.fi", "No", False),
        ("box@x.fi", None, True),
    ]:
        sandbox.store.save(
            "Contact",
            {
                "LastName": "C",
                "Email": email,
                "Sync_To_Leadbridge__c": flag,
                "HasOptedOutOfEmail": box,
                "AccountId": account,
            },
        )
    base, secrets = sandbox.connection_settings(sandbox_server.url)
    harness = ConnectorHarness(make_connection({**base, **secrets, **settings}), sandbox)
    page = harness.call("fetch_contacts", object_type="Contact", since=None, cursor=None)
    assert {c.email for c in page.items} == expected
    assert all(
        c.company is not None and c.company.remote_id == account and c.company.name == "Acme"
        for c in page.items
    )


def test_a_missing_flag_field_says_what_to_create(
    make_connection: MakeConnection, sandbox: SalesforceSandbox, sandbox_server: Any
) -> None:
    sandbox.store.hidden["Contact"] = {"Sync_To_Leadbridge__c"}
    base, secrets = sandbox.connection_settings(sandbox_server.url)
    harness = ConnectorHarness(make_connection({**base, **secrets}), sandbox)
    with pytest.raises(ConfigError, match="Sync_To_Leadbridge__c"):
        harness.call("fetch_contacts", object_type="Contact", since=None, cursor=None)


def test_campaigns_and_their_members(harness: ConnectorHarness, sandbox: SalesforceSandbox) -> None:
    sandbox.seed_demo()
    sandbox.page_size = 1
    campaigns = harness.call("list_campaigns")
    assert [c.name for c in campaigns] == ["Spring webinar 2026"]
    members, cursor = [], None
    while True:
        page = harness.call("fetch_campaign_members", campaign_id=campaigns[0].remote_id, cursor=cursor)
        members += page.items
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(members) == 2 and all(m.email and m.extra["member_status"] == "Sent" for m in members)


def test_a_lookup_with_more_rows_than_one_page_is_read_to_the_end(
    harness: ConnectorHarness, sandbox: SalesforceSandbox
) -> None:
    from leadbridge_salesforce.api import SalesforceApi

    for n in range(5):
        sandbox.store.save("Lead", {"LastName": f"Dup {n}", "Company": "Acme", "Email": "dup@example.org"})
    sandbox.page_size = 2  # each query answers 2 rows and a nextRecordsUrl
    harness.login()
    api = SalesforceApi(harness.view(), harness.client)
    [rows] = api.query_many(["SELECT Id FROM Lead WHERE Email = 'dup@example.org'"])
    assert len(rows) == 5 and len({r["Id"] for r in rows}) == 5
    assert sandbox.count_calls("POST", f"/{api.prefix}composite") == 1  # one call for the lookup,
    assert sandbox.count_calls("GET", f"/{api.prefix}query/") == 2  # then its two further pages
