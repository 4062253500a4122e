"""Pipedrive's side: persons read (API v2, cursor pages, ``updated_since``), their field
definitions, the Newsletter option, and the v1 webhooks that announce changes.

Custom field values are keyed by 40-character hashes in Pipedrive; the hub sees them by field name
(``cf:<name>``), the name Maileon gets too. Option fields carry option ids; the hub gets labels.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from leadbridge import clock as clocks
from leadbridge.connection_view import ConnectionView
from leadbridge.errors import ConfigError, RecordError
from leadbridge.http import VendorClient
from leadbridge.toolkit.answers import dig, json_body
from leadbridge.toolkit.paging import CursorParam, read_all, read_page, records_at
from leadbridge.types import Choice, Contact, FieldType, Outcome, Page, RecordResult, RemoteField

from .info import MAX_CUSTOM_FIELDS, PERSON

PAGE_SIZE = 500
PAGES = CursorParam(
    records_at("data"), next_cursor=lambda body: dig(body, ["additional_data", "next_cursor"])
)

#: The Newsletter option the connector adds to persons, and what each choice means in the hub.
SUBSCRIBE, UNSUBSCRIBE = "Subscribe", "Unsubscribe"
NEWSLETTER = "newsletter"  # the hub-side name of the Newsletter field
CONSENTS = (
    Choice("single_opt_in", SUBSCRIBE),
    Choice("double_opt_in", f"{SUBSCRIBE} (double opt-in)"),
    Choice("confirmed", f"{SUBSCRIBE} (confirmed)"),
    Choice("none", UNSUBSCRIBE),
)
CUSTOM_PREFIX = "cf:"

#: Pipedrive field type → hub type, for the custom fields a connection relays.
HUB_TYPES = {
    "varchar": FieldType.TEXT,
    "varchar_auto": FieldType.TEXT,
    "text": FieldType.TEXT,
    "phone": FieldType.PHONE,
    "double": FieldType.NUMBER,
    "monetary": FieldType.NUMBER,
    "date": FieldType.DATE,
    "enum": FieldType.SELECT,
    "set": FieldType.MULTISELECT,
}

#: Webhook deliveries arrive one per request, each with its own client: field definitions are
#: kept here for a few minutes (per connection and API origin) instead of read on every delivery.
DEFINITIONS_TTL = 300.0
_definitions: dict[tuple[int, str], tuple[float, list[dict[str, Any]]]] = {}
_lookups: dict[tuple[int, str, str], tuple[float, Any]] = {}
_definitions_lock = threading.Lock()


def rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    text = str(value).replace("Z", "+00:00")
    if "T" not in text:  # v1 payloads: "YYYY-MM-DD HH:MM:SS", UTC
        text = text.replace(" ", "T") + "+00:00"
    return datetime.fromisoformat(text).astimezone(UTC)


# -- field definitions ---------------------------------------------------------------------------


def person_fields(
    connection: ConnectionView, client: VendorClient, *, fresh: bool = False, shared: bool = False
) -> list[dict[str, Any]]:
    """Every person field definition (built-in and custom), paged; read once per run, or, for
    webhook deliveries (``shared``), once per few minutes and connection."""
    run = client.run_cache("pipedrive_person_fields")
    if "rows" in run and not fresh:
        return list(run["rows"])
    key = (connection.id, client.destination(client.url("/")))  # the host really called
    now = clocks.monotonic()
    with _definitions_lock:
        cached = _definitions.get(key)
    if shared and cached and not fresh and now - cached[0] < DEFINITIONS_TTL:
        return cached[1]
    rows = list(read_all(client, PAGES, "/api/v2/personFields", {"limit": PAGE_SIZE}))
    run["rows"] = rows
    with _definitions_lock:
        _definitions[key] = (now, rows)
    return rows


def shared_lookup(
    connection: ConnectionView, client: VendorClient, name: str, load: Callable[[], Any]
) -> Any:
    """A small vendor fact kept a few minutes per connection and host (webhook deliveries come one
    per request, each with its own client: a lookup per delivery would spend Pipedrive's burst
    budget inside the vendor's 10 s acknowledgement window)."""
    key = (connection.id, client.destination(client.url("/")), name)
    now = clocks.monotonic()
    with _definitions_lock:
        cached = _lookups.get(key)
    if cached and now - cached[0] < DEFINITIONS_TTL:
        return cached[1]
    value = load()
    with _definitions_lock:
        _lookups[key] = (now, value)
    return value


def own_user_id(connection: ConnectionView, client: VendorClient) -> str:
    """The id of the user whose token this connection uses (its own API changes echo back)."""
    return str(
        shared_lookup(
            connection, client, "me", lambda: dig(json_body(client.get("/v1/users/me")), ["data", "id"])
        )
    )


def forget_definitions(connection: ConnectionView, client: VendorClient) -> None:
    client.run_cache("pipedrive_person_fields").clear()
    connection_id = connection.id
    with _definitions_lock:
        for key in [k for k in _definitions if k[0] == connection_id]:
            del _definitions[key]


def newsletter_name(connection: ConnectionView) -> str:
    return str(connection.setting("newsletter_field") or "Newsletter").strip()


def newsletter_field(
    connection: ConnectionView, client: VendorClient, *, shared: bool = False
) -> dict[str, Any]:
    """The Newsletter option field, created in Pipedrive when missing (needs the admin's token)."""
    name = newsletter_name(connection)
    found = _by_name(person_fields(connection, client, shared=shared), name)
    if found is None:
        found = _by_name(person_fields(connection, client, fresh=True), name)
    if found is not None:
        if found.get("field_type") != "enum" or not _option_id(found, SUBSCRIBE):
            raise ConfigError(
                f"Pipedrive's person field {name!r} must be a single option field with the options"
                f" {SUBSCRIBE!r} and {UNSUBSCRIBE!r}"
            )
        return found
    body = json_body(
        client.post(
            "/api/v2/personFields",
            json={
                "field_name": name,
                "field_type": "enum",
                "options": [{"label": SUBSCRIBE}, {"label": UNSUBSCRIBE}],
            },
        )
    )
    forget_definitions(connection, client)
    created = dig(body, ["data"])
    if not isinstance(created, dict):
        raise RecordError("Pipedrive did not return the Newsletter field it created")
    return created


def chosen_custom_fields(
    connection: ConnectionView, client: VendorClient, *, shared: bool = False, fresh: bool = False
) -> list[dict[str, Any]]:
    """The (at most five) custom person fields the admin chose, by name; unknown names refused."""
    raw = str(connection.setting("custom_fields") or "")
    names = [n.strip() for n in raw.split(",") if n.strip()]
    if len(names) > MAX_CUSTOM_FIELDS:
        raise ConfigError(f"choose at most {MAX_CUSTOM_FIELDS} custom fields, not {len(names)}")
    defs = [
        d for d in person_fields(connection, client, shared=shared, fresh=fresh) if d.get("is_custom_field")
    ]
    chosen = []
    for name in names:
        found = _by_name(defs, name)
        if found is None:
            known = ", ".join(sorted(str(d.get("field_name")) for d in defs)) or "none"
            raise ConfigError(f"Pipedrive has no person custom field {name!r} (its custom fields: {known})")
        chosen.append(found)
    return chosen


def _by_name(defs: Iterable[Mapping[str, Any]], name: str) -> dict[str, Any] | None:
    wanted = name.casefold()
    return next((dict(d) for d in defs if str(d.get("field_name", "")).casefold() == wanted), None)


def _option_id(definition: Mapping[str, Any], label: str) -> int | None:
    for option in definition.get("options") or ():
        if str(option.get("label", "")).casefold() == label.casefold():
            return int(option["id"])
    return None


def _option_label(definition: Mapping[str, Any], option_id: Any) -> str | None:
    for option in definition.get("options") or ():
        if str(option.get("id")) == str(option_id):
            return str(option.get("label"))
    return None


def remote_fields(
    connection: ConnectionView, client: VendorClient, *, fresh: bool = False
) -> list[RemoteField]:
    """Person fields as the hub sees them, with the preset mappings to hub fields (``fresh``: read
    the definitions again, for ``field_types``, whose answer the core caches itself)."""
    read_only = dict(writable=False, object_type=PERSON)
    fields = [
        RemoteField("email", "Email", FieldType.EMAIL, hub_field="email", **read_only),
        RemoteField("first_name", "First name", FieldType.TEXT, hub_field="first_name", **read_only),
        RemoteField("last_name", "Last name", FieldType.TEXT, hub_field="last_name", **read_only),
        RemoteField("name", "Full name", FieldType.TEXT, **read_only),
        RemoteField("organization", "Organization", FieldType.TEXT, hub_field="company_name", **read_only),
        RemoteField("phone", "Phone", FieldType.PHONE, hub_field="phone", **read_only),
        RemoteField("job_title", "Job title", FieldType.TEXT, hub_field="title", **read_only),
        RemoteField("id", "Pipedrive ID", FieldType.TEXT, hub_field="custom.pipedrive_id", **read_only),
        RemoteField(
            NEWSLETTER,
            newsletter_name(connection),
            FieldType.SELECT,
            object_type=PERSON,
            custom=True,
            choices=CONSENTS,
            hub_field="consent",
            vendor_type="enum",
        ),
    ]
    for d in chosen_custom_fields(connection, client, fresh=fresh):
        name = str(d["field_name"])
        fields.append(
            RemoteField(
                CUSTOM_PREFIX + name,
                name,
                HUB_TYPES.get(str(d.get("field_type")), FieldType.TEXT),
                custom=True,
                hub_field=f"custom.{slug(name)}",
                choices=tuple(Choice(str(o["label"]), str(o["label"])) for o in d.get("options") or ()),
                vendor_type=str(d.get("field_type")),
                **read_only,
            )
        )
    return fields


def slug(name: str) -> str:
    """A hub custom-field key for a Pipedrive field name (``Lead source`` → ``lead_source``)."""
    out = "".join(c if c.isalnum() else "_" for c in name.strip().casefold())
    return "_".join(p for p in out.split("_") if p) or "field"


# -- persons -------------------------------------------------------------------------------------


def fetch_persons(
    connection: ConnectionView, client: VendorClient, since: datetime | None, cursor: str | None
) -> Page[Contact]:
    params: dict[str, Any] = {"sort_by": "update_time", "sort_direction": "asc", "limit": PAGE_SIZE}
    if since is not None:
        params["updated_since"] = rfc3339(since)
    page = read_page(client, PAGES, "/api/v2/persons", params, cursor)
    reader = PersonReader(connection, client)
    return Page([reader.contact(row) for row in page.rows], page.next_cursor)


class PersonReader:
    """Turns v2 person records (list rows and webhook payloads) into hub contacts."""

    def __init__(self, connection: ConnectionView, client: VendorClient, *, shared: bool = False) -> None:
        self.client, self.connection, self.shared = client, connection, shared
        self.newsletter = newsletter_field(connection, client, shared=shared)
        self.custom = chosen_custom_fields(connection, client, shared=shared)
        self.orgs: dict[str, str | None] = client.run_cache("pipedrive_organizations")

    def contact(self, row: Mapping[str, Any], *, deleted: bool = False) -> Contact:
        custom = row.get("custom_fields") or {}
        chosen = custom.get(self.newsletter["field_code"])
        label = _option_label(self.newsletter, chosen) if chosen is not None else None
        fields: dict[str, Any] = {
            "email": primary(row.get("emails")),
            "first_name": row.get("first_name"),
            "last_name": row.get("last_name"),
            "name": row.get("name"),
            "organization": self.organization(row.get("org_id")),
            "phone": primary(row.get("phones")),
            "job_title": row.get("job_title"),
            "id": str(row["id"]),
            NEWSLETTER: "single_opt_in" if label and label.casefold() == SUBSCRIBE.casefold() else "none",
        }
        for d in self.custom:
            value = custom.get(d["field_code"])
            fields[CUSTOM_PREFIX + str(d["field_name"])] = _custom_to_hub(d, value)
        return Contact(
            email=fields["email"],
            remote_id=str(row["id"]),
            fields=fields,
            modified_at=parse_time(row.get("update_time")),
            deleted=deleted or bool(row.get("is_deleted")),
        )

    def organization(self, org_id: Any) -> str | None:
        if isinstance(org_id, dict):  # v1 shapes expand it
            return org_id.get("name")
        if not org_id:
            return None
        key = str(int(org_id))
        if key not in self.orgs:
            if self.shared:
                self.orgs[key] = shared_lookup(
                    self.connection, self.client, f"org:{key}", lambda: self._org(key)
                )
            else:
                self.orgs[key] = self._org(key)
        return self.orgs[key]

    def _org(self, key: str) -> str | None:
        response = self.client.get(f"/api/v2/organizations/{key}", ok_statuses=frozenset({404}))
        return None if response.status_code == 404 else dig(json_body(response), ["data", "name"])


def primary(values: Any) -> str | None:
    """The primary (else the first) value of Pipedrive's ``emails``/``phones`` lists."""
    if isinstance(values, str):
        return values or None
    items = [v for v in values or () if isinstance(v, dict) and v.get("value")]
    chosen = next((v for v in items if v.get("primary")), items[0] if items else None)
    return str(chosen["value"]) if chosen else None


def _custom_to_hub(definition: Mapping[str, Any], value: Any) -> Any:
    kind = definition.get("field_type")
    if value is None or value == "":
        return None
    if kind == "enum":
        return _option_label(definition, value)
    if kind == "set":
        ids = value if isinstance(value, list) else str(value).split(",")
        return [label for i in ids if (label := _option_label(definition, i))]
    if kind == "monetary" and isinstance(value, dict):
        return value.get("value")
    if isinstance(value, dict):
        return value.get("value") or value.get("formatted_address")
    return value


def write_newsletter(
    connection: ConnectionView, client: VendorClient, contacts: Sequence[Contact]
) -> list[RecordResult]:
    """Set the Newsletter option of linked persons (the only person field leadbridge writes)."""
    definition = newsletter_field(connection, client)
    results = []
    for c in contacts:
        if not c.remote_id:
            results.append(RecordResult(Outcome.FAILED, ref=c.ref, reason="not a Pipedrive person"))
            continue
        body: dict[str, Any] = {}
        if NEWSLETTER in c.fields:
            subscribed = c.fields[NEWSLETTER] not in (None, "none")
            option = _option_id(definition, SUBSCRIBE if subscribed else UNSUBSCRIBE)
            body["custom_fields"] = {definition["field_code"]: option}
        if not body:
            results.append(RecordResult(Outcome.UNCHANGED, ref=c.ref, remote_id=c.remote_id))
            continue
        response = client.patch(f"/api/v2/persons/{c.remote_id}", json=body, ok_statuses=frozenset({404}))
        if response.status_code == 404:
            results.append(
                RecordResult(
                    Outcome.FAILED, ref=c.ref, reason="the person is gone from Pipedrive", code="not_found"
                )
            )
            continue
        results.append(RecordResult(Outcome.UPDATED, ref=c.ref, remote_id=c.remote_id))
    return results


# -- webhooks ------------------------------------------------------------------------------------

WEBHOOK_USER = "leadbridge"
PERSON_EVENTS = (("person", "create"), ("person", "change"), ("person", "delete"))
DEAL_EVENTS = (("deal", "create"), ("deal", "change"))


def wanted_webhooks(connection: ConnectionView) -> list[tuple[str, str]]:
    wanted: list[tuple[str, str]] = []
    if connection.setting("contacts_sync", True):
        wanted.extend(PERSON_EVENTS)
    if connection.setting("deals_sync", False):
        wanted.extend(DEAL_EVENTS)
    return wanted


def register_webhooks(connection: ConnectionView, client: VendorClient, url: str, secret: str) -> list[str]:
    """One webhook per wanted (object, action), re-used when it already points at ``url``; extra
    copies pointing there are removed (each would deliver every event once more)."""
    existing = dig(json_body(client.get("/v1/webhooks")), ["data"]) or []
    ours = [w for w in existing if isinstance(w, dict) and w.get("subscription_url") == url]
    kept: dict[tuple[str, str], str] = {}
    for hook in sorted(ours, key=lambda w: int(w["id"])):
        pair = (str(hook.get("event_object")), str(hook.get("event_action")))
        if pair in kept:
            unregister_webhooks(client, [str(hook["id"])])
        else:
            kept[pair] = str(hook["id"])
    ids = []
    for event_object, event_action in wanted_webhooks(connection):
        if (event_object, event_action) in kept:
            ids.append(kept[(event_object, event_action)])
            continue
        response = client.post(
            "/v1/webhooks",
            json={
                "subscription_url": url,
                "event_action": event_action,
                "event_object": event_object,
                "name": f"leadbridge: {connection.name}"[:255],
                "version": "2.0",
                "http_auth_user": WEBHOOK_USER,
                "http_auth_password": secret,
            },
            ok_statuses=frozenset({422}),
        )
        if response.status_code == 422:
            raise ConfigError("Pipedrive allows 40 webhooks per user and this user has them all; remove some")
        ids.append(str(dig(json_body(response), ["data", "id"])))
    return ids


def unregister_webhooks(client: VendorClient, webhook_ids: Sequence[str]) -> None:
    for webhook_id in webhook_ids:
        client.delete(f"/v1/webhooks/{webhook_id}", ok_statuses=frozenset({404}))
