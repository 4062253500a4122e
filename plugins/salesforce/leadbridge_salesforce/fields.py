"""Describe → hub field types, preset mappings, and value conversion in both directions."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from leadbridge.connection_view import ConnectionView
from leadbridge.toolkit.vendortypes import TypeTable, VendorType, boolean, iso, join, split, text
from leadbridge.types import Choice, Direction, FieldType, RemoteField

#: Salesforce field types: the hub type and the wire form of each (describe's ``type``).
TYPES = TypeTable(
    *(VendorType(name, FieldType.TEXT, write=text) for name in ("string", "combobox", "encryptedstring")),
    VendorType("id", FieldType.TEXT),
    VendorType("reference", FieldType.TEXT),
    # The brief's score field is text, the hub's score a number: text fields take any value as text.
    VendorType("textarea", FieldType.TEXTAREA, write=text),
    VendorType("email", FieldType.EMAIL, write=text),
    VendorType("phone", FieldType.PHONE, write=text),
    VendorType("url", FieldType.URL, write=text),
    VendorType("picklist", FieldType.SELECT, write=text),
    VendorType("multipicklist", FieldType.MULTISELECT, read=split(";"), write=join(";")),
    VendorType("boolean", FieldType.BOOLEAN, write=boolean()),
    *(VendorType(name, FieldType.NUMBER) for name in ("int", "double", "currency", "percent", "long")),
    VendorType("date", FieldType.DATE, write=text),
    VendorType("datetime", FieldType.DATETIME, read=iso(lambda v: parse_datetime(v)), write=text),
    VendorType("time", FieldType.TIME, write=text),
    # Compound and binary fields cannot be mapped one-to-one (their parts, e.g. City, are listed apart).
    *(
        VendorType(name, None)
        for name in ("address", "location", "base64", "anyType", "complexvalue", "json")
    ),
)

PRESETS: dict[str, dict[str, str]] = {
    "Lead": {
        "Email": "email",
        "FirstName": "first_name",
        "LastName": "last_name",
        "Phone": "phone",
        "Title": "title",
        "Company": "company_name",
    },
    "Contact": {
        "Email": "email",
        "FirstName": "first_name",
        "LastName": "last_name",
        "Phone": "phone",
        "Title": "title",
    },
    # Website is a URL ("https://acme.fi"), the hub's domain a bare host: left for the admin to map.
    "Account": {"Name": "name", "Phone": "phone"},
}
PUSH_ONLY = frozenset({Direction.TO_CRM})
PULL_ONLY = frozenset({Direction.FROM_CRM})


def usable(field: dict[str, Any]) -> bool:
    return TYPES.synced(field.get("type"))


def field_map(describe: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Describe's fields by API name (only those field-level security lets this user see)."""
    return {f["name"]: f for f in describe.get("fields", []) if usable(f)}


def find(describe: dict[str, Any], wanted: str | None) -> dict[str, Any] | None:
    """A field by API name, case-insensitively (admins type ``score__c`` for ``Score__c``)."""
    if not wanted:
        return None
    lowered = wanted.lower()
    for f in describe.get("fields", []):
        if f["name"].lower() == lowered:
            return f  # type: ignore[no-any-return]
    return None


def remote_fields(
    connection: ConnectionView, object_type: str, describe: dict[str, Any]
) -> list[RemoteField]:
    presets = dict(PRESETS.get(object_type, {}))
    push_only: dict[str, str] = {}
    filled: set[str] = set()
    if object_type == "Lead":
        for setting, hub_name in (("score_field", "score"), ("status_field", "status")):
            f = find(describe, connection.setting(setting))
            if f is not None:
                push_only[f["name"]] = hub_name
        url = find(describe, connection.setting("lead_url_field"))
        if url is not None:
            filled.add(url["name"])
    result = []
    for f in describe.get("fields", []):
        if not usable(f):
            continue
        name = f["name"]
        writable = bool(f.get("createable") or f.get("updateable")) and not f.get("calculated")
        directions = (
            frozenset({Direction.TO_CRM, Direction.FROM_CRM, Direction.BOTH}) if writable else PULL_ONLY
        )
        if object_type == "Contact":
            directions, writable = PULL_ONLY, False  # contacts are the sales team's: never written
        hub: str | None = presets.get(name)
        label = str(f.get("label") or name)
        if name in push_only:
            directions, hub = PUSH_ONLY, push_only[name]
        if name in filled:
            directions, label = PUSH_ONLY, f"{label} (filled by leadbridge with the contact's link)"
        result.append(
            RemoteField(
                name=name,
                label=label,
                type=TYPES.hub_type(str(f.get("type"))) or FieldType.TEXT,
                object_type=object_type,
                required=bool(
                    f.get("createable")
                    and not f.get("nillable")
                    and not f.get("defaultedOnCreate")
                    and f.get("type") != "boolean"
                ),
                writable=writable,
                readable=True,
                custom=bool(f.get("custom")),
                choices=tuple(
                    Choice(str(p["value"]), str(p.get("label") or p["value"]))
                    for p in f.get("picklistValues") or []
                    if p.get("active", True)
                ),
                hub_field=hub,
                directions=directions,
                vendor_type=str(f.get("type")),
            )
        )
    return result


def from_salesforce(value: Any, sf_type: str) -> Any:
    """A queried value in the hub's terms (ISO strings for dates, lists for multi-selects)."""
    return TYPES.to_hub(value, sf_type)


def to_salesforce(value: Any, sf_type: str | None) -> Any:
    """A hub value in the shape Salesforce accepts for a field of ``sf_type``."""
    if isinstance(value, datetime | date) and sf_type not in TYPES:
        return value.isoformat()
    return TYPES.to_vendor(value, sf_type)


def parse_datetime(value: str) -> datetime:
    """``2025-05-20T20:49:32.000+0000`` (Salesforce's form) or ISO 8601."""
    text = value.replace("Z", "+00:00")
    if len(text) >= 5 and text[-5] in "+-" and text[-3] != ":":
        text = f"{text[:-2]}:{text[-2:]}"
    return datetime.fromisoformat(text)
