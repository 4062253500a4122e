"""Maileon's side: contacts by e-mail with the initial permission and double opt-in, custom
fields created on first use, deal transactions with every per-item report read, unsubscriptions.

Everything goes through the connection's ``maileon`` endpoint client (its own key, pacer and
call counts). JSON both ways: ``application/vnd.maileon.api+json`` for contacts,
``application/json`` for transactions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from leadbridge import clock as clocks
from leadbridge.connection_view import ConnectionView
from leadbridge.errors import ConfigError
from leadbridge.http import VendorClient
from leadbridge.toolkit.answers import dig, json_body
from leadbridge.toolkit.paging import Offset, read_page
from leadbridge.types import (
    Action,
    Choice,
    Contact,
    Direction,
    FieldType,
    Outcome,
    Page,
    RecordResult,
    RemoteField,
)

from .info import MAILEON_CONTACT, PERMISSION_CONSENT

CONTACT_JSON = {
    "Content-Type": "application/vnd.maileon.api+json",
    "Accept": "application/vnd.maileon.api+json",
}
PLAIN_JSON = {"Content-Type": "application/json", "Accept": "application/json"}
CUSTOM_PREFIX = "cf:"
SOURCE_FLAG = "createdByPipedrive"
REPORT_PAGE = 1000

#: hub type → Maileon custom field type, for fields created on first use
MAILEON_TYPES = {
    FieldType.NUMBER: "float",
    FieldType.BOOLEAN: "boolean",
    FieldType.DATE: "date",
}

HUB_CONSENTS = tuple(
    Choice(v, v.replace("_", " ")) for v in ("none", "single_opt_in", "double_opt_in", "confirmed")
)

STANDARD = (
    ("FIRSTNAME", "First name", "first_name"),
    ("LASTNAME", "Last name", "last_name"),
    ("ORGANIZATION", "Organization", "company_name"),
)


def maileon(client: VendorClient) -> VendorClient:
    return client.endpoint("maileon")


def ping(client: VendorClient) -> None:
    maileon(client).get("/ping", headers=PLAIN_JSON)


def check_doi_mailing(connection: ConnectionView, client: VendorClient) -> None:
    """With DOI on, the chosen mailing must exist in Maileon and be a DOI mailing."""
    if not connection.setting("doi"):
        return
    mailing = str(connection.setting("doi_mailing") or "")
    if not mailing:
        raise ConfigError("DOI process is on: enter the DOI mailing ID")
    response = maileon(client).get(
        f"/mailings/{quote(mailing, safe='')}/type", headers=PLAIN_JSON, ok_statuses=frozenset({404})
    )
    if response.status_code == 404:
        raise ConfigError(f"Maileon has no mailing {mailing!r}")
    kind = json_body(response)
    kind = kind.get("type") if isinstance(kind, dict) else kind
    if str(kind).lower() != "doi":
        raise ConfigError(f"Maileon mailing {mailing!r} is a {kind} mailing, not a DOI mailing")


def custom_fields(client: VendorClient) -> dict[str, str]:
    """Maileon's contact custom fields, name → type (read once per run)."""
    cache = client.run_cache("maileon_custom_fields")
    if "fields" not in cache:
        body = json_body(maileon(client).get("/contacts/fields/custom", headers=CONTACT_JSON))
        rows = body.get("custom_fields", body) if isinstance(body, dict) else body
        if isinstance(rows, dict):  # {"name": "type"}
            cache["fields"] = {str(k): str(v) for k, v in rows.items()}
        else:
            cache["fields"] = {str(r["name"]): str(r.get("type", "string")) for r in rows or ()}
    fields: dict[str, str] = cache["fields"]
    return fields


def ensure_custom_fields(client: VendorClient, wanted: Mapping[str, str]) -> None:
    known = custom_fields(client)
    for name, kind in wanted.items():
        if name not in known:
            maileon(client).post(
                f"/contacts/fields/custom/{quote(name, safe='')}", params={"type": kind}, headers=CONTACT_JSON
            )
            known[name] = kind


