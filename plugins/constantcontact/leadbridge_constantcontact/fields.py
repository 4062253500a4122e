"""Constant Contact's contact fields in hub terms, and the conversions between its JSON and ours.

Remote field names are the flat names of Constant Contact's own bulk import (``email``,
``job_title``, ``work_phone``, ``zip``...); custom fields are ``cf:<name>`` as in that import.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from leadbridge import clock as clocks
from leadbridge.http import VendorClient
from leadbridge.toolkit.paging import NextUrl, read_all, records_at
from leadbridge.toolkit.vendortypes import TypeTable, VendorType, number
from leadbridge.types import Choice, Contact, Direction, FieldType, RemoteField

PHONE_KINDS = ("home", "work", "mobile", "other")
ADDRESS_FIELDS = {
    "street": "street",
    "city": "city",
    "state": "state",
    "zip": "postal_code",
    "country": "country",
}
TOP_LEVEL_TEXT = ("first_name", "last_name", "job_title", "company_name")
#: Constant Contact's length caps (first/last name, job title, company).
MAX_LEN = {"first_name": 50, "last_name": 50, "job_title": 50, "company_name": 50, "email": 80}
PERMISSIONS = ("explicit", "implicit", "not_set", "pending_confirmation", "temp_hold", "unsubscribed")
READ_ONLY = frozenset({Direction.FROM_CRM})

_STANDARD: tuple[tuple[str, str, FieldType, str | None], ...] = (
    ("email", "Email", FieldType.EMAIL, "email"),
    ("first_name", "First name", FieldType.TEXT, "first_name"),
    ("last_name", "Last name", FieldType.TEXT, "last_name"),
    ("job_title", "Job title", FieldType.TEXT, "title"),
    ("company_name", "Company", FieldType.TEXT, "company_name"),
    ("work_phone", "Work phone", FieldType.PHONE, "phone"),
    ("home_phone", "Home phone", FieldType.PHONE, None),
    ("mobile_phone", "Mobile phone", FieldType.PHONE, None),
    ("other_phone", "Other phone", FieldType.PHONE, None),
    ("street", "Street", FieldType.TEXT, None),
    ("city", "City", FieldType.TEXT, None),
    ("state", "State", FieldType.TEXT, None),
    ("zip", "Postal code", FieldType.TEXT, None),
    ("country", "Country", FieldType.TEXT, None),
    ("birthday_month", "Birthday month", FieldType.NUMBER, None),
    ("birthday_day", "Birthday day", FieldType.NUMBER, None),
    ("anniversary", "Anniversary", FieldType.DATE, None),
)

#: Custom field types (``type`` of a definition); values are sent as text, dates as ``YYYY-MM-DD``.
CF_TYPES = TypeTable(
    VendorType("string", FieldType.TEXT, write=lambda v: _text(v)),
    VendorType("number", FieldType.NUMBER, read=number, write=lambda v: _text(v)),
    VendorType("currency", FieldType.NUMBER, read=number, write=lambda v: _text(v)),
    VendorType("date", FieldType.DATE, read=lambda v: _iso_date(v), write=lambda v: _text(v)),
    VendorType("single_select", FieldType.SELECT),
    VendorType("multi_select", FieldType.MULTISELECT),
    fallback_write=lambda v: _text(v),
)


@dataclass(frozen=True, slots=True)
class CustomField:
    """One custom field definition (``GET /contact_custom_fields``)."""

    id: str
    name: str
    label: str
    type: str
    choices: tuple[tuple[str, str], ...] = ()  # (choice_id, label)

    @property
    def remote_name(self) -> str:
        return f"cf:{self.name}"

    @property
    def is_select(self) -> bool:
        return self.type in ("single_select", "multi_select")

    def choice_id(self, label: str) -> str | None:
        for cid, clabel in self.choices:
            if clabel == label or cid == label:
                return cid
        return None

    def choice_label(self, cid: str) -> str:
        return next((label for c, label in self.choices if c == str(cid)), str(cid))


@dataclass(slots=True)
class CustomFields:
    by_id: dict[str, CustomField]

    @property
    def by_remote_name(self) -> dict[str, CustomField]:
        return {cf.remote_name: cf for cf in self.by_id.values()}


#: Definitions per client (one client lives for one run): pages of a run share one read.
CACHE_SECONDS = 300.0


def custom_fields_for(client: VendorClient) -> CustomFields:
    """The definitions, read at most once per client every :data:`CACHE_SECONDS`."""
    hit = client.run_cache("custom_fields").get("all")
    if hit is not None and clocks.monotonic() - hit[0] < CACHE_SECONDS:
        return hit[1]
    return load_custom_fields(client)


def load_custom_fields(client: VendorClient) -> CustomFields:
    """Every custom field definition, read now (at most 100 per account; no ``updated_after`` filter
    exists, so the whole list is read)."""
    out: dict[str, CustomField] = {}
    for raw in read_all(client, pager("custom_fields"), "contact_custom_fields", {"limit": 100}):
        choices = tuple(
            (str(c.get("choice_id")), str(c.get("choice_label")))
            for c in sorted(raw.get("choices") or [], key=lambda c: c.get("display_order") or 0)
        )
        cf = CustomField(
            str(raw["custom_field_id"]),
            str(raw.get("name") or raw["label"]),
            str(raw["label"]),
            str(raw.get("type") or "string"),
            choices,
        )
        out[cf.id] = cf
    fields = CustomFields(out)
    client.run_cache("custom_fields")["all"] = (clocks.monotonic(), fields)
    return fields


def pager(records: str) -> NextUrl:
    """Constant Contact's paging: the list under ``records`` and a host-relative ``_links.next.href``."""
    return NextUrl(
        records_at(records), lambda body: ((body.get("_links") or {}).get("next") or {}).get("href")
    )


