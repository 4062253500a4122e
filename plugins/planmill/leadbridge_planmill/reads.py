"""Reads: campaigns and their members (list import), and changed contacts/accounts (scheduled pull).

The incremental pull pages by keyset on the modification time inside a window fixed at the first
page: each request asks from the last modification time seen (inclusive, so equal timestamps are
never lost) and drops the ids already returned at that instant. ``nextrows`` stays 1, so PlanMill's
wrap-around paging cannot bite, and records changed during the run fall outside the window instead
of shifting pages (the next run picks them up).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from leadbridge import clock as clocks
from leadbridge.errors import ConfigError
from leadbridge.http import VendorClient
from leadbridge.types import Campaign, Company, Contact, Page

from .dates import format_dt, parse_dt
from .fields import to_hub
from .paging import PAGE_SIZE, RowPage, get_rows, page_by_id, row_id
from .runcache import run_cache

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
MAX_STEPS = 200  # requests spent crossing one group of equal timestamps before giving up
OVERLAP = 2
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
    rows = get_rows(client, "campaigns", {"sort": "id", "order": 0, "rowcount": 1000})
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
    state: dict[str, Any] = json.loads(cursor) if cursor else {"next": 1, "after": None}
    page = page_by_id(
        client,
        "contacts",
        {"campaigns": campaign},
        next_row=int(state["next"]),
        after_id=state["after"],
        size=size,
    )
    return Page([contact_from_row(r) for r in page.rows], _id_cursor(page))


# -- incremental pulls ---------------------------------------------------------------------------


def fetch_contacts(
    client: VendorClient, since: datetime | None, cursor: str | None, *, size: int = PAGE_SIZE
) -> Page[Contact]:
    rows, next_cursor = _changed_rows(client, "contacts", "Person.Modified", since, cursor, size)
    return Page([contact_from_row(r) for r in rows], next_cursor)


def fetch_companies(
    client: VendorClient, since: datetime | None, cursor: str | None, *, size: int = PAGE_SIZE
) -> Page[Company]:
    interval = account_interval(client)
    if interval is None:
        if since is not None:
            # /accounts/meta offers no modification filter on this tenant: scanning every account
            # on every scheduled run would cost a full read each time, so only full syncs read them.
            return Page([], None)
        state: dict[str, Any] = json.loads(cursor) if cursor else {"next": 1, "after": None}
        page = page_by_id(
            client, "accounts", {}, next_row=int(state["next"]), after_id=state["after"], size=size
        )
        return Page([company_from_row(r) for r in page.rows], _id_cursor(page))
    rows, next_cursor = _changed_rows(client, "accounts", interval, since, cursor, size)
    return Page([company_from_row(r) for r in rows], next_cursor)


def account_interval(client: VendorClient) -> str | None:
    """The modification-interval name ``/accounts/meta`` declares, if any (tenant-specific)."""
    cache = run_cache(client, "meta")
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


def _changed_rows(
    client: VendorClient, res: str, interval: str, since: datetime | None, cursor: str | None, size: int
) -> tuple[list[dict[str, Any]], str | None]:
    if cursor:
        state = json.loads(cursor)
    else:
        start = (since or EPOCH).astimezone(UTC)
        state = {"start": format_dt(start), "finish": format_dt(clocks.utcnow()), "seen": [], "skip": 0}
    seen = {int(i) for i in state["seen"]}
    skip = int(state.get("skip") or 0)
    fresh: list[dict[str, Any]] = []
    for _ in range(MAX_STEPS):
        rows = get_rows(
            client,
            res,
            {
                "interval": interval,
                "intervalstart": state["start"],
                "intervalfinish": state["finish"],
                "sort": "modified",
                "order": 0,
                "rowcount": size + max(0, len(seen) - skip),
                "nextrows": skip + 1,
            },
        )
        if not rows:
            return [], None
        if skip == 0:
            state["first"] = row_id(rows[0])
        elif row_id(rows[0]) == state.get("first"):
            return [], None  # asked past the end: PlanMill wrapped around to the start
        fresh = [r for r in rows if row_id(r) not in seen]
        if fresh:
            break
        # Only rows already returned: a group of equal timestamps larger than PlanMill's (unknown)
        # row cap. Step over it by offset, overlapping a little in case a row left the window.
        skip += max(1, len(rows) - OVERLAP)
    else:
        return [], None
    last_dt = parse_dt(fresh[-1].get("modified"))
    if last_dt is None:
        return fresh, None  # no timestamp to page on; the engine's next run resumes from its checkpoint
    last = format_dt(last_dt)
    same = {
        row_id(r) for r in fresh if (d := parse_dt(r.get("modified"))) is not None and format_dt(d) == last
    }
    if last == state["start"]:
        same |= seen  # still inside one instant: remember everything returned at it
    else:
        skip, state["first"] = 0, None
    next_state = {
        "start": last,
        "finish": state["finish"],
        "seen": sorted(same),
        "skip": skip,
        "first": state.get("first"),
    }
    return fresh, json.dumps(next_state)


def _id_cursor(page: RowPage) -> str | None:
    if page.next_row is None or not page.rows:
        return None
    return json.dumps({"next": page.next_row, "after": row_id(page.rows[-1])})


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