def remote_fields(relayed: Sequence[RemoteField]) -> list[RemoteField]:
    """Maileon contact fields as the hub sees them; ``relayed`` are the person custom fields the
    connection sends under the same name."""
    fields = [
        RemoteField(
            name,
            label,
            FieldType.TEXT,
            object_type=MAILEON_CONTACT,
            hub_field=hub,
            readable=False,
            directions=_push_only(),
        )
        for name, label, hub in STANDARD
    ]
    fields.append(
        RemoteField(
            "external_id",
            "External ID (Pipedrive ID)",
            FieldType.TEXT,
            object_type=MAILEON_CONTACT,
            hub_field="custom.pipedrive_id",
            readable=False,
            directions=_push_only(),
        )
    )
    fields.append(
        RemoteField(
            "permission",
            "Permission",
            FieldType.SELECT,
            object_type=MAILEON_CONTACT,
            writable=False,
            hub_field="consent",
            choices=HUB_CONSENTS,
            directions=_pull_only(),
        )
    )
    fields.append(
        RemoteField(
            "unsubscribed",
            "Unsubscribed",
            FieldType.BOOLEAN,
            object_type=MAILEON_CONTACT,
            hub_field="unsubscribed",
        )
    )
    for rf in relayed:
        fields.append(
            RemoteField(
                rf.name,
                rf.label,
                rf.type,
                object_type=MAILEON_CONTACT,
                custom=True,
                hub_field=rf.hub_field,
                readable=False,
                directions=_push_only(),
            )
        )
    return fields


def _push_only() -> frozenset[Direction]:
    return frozenset({Direction.TO_CRM})


def _pull_only() -> frozenset[Direction]:
    return frozenset({Direction.FROM_CRM})


# -- contacts ------------------------------------------------------------------------------------


def upsert_contacts(
    connection: ConnectionView,
    client: VendorClient,
    contacts: Sequence[Contact],
    relayed: Sequence[RemoteField],
) -> list[RecordResult]:
    """Subscribe (create or update by e-mail) contacts with consent; unsubscribe linked ones
    whose consent is gone."""
    wanted = {rf.label: MAILEON_TYPES.get(rf.type, "string") for rf in relayed}
    ensure_custom_fields(client, {SOURCE_FLAG: "boolean", **wanted})
    return [_upsert_one(connection, client, c) for c in contacts]


def _upsert_one(connection: ConnectionView, client: VendorClient, c: Contact) -> RecordResult:
    if not c.email:
        return RecordResult(Outcome.FAILED, ref=c.ref, reason="no email", code="no_email")
    wants = c.extra.get("consent", "none") not in (None, "none")
    if wants and c.extra.get("unsubscribed") and c.remote_id and c.fields.get("unsubscribed") is not True:
        # Maileon does not re-subscribe an unsubscribed address through the API: say so, visibly.
        return RecordResult(
            Outcome.SKIPPED,
            ref=c.ref,
            remote_id=c.remote_id,
            reason="unsubscribed in Maileon; a new subscription must come through a Maileon opt-in",
        )
    consented = wants and not c.extra.get("unsubscribed")
    if c.fields.get("unsubscribed") is True or not consented:
        if not c.remote_id:
            return RecordResult(Outcome.SKIPPED, ref=c.ref, reason="not subscribed to the newsletter")
        unsubscribe(client, c.remote_id)
        return RecordResult(
            Outcome.UPDATED, ref=c.ref, remote_id=c.remote_id, reason="unsubscribed in Maileon"
        )
    permission = int(connection.setting("initial_permission") or 1)
    doi_on = bool(connection.setting("doi"))
    doi = doi_on and c.remote_id is None  # the DOI mail goes out once, when the contact is created
    # A DOI permission is earned by the click, never sent: later updates must not grant it either.
    sent = 1 if doi_on and permission in (4, 5) else permission
    params: dict[str, Any] = {"permission": sent, "sync_mode": 1, "src": "leadbridge"}
    if doi:
        params.update(doi="true", doimailing=str(connection.setting("doi_mailing")))
        if permission == 5:
            params["doiplus"] = "true"
    standard = {name: c.fields[name] for name, _label, _hub in STANDARD if name in c.fields}
    names = [c.extra.get("first_name"), c.extra.get("last_name")]
    full = " ".join(str(n) for n in names if n)
    if full:
        standard["FULLNAME"] = full
    custom: dict[str, Any] = {SOURCE_FLAG: "true"}
    for key, value in c.fields.items():
        if key.startswith(CUSTOM_PREFIX):
            custom[key[len(CUSTOM_PREFIX) :]] = "" if value is None else _text(value)
    body: dict[str, Any] = {
        "standard_fields": {k: "" if v is None else str(v) for k, v in standard.items()},
        "custom_fields": custom,
    }
    if c.fields.get("external_id"):
        body["external_id"] = str(c.fields["external_id"])
    email = c.email.strip()
    response = maileon(client).post(
        f"/contacts/email/{quote(email, safe='')}",
        params=params,
        json=body,
        headers=CONTACT_JSON,
        idempotent=True,
    )
    outcome = Outcome.CREATED if response.status_code == 201 else Outcome.UPDATED
    return RecordResult(outcome, ref=c.ref, remote_id=email.lower())


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def unsubscribe(client: VendorClient, email: str, reason: str = "leadbridge") -> None:
    maileon(client).delete(
        f"/contacts/email/{quote(email, safe='')}/unsubscribe",
        params={"reason": reason},
        headers=CONTACT_JSON,
        ok_statuses=frozenset({404}),
    )


