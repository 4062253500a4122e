"""leadbridge-example: the reference connector for ExampleCRM (copy it to start a new connector).

Every hook of :mod:`leadbridge.hookspecs` is implemented here in the plainest way: declarative
metadata, one small function per vendor quirk, and every call through the core's ``client`` (which
owns retries, pacing, token renewal and redaction). Its vendor is served on loopback by
:class:`leadbridge_example.sandbox.ExampleSandbox`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import requests
from leadbridge import clock as clocks
from leadbridge import hookimpl
from leadbridge.connection_view import ConnectionView
from leadbridge.errors import AuthError, ConfigError, LeadbridgeError, QuotaExhausted, RecordError
from leadbridge.http import VendorClient
from leadbridge.http.oauth import client_credentials, refresh
from leadbridge.metadata import (
    TEST_ONLY,
    AuthKind,
    ConnectorInfo,
    ObjectSpec,
    RateLimit,
    Setting,
    SettingType,
)
from leadbridge.toolkit.answers import error_parts
from leadbridge.toolkit.paging import CursorParam, read_page, records_at
from leadbridge.toolkit.vendortypes import TypeTable, VendorType
from leadbridge.types import (
    Action,
    Campaign,
    Choice,
    Company,
    Contact,
    Credentials,
    Direction,
    FieldType,
    HubKind,
    Outcome,
    Page,
    RateUsage,
    RecordResult,
    RemoteField,
    WebhookEvent,
    WebhookEventKind,
    WebhookRequest,
)

from .sandbox import ExampleSandbox

__version__ = "0.1.0"

API_URL = "https://api.examplecrm.test"
TOKEN_PATH = "oauth/token"
REVOKE_PATH = "oauth/revoke"
SIGNATURE_HEADER = "X-Example-Signature"
DEFAULT_ACTION_TITLE = "Activity from leadbridge"

#: ExampleCRM field types -> hub types (values cross unchanged: ExampleCRM speaks JSON types)
TYPES = TypeTable(
    VendorType("string", FieldType.TEXT),
    VendorType("longtext", FieldType.TEXTAREA),
    VendorType("email", FieldType.EMAIL),
    VendorType("phone", FieldType.PHONE),
    VendorType("url", FieldType.URL),
    VendorType("integer", FieldType.NUMBER),
    VendorType("checkbox", FieldType.BOOLEAN),
    VendorType("date", FieldType.DATE),
    VendorType("datetime", FieldType.DATETIME),
    VendorType("picklist", FieldType.SELECT),
)
#: default mappings offered for new connections: remote field -> hub field
PRESETS = {
    "contact": {
        "email": "email",
        "first_name": "first_name",
        "last_name": "last_name",
        "phone": "phone",
        "job_title": "title",
        "lifecycle_stage": "status",
        "score": "score",
    },
    "company": {"name": "name", "domain": "domain", "phone": "phone"},
}
#: fields the vendor sends on every record that are not field values
_SYSTEM = frozenset({"id", "email", "company_id", "company_name", "updated_at", "deleted"})

BOTH_WAYS = frozenset({Direction.TO_CRM, Direction.FROM_CRM, Direction.BOTH})

INFO = ConnectorInfo(
    name="example",
    display_name="ExampleCRM",
    description="The reference connector: contacts and companies both ways with ExampleCRM.",
    version=__version__,
    auth_kind=AuthKind.OAUTH2_CLIENT_CREDENTIALS,
    settings=(
        Setting("client_id", "Client ID", required=True),
        Setting("client_secret", "Client secret", SettingType.SECRET, required=True),
        Setting(
            "action_title",
            "Action title",
            default=DEFAULT_ACTION_TITLE,
            help='Text of the activity created in ExampleCRM; "{company}" becomes the company name.',
        ),
        Setting(
            "webhook_secret",
            "Webhook signing secret",
            SettingType.SECRET,
            help="ExampleCRM signs webhook deliveries with it (HMAC-SHA256).",
        ),
    ),
    objects=(
        ObjectSpec("contact", "Contacts", HubKind.CONTACT, BOTH_WAYS, batch_size=100, supports_delete=True),
        ObjectSpec("company", "Companies", HubKind.COMPANY, BOTH_WAYS, batch_size=100),
    ),
    rate_limits=(RateLimit(50, 1.0), RateLimit(100_000, 86_400.0)),
    docs_url="https://github.com/leadbridge/leadbridge/tree/main/tests/example_connector",
    default_interval_minutes=60,
    # Never offered by `leadbridge demo`: it exists for the test kit and as a template.
    features=frozenset({TEST_ONLY, "webhooks", "campaigns"}),
)


# -- metadata -----------------------------------------------------------------------------------


@hookimpl
def connector_info() -> ConnectorInfo:
    """Static metadata: settings, objects and limits (no network)."""
    return INFO


@hookimpl
def connector_sandbox() -> ExampleSandbox:
    """A fresh in-memory ExampleCRM for the demo and the test kit."""
    return ExampleSandbox()


# -- authentication and transport -----------------------------------------------------------------


@hookimpl
def api_base_url(connection: ConnectionView) -> str:
    """ExampleCRM has one fixed host (the core redirects it to a sandbox when overridden)."""
    return API_URL


@hookimpl
def authenticate(
    connection: ConnectionView, client: VendorClient, previous: Credentials | None
) -> Credentials:
    """Client credentials first; afterwards the rotating refresh token ExampleCRM issues with it."""
    client_id, secret = connection.setting("client_id"), connection.setting("client_secret")
    if previous is not None and previous.refresh_token:
        # ExampleCRM rotates refresh tokens; the core saves the new one before using the access token.
        # A revoked grant (invalid_grant) raises NeedsReconnect: the admin must look at the app in ExampleCRM.
        return refresh(client, TOKEN_PATH, previous, client_id, secret)
    return client_credentials(client, TOKEN_PATH, client_id, secret)


@hookimpl
def revoke_credentials(connection: ConnectionView, client: VendorClient) -> bool | None:
    """On "Revoke access", end the grant at ExampleCRM too (RFC 7009), not only locally."""
    creds = connection.credentials
    token = creds and (creds.refresh_token or creds.access_token)
    if not token:
        return None
    client.post(
        REVOKE_PATH,
        data={
            "token": token,
            "client_id": connection.setting("client_id"),
            "client_secret": connection.setting("client_secret"),
        },
    )
    return True


@hookimpl
def classify_error(response: requests.Response) -> LeadbridgeError | None:
    """ExampleCRM quirks: a 429 can be the daily quota; an oversized batch is our bug, not a record's."""
    code = _error_code(response)
    if response.status_code == 429 and code == "quota_exceeded":
        return QuotaExhausted("ExampleCRM daily quota used up", code=code)
    if response.status_code == 400 and code == "BATCH_TOO_LARGE":
        # A contract bug on our side, not a bad record: fail loudly instead of failing each record.
        return ConfigError("ExampleCRM refused the batch size", code=code)
    return None


