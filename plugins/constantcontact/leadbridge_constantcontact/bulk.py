"""Bulk activities: JSON import for large pushes, contact delete for large deletes.

An import is split by count (40,000) and by size (the vendor silently drops what passes 4 MB), the
activities are polled to completion through the core's pacer (which owns every wait), and the
outcome of each record is folded back: ids come from one listing of the contacts the import touched.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from leadbridge.errors import TransientError
from leadbridge.http import VendorClient
from leadbridge.toolkit.paging import read_all
from leadbridge.types import Contact, Outcome, RecordResult

from .fields import CustomFields, import_row, pager, parse_time
from .info import BULK_MAX_BYTES, BULK_MAX_ROWS

#: Stay clearly below the 4 MB cap: the vendor counts the whole body, not just the rows.
BODY_BUDGET = int(BULK_MAX_BYTES * 0.9)
DELETE_ONE_BY_ONE_UP_TO = 20
DELETE_CHUNK = 500
MAX_POLLS = 400
#: at most this many single look-ups per import for records the read-back did not see
MAX_LOOKUPS = 20
FINISHED = frozenset({"completed", "cancelled", "failed", "timed_out"})


def split_rows(
    rows: list[dict[str, Any]], *, max_rows: int = BULK_MAX_ROWS, budget: int = BODY_BUDGET
) -> list[list[int]]:
    """Indexes of ``rows`` grouped into requests that respect both the row and the byte cap."""
    chunks: list[list[int]] = []
    current: list[int] = []
    size = 200  # envelope: {"import_data": [...], "list_ids": [...]}
    for i, row in enumerate(rows):
        row_size = len(json.dumps(row, ensure_ascii=False).encode()) + 1
        if current and (len(current) >= max_rows or size + row_size > budget):
            chunks.append(current)
            current, size = [], 200
        current.append(i)
        size += row_size
    if current:
        chunks.append(current)
    return chunks


def wait_for(client: VendorClient, activity: dict[str, Any]) -> dict[str, Any]:
    """Poll an activity until it finishes; the pacer spaces the polls (no sleeping here)."""
    wait = 0.5
    for _ in range(MAX_POLLS):
        if activity.get("state") in FINISHED:
            return activity
        client.pacer.hold(wait)
        wait = min(wait * 2, 10.0)
        activity = dict(client.get(f"activities/{activity['activity_id']}").json())
    raise TransientError(
        f"bulk activity {activity.get('activity_id')} did not finish", code="activity_timeout"
    )


def import_contacts(
    client: VendorClient,
    todo: Sequence[tuple[int, Contact, dict[str, Any]]],
    list_id: str,
    custom: CustomFields,
) -> list[RecordResult]:
    rows = [import_row(values, custom) for _, _, values in todo]
    activities = []
    for chunk in split_rows(rows):
        created = client.post(
            "activities/contacts_json_import",
            json={"import_data": [rows[i] for i in chunk], "list_ids": [list_id]},
            idempotent=True,  # an import is an upsert by email: sending it again creates nothing
        ).json()
        activities.append((chunk, dict(created)))
    finished = [(chunk, wait_for(client, act)) for chunk, act in activities]
    starts = [parse_time(a.get("created_at")) for _, a in finished]
    since = min((s for s in starts if s is not None), default=None)
    found = _touched_since(client, since)
    results: list[RecordResult] = []
    failed_chunk: dict[int, str] = {}
    errors: list[str] = []
    for chunk, act in finished:
        errors.extend(str(e) for e in act.get("activity_errors") or [])
        if act.get("state") != "completed":
            for i in chunk:
                failed_chunk[i] = (
                    f"bulk import {act.get('state')}: {'; '.join(act.get('activity_errors') or [])}"
                )
    lookups = 0
    for i, (_, contact, values) in enumerate(todo):
        email = str(values["email"]).strip().lower()
        if i in failed_chunk:
            results.append(
                RecordResult(
                    Outcome.FAILED,
                    ref=contact.ref,
                    remote_id=contact.remote_id,
                    reason=failed_chunk[i],
                    code="import_failed",
                )
            )
            continue
        hit = found.get(email)
        if hit is not None:
            remote_id, created_at = hit
            outcome = Outcome.CREATED if since and created_at and created_at >= since else Outcome.UPDATED
            results.append(
                RecordResult(outcome, ref=contact.ref, remote_id=remote_id, extra={"via": "bulk_import"})
            )
            continue
        reason = next((e for e in errors if email in e.lower()), None)
        if reason is None:
            # Constant Contact may leave a contact the import did not change untouched (its
            # updated_at stays put), so the read-back misses it: look it up before calling it lost.
            known = contact.remote_id
            if known is None and lookups < MAX_LOOKUPS:
                lookups += 1
                known = _find_by_email(client, email)
            if known is not None:
                results.append(
                    RecordResult(
                        Outcome.UNCHANGED, ref=contact.ref, remote_id=known, extra={"via": "bulk_import"}
                    )
                )
                continue
        results.append(
            RecordResult(
                Outcome.FAILED,
                ref=contact.ref,
                remote_id=contact.remote_id,
                reason=reason or "not imported by Constant Contact",
                code="import_row",
            )
        )
    return results


def _find_by_email(client: VendorClient, email: str) -> str | None:
    body = client.get("contacts", params={"email": email, "status": "all", "limit": 1}).json()
    found = body.get("contacts") or []
    return str(found[0]["contact_id"]) if found else None


def _touched_since(client: VendorClient, since: Any) -> dict[str, tuple[str, Any]]:
    """email -> (contact_id, created_at) of every contact updated since the import started."""
    first: dict[str, Any] = {"status": "all", "limit": 500}
    if since is not None:
        first = {
            **first,
            "updated_after": (since - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        }
    out: dict[str, tuple[str, Any]] = {}
    for raw in read_all(client, pager("contacts"), "contacts", first):
        address = ((raw.get("email_address") or {}).get("address") or "").lower()
        if address:
            out[address] = (str(raw["contact_id"]), parse_time(raw.get("created_at")))
    return out


def delete_contacts(client: VendorClient, remote_ids: Sequence[str]) -> list[RecordResult]:
    ids = list(remote_ids)
    outcomes: dict[str, RecordResult] = {}
    for start in range(0, len(ids), DELETE_CHUNK):
        chunk = ids[start : start + DELETE_CHUNK]
        act = client.post("activities/contact_delete", json={"contact_ids": chunk}, idempotent=True).json()
        act = wait_for(client, dict(act))
        ok = act.get("state") == "completed"
        for rid in chunk:
            outcomes[rid] = (
                RecordResult(Outcome.DELETED, ref=rid, remote_id=rid)
                if ok
                else RecordResult(
                    Outcome.FAILED,
                    ref=rid,
                    remote_id=rid,
                    code="delete_failed",
                    reason=f"bulk delete {act.get('state')}",
                )
            )
    return [outcomes[rid] for rid in ids]
