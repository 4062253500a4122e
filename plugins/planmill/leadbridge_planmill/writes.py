"""Writes: accounts (find by exact name, else create), contacts (find by email, else create under the
account; update only what changed) and actions (always new: actions are events)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from leadbridge.connection_view import ConnectionView
from leadbridge.errors import RecordError
from leadbridge.http import VendorClient
from leadbridge.types import Action, Company, Contact, Outcome, RecordResult

from .fields import ACTION_WRITABLE, to_planmill, writable_body
from .info import DEFAULT_ACCOUNT
from .matching import account_ids, find_account, find_contact, name_key

ACTION_TYPES = {
    "call": 1,
    "correspondence": 2,
    "demo": 3,
    "email": 4,
    "event": 5,
    "fax": 6,
    "meeting": 7,
    "presentation": 9,
    "todo": 10,
    "to_do": 10,
    "webinar": 11,
}
EMAIL_FIELDS = frozenset({"email", "secondaryEmail"})


def _failed(ref: str | None, exc: RecordError | ValueError) -> RecordResult:
    if isinstance(exc, RecordError):
        extra = {"field": exc.field} if exc.field else {}
        return RecordResult(Outcome.FAILED, ref=ref, reason=exc.message, code=exc.code, extra=extra)
    return RecordResult(Outcome.FAILED, ref=ref, reason=str(exc), code="invalid_value")


def _created_id(response_json: Any) -> str:
    if isinstance(response_json, Mapping) and response_json.get("id") is not None:
        return str(response_json["id"])
    raise RecordError("PlanMill answered the create without an id", code="no_id")


def _changes(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of ``wanted`` that differ from ``current`` (None and "" count as equal)."""

    def same(a: Any, b: Any) -> bool:
        if a in (None, "") and b in (None, ""):
            return True
        if isinstance(a, int | float) or isinstance(b, int | float):
            try:
                return float(a) == float(b)
            except (TypeError, ValueError):
                return False
        return bool(a == b)

    def same_value(key: str, a: Any, b: Any) -> bool:
        if key in EMAIL_FIELDS and isinstance(a, str) and isinstance(b, str):
            return a.strip().casefold() == b.strip().casefold()  # never rewrite an address's case
        return same(a, b)

    return {k: v for k, v in wanted.items() if k not in current or not same_value(k, current.get(k), v)}


# -- accounts ------------------------------------------------------------------------------------


def upsert_companies(client: VendorClient, companies: Sequence[Company]) -> list[RecordResult]:
    return [_upsert_company(client, company) for company in companies]


def _upsert_company(client: VendorClient, company: Company) -> RecordResult:
    try:
        body = writable_body("account", company.fields)
        body.pop("name", None)  # the name is the match key; renaming is not a push concern
        if company.remote_id and not body:
            return RecordResult(Outcome.UNCHANGED, ref=company.ref, remote_id=str(company.remote_id))
        if company.remote_id:
            current = _get(client, f"accounts/{int(company.remote_id)}")
            if current is not None:
                return _update(client, "accounts", company.remote_id, current, body, company.ref)
        remote_id, created = ensure_account(client, company.name, body)
        if created:
            warning = client.run_cache("account_warnings").pop(remote_id, None)
            return RecordResult(Outcome.CREATED, ref=company.ref, remote_id=remote_id, reason=warning)
        return RecordResult(Outcome.UNCHANGED, ref=company.ref, remote_id=remote_id)
    except (RecordError, ValueError) as exc:
        return _failed(company.ref, exc)


def ensure_account(
    client: VendorClient, name: str, body: Mapping[str, Any] | None = None
) -> tuple[str, bool]:
    """The id of the account called ``name``, created when missing; ``(id, created)``.

    Lookups are remembered for the run, so a company shared by many contacts is searched once.
    """
    clean = " ".join(name.split())
    if not clean:
        raise RecordError("a PlanMill account needs a name", code="no_account_name", field="name")
    key = name_key(clean)
    known = account_ids(client)
    if key in known:
        return known[key], False
    row = find_account(client, clean)
    if row is not None:
        known[key] = str(row["id"])
        return known[key], False
    full = {"name": clean, **(body or {})}
    try:
        remote_id = _created_id(client.post("accounts", json=full).json())
    except RecordError:
        if len(full) == 1:
            raise
        # PlanMill's own Zapier app met 400s on accounts with location fields: create the bare
        # account, then set the rest (a refusal there is reported, the account still exists).
        remote_id = _created_id(client.post("accounts", json={"name": clean}).json())
        known[key] = remote_id
        try:
            client.post(f"accounts/{remote_id}", json=dict(body or {}))
        except RecordError as exc:
            # The account exists either way: report it created, with what PlanMill refused.
            client.run_cache("account_warnings")[remote_id] = f"created without some fields: {exc}"
    known[key] = remote_id
    return remote_id, True