@hookimpl
def read_rate_limits(response: requests.Response) -> RateUsage | None:
    """ExampleCRM's ``X-RateLimit-*`` headers (sent when the account has a short-window limit)."""
    headers = response.headers
    if "X-RateLimit-Remaining" not in headers:
        return None
    return RateUsage(
        remaining=int(headers["X-RateLimit-Remaining"]),
        limit=int(headers.get("X-RateLimit-Limit", 0)) or None,
        reset_in=float(headers.get("X-RateLimit-Reset", 0)) or None,
    )


# -- discovery ----------------------------------------------------------------------------------


@hookimpl
def field_types(client: VendorClient, object_type: str) -> list[RemoteField]:
    """ExampleCRM describes its fields live, custom ones and picklist options included."""
    data = client.get("api/fields", params={"object": object_type}).json()["data"]
    return [_remote_field(raw, object_type) for raw in data]


@hookimpl
def list_campaigns(client: VendorClient) -> list[Campaign]:
    """Every campaign (ExampleCRM returns them in one page)."""
    data = client.get("api/campaigns").json()["data"]
    return [Campaign(remote_id=c["id"], name=c["name"], member_count=c.get("member_count")) for c in data]


# -- reads --------------------------------------------------------------------------------------


@hookimpl
def fetch_contacts(
    client: VendorClient, object_type: str, since: datetime | None, cursor: str | None
) -> Page[Contact]:
    """One page of contacts changed since ``since``, oldest change first, deletions included."""
    page = read_page(client, PAGES, "api/contacts", _list_params(since), cursor)
    return Page([_contact(raw) for raw in page.rows], page.next_cursor)


