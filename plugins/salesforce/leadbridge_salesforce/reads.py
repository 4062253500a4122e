"""Pulling Leads, flagged Contacts, Accounts and campaign members.

Incremental reads filter on ``SystemModstamp`` (it also moves on system updates) ordered by
``SystemModstamp, Id``; with a ``since`` they go through ``queryAll`` so deleted rows arrive in the
same ordered stream (``IsDeleted = true``) for the delete policy. One page per call: the cursor is
Salesforce's ``nextRecordsUrl``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime
from typing import Any

from leadbridge.connection_view import ConnectionView
from leadbridge.errors import ConfigError
from leadbridge.types import Campaign, Company, Contact, Page

from . import soql
from .api import SalesforceApi
from .fields import field_map, find, from_salesforce, parse_datetime

log = logging.getLogger(__name__)

LOOKUP_CHUNK = 500  # values per IN (...) inside Composite; the GET URL limit does not apply there
LOOKUP_CHARS = 60_000  # and well under SOQL's 100,000-character statement limit
SYSTEM = ("Id", "SystemModstamp", "IsDeleted", "CreatedDate")
EXTRA_FIELDS = {
    "Lead": ("Email", "IsConverted", "ConvertedContactId", "ConvertedAccountId"),
    "Contact": ("Email", "AccountId", "Account.Name"),
    "Account": ("Name",),
}


def _select_list(describe: dict[str, Any], object_type: str) -> list[str]:
    names = list(SYSTEM) + list(EXTRA_FIELDS.get(object_type, ()))
    for name in field_map(describe):
        if name not in names:
            names.append(name)
    return [n for n in names if "." in n or n in field_map(describe) or n == "IsDeleted"]


def _flag_condition(connection: ConnectionView, describe: dict[str, Any]) -> str:
    """Contacts import only when the admin's flag field (checkbox or picklist) says yes."""
    wanted = str(connection.setting("contact_flag_field", "Sync_To_Leadbridge__c"))
    field = find(describe, wanted)
    if field is None:
        raise ConfigError(
            f"Contact has no field {wanted!r} visible to the API user: create it (a checkbox or a "
            "picklist with a 'Yes' value) or give the user read access to it"
        )
    if field["type"] == "boolean":
        return f"{soql.name(field['name'])} = true"
    values = [
        v.strip() for v in str(connection.setting("contact_flag_values", "Yes")).split(",") if v.strip()
    ]
    return f"{soql.name(field['name'])} IN {soql.in_list(values)}"


def first_query(
    connection: ConnectionView, api: SalesforceApi, object_type: str, since: datetime | None
) -> tuple[str, bool]:
    describe = api.describe(object_type)
    conditions = []
    if object_type == "Contact":
        conditions.append(_flag_condition(connection, describe))
    if since is not None:
        conditions.append(f"SystemModstamp >= {soql.quote(since)}")
    statement = soql.select(
        _select_list(describe, object_type),
        object_type,
        " AND ".join(conditions) or None,
        order_by=("SystemModstamp", "Id"),
    )
    return statement, since is not None


def fetch_page(
    connection: ConnectionView,
    api: SalesforceApi,
    object_type: str,
    since: datetime | None,
    cursor: str | None,
) -> tuple[list[dict[str, Any]], str | None, dict[str, str]]:
    """One page of rows, the next cursor, and the Salesforce type of every field."""
    describe = api.describe(object_type)
    types = {name: str(f["type"]) for name, f in field_map(describe).items()}
    statement, include_deleted = (None, False) if cursor else first_query(connection, api, object_type, since)
    page = api.query_page(statement, cursor, include_deleted=include_deleted)
    return page.rows, page.next_cursor, types


def _modified(row: dict[str, Any]) -> datetime | None:
    value = row.get("SystemModstamp")
    return parse_datetime(str(value)) if value else None


def _values(row: dict[str, Any], types: dict[str, str]) -> dict[str, Any]:
    return {k: from_salesforce(v, types[k]) for k, v in row.items() if k in types}


def to_contact(row: dict[str, Any], types: dict[str, str]) -> Contact:
    contact = Contact(
        email=row.get("Email"),
        remote_id=row["Id"],
        fields=_values(row, types),
        modified_at=_modified(row),
        deleted=bool(row.get("IsDeleted")),
    )
    if row.get("IsConverted") and row.get("ConvertedContactId"):
        # A converted lead is read-only; the person lives on as this Contact.
        contact.extra["converted_to"] = {"object_type": "Contact", "remote_id": row["ConvertedContactId"]}
        contact.extra["converted_account"] = row.get("ConvertedAccountId")
    if row.get("AccountId"):
        account = row.get("Account") or {}
        contact.company = Company(name=str(account.get("Name") or ""), remote_id=row["AccountId"])
    return contact


def to_company(row: dict[str, Any], types: dict[str, str]) -> Company:
    return Company(
        name=str(row.get("Name") or ""),
        remote_id=row["Id"],
        fields=_values(row, types),
        modified_at=_modified(row),
        deleted=bool(row.get("IsDeleted")),
    )


def _sized(values: list[str]) -> list[list[str]]:
    """Chunks of at most LOOKUP_CHUNK values and LOOKUP_CHARS characters of quoted literals."""
    out: list[list[str]] = [[]]
    size = 0
    for value in values:
        width = len(soql.quote(value)) + 1
        if out[-1] and (len(out[-1]) >= LOOKUP_CHUNK or size + width > LOOKUP_CHARS):
            out.append([])
            size = 0
        out[-1].append(value)
        size += width
    return [c for c in out if c]