def delete_contacts(client: VendorClient, emails: Sequence[str]) -> list[RecordResult]:
    results = []
    for email in emails:
        maileon(client).delete(
            f"/contacts/email/{quote(email, safe='')}", headers=CONTACT_JSON, ok_statuses=frozenset({404})
        )
        results.append(RecordResult(Outcome.DELETED, ref=email, remote_id=email))
    return results


# -- unsubscriptions back ------------------------------------------------------------------------

REPORT = Offset(
    lambda body: list(body) if isinstance(body, list) else list(dig(body, ["unsubscriptions"]) or []),
    offset_param="page_index",
    size_param="page_size",
    size=REPORT_PAGE,
    first=1,
    unit="page",
)


def fetch_unsubscriptions(client: VendorClient, since: datetime | None, cursor: str | None) -> Page[Contact]:
    """Maileon's unsubscription report from ``since`` (inclusive) to the read's start (exclusive),
    oldest first, as hub contacts that unsubscribed."""
    until = clocks.utcnow()
    params = {"from_date": _ms(since) if since else 0, "to_date": _ms(until)}
    page = read_page(maileon(client), REPORT, "/reports/unsubscriptions", params, cursor, headers=PLAIN_JSON)
    contacts = []
    for row in sorted(page.rows, key=lambda r: _row_time(r) or datetime.min.replace(tzinfo=UTC)):
        contact = row.get("contact") or {}
        email = contact.get("email")
        if not email or not contact.get("external_id"):
            # Anonymised, or never sent from Pipedrive (no external id): not this connection's person.
            continue
        fields = {"unsubscribed": True, "permission": PERMISSION_CONSENT[1]}
        contacts.append(
            Contact(email=email, remote_id=str(email).lower(), fields=fields, modified_at=_row_time(row))
        )
    return Page(contacts, page.next_cursor)


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _row_time(row: Mapping[str, Any]) -> datetime | None:
    value = row.get("timestamp")
    if value is None:
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000, UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00").replace(" ", "T")).astimezone(UTC)


# -- deals as transactions -----------------------------------------------------------------------

DEAL_ATTRIBUTES = (
    ("deal_id", "integer", True),
    ("title", "string", False),
    ("value", "double", False),
    ("currency", "string", False),
    ("status", "string", False),
    ("stage_id", "integer", False),
    ("add_time", "timestamp", False),
    ("update_time", "timestamp", False),
    ("close_time", "timestamp", False),
    ("expected_close_date", "date", False),
)


def ensure_transaction_type(client: VendorClient, name: str) -> None:
    known = client.run_cache("maileon_transaction_types")
    if name in known:
        return
    response = maileon(client).get(
        f"/transactions/types/{name}", headers=PLAIN_JSON, ok_statuses=frozenset({404})
    )
    if response.status_code == 404:
        maileon(client).post(
            "/transactions/types",
            json={
                "name": name,
                "description": "Deal events from Pipedrive (leadbridge)",
                "archivingDuration": 365,
                "storeOnly": False,
                "attributes": [{"name": n, "type": t, "required": r} for n, t, r in DEAL_ATTRIBUTES],
            },
            headers=PLAIN_JSON,
            ok_statuses=frozenset({409}),  # created meanwhile by another run: use it
        )
    known[name] = True


def send_transaction(client: VendorClient, action: Action) -> RecordResult:
    """One deal event as a transaction of type ``action.kind``; Maileon's per-item report decides
    success (an unknown contact is answered 2xx with ``queued: false``)."""
    if not action.contact.email:
        return RecordResult(Outcome.FAILED, ref=action.ref, reason="the person has no email", code="no_email")
    ensure_transaction_type(client, action.kind)
    content = {
        name: action.fields[name] for name, _t, _r in DEAL_ATTRIBUTES if action.fields.get(name) is not None
    }
    body = json_body(
        maileon(client).post(
            "/transactions",
            params={"ignore_invalid_transactions": "true", "generate_transaction_id": "true"},
            json=[{"typeName": action.kind, "contact": {"email": action.contact.email}, "content": content}],
            headers=PLAIN_JSON,
        )
    )
    reports = dig(body, ["reports"]) or []
    report = reports[0] if reports else {}
    if not report.get("queued"):
        reason = report.get("message") or "Maileon did not queue the transaction"
        return RecordResult(Outcome.FAILED, ref=action.ref, reason=f"Maileon: {reason}", code="not_queued")
    return RecordResult(Outcome.CREATED, ref=action.ref, remote_id=str(report.get("transaction_id") or ""))
