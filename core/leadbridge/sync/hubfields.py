"""The hub's own fields: their types, options, and reading/writing them on the store's models.

Contacts: email, first_name, last_name, phone, title, company_name, status, score, consent,
unsubscribed and ``custom.<key>`` (kept in ``Contact.custom``). Companies: name, domain, phone and
``custom.<key>``. A custom field takes the type of the remote field it is mapped to.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from ..models import Company, Contact
from ..types import FieldType, HubKind

CUSTOM_PREFIX = "custom."

CONTACT_FIELDS: dict[str, FieldType] = {
    "email": FieldType.EMAIL,
    "first_name": FieldType.TEXT,
    "last_name": FieldType.TEXT,
    "phone": FieldType.PHONE,
    "title": FieldType.TEXT,
    "company_name": FieldType.TEXT,
    "status": FieldType.TEXT,
    "score": FieldType.NUMBER,
    "consent": FieldType.SELECT,
    "unsubscribed": FieldType.BOOLEAN,
}
COMPANY_FIELDS: dict[str, FieldType] = {
    "name": FieldType.TEXT,
    "domain": FieldType.TEXT,
    "phone": FieldType.PHONE,
}
#: Options of the hub's select fields (a value map's keys must come from here).
HUB_CHOICES: dict[str, tuple[str, ...]] = {
    "consent": ("none", "single_opt_in", "double_opt_in", "confirmed"),
}


def hub_fields(kind: HubKind | str) -> dict[str, FieldType]:
    """The fixed fields of a hub record kind (custom ones excluded)."""
    return COMPANY_FIELDS if HubKind(kind) is HubKind.COMPANY else CONTACT_FIELDS


def hub_field_type(kind: HubKind | str, name: str, remote_type: FieldType | None = None) -> FieldType:
    """The type of hub field ``name``; a ``custom.<key>`` field adopts ``remote_type`` (text if unknown).

    :raises ConfigError: no such hub field.
    """
    if name.startswith(CUSTOM_PREFIX) and len(name) > len(CUSTOM_PREFIX):
        return remote_type or FieldType.TEXT
    fields = hub_fields(kind)
    if name not in fields:
        raise ConfigError(f"{name!r} is not a hub {HubKind(kind).value} field", code="unknown_hub_field")
    return fields[name]


def get_value(record: Contact | Company, name: str) -> Any:
    """Read hub field ``name`` from a contact or company row."""
    if name.startswith(CUSTOM_PREFIX):
        return (record.custom or {}).get(name[len(CUSTOM_PREFIX) :])
    return getattr(record, name)


def set_value(record: Contact | Company, name: str, value: Any) -> None:
    """Write hub field ``name`` on a contact or company row (email keeps its match key in step)."""
    if name.startswith(CUSTOM_PREFIX):
        custom = dict(record.custom or {})
        key = name[len(CUSTOM_PREFIX) :]
        if value is None:
            custom.pop(key, None)
        else:
            custom[key] = value
        record.custom = custom  # a new dict, so SQLAlchemy sees the change
        return
    if isinstance(record, Contact) and name == "email":
        record.set_email(value)
        return
    if isinstance(record, Company) and name == "name":
        record.name = value or ""
        record.name_key = company_key(value)
        return
    if name == "unsubscribed":
        value = bool(value)
    if name == "consent" and value is None:
        value = "none"
    setattr(record, name, value)


def company_key(name: str | None) -> str:
    """The matching key of a company name: trimmed, inner whitespace collapsed, lower-cased."""
    return " ".join((name or "").split()).lower()