class Lookup:
    """One lookup of rows whose ``key`` equals one of ``values`` (SOQL ``=`` ignores case)."""

    def __init__(
        self,
        object_type: str,
        key: str,
        values: list[str],
        extra: tuple[str, ...] = (),
        where: str | None = None,
    ) -> None:
        self.key = key
        self.statements = []
        fields = ["Id", key, "CreatedDate", *extra]
        for chunk in _sized(sorted({v for v in values if v})):
            condition = f"{soql.name(key)} IN {soql.in_list(chunk)}" + (f" AND {where}" if where else "")
            self.statements.append(
                soql.select(fields, object_type, condition, order_by=("CreatedDate", "Id"))
            )

    def group(self, pages: list[list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
        """Rows by lower-cased key, oldest first (``CreatedDate``, then ``Id``: deterministic)."""
        found: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for rows in pages:
            for row in rows:
                found[str(row.get(self.key) or "").strip().lower()].append(row)
        for rows in found.values():
            rows.sort(key=lambda r: (str(r.get("CreatedDate")), str(r["Id"])))
        return found


def lookup(api: SalesforceApi, *lookups: Lookup) -> list[dict[str, list[dict[str, Any]]]]:
    """Run several lookups in as few Composite calls as possible (25 queries per API call)."""
    statements = [s for one in lookups for s in one.statements]
    if not statements:
        return [{} for _ in lookups]
    pages = api.query_many(statements)
    grouped, at = [], 0
    for one in lookups:
        grouped.append(one.group(pages[at : at + len(one.statements)]))
        at += len(one.statements)
    return grouped


def order_duplicates(contacts: list[Contact]) -> list[Contact]:
    """Within a page, put the oldest of several leads sharing an email first (``CreatedDate``, ``Id``).

    Salesforce allows two open leads with one email; the hub has one contact per email and links
    the first it sees, logging the others as duplicates with both ids. Ordering makes that pick
    the oldest lead, the same one a push would choose. (The engine's checkpoint takes the newest
    position of a page, so reordering inside it is safe.)
    """
    groups: dict[str, list[int]] = defaultdict(list)
    for i, c in enumerate(contacts):
        if c.email and not c.deleted:
            groups[c.email.strip().lower()].append(i)
    order = list(range(len(contacts)))
    for positions in groups.values():
        if len(positions) < 2:
            continue
        ranked = sorted(
            positions, key=lambda i: (str(contacts[i].fields.get("CreatedDate")), contacts[i].remote_id)
        )
        log.warning(
            "Salesforce leads %s share one email; the oldest, %s, is synced",
            ", ".join(str(contacts[i].remote_id) for i in ranked),
            contacts[ranked[0]].remote_id,
        )
        for slot, i in zip(positions, ranked, strict=True):
            order[slot] = i
    return [contacts[i] for i in order]


def fetch_contacts(
    connection: ConnectionView,
    api: SalesforceApi,
    object_type: str,
    since: datetime | None,
    cursor: str | None,
) -> Page[Contact]:
    rows, following, types = fetch_page(connection, api, object_type, since, cursor)
    contacts = [to_contact(r, types) for r in rows]
    if object_type == "Lead":
        contacts = order_duplicates(contacts)
    return Page(contacts, following)


def fetch_companies(
    connection: ConnectionView, api: SalesforceApi, since: datetime | None, cursor: str | None
) -> Page[Company]:
    rows, following, types = fetch_page(connection, api, "Account", since, cursor)
    return Page([to_company(r, types) for r in rows], following)


def list_campaigns(api: SalesforceApi) -> list[Campaign]:
    statement = soql.select(
        ["Id", "Name", "NumberOfLeads", "NumberOfContacts"],
        "Campaign",
        "IsActive = true",
        ("Name",),
        limit=2000,
    )
    rows = api.query(statement).get("records", [])
    return [
        Campaign(
            str(r["Id"]),
            str(r["Name"]),
            int(r.get("NumberOfLeads") or 0) + int(r.get("NumberOfContacts") or 0),
        )
        for r in rows
    ]


MEMBER_FIELDS = (
    "Id",
    "CampaignId",
    "LeadId",
    "ContactId",
    "Status",
    "HasResponded",
    "SystemModstamp",
    "Lead.Email",
    "Lead.FirstName",
    "Lead.LastName",
    "Lead.Company",
    "Contact.Email",
    "Contact.FirstName",
    "Contact.LastName",
    "Contact.AccountId",
)


def fetch_campaign_members(api: SalesforceApi, campaign_id: str, cursor: str | None) -> Page[Contact]:
    statement = soql.select(
        MEMBER_FIELDS, "CampaignMember", f"CampaignId = {soql.quote(campaign_id)}", ("Id",)
    )
    page = api.query_page(statement, cursor)
    members = []
    for row in page.rows:
        person = row.get("Lead") if row.get("LeadId") else row.get("Contact")
        person = person or {}
        object_type = "Lead" if row.get("LeadId") else "Contact"
        fields = {k: person.get(k) for k in ("FirstName", "LastName", "Company") if person.get(k) is not None}
        member = Contact(
            email=person.get("Email"),
            remote_id=str(row.get("LeadId") or row.get("ContactId")),
            fields=fields,
            modified_at=_modified(row),
            extra={
                "object_type": object_type,
                "member_status": row.get("Status"),
                "member_id": row["Id"],
                "responded": bool(row.get("HasResponded")),
            },
        )
        if person.get("AccountId"):
            member.company = Company(name="", remote_id=str(person["AccountId"]))
        members.append(member)
    return Page(members, page.next_cursor)
