"""Finding accounts by name and contacts by email: PlanMill's ``searchkey`` is fuzzy, so we compare
exactly on our side and choose deterministically among duplicates (PlanMill allows them)."""

from __future__ import annotations

from typing import Any

from leadbridge.http import VendorClient
from leadbridge.toolkit.paging import read_all

from .paging import BY_ID, LOOKUP


def name_key(name: str) -> str:
    """Trim, collapse inner spaces and case-fold: "Acme  oy " and "ACME Oy" are one account."""
    return " ".join(name.split()).casefold()


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def find_account(client: VendorClient, name: str) -> dict[str, Any] | None:
    """The account whose name equals ``name`` exactly (normalised); lowest id on ties."""
    key = name_key(name)
    # PlanMill's own integrations search with the whole name; the exact comparison is ours.
    rows = list(read_all(client, LOOKUP, "accounts", {**BY_ID, "searchkey": " ".join(name.split())}))
    matches = [r for r in rows if isinstance(r.get("name"), str) and name_key(r["name"]) == key]
    return min(matches, key=lambda r: _int(r.get("id")) or 0) if matches else None


def account_ids(client: VendorClient) -> dict[str, str]:
    """This run's name-key -> account id memory, so one company is looked up once per run."""
    return client.run_cache("account_ids")


def find_contact(client: VendorClient, email: str, account_id: str | None) -> dict[str, Any] | None:
    """The contact with this email (case-insensitive); same account first, then lowest id."""
    wanted = email.strip().casefold()
    rows = list(read_all(client, LOOKUP, "contacts", {**BY_ID, "searchkey": email.strip()}))
    matches = [
        r
        for r in rows
        if any(
            isinstance(r.get(k), str) and r[k].strip().casefold() == wanted
            for k in ("email", "secondaryEmail")
        )
    ]
    if not matches:
        return None
    account = _int(account_id)
    return min(matches, key=lambda r: (_int(r.get("account")) != account, _int(r.get("id")) or 0))
