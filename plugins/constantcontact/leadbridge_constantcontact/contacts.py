"""Reading and writing contacts: incremental reads, upserts, deletes, lists as campaigns."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from leadbridge import clock as clocks
from leadbridge.connection_view import ConnectionView
from leadbridge.errors import RecordError
from leadbridge.http import VendorClient
from leadbridge.toolkit.paging import PageRead, decode_cursor, encode_cursor, read_all, read_page, with_extra
from leadbridge.types import Campaign, Contact, Outcome, Page, RecordResult

from . import bulk
from .fields import (
    CustomFields,
    comparable,
    contact_from_cc,
    create_body,
    custom_fields_for,
    pager,
    problems,
    put_body,
    sign_up_body,
    values_of,
)

INCLUDE = "custom_fields,phone_numbers,street_addresses"
PAGE_LIMIT = 500  # the vendor's maximum; small pages have produced 504s
DEFAULT_LIST = "leadbridge"


def iso_z(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


CONTACTS = pager("contacts")


def _contacts(client: VendorClient, page: PageRead) -> list[Contact]:
    # 202 "processing" carries the same body as 200: keep paging.
    custom = custom_fields_for(client)
    return [contact_from_cc(raw, custom) for raw in page.rows]


def fetch_contacts(client: VendorClient, since: datetime | None, cursor: str | None) -> Page[Contact]:
    """One page of contacts changed since ``since``; ``status=all`` so deletions are seen.

    Constant Contact's paging shifts when contacts change while it is followed: a changed contact
    moves and another one can slip between two pages unseen. The cursor therefore remembers when
    paging started; when a page shows a contact changed after that, the listing is read once more
    from ``since`` after the last page (the engine ignores what it already stored).
    """
    params: dict[str, Any] = {"status": "all", "include": INCLUDE, "limit": PAGE_LIMIT}
    if since is not None:
        params["updated_after"] = iso_z(since)
    first = {"since": since.isoformat() if since else None, "started": clocks.utcnow().isoformat()}
    if cursor is None or decode_cursor(cursor).get("pager") is not None:
        page = read_page(client, CONTACTS, "contacts", params, cursor, extra=first)
    else:  # the re-read after a shifted listing starts over from ``since``
        again = decode_cursor(cursor)["extra"]
        if again.get("since"):
            params["updated_after"] = iso_z(datetime.fromisoformat(again["since"]))
        page = read_page(client, CONTACTS, "contacts", params, None, extra=again)
    state = page.extra
    items = _contacts(client, page)
    started = datetime.fromisoformat(state["started"])
    # Changed after paging started (server time; a clock ahead of ours only costs an extra read).
    moved = state.get("moved") or any(c.modified_at is not None and c.modified_at > started for c in items)
    if page.next_cursor is not None:
        return Page(items, with_extra(page, {**state, "moved": moved}))
    if moved and not state.get("reread"):
        again = {"since": state.get("since"), "started": clocks.utcnow().isoformat(), "reread": True}
        return Page(items, encode_cursor({"pager": None, "extra": again}))
    return Page(items, None)


def fetch_list_members(client: VendorClient, list_id: str, cursor: str | None) -> Page[Contact]:
    params = {"lists": list_id, "include": INCLUDE, "limit": PAGE_LIMIT}
    page = read_page(client, CONTACTS, "contacts", params, cursor)
    return Page(_contacts(client, page), page.next_cursor)


def list_campaigns(client: VendorClient) -> list[Campaign]:
    params = {"include_count": "true", "limit": 1000, "status": "active"}
    return [
        Campaign(str(raw["list_id"]), str(raw["name"]), raw.get("membership_count"))
        for raw in read_all(client, pager("lists"), "contact_lists", params)
    ]


def ensure_list(connection: ConnectionView, client: VendorClient) -> str:
    """The id of the list new contacts join (Constant Contact needs one); created when missing."""
    name = str(connection.setting("list_name", DEFAULT_LIST))
    for _ in range(2):
        body = client.get("contact_lists", params={"name": name, "limit": 1000}).json()
        for raw in body.get("lists") or []:
            if raw.get("name") == name and not raw.get("deleted_at"):
                return str(raw["list_id"])
        response = client.post(
            "contact_lists", json={"name": name, "favorite": False}, ok_statuses=frozenset({409})
        )
        if response.status_code == 201:
            return str(response.json()["list_id"])
        # 409: someone created it meanwhile; read it again.
    raise RecordError(f"could not find or create the list {name!r}", code="list")


def upsert_contacts(
    connection: ConnectionView, client: VendorClient, contacts: Sequence[Contact]
) -> list[RecordResult]:
    """Create or update contacts: one by one through the upsert endpoint, or the bulk import for volume."""
    results: list[RecordResult | None] = [None] * len(contacts)
    todo: list[tuple[int, Contact, dict[str, Any]]] = []
    for i, contact in enumerate(contacts):
        values = values_of(contact)
        problem = problems(values)
        if problem is not None:
            field, reason = problem
            results[i] = RecordResult(
                Outcome.SKIPPED,
                ref=contact.ref,
                remote_id=contact.remote_id,
                reason=reason,
                code="REQUIRED_FIELD_MISSING" if field == "email" and "empty" in reason else "INVALID_FIELD",
                extra={"field": field},
            )
        else:
            todo.append((i, contact, values))
    if todo:
        custom = custom_fields_for(client)
        list_id = ensure_list(connection, client)
        threshold = int(connection.setting("bulk_threshold", 50) or 50)
        # An import makes new people "implicit" (opted in): never import the unsubscribed.
        singles = [t for t in todo if t[2].get("unsubscribed") is True]
        many = [t for t in todo if t[2].get("unsubscribed") is not True]
        if len(many) >= threshold:
            for (i, _, _), result in zip(
                many, bulk.import_contacts(client, many, list_id, custom), strict=True
            ):
                results[i] = result
        else:
            singles = todo
        if singles:
            for i, contact, values in singles:
                try:
                    results[i] = _write_one(client, contact, values, list_id, custom)
                except RecordError as exc:
                    results[i] = RecordResult(
                        Outcome.FAILED,
                        ref=contact.ref,
                        remote_id=contact.remote_id,
                        reason=exc.message,
                        code=exc.code,
                    )
    return [r for r in results if r is not None]


def _get(client: VendorClient, contact_id: str) -> dict[str, Any] | None:
    response = client.get(f"contacts/{contact_id}", params={"include": INCLUDE}, ok_statuses=frozenset({404}))
    return None if response.status_code == 404 else dict(response.json())


def _put_if_changed(
    client: VendorClient, current: dict[str, Any], values: dict[str, Any], custom: CustomFields
) -> bool:
    desired = put_body(current, values, custom)
    if desired == comparable(current) and not current.get("deleted_at"):
        return False
    client.put(f"contacts/{current['contact_id']}", json=desired)
    return True


def _write_one(
    client: VendorClient, contact: Contact, values: dict[str, Any], list_id: str, custom: CustomFields
) -> RecordResult:
    if contact.remote_id:
        current = _get(client, contact.remote_id)
        if current is not None:
            changed = _put_if_changed(client, current, values, custom)
            return RecordResult(
                Outcome.UPDATED if changed else Outcome.UNCHANGED,
                ref=contact.ref,
                remote_id=contact.remote_id,
            )
    if values.get("unsubscribed") is True:
        return _create_unsubscribed(client, contact, values, list_id, custom)
    body, needs_put = sign_up_body(values, list_id, custom)
    # An upsert by email: sending it twice changes nothing, so it may be retried.
    response = client.post("contacts/sign_up_form", json=body, idempotent=True)
    answer = response.json()
    remote_id = str(answer["contact_id"])
    outcome = Outcome.CREATED if response.status_code == 201 else Outcome.UPDATED
    if needs_put:
        current = _get(client, remote_id)
        if current is not None:
            _put_if_changed(client, current, values, custom)
    return RecordResult(outcome, ref=contact.ref, remote_id=remote_id, extra={"action": answer.get("action")})


_OWNER = re.compile(r"contact ([0-9a-f-]{36})")


def _create_unsubscribed(
    client: VendorClient, contact: Contact, values: dict[str, Any], list_id: str, custom: CustomFields
) -> RecordResult:
    """Create a person as unsubscribed; when the email exists (409), unsubscribe that contact."""
    response = client.post("contacts", json=create_body(values, custom), ok_statuses=frozenset({409}))
    if response.status_code == 201:
        return RecordResult(Outcome.CREATED, ref=contact.ref, remote_id=str(response.json()["contact_id"]))
    found = _OWNER.search(response.text)
    current = _get(client, found.group(1)) if found else None
    if current is None:
        raise RecordError(f"Constant Contact refused the contact: {response.text[:200]}", code="409")
    changed = _put_if_changed(client, current, values, custom)
    return RecordResult(
        Outcome.UPDATED if changed else Outcome.UNCHANGED,
        ref=contact.ref,
        remote_id=str(current["contact_id"]),
    )


def delete_contacts(client: VendorClient, remote_ids: Sequence[str]) -> list[RecordResult]:
    """Delete contacts (they turn ``deleted`` in Constant Contact); an already deleted one counts as done."""
    if len(remote_ids) > bulk.DELETE_ONE_BY_ONE_UP_TO:
        return bulk.delete_contacts(client, remote_ids)
    results = []
    for rid in remote_ids:
        client.delete(f"contacts/{rid}", ok_statuses=frozenset({404}))
        results.append(RecordResult(Outcome.DELETED, ref=rid, remote_id=rid))
    return results