# -- contacts ------------------------------------------------------------------------------------


def upsert_contacts(
    connection: ConnectionView, client: VendorClient, contacts: Sequence[Contact]
) -> list[RecordResult]:
    fallback = str(connection.setting("default_account", "") or "").strip() or DEFAULT_ACCOUNT
    return [_upsert_contact(client, contact, fallback) for contact in contacts]


def _upsert_contact(client: VendorClient, contact: Contact, fallback_account: str) -> RecordResult:
    try:
        email = (contact.email or "").strip()
        body = writable_body("contact", contact.fields)
        if email:
            body["email"] = email
        account_id = _account_of(client, contact)
        current: dict[str, Any] | None = None
        if contact.remote_id:
            current = _get(client, f"contacts/{int(contact.remote_id)}")
        if current is None and email:
            current = find_contact(client, email, account_id)
        if current is not None:
            return _update(client, "contacts", str(current["id"]), current, body, contact.ref)
        if not email and not contact.remote_id:
            return RecordResult(
                Outcome.SKIPPED, ref=contact.ref, reason="no email to match on", code="no_email"
            )
        if account_id is None:
            # PlanMill requires an account on every contact: use the connection's fallback account.
            account_id = ensure_account(client, fallback_account)[0]
        if not body.get("lastName"):
            # lastName is required by PlanMill; marketing contacts often lack one.
            body["lastName"] = email.split("@", 1)[0] if email else "(unknown)"
        body["account"] = int(account_id)
        remote_id = _created_id(client.post("contacts", json=body).json())
        return RecordResult(Outcome.CREATED, ref=contact.ref, remote_id=remote_id)
    except (RecordError, ValueError) as exc:
        return _failed(contact.ref, exc)


def _account_of(client: VendorClient, contact: Contact) -> str | None:
    company = contact.company
    if company is None:
        return None
    if company.remote_id:
        return str(company.remote_id)
    if company.name and company.name.strip():
        # The engine upserts companies first; this covers a send without that step.
        return ensure_account(client, company.name)[0]
    return None


# -- shared --------------------------------------------------------------------------------------


def _get(client: VendorClient, path: str) -> dict[str, Any] | None:
    """A single record, or ``None`` when PlanMill says it no longer exists."""
    response = client.get(path, ok_statuses=frozenset({404}))
    if response.status_code == 404:
        return None
    body = response.json()
    return body if isinstance(body, dict) else None


def _update(
    client: VendorClient,
    res: str,
    remote_id: str,
    current: Mapping[str, Any],
    body: Mapping[str, Any],
    ref: str | None,
) -> RecordResult:
    changes = _changes(current, body)
    if not changes:
        return RecordResult(Outcome.UNCHANGED, ref=ref, remote_id=remote_id)
    client.post(f"{res}/{int(remote_id)}", json=changes)  # partial update: 204
    return RecordResult(Outcome.UPDATED, ref=ref, remote_id=remote_id, extra={"changed": sorted(changes)})


def delete_contacts(client: VendorClient, remote_ids: Sequence[str]) -> list[RecordResult]:
    results = []
    for remote_id in remote_ids:
        try:
            client.delete(f"contacts/{int(remote_id)}", ok_statuses=frozenset({404}))
            results.append(RecordResult(Outcome.DELETED, ref=remote_id, remote_id=remote_id))
        except (RecordError, ValueError) as exc:
            results.append(_failed(remote_id, exc))
    return results


# -- actions -------------------------------------------------------------------------------------


def create_action(connection: ConnectionView, client: VendorClient, action: Action) -> RecordResult:
    contact_id = action.contact.remote_id
    if not contact_id:
        return RecordResult(
            Outcome.FAILED, ref=action.ref, code="no_contact", reason="the contact is not in PlanMill yet"
        )
    try:
        body: dict[str, Any] = {
            k: to_planmill("action", k, v)
            for k, v in action.fields.items()
            if k in ACTION_WRITABLE and k not in ("subject", "contact")
        }
        body = {k: v for k, v in body.items() if v is not None}
        body["subject"] = action.title  # the core filled the action_title template (once)
        body["contact"] = int(contact_id)
        kind = ACTION_TYPES.get(action.kind.lower())
        if kind is not None:
            body.setdefault("type", kind)
        # No "start": PlanMill reads posted times in the instance's own time zone whatever offset
        # they carry, so a UTC instant could land hours off; its own "created" stamp is exact.
        if action.description:
            body.setdefault("description", action.description)
        remote_id = _created_id(client.post("actions", json=body).json())
        return RecordResult(
            Outcome.CREATED, ref=action.ref, remote_id=remote_id, extra={"subject": body["subject"]}
        )
    except (RecordError, ValueError) as exc:
        return _failed(action.ref, exc)
