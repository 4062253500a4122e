"""Writing Leads in sObject Collections (200 per call, ``allOrNone=false``), Tasks one at a time,
and deletes. Contacts and Accounts belong to the sales team: never written.

Matching: ``remote_id`` when the core knows it, else a lookup by email through Composite queries
(25 ``IN`` queries per API call); several open leads → the oldest (``CreatedDate``, ``Id``), the
others reported as ``duplicate_ids``. A person who already is a Salesforce Contact (found by email,
or a lead converted meanwhile) is not written: the result is ``skipped`` and carries the Contact's
id, so the link follows the Contact and later pushes cost no call. With an External ID field on
Lead, new leads are upserted by it, so a batch re-sent after a crash cannot create twice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from leadbridge.connection_view import ConnectionView
from leadbridge.errors import RecordError
from leadbridge.types import Action, Contact, Outcome, RecordResult

from . import soql
from .api import COLLECTION_SIZE, SalesforceApi, chunks
from .fields import field_map, find, to_salesforce
from .reads import Lookup, lookup

log = logging.getLogger(__name__)

CONTACT_PREFIX = "003"
LEAD_PREFIX = "00Q"
GONE = frozenset({"ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY", "NOT_FOUND", "INVALID_ID_FIELD"})


def _body(fields: dict[str, Any], types: dict[str, str], sobject: str) -> dict[str, Any]:
    body: dict[str, Any] = {"attributes": {"type": sobject}}
    for name, value in fields.items():
        body[name] = to_salesforce(value, types.get(name))
    return body


def _failure(item: dict[str, Any], ref: str | None, remote_id: str | None = None) -> RecordResult:
    errors = item.get("errors") or [{}]
    first = errors[0]
    code = str(first.get("statusCode") or first.get("errorCode") or "UNKNOWN")
    extra: dict[str, Any] = {}
    if first.get("fields"):
        extra["fields"] = list(first["fields"])
    return RecordResult(
        Outcome.FAILED,
        ref=ref,
        remote_id=remote_id,
        reason=str(first.get("message") or code),
        code=code,
        extra=extra,
    )


def _code(item: dict[str, Any]) -> str | None:
    errors = item.get("errors") or []
    return str(errors[0].get("statusCode") or errors[0].get("errorCode")) if errors else None


def _run(
    api: SalesforceApi,
    sobject: str,
    jobs: list[tuple[int, dict[str, Any]]],
    mode: str,
    external: str | None = None,
) -> dict[int, dict[str, Any]]:
    """Send ``(position, record)`` pairs in collections of 200; answers by position."""
    answers: dict[int, dict[str, Any]] = {}
    for chunk in chunks(jobs, COLLECTION_SIZE):
        records = [record for _, record in chunk]
        if mode == "create":
            items = api.create(records)
        elif mode == "upsert":
            assert external is not None
            items = api.upsert(sobject, external, records)
        else:
            items = api.update(records)
        for (position, _), item in zip(chunk, items, strict=False):
            answers[position] = item
    return answers


def upsert_leads(
    connection: ConnectionView, api: SalesforceApi, contacts: Sequence[Contact]
) -> list[RecordResult]:
    describe = api.describe("Lead")
    types = {name: str(f["type"]) for name, f in field_map(describe).items()}
    url_field = find(describe, connection.setting("lead_url_field"))
    external = find(describe, connection.setting("external_id_field"))
    if external is not None and not external.get("externalId"):
        external = None
    results: list[RecordResult | None] = [None] * len(contacts)
    unknown = [c.email for c in contacts if not c.remote_id and c.email]
    leads, people = lookup(
        api,
        Lookup("Lead", "Email", unknown, extra=("IsConverted", "ConvertedContactId")),
        Lookup("Contact", "Email", unknown),
    )
    updates: list[tuple[int, dict[str, Any]]] = []
    creates: list[tuple[int, dict[str, Any]]] = []
    duplicates: dict[int, list[str]] = {}
    for i, contact in enumerate(contacts):
        if contact.remote_id and contact.remote_id.startswith(CONTACT_PREFIX):
            results[i] = _is_contact(contact, contact.remote_id)
            continue
        fields = dict(contact.fields)
        if contact.email and "Email" not in fields:
            fields["Email"] = contact.email
        if url_field is not None and contact.ref:
            fields[url_field["name"]] = connection.hub_contact_url(contact.ref)
        if "Company" not in fields and contact.company is not None and contact.company.name:
            fields["Company"] = contact.company.name
        remote_id = contact.remote_id
        if remote_id is None and contact.email:
            key = contact.email.strip().lower()
            open_leads = [r for r in leads.get(key, []) if not r.get("IsConverted")]
            if len(open_leads) > 1:
                duplicates[i] = [str(r["Id"]) for r in open_leads]
                log.warning(
                    "Salesforce leads %s share one email; writing to the oldest", ", ".join(duplicates[i])
                )
            if open_leads:
                remote_id = str(open_leads[0]["Id"])
            else:
                # Only converted leads, or a Contact with this email: the person belongs to sales.
                found = [str(r["Id"]) for r in people.get(key, [])]
                found += [
                    str(r["ConvertedContactId"]) for r in leads.get(key, []) if r.get("ConvertedContactId")
                ]
                if found:
                    results[i] = _is_contact(contact, found[0])
                    continue
        body = _body(fields, types, "Lead")
        if remote_id is not None:
            body["Id"] = remote_id
            updates.append((i, body))
        else:
            if external is not None and contact.ref:
                body[external["name"]] = contact.ref
            creates.append((i, body))
    answers = _run(api, "Lead", updates, "update")
    if external is not None:
        answers |= _run(api, "Lead", creates, "upsert", external["name"])
    else:
        answers |= _run(api, "Lead", creates, "create")
    converted: list[int] = []
    update_ids = {pos: str(b["Id"]) for pos, b in updates}
    for i, contact in enumerate(contacts):
        if results[i] is not None:
            continue
        item = answers.get(
            i, {"success": False, "errors": [{"statusCode": "NO_RESULT", "message": "no answer"}]}
        )
        is_update = i in update_ids
        if item.get("success"):
            created = bool(item.get("created")) if not is_update else False
            outcome = (
                Outcome.CREATED if (not is_update and (created or "created" not in item)) else Outcome.UPDATED
            )
            result = RecordResult(outcome, ref=contact.ref, remote_id=str(item.get("id")))
        elif _code(item) == "CANNOT_UPDATE_CONVERTED_LEAD":
            converted.append(i)
            continue
        else:
            result = _failure(item, contact.ref, update_ids.get(i))
        if i in duplicates:
            result.extra["duplicate_ids"] = duplicates[i]
        results[i] = result
    if converted:
        _follow_conversions(api, contacts, [(i, update_ids[i]) for i in converted], results)
    return [r for r in results if r is not None]


def _is_contact(contact: Contact, contact_id: str) -> RecordResult:
    return RecordResult(
        Outcome.SKIPPED,
        ref=contact.ref,
        remote_id=contact_id,
        code="IS_CONTACT",
        reason=f"is Salesforce Contact {contact_id}; contacts are managed in Salesforce, not written",
        extra={"converted_to": {"object_type": "Contact", "remote_id": contact_id}},
    )


def _follow_conversions(
    api: SalesforceApi,
    contacts: Sequence[Contact],
    pairs: list[tuple[int, str]],
    results: list[RecordResult | None],
) -> None:
    """A converted lead is read-only: point the hub at the Contact it became instead of failing forever."""
    rows = api.query(
        soql.select(
            ["Id", "ConvertedContactId", "ConvertedAccountId"],
            "Lead",
            f"Id IN {soql.in_list([lead for _, lead in pairs])}",
        )
    ).get("records", [])
    by_id = {str(r["Id"]): r for r in rows}
    for i, lead_id in pairs:
        target = (by_id.get(lead_id) or {}).get("ConvertedContactId")
        # The link follows the Contact (its id), so the next push is skipped without a call.
        results[i] = RecordResult(
            Outcome.SKIPPED,
            ref=contacts[i].ref,
            remote_id=str(target or lead_id),
            code="CANNOT_UPDATE_CONVERTED_LEAD",
            reason=f"lead {lead_id} was converted to contact {target}; contacts are managed in Salesforce",
            extra={"converted_to": {"object_type": "Contact", "remote_id": target}} if target else {},
        )


def delete_records(api: SalesforceApi, remote_ids: Sequence[str]) -> list[RecordResult]:
    """Delete leads; an id that is a Contact (a converted lead) is left alone."""
    answers: dict[str, RecordResult] = {}
    leads = [r for r in remote_ids if r.startswith(LEAD_PREFIX)]
    for remote_id in remote_ids:
        if not remote_id.startswith(LEAD_PREFIX):
            answers[remote_id] = RecordResult(
                Outcome.SKIPPED,
                remote_id=remote_id,
                code="READ_ONLY_OBJECT",
                reason="not a lead: contacts are never deleted by leadbridge",
            )
    for chunk in chunks(leads, COLLECTION_SIZE):
        items = api.delete(chunk)
        for remote_id, item in zip(chunk, items, strict=False):
            if item.get("success") or _code(item) in GONE:
                answers[remote_id] = RecordResult(Outcome.DELETED, remote_id=remote_id)
            else:
                answers[remote_id] = _failure(item, None, remote_id)
    return [answers[r] for r in remote_ids]


def create_task(connection: ConnectionView, api: SalesforceApi, action: Action) -> RecordResult:
    who = action.contact.remote_id
    if not who:
        raise RecordError("the contact has no Salesforce id yet", code="MISSING_WHO_ID")
    record: dict[str, Any] = {
        "Subject": action.title[:255],  # filled by the core from the action_title setting
        "WhoId": who,
        "Status": connection.setting("task_status", "Completed"),
        "Description": action.description or action.kind,
    }
    if action.occurred_at is not None:
        record["ActivityDate"] = action.occurred_at.date().isoformat()
    # A Lead in WhoId cannot be combined with a WhatId; only a Contact's task names the account.
    if who.startswith("003") and action.company is not None and action.company.remote_id:
        record["WhatId"] = action.company.remote_id
    record.update(action.fields)
    answer = api.create_one("Task", record)
    return RecordResult(Outcome.CREATED, ref=action.ref, remote_id=str(answer.get("id")))
