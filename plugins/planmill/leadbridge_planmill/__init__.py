"""leadbridge connector for PlanMill (REST API 1.5): the hook implementations.

Each hook is a thin adapter; the work lives in small modules: :mod:`.info` (metadata),
:mod:`.urls` (where the instance lives), :mod:`.auth` (OAuth2 and error quirks), :mod:`.fields`
(types and value conversion), :mod:`.matching` and :mod:`.writes` (send), :mod:`.reads` (import and
pull) and :mod:`.sandbox` (the loopback imitation of PlanMill).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import requests
from leadbridge import hookimpl
from leadbridge.connection_view import ConnectionView
from leadbridge.errors import LeadbridgeError
from leadbridge.http import VendorClient
from leadbridge.metadata import ConnectorInfo
from leadbridge.sandbox import Sandbox
from leadbridge.types import (
    Action,
    Campaign,
    Company,
    Contact,
    Credentials,
    Page,
    RecordResult,
    RemoteField,
    WebhookEvent,
    WebhookRequest,
)

from . import auth, fields, reads, urls, webhooks, writes
from . import info as _info
from .paging import PAGE_SIZE

__version__ = "0.1.0"


@hookimpl
def connector_info() -> ConnectorInfo:
    """PlanMill's metadata (settings, objects, rate limits); no network call."""
    return _info.connector_info()


@hookimpl
def connector_sandbox() -> Sandbox:
    """A new :class:`~leadbridge_planmill.sandbox.PlanMillSandbox`, seeded with PlanMill's samples."""
    from .sandbox import PlanMillSandbox

    return PlanMillSandbox()


@hookimpl
def api_base_url(connection: ConnectionView) -> str:
    """``https://online.planmill.com/<instance>/api/1.5/`` (or the checked self-hosted server).

    :raises ConfigError: a bad instance name or a non-public self-hosted server.
    """
    return urls.api_base(connection)


@hookimpl
def authenticate(
    connection: ConnectionView, client: VendorClient, previous: Credentials | None
) -> Credentials:
    """Client credentials at ``<instance>/api/oauth2/token``; every renewal is a fresh grant."""
    return auth.authenticate(connection, client)


@hookimpl
def classify_error(connection: ConnectionView, response: requests.Response) -> LeadbridgeError | None:
    """PlanMill's 400s: validation (``00018``) is a record error, a token complaint a renewal."""
    return auth.classify_error(response)


@hookimpl
def field_types(connection: ConnectionView, client: VendorClient, object_type: str) -> list[RemoteField]:
    """Fields of ``object_type`` typed from ``/{resource}/meta``, standard fields preset."""
    return fields.field_types(client, object_type)


@hookimpl
def list_campaigns(connection: ConnectionView, client: VendorClient) -> list[Campaign]:
    """The instance's campaigns, with their member counters."""
    return reads.list_campaigns(client)


@hookimpl
def fetch_contacts(
    connection: ConnectionView,
    client: VendorClient,
    object_type: str,
    since: datetime | None,
    cursor: str | None,
) -> Page[Contact]:
    """One page of contacts changed since ``since`` (``Person.Modified`` window), oldest first."""
    return reads.fetch_contacts(client, since, cursor, size=_page_size(connection))


@hookimpl
def fetch_companies(
    connection: ConnectionView, client: VendorClient, since: datetime | None, cursor: str | None
) -> Page[Company]:
    """One page of changed accounts (a full scan on full syncs when meta offers no filter)."""
    return reads.fetch_companies(client, since, cursor, size=_page_size(connection))


@hookimpl
def fetch_campaign_members(
    connection: ConnectionView, client: VendorClient, campaign_id: str, cursor: str | None
) -> Page[Contact]:
    """One page of a campaign's contacts, members without email included."""
    return reads.fetch_campaign_members(client, campaign_id, cursor, size=_page_size(connection))


@hookimpl
def upsert_company(
    connection: ConnectionView, client: VendorClient, companies: Sequence[Company]
) -> list[RecordResult]:
    """Find each account by exact name (created when missing); update only changed fields."""
    return writes.upsert_companies(client, companies)


@hookimpl
def upsert_contact(
    connection: ConnectionView, client: VendorClient, object_type: str, contacts: Sequence[Contact]
) -> list[RecordResult]:
    """Find each contact by id or email (created under its account when missing); changed fields only."""
    return writes.upsert_contacts(connection, client, contacts)


@hookimpl
def delete_contacts(
    connection: ConnectionView, client: VendorClient, object_type: str, remote_ids: Sequence[str]
) -> list[RecordResult]:
    """Delete contacts; one already gone counts as deleted."""
    return writes.delete_contacts(client, remote_ids)


@hookimpl
def create_action(connection: ConnectionView, client: VendorClient, action: Action) -> RecordResult:
    """Add an action titled from the template, the contact attached (always a new one)."""
    return writes.create_action(connection, client, action)


@hookimpl
def handle_webhook(connection: ConnectionView, request: WebhookRequest) -> list[WebhookEvent]:
    """Check the delivery's URL key first, then turn PlanMill's ``hook``/``Id``/``resource`` into events."""
    return webhooks.handle(connection, request)


@hookimpl
def register_webhooks(connection: ConnectionView, client: VendorClient, url: str) -> list[str]:
    """Subscribe contact and account events to ``url`` (plus its key) once; existing hooks are kept."""
    return webhooks.register(connection, client, url)


@hookimpl
def unregister_webhooks(client: VendorClient, webhook_ids: list[str]) -> None:
    """Delete the hooks (``DELETE /hooks/{id}``); one already gone is fine."""
    webhooks.unregister(client, webhook_ids)


def _page_size(connection: ConnectionView) -> int:
    """Rows per request; ``options["page_size"]`` lowers it for tenants with slow lists."""
    try:
        return max(1, min(1000, int(connection.options.get("page_size") or PAGE_SIZE)))
    except (TypeError, ValueError):
        return PAGE_SIZE