@hookimpl
def fetch_companies(client: VendorClient, since: datetime | None, cursor: str | None) -> Page[Company]:
    """One page of companies changed since ``since``, oldest change first."""
    page = read_page(client, PAGES, "api/companies", _list_params(since), cursor)
    return Page([_company(raw) for raw in page.rows], page.next_cursor)


@hookimpl
def fetch_campaign_members(client: VendorClient, campaign_id: str, cursor: str | None) -> Page[Contact]:
    """One page of a campaign's members (people without an email included)."""
    page = read_page(client, PAGES, f"api/campaigns/{campaign_id}/members", _list_params(None), cursor)
    return Page([_contact(raw) for raw in page.rows], page.next_cursor)


# -- writes -------------------------------------------------------------------------------------


@hookimpl
def upsert_company(client: VendorClient, companies: Sequence[Company]) -> list[RecordResult]:
    """Batch upsert; ExampleCRM matches by id, else by exact name."""
    records = [
        {**c.fields, "name": c.name, **({"id": c.remote_id} if c.remote_id else {})} for c in companies
    ]
    # Upsert by key: safe to retry, so the client may retry it like a GET.
    answer = client.post("api/companies/batch", json={"records": records}, idempotent=True).json()
    return [_result(raw, c.ref) for raw, c in zip(answer["results"], companies, strict=True)]


@hookimpl
def upsert_contact(client: VendorClient, contacts: Sequence[Contact]) -> list[RecordResult]:
    """Batch upsert; ExampleCRM matches by id, else by email case-insensitively."""
    answer = client.post(
        "api/contacts/batch", json={"records": [_contact_body(c) for c in contacts]}, idempotent=True
    ).json()
    return [_result(raw, c.ref) for raw, c in zip(answer["results"], contacts, strict=True)]


@hookimpl
def delete_contacts(client: VendorClient, remote_ids: Sequence[str]) -> list[RecordResult]:
    """ExampleCRM deletes one contact per call (soft delete, reported by the next fetch)."""
    results = []
    for remote_id in remote_ids:
        # Already gone counts as deleted, so a retried delete is harmless.
        client.delete(f"api/contacts/{remote_id}", ok_statuses=frozenset({404}))
        results.append(RecordResult(Outcome.DELETED, ref=remote_id, remote_id=remote_id))
    return results


@hookimpl
def create_action(connection: ConnectionView, client: VendorClient, action: Action) -> RecordResult:
    """An activity on the contact; the core has already filled the ``action_title`` template."""
    if not action.contact.remote_id:
        raise RecordError("the contact has no ExampleCRM id yet", code="NO_CONTACT")
    body = {
        "contact_id": action.contact.remote_id,
        "title": action.title or DEFAULT_ACTION_TITLE,
        "kind": action.kind,
        "description": action.description or action.title,
        "occurred_at": (action.occurred_at or clocks.utcnow()).isoformat(),
        **action.fields,
    }
    answer = client.post("api/actions", json=body).json()
    return RecordResult(Outcome.CREATED, ref=action.ref, remote_id=answer["id"])


# -- webhooks -----------------------------------------------------------------------------------


@hookimpl
def handle_webhook(connection: ConnectionView, request: WebhookRequest) -> list[WebhookEvent]:
    """Verify the HMAC signature first, then turn ExampleCRM events into hub events."""
    secret = connection.setting("webhook_secret")
    given = next((v for k, v in request.headers.items() if k.lower() == SIGNATURE_HEADER.lower()), "")
    if not secret or not verify_signature(request.body, given, secret):
        raise AuthError("webhook signature missing or wrong", code="bad_signature")
    try:
        events = json.loads(request.body)["events"]
    except (ValueError, KeyError, TypeError):
        raise RecordError("webhook body is not an ExampleCRM delivery", code="bad_body") from None
    return [_event(raw) for raw in events]


