"""Describe → hub field types, preset mappings, and value conversion in both directions."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from leadbridge.connection_view import ConnectionView
from leadbridge.types import Choice, Direction, FieldType, RemoteField

TYPES = {
    "string": FieldType.TEXT,
    "combobox": FieldType.TEXT,
    "id": FieldType.TEXT,
    "reference": FieldType.TEXT,
    "encryptedstring": FieldType.TEXT,
    "textarea": FieldType.TEXTAREA,
    "email": FieldType.EMAIL,
    "phone": FieldType.PHONE,
    "url": FieldType.URL,
    "picklist": FieldType.SELECT,
    "multipicklist": FieldType.MULTISELECT,
    "boolean": FieldType.BOOLEAN,
    "int": FieldType.NUMBER,
    "double": FieldType.NUMBER,
    "currency": FieldType.NUMBER,
    "percent": FieldType.NUMBER,
    "long": FieldType.NUMBER,
    "date": FieldType.DATE,
    "datetime": FieldType.DATETIME,
    "time": FieldType.TIME,
}
# Compound and binary fields cannot be mapped one-to-one (their parts, e.g. City, are listed on their own).
SKIPPED_TYPES = frozenset({"address", "location", "base64", "anyType", "complexvalue", "json"})

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
    return field.get("type") not in SKIPPED_TYPES


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
                type=TYPES.get(str(f.get("type")), FieldType.TEXT),
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
    if value is None:
        return None
    if sf_type == "multipicklist":
        return [v for v in str(value).split(";") if v]
    if sf_type == "datetime":
        return parse_datetime(str(value)).isoformat()
    return value


def to_salesforce(value: Any, sf_type: str | None) -> Any:
    """A hub value in the shape Salesforce accepts for a field of ``sf_type``."""
    if value is None:
        return None
    if sf_type == "multipicklist" and isinstance(value, list | tuple | set):
        return ";".join(str(v) for v in value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if sf_type in ("string", "textarea", "url", "phone", "email", "picklist", "combobox") and not isinstance(
        value, str
    ):
        return str(value)  # the brief's score field is text; the hub's score is a number
    if sf_type == "boolean" and isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return value


def parse_datetime(value: str) -> datetime:
    """``2025-05-20T20:49:32.000+0000`` (Salesforce's form) or ISO 8601."""
    text = value.replace("Z", "+00:00")
    if len(text) >= 5 and text[-5] in "+-" and text[-3] != ":":
        text = f"{text[:-2]}:{text[-2:]}"
    return datetime.fromisoformat(text)
