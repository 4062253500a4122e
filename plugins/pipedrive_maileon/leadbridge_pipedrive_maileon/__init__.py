"""Pipedrive → Maileon connector for leadbridge (Maileon's Pipedrive app, done as a hub).

One connection talks to both vendors: Pipedrive is its main API (persons pulled into the hub by
webhooks and a scheduled ``updated_since`` poll; the Newsletter option written back), Maileon its
``maileon`` endpoint (persons who subscribe pushed as contacts, deals sent as transactions,
unsubscriptions pulled back). The hooks are thin; the vendors live in :mod:`.pipedrive`,
:mod:`.maileon` and :mod:`.webhooks`, their loopback imitation in :mod:`.sandbox`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import requests
from leadbridge import clock as clocks
from leadbridge import hookimpl
from leadbridge.connection_view import ConnectionView
from leadbridge.errors import AuthError, ConfigError, LeadbridgeError, QuotaExhausted, RateLimited
from leadbridge.http import VendorClient
from leadbridge.metadata import ConnectorInfo
from leadbridge.toolkit.answers import error_body
from leadbridge.types import (
    Action,
    Contact,
    Page,
    RateUsage,
    RecordResult,
    RemoteField,
    WebhookEvent,
    WebhookRequest,
)

from . import maileon, pipedrive, webhooks
from .info import INFO, MAILEON_CONTACT, PERSON, PIPEDRIVE_API

if TYPE_CHECKING:
    from .sandbox import PipedriveMaileonSandbox

__version__ = INFO.version


@hookimpl
def connector_info() -> ConnectorInfo:
    return INFO


@hookimpl
def connector_sandbox() -> PipedriveMaileonSandbox:
    from .sandbox import PipedriveMaileonSandbox

    return PipedriveMaileonSandbox()


@hookimpl
def api_base_url(connection: ConnectionView, endpoint: str | None) -> str:
    return PIPEDRIVE_API


@hookimpl
def classify_error(
    connection: ConnectionView, response: requests.Response, endpoint: str | None
) -> LeadbridgeError | None:
    body = error_body(response)
    message = body.get("error") if isinstance(body, dict) else None
    if endpoint == "maileon":
        if response.status_code == 403:
            return AuthError(
                "the Maileon API key lacks the right for this kind of request (GET/POST/PUT/DELETE)"
            )
        return None
    if response.status_code == 402:
        return ConfigError("the Pipedrive company account is not open (trial ended or unpaid)")
    if response.status_code == 403 and not isinstance(body, dict):
        # Abuse protection answers an HTML page: slow down instead of failing records.
        return RateLimited("Pipedrive's abuse protection refused the request", retry_after=60)
    if response.status_code == 403:
        return AuthError(
            f"Pipedrive refused access: {message or 'forbidden'} (is the token's user an admin?)"
        )
    if response.status_code == 429:
        wait = _seconds(response.headers.get("Retry-After"))
        if wait is not None and wait > BURST_WINDOW_SECONDS * 30:
            # A burst window is 2 s; a wait of minutes or hours is the company's daily token budget.
            return QuotaExhausted(
                "Pipedrive's daily API budget is used up", resets_at=clocks.utcnow() + timedelta(seconds=wait)
            )
    return None


BURST_WINDOW_SECONDS = 2.0


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


@hookimpl
def read_rate_limits(
    connection: ConnectionView, response: requests.Response, endpoint: str | None
) -> RateUsage | None:
    if endpoint is not None:
        return None
    headers = response.headers
    if "x-ratelimit-remaining" not in headers:
        return None
    try:
        return RateUsage(
            remaining=int(headers["x-ratelimit-remaining"]),
            limit=int(headers.get("x-ratelimit-limit") or 0) or None,
            reset_in=float(headers.get("x-ratelimit-reset") or 0) or None,
        )
    except ValueError:
        return None


@hookimpl
def field_types(connection: ConnectionView, client: VendorClient, object_type: str) -> list[RemoteField]:
    person = pipedrive.remote_fields(connection, client, fresh=True)
    if object_type == PERSON:
        # Also what "Test connection" reads: check Maileon's key and the DOI mailing with it.
        maileon.ping(client)
        maileon.check_doi_mailing(connection, client)
        return person
    if object_type == MAILEON_CONTACT:
        return maileon.remote_fields([f for f in person if f.name.startswith(pipedrive.CUSTOM_PREFIX)])
    raise ConfigError(f"unknown object {object_type!r}")


@hookimpl
def fetch_contacts(
    connection: ConnectionView,
    client: VendorClient,
    object_type: str,
    since: datetime | None,
    cursor: str | None,
) -> Page[Contact]:
    if object_type == PERSON:
        return pipedrive.fetch_persons(connection, client, since, cursor)
    return maileon.fetch_unsubscriptions(client, since, cursor)


@hookimpl
def upsert_contact(
    connection: ConnectionView, client: VendorClient, object_type: str, contacts: Sequence[Contact]
) -> list[RecordResult]:
    if object_type == PERSON:
        return pipedrive.write_newsletter(connection, client, contacts)
    relayed = [
        f for f in pipedrive.remote_fields(connection, client) if f.name.startswith(pipedrive.CUSTOM_PREFIX)
    ]
    return maileon.upsert_contacts(connection, client, contacts, relayed)


@hookimpl
def delete_contacts(
    connection: ConnectionView, client: VendorClient, object_type: str, remote_ids: Sequence[str]
) -> list[RecordResult]:
    if object_type != MAILEON_CONTACT:
        raise ConfigError("leadbridge never deletes Pipedrive persons")
    return maileon.delete_contacts(client, remote_ids)


@hookimpl
def create_action(connection: ConnectionView, client: VendorClient, action: Action) -> RecordResult:
    return maileon.send_transaction(client, action)


@hookimpl
def handle_webhook(
    connection: ConnectionView, client: VendorClient, request: WebhookRequest
) -> list[WebhookEvent]:
    return webhooks.parse(connection, client, request)


@hookimpl
def register_webhooks(connection: ConnectionView, client: VendorClient, url: str, secret: str) -> list[str]:
    return pipedrive.register_webhooks(connection, client, url, secret)


@hookimpl
def unregister_webhooks(connection: ConnectionView, client: VendorClient, webhook_ids: Sequence[str]) -> None:
    pipedrive.unregister_webhooks(client, webhook_ids)
