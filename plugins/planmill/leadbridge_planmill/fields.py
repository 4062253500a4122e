"""PlanMill fields in hub terms: types from the ``/{resource}/meta`` answers, value conversion both
ways, and the standard fields preset to hub fields."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from leadbridge.errors import ConfigError
from leadbridge.http import VendorClient
from leadbridge.toolkit.vendortypes import TypeTable, VendorType
from leadbridge.types import Choice, Direction, FieldType, RemoteField

from .dates import format_dt, parse_dt

RESOURCES = {"contact": "contacts", "account": "accounts", "action": "actions", "campaign": "campaigns"}

# Writable fields and the ones PlanMill types as integers (contact_post / account_post schemas).
CONTACT_WRITABLE = frozenset(
    {
        "firstName",
        "lastName",
        "title",
        "department",
        "languageCode",
        "workPhone",
        "mobilePhone",
        "email",
        "secondaryEmail",
        "passive",
        "secondaryDepartment",
        "secondaryAddress",
        "secondaryPostalCode",
        "secondaryCity",
        "secondaryState",
        "secondaryCountry",
        "campaigns",
        "skype",
        "googleTalk",
        "linkedIn",
        "twitter",
        "facebook",
        "blog",
        "description",
        "primaryPhone",
        "primaryAddress",
        "primaryPostalCode",
        "primaryCity",
        "primaryCountry",
        "website",
    }
)
ACCOUNT_WRITABLE = frozenset(
    {
        "name",
        "passive",
        "owner",
        "type",
        "vatId",
        "businessId",
        "termsOfPayment",
        "eInvoicingAddress",
        "phone",
        "website",
        "email",
        "industry",
        "serviceLevel",
        "description",
        "invoiceChannel",
        "invoiceEmail",
        "twitter",
        "facebook",
        "blog",
        "lineOfBusiness",
        "staff",
        "turnover",
        "billingAddress",
        "billingCity",
        "billingPostalCode",
        "billingState",
        "billingCountry",
        "shippingAddress",
        "shippingCity",
        "shippingPostalCode",
        "shippingState",
        "shippingCountry",
        "parentAccount",
    }
)
ACTION_WRITABLE = frozenset(
    {
        "subject",
        "type",
        "status",
        "priority",
        "description",
        "start",
        "dueDate",
        "location",
        "private",
        "reminder",
        "responsible",
        "contact",
        "campaign",
        "performers",
    }
)
INTEGER_FIELDS = {
    "contact": frozenset(
        {"passive", "primaryCountry", "secondaryCountry", "campaigns", "account", "accountType"}
    ),
    "account": frozenset(
        {
            "passive",
            "owner",
            "type",
            "termsOfPayment",
            "industry",
            "serviceLevel",
            "invoiceChannel",
            "staff",
            "turnover",
            "billingCountry",
            "shippingCountry",
            "parentAccount",
            "lineOfBusiness",
        }
    ),
    "action": frozenset({"type", "status", "priority", "private", "reminder", "responsible", "contact"}),
}
WRITABLE = {"contact": CONTACT_WRITABLE, "account": ACCOUNT_WRITABLE, "action": ACTION_WRITABLE}
DATETIME_FIELDS = frozenset({"created", "modified", "start", "dueDate", "finish"})
REQUIRED = {
    "contact": frozenset({"lastName"}),
    "account": frozenset({"name"}),
    "action": frozenset({"subject"}),
}

# String fields the schemas do not let be null.
NOT_NULL = frozenset({"firstName", "lastName", "name", "subject"})

PRESETS = {
    "contact": {
        "email": "email",
        "firstName": "first_name",
        "lastName": "last_name",
        "title": "title",
        "mobilePhone": "phone",
    },
    "account": {"name": "name", "phone": "phone"},
}
# Link and audit fields the connector manages itself; never offered for mapping.
HIDDEN = frozenset({"id", "account", "accountName", "accountType", "invoiceXsl"})

#: PlanMill field formats (``/{resource}/meta``) -> hub types. Values are converted by field name
#: (PlanMill's meta does not type its datetimes and enumeration ids): see to_hub / to_planmill.
FORMATS = TypeTable(
    VendorType("emaillink", FieldType.EMAIL),
    VendorType("email", FieldType.EMAIL),
    VendorType("weblink", FieldType.URL),
    VendorType("linkedin", FieldType.URL),
    VendorType("mediumdate", FieldType.DATETIME),
    VendorType("int", FieldType.NUMBER),
    VendorType("currency", FieldType.NUMBER),
)


def resource(object_type: str) -> str:
    try:
        return RESOURCES[object_type]
    except KeyError:
        raise ConfigError(f"PlanMill has no object {object_type!r}") from None


def field_types(client: VendorClient, object_type: str) -> list[RemoteField]:
    if object_type == "campaign":
        return [
            RemoteField("name", "Name", FieldType.TEXT, "campaign", writable=False),
            RemoteField("members", "Members", FieldType.NUMBER, "campaign", writable=False),
        ]
    meta = client.get(f"{resource(object_type)}/meta").json()
    fields = meta.get("fields") if isinstance(meta, dict) else None
    # /contacts/meta maps value -> label; /accounts/meta and /actions/meta map label -> value.
    label_first = object_type != "contact"
    result: dict[str, RemoteField] = {}
    for name, spec in (fields or {}).items():
        if name in HIDDEN or not isinstance(spec, Mapping):
            continue
        result[name] = describe(object_type, name, spec, label_first=label_first)
    for name in sorted(WRITABLE.get(object_type, frozenset()) - set(result) - HIDDEN):
        # Writable fields the list meta leaves out (secondaryEmail, description...).
        result[name] = describe(object_type, name, {"format": "text"}, label_first=label_first)
    return sorted(result.values(), key=lambda f: f.name)


def describe(object_type: str, name: str, spec: Mapping[str, Any], *, label_first: bool) -> RemoteField:
    fmt = str(spec.get("format") or "")
    values = spec.get("values")
    choices: tuple[Choice, ...] = ()
    if isinstance(values, Mapping) and values:
        choices = parse_choices(values, label_first=label_first)
        ftype = FieldType.SELECT
    elif name in DATETIME_FIELDS:
        ftype = FieldType.DATETIME
    elif fmt.startswith("Enumeration values") or name in INTEGER_FIELDS.get(object_type, frozenset()):
        ftype = FieldType.NUMBER  # an enumeration id; its labels live in /enumerations
    elif "phone" in name.lower() or name == "fax":
        ftype = FieldType.PHONE
    else:
        ftype = FORMATS.hub_type(fmt) or FieldType.TEXT
    writable = name in WRITABLE.get(object_type, frozenset())
    caption = spec.get("caption")
    label = (
        caption
        if isinstance(caption, str) and caption and not caption.startswith(("_", "fileicon"))
        else name
    )
    return RemoteField(
        name=name,
        label=label,
        type=ftype,
        object_type=object_type,
        required=name in REQUIRED.get(object_type, frozenset()),
        writable=writable,
        choices=choices,
        hub_field=PRESETS.get(object_type, {}).get(name),
        directions=frozenset(Direction) if writable else frozenset({Direction.FROM_CRM}),
        vendor_type=fmt or None,
    )


def parse_choices(values: Mapping[str, Any], *, label_first: bool) -> tuple[Choice, ...]:
    """Meta ``values`` maps are label -> value or value -> label depending on the resource."""
    keys = [str(k) for k in values]
    vals = [str(v) for v in values.values()]
    if all(_idlike(v) for v in vals) and not all(_idlike(k) for k in keys):
        label_first = True
    elif all(_idlike(k) for k in keys) and not all(_idlike(v) for v in vals):
        label_first = False
    pairs = zip(vals, keys, strict=True) if label_first else zip(keys, vals, strict=True)
    return tuple(Choice(value=v, label=lab) for v, lab in pairs if v != "-1")


def _idlike(text: str) -> bool:
    return text.lstrip("-").isdigit()


def to_hub(object_type: str, name: str, value: Any) -> Any:
    """A PlanMill value in the hub type of its field."""
    if value is None:
        return None
    if name in DATETIME_FIELDS:
        return parse_dt(value)
    return value


def to_planmill(object_type: str, name: str, value: Any) -> Any:
    """A hub value as PlanMill wants it: integers for enumerations and links, PlanMill datetimes."""
    if value is None or value == "":
        return None if name not in ("email", "secondaryEmail") else ""
    if name in INTEGER_FIELDS.get(object_type, frozenset()):
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a whole number, got {value!r}") from None
    if isinstance(value, datetime):
        return format_dt(value)
    if isinstance(value, bool):
        return int(value)
    return value if isinstance(value, int | float) else str(value)


def writable_body(object_type: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The mapped fields PlanMill accepts on a write, converted; unknown names are dropped."""
    allowed = WRITABLE[object_type]
    body: dict[str, Any] = {}
    for name, value in fields.items():
        if name not in allowed:
            continue
        converted = to_planmill(object_type, name, value)
        if converted is None and name in NOT_NULL:
            if name in REQUIRED.get(object_type, frozenset()):
                continue  # never blank a required field
            converted = ""
        body[name] = converted
    return body