@hookimpl
def register_webhooks(client: VendorClient, url: str, secret: str) -> list[str]:
    """Subscribe ``url`` once; an existing subscription to the same URL is reused."""
    existing = client.get("api/webhooks").json()["data"]
    ids = [w["id"] for w in existing if w["url"] == url]
    if not ids:
        created = client.post("api/webhooks", json={"url": url, "secret": secret}).json()
        ids = [created["id"]]
    return ids


@hookimpl
def unregister_webhooks(client: VendorClient, webhook_ids: list[str]) -> None:
    """Delete the subscriptions; one already gone (404) is fine."""
    for webhook_id in webhook_ids:
        client.delete(f"api/webhooks/{webhook_id}", ok_statuses=frozenset({404}))


def verify_signature(body: bytes, header: str, secret: str) -> bool:
    """True when ``header`` is ExampleCRM's ``sha256=<hex>`` HMAC of ``body`` under ``secret``."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.strip())


# -- vendor <-> contract conversions --------------------------------------------------------------


def _error_code(response: requests.Response) -> str | None:
    return error_parts(response, code=[["error"]])[1]


def _remote_field(raw: dict[str, Any], object_type: str) -> RemoteField:
    read_only = bool(raw.get("read_only"))
    return RemoteField(
        name=raw["name"],
        label=raw["label"],
        type=TYPES.hub_type(raw["type"]) or FieldType.TEXT,
        object_type=object_type,
        required=bool(raw.get("required")),
        writable=not read_only,
        custom=bool(raw.get("custom")),
        choices=tuple(Choice(o, o.replace("_", " ").capitalize()) for o in raw.get("options", ())),
        hub_field=PRESETS.get(object_type, {}).get(raw["name"]),
        directions=frozenset({Direction.FROM_CRM}) if read_only else BOTH_WAYS,
        vendor_type=raw["type"],
    )


#: ExampleCRM pages with an opaque ``next_cursor`` sent back as ``cursor`` (the core keeps it).
PAGES = CursorParam(records_at("data"), lambda body: body.get("next_cursor"), param="cursor")


def _list_params(since: datetime | None) -> dict[str, str]:
    params = {"limit": "100"}
    if since is not None:
        params["updated_since"] = since.astimezone(UTC).isoformat()
    return params


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _contact(raw: dict[str, Any]) -> Contact:
    company = None
    if raw.get("company_id"):
        company = Company(name=raw.get("company_name") or "", remote_id=str(raw["company_id"]))
    return Contact(
        email=raw.get("email"),
        remote_id=str(raw["id"]),
        fields={k: v for k, v in raw.items() if k not in _SYSTEM},
        company=company,
        modified_at=_parse_time(raw.get("updated_at")),
        deleted=bool(raw.get("deleted")),
    )


def _company(raw: dict[str, Any]) -> Company:
    return Company(
        name=raw.get("name") or "",
        remote_id=str(raw["id"]),
        fields={k: v for k, v in raw.items() if k not in _SYSTEM},
        modified_at=_parse_time(raw.get("updated_at")),
        deleted=bool(raw.get("deleted")),
    )


def _contact_body(contact: Contact) -> dict[str, Any]:
    body: dict[str, Any] = {k: v for k, v in contact.fields.items() if k not in ("id", "created_at")}
    if contact.email:
        body["email"] = contact.email
    if contact.remote_id:
        body["id"] = contact.remote_id
    if contact.company is not None and contact.company.remote_id:
        body["company_id"] = contact.company.remote_id
    return body


def _result(raw: dict[str, Any], ref: str | None) -> RecordResult:
    if "error" in raw:
        extra = {"field": raw["field"]} if raw.get("field") else {}
        return RecordResult(
            Outcome.FAILED, ref=ref, reason=raw.get("message"), code=raw["error"], extra=extra
        )
    return RecordResult(Outcome(raw["status"]), ref=ref, remote_id=raw["id"])


def _event(raw: dict[str, Any]) -> WebhookEvent:
    kind = WebhookEventKind.DELETE if raw.get("type") == "contact.deleted" else WebhookEventKind.UPSERT
    data = raw.get("data") or {}
    contact = _contact(data) if "id" in data else None
    return WebhookEvent(kind=kind, object_type="contact", event_id=str(raw["id"]), contact=contact, data=data)