def remote_fields(custom: CustomFields) -> list[RemoteField]:
    fields = [
        RemoteField(name, label, ftype, required=(name == "email"), hub_field=hub, vendor_type=name)
        for name, label, ftype, hub in _STANDARD
    ]
    fields.append(
        RemoteField(
            "permission_to_send",
            "Email permission",
            FieldType.SELECT,
            writable=False,
            choices=tuple(Choice(p, p.replace("_", " ")) for p in PERMISSIONS),
            directions=READ_ONLY,
            vendor_type="permission_to_send",
        )
    )
    fields.append(
        RemoteField(
            "unsubscribed",
            "Unsubscribed",
            FieldType.BOOLEAN,
            hub_field="unsubscribed",
            vendor_type="permission_to_send",
        )
    )
    fields.append(
        RemoteField(
            "created_at",
            "Created",
            FieldType.DATETIME,
            writable=False,
            directions=READ_ONLY,
            vendor_type="created_at",
        )
    )
    for cf in sorted(custom.by_id.values(), key=lambda c: c.label.lower()):
        fields.append(
            RemoteField(
                cf.remote_name,
                cf.label,
                CF_TYPES.hub_type(cf.type) or FieldType.TEXT,
                custom=True,
                choices=tuple(Choice(label, label) for _, label in cf.choices),
                vendor_type=cf.type,
            )
        )
    return fields


# -- reading ---------------------------------------------------------------------------------


def parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    text = str(value)
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _iso_date(value: Any) -> str | None:
    if not value:
        return None
    text = str(value)
    if len(text) == 10 and text[2] == "/" and text[5] == "/":  # MM/DD/YYYY (legacy)
        return f"{text[6:]}-{text[:2]}-{text[3:5]}"
    return text[:10]


def contact_from_cc(raw: dict[str, Any], custom: CustomFields) -> Contact:
    """A Constant Contact contact (read with ``include=custom_fields,phone_numbers,street_addresses``)."""
    email_obj = raw.get("email_address") or {}
    email = email_obj.get("address") or None
    fields: dict[str, Any] = {"email": email}
    for name in TOP_LEVEL_TEXT:
        fields[name] = raw.get(name) or None
    for kind in PHONE_KINDS:
        fields[f"{kind}_phone"] = None
    for phone in raw.get("phone_numbers") or []:
        kind = phone.get("kind") if phone.get("kind") in PHONE_KINDS else "other"
        if fields.get(f"{kind}_phone") is None:
            fields[f"{kind}_phone"] = phone.get("phone_number")
    address = _first_address(raw.get("street_addresses") or [])
    for flat, key in ADDRESS_FIELDS.items():
        fields[flat] = (address or {}).get(key) or None
    fields["birthday_month"] = raw.get("birthday_month")
    fields["birthday_day"] = raw.get("birthday_day")
    fields["anniversary"] = _iso_date(raw.get("anniversary"))
    fields["permission_to_send"] = email_obj.get("permission_to_send")
    fields["unsubscribed"] = email_obj.get("permission_to_send") == "unsubscribed"
    fields["created_at"] = raw.get("created_at")
    for definition in custom.by_id.values():
        fields[definition.remote_name] = None
    for entry in raw.get("custom_fields") or []:
        cf = custom.by_id.get(str(entry.get("custom_field_id")))
        if cf is None:
            continue
        if cf.is_select and entry.get("choice_ids"):
            labels = [cf.choice_label(c) for c in entry["choice_ids"]]
            fields[cf.remote_name] = labels if cf.type == "multi_select" else labels[0]
        else:
            fields[cf.remote_name] = CF_TYPES.to_hub(entry.get("value"), cf.type)
    deleted = bool(raw.get("deleted_at"))
    modified = parse_time(raw.get("updated_at"))
    deleted_at = parse_time(raw.get("deleted_at"))
    if deleted and deleted_at and (modified is None or deleted_at > modified):
        modified = deleted_at
    company_name = fields.get("company_name")
    return Contact(
        email=email,
        remote_id=str(raw["contact_id"]),
        fields=fields,
        modified_at=modified,
        deleted=deleted,
        extra={
            k: v
            for k, v in (
                ("company_name", company_name),
                ("permission_to_send", email_obj.get("permission_to_send")),
            )
            if v
        },
    )


