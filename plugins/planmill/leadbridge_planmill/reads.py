"""Reads: campaigns and their members (list import), and changed contacts/accounts (scheduled pull).

Paging is declared in :mod:`.paging` (the core's pagers walk it and keep the cursor).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from leadbridge.errors import ConfigError
from leadbridge.http import VendorClient
from leadbridge.toolkit.paging import read_page
from leadbridge.types import Campaign, Company, Contact, Page

from .dates import parse_dt
from .fields import to_hub
from .paging import BY_ID, PAGE_SIZE, ROWS, by_id, changed

SKIP_FIELDS = frozenset({"id"})


def contact_from_row(row: dict[str, Any]) -> Contact:
    email = row.get("email")
    company = None
    if row.get("account") not in (None, "", 0):
        company = Company(name=str(row.get("accountName") or ""), remote_id=str(row["account"]))
    return Contact(
        email=email.strip() if isinstance(email, str) and email.strip() else None,
        remote_id=str(row["id"]),
        fields={k: to_hub("contact", k, v) for k, v in row.items() if k not in SKIP_FIELDS},
        company=company,
        modified_at=parse_dt(row.get("modified")),
    )


def company_from_row(row: dict[str, Any]) -> Company:
    return Company(
        name=str(row.get("name") or ""),
        remote_id=str(row["id"]),
        fields={k: to_hub("account", k, v) for k, v in row.items() if k not in SKIP_FIELDS},
        modified_at=parse_dt(row.get("modified")),
    )


# -- campaigns -----------------------------------------------------------------------------------


def list_campaigns(client: VendorClient) -> list[Campaign]:
    rows = ROWS(client.get("campaigns", params={**BY_ID, "rowcount": 1000}).json())
    return [
        Campaign(
            remote_id=str(r["id"]),
            name=str(r.get("name") or r["id"]),
            member_count=_int_or_none(r.get("members")),
        )
        for r in rows
        if r.get("id") is not None
    ]


def fetch_campaign_members(
    client: VendorClient, campaign_id: str, cursor: str | None, *, size: int = PAGE_SIZE
) -> Page[Contact]:
    try:
        campaign = int(campaign_id)
    except ValueError:
        raise ConfigError(f"PlanMill campaign id must be a number, got {campaign_id!r}") from None
    page = read_page(client, by_id(size), "contacts", {**BY_ID, "campaigns": campaign}, cursor)
    return Page([contact_from_row(r) for r in page.rows], page.next_cursor)


# -- incremental pulls ---------------------------------------------------------------------------


def fetch_contacts(
    client: VendorClient, since: datetime | None, cursor: str | None, *, size: int = PAGE_SIZE
) -> Page[Contact]:
    page = read_page(client, changed("Person.Modified", size), "contacts", {}, cursor, since=since)
    return Page([contact_from_row(r) for r in page.rows], page.next_cursor)


def fetch_companies(
    client: VendorClient, since: datetime | None, cursor: str | None, *, size: int = PAGE_SIZE
) -> Page[Company]:
    interval = account_interval(client)
    if interval is None:
        if since is not None:
            # /accounts/meta offers no modification filter on this tenant: scanning every account
            # on every scheduled run would cost a full read each time, so only full syncs read them.
            return Page([], None)
        page = read_page(client, by_id(size), "accounts", BY_ID, cursor)
        return Page([company_from_row(r) for r in page.rows], page.next_cursor)
    page = read_page(client, changed(interval, size), "accounts", {}, cursor, since=since)
    return Page([company_from_row(r) for r in page.rows], page.next_cursor)


def account_interval(client: VendorClient) -> str | None:
    """The modification-interval name ``/accounts/meta`` declares, if any (tenant-specific)."""
    cache = client.run_cache("meta")
    if "accounts" not in cache:
        meta = client.get("accounts/meta").json()
        found = None
        for flt in (meta.get("filters") or []) if isinstance(meta, dict) else []:
            if isinstance(flt, dict) and flt.get("type") == "interval":
                values = flt.get("values") or {}
                # Meta maps run label -> value or value -> label; the value is the dotted or
                # lower-case one ("Person.Modified", "modified"), the label a plain word.
                names = [
                    str(n) for n in (*values.keys(), *values.values()) if str(n).lower().endswith("modified")
                ]
                names.sort(key=lambda n: not ("." in n or n[:1].islower()))
                found = names[0] if names else None
        cache["accounts"] = found
    result = cache["accounts"]
    return str(result) if result else None


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