def _first_address(addresses: list[dict[str, Any]]) -> dict[str, Any] | None:
    for kind in ("home", "work", "other"):
        for a in addresses:
            if a.get("kind") == kind:
                return a
    return addresses[0] if addresses else None


def display_name(contact: Contact) -> str:
    f = contact.fields
    name = " ".join(str(p) for p in (f.get("first_name"), f.get("last_name")) if p)
    return name or contact.email or contact.remote_id or "?"


# -- writing ---------------------------------------------------------------------------------


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def values_of(contact: Contact) -> dict[str, Any]:
    """The writable values of a hub contact in remote names (email and company filled in)."""
    values = {k: v for k, v in contact.fields.items() if k not in ("permission_to_send", "created_at")}
    if contact.email and _blank(values.get("email")):
        values["email"] = contact.email
    if "company_name" not in values and contact.company is not None and contact.company.name:
        values["company_name"] = contact.company.name
    return values


def problems(values: dict[str, Any], *, flat_email_limit: int = 50) -> tuple[str, str] | None:
    """``(field, reason)`` when Constant Contact would refuse the record; checked before any call."""
    email = values.get("email")
    if _blank(email):
        return "email", "Email is empty; it is mandatory in Constant Contact"
    email = str(email).strip()
    if "@" not in email or " " in email or len(email) > flat_email_limit:
        return "email", f"Email {email!r} is not an address Constant Contact accepts (max {flat_email_limit})"
    for name, limit in MAX_LEN.items():
        value = values.get(name)
        if name != "email" and isinstance(value, str) and len(value) > limit:
            return name, f"{name} is longer than {limit} characters"
    return None


def _text(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()[:10]
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _cf_entry(cf: CustomField, value: Any) -> dict[str, Any] | None:
    if _blank(value):
        return None
    if cf.is_select:
        labels = value if isinstance(value, list | tuple) else [value]
        ids = [cid for cid in (cf.choice_id(str(v)) for v in labels) if cid]
        return {"custom_field_id": cf.id, "choice_ids": ids} if ids else None
    return {"custom_field_id": cf.id, "value": CF_TYPES.to_vendor(value, cf.type)}


def phones_of(values: dict[str, Any]) -> list[tuple[str, str]]:
    return [(k, str(values[f"{k}_phone"])) for k in PHONE_KINDS if not _blank(values.get(f"{k}_phone"))]


def sign_up_body(values: dict[str, Any], list_id: str, custom: CustomFields) -> tuple[dict[str, Any], bool]:
    """The ``POST /contacts/sign_up_form`` body, and whether a PUT must follow for what it cannot carry
    (a second phone number, select custom fields)."""
    body: dict[str, Any] = {"email_address": str(values["email"]).strip(), "list_memberships": [list_id]}
    for name in TOP_LEVEL_TEXT:
        if not _blank(values.get(name)):
            body[name] = str(values[name])
    needs_put = values.get("unsubscribed") is True
    phones = phones_of(values)
    if phones:
        body["phone_number"] = phones[0][1][:25]
        needs_put = len(phones) > 1 or phones[0][0] != "home"
    address = {key: str(values[flat]) for flat, key in ADDRESS_FIELDS.items() if not _blank(values.get(flat))}
    if address:
        body["street_address"] = {"kind": "home", **address}
    for name in ("birthday_month", "birthday_day"):
        if not _blank(values.get(name)):
            body[name] = int(values[name])
    if not _blank(values.get("anniversary")):
        body["anniversary"] = _text(values["anniversary"])
    entries = []
    by_name = custom.by_remote_name
    for name, value in values.items():
        cf = by_name.get(name)
        if cf is None or _blank(value):
            continue
        if cf.is_select:
            needs_put = True
            continue
        entries.append({"custom_field_id": cf.id, "value": _text(value)})
    if entries:
        body["custom_fields"] = entries
    return body, needs_put


def import_row(values: dict[str, Any], custom: CustomFields) -> dict[str, Any]:
    """One ``contacts_json_import`` row: flat names, custom fields as ``cf:<name>``; blanks left out."""
    row: dict[str, Any] = {}
    known = custom.by_remote_name
    for name, value in values.items():
        if _blank(value) or name == "unsubscribed":
            continue
        if name.startswith("cf:"):
            cf = known.get(name)
            if cf is None:
                continue
            row[name] = ", ".join(map(str, value)) if isinstance(value, list | tuple) else _text(value)
        elif name in ("birthday_month", "birthday_day"):
            row[name] = int(value)
        elif name == "email":
            row[name] = str(value).strip()
        else:
            row[name] = _text(value)
    return row


_PUT_TOP = (*TOP_LEVEL_TEXT, "birthday_month", "birthday_day", "anniversary")


def put_body(current: dict[str, Any], values: dict[str, Any], custom: CustomFields) -> dict[str, Any]:
    """Merge the hub's values into a fresh GET of the contact for ``PUT /contacts/{id}``.

    PUT nulls every omitted top-level field, so everything Constant Contact has is sent back, with
    the mapped fields replaced. Read-only fields are left out (the vendor refuses them).
    """
    email_obj = current.get("email_address") or {}
    body: dict[str, Any] = {"update_source": "Account"}
    address = str(values["email"]).strip() if not _blank(values.get("email")) else email_obj.get("address")
    email_out: dict[str, Any] = {"address": address}
    if email_obj.get("permission_to_send"):
        email_out["permission_to_send"] = email_obj["permission_to_send"]
    if values.get("unsubscribed") is True:
        # Unsubscribing is allowed; the opposite is not (only the person can opt in again).
        email_out["permission_to_send"] = "unsubscribed"
    body["email_address"] = email_out
    for name in _PUT_TOP:
        value = values[name] if name in values else current.get(name)
        if name == "anniversary" and name in values:
            value = _text(value) if not _blank(value) else None
        elif name in ("birthday_month", "birthday_day") and value is not None and not _blank(value):
            value = int(value)
        if not _blank(value):
            body[name] = value
    phones = {p.get("kind"): p.get("phone_number") for p in current.get("phone_numbers") or []}
    for kind in PHONE_KINDS:
        key = f"{kind}_phone"
        if key in values:
            phones[kind] = None if _blank(values[key]) else str(values[key])[:25]
    body["phone_numbers"] = [{"phone_number": n, "kind": k} for k, n in phones.items() if n][:3]
    addresses = [
        {k: v for k, v in a.items() if k in ("kind", "street", "city", "state", "postal_code", "country")}
        for a in current.get("street_addresses") or []
    ]
    if any(flat in values for flat in ADDRESS_FIELDS):
        first = _first_address(addresses) or {"kind": "home"}
        if first not in addresses:
            addresses.insert(0, first)
        for flat, key in ADDRESS_FIELDS.items():
            if flat in values:
                first[key] = None if _blank(values[flat]) else str(values[flat])
        for a in addresses:
            for key in [k for k, v in a.items() if v is None]:
                del a[key]
        addresses = [a for a in addresses if set(a) - {"kind"}]
    body["street_addresses"] = addresses
    entries = {
        str(e["custom_field_id"]): {
            k: v for k, v in e.items() if k in ("custom_field_id", "value", "choice_ids")
        }
        for e in current.get("custom_fields") or []
    }
    for name, value in values.items():
        cf = custom.by_remote_name.get(name)
        if cf is None:
            continue
        entry = _cf_entry(cf, value)
        if entry is None:
            entries.pop(cf.id, None)
        else:
            entries[cf.id] = entry
    body["custom_fields"] = list(entries.values())
    return body


def create_body(values: dict[str, Any], custom: CustomFields) -> dict[str, Any]:
    """A full ``POST /contacts`` body (used for people who must be created unsubscribed).

    No ``list_memberships``: the OpenAPI document marks them read-only on this endpoint, and an
    unsubscribed person receives no list mail anyway.
    """
    body = put_body({}, values, custom)
    body.pop("update_source")
    return {**body, "create_source": "Account"}


def comparable(raw: dict[str, Any]) -> dict[str, Any]:
    """What a PUT body would say about the current contact: used to skip writes that change nothing."""
    return put_body(raw, {}, CustomFields({}))
