"""The hook implementations: thin wrappers that hand each call to the module that knows the vendor."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import requests
from leadbridge import hookimpl
from leadbridge.connection_view import ConnectionView
from leadbridge.errors import LeadbridgeError
from leadbridge.http import VendorClient
from leadbridge.metadata import ConnectorInfo
from leadbridge.types import (
    Action,
    Campaign,
    Company,
    Contact,
    Credentials,
    Page,
    RateUsage,
    RecordResult,
    RemoteField,
)

from . import auth, errors, fields, info, reads, writes
from .api import SalesforceApi
from .hosts import checked_instance_url, login_url

if TYPE_CHECKING:
    from .sandbox import SalesforceSandbox

__all__ = [
    "api_base_url",
    "authenticate",
    "classify_error",
    "connector_info",
    "connector_sandbox",
    "create_action",
    "delete_contacts",
    "fetch_campaign_members",
    "fetch_companies",
    "fetch_contacts",
    "field_types",
    "list_campaigns",
    "read_rate_limits",
    "upsert_contact",
]


@hookimpl
def connector_info() -> ConnectorInfo:
    return info.connector_info()


@hookimpl
def connector_sandbox() -> SalesforceSandbox:
    from .sandbox import SalesforceSandbox

    return SalesforceSandbox()


@hookimpl
def api_base_url(connection: ConnectionView) -> str:
    creds = connection.credentials
    if creds is not None and creds.extra.get("instance_url"):
        return checked_instance_url(connection, creds.extra["instance_url"])
    return login_url(connection)  # until the first login names the instance


@hookimpl
def authenticate(
    connection: ConnectionView, client: VendorClient, previous: Credentials | None
) -> Credentials:
    return auth.authenticate(connection, client)


@hookimpl
def classify_error(connection: ConnectionView, response: requests.Response) -> LeadbridgeError | None:
    return errors.classify(response)


@hookimpl
def read_rate_limits(connection: ConnectionView, response: requests.Response) -> RateUsage | None:
    return errors.rate_usage(response)


@hookimpl
def field_types(connection: ConnectionView, client: VendorClient, object_type: str) -> list[RemoteField]:
    api = SalesforceApi(connection, client)
    return fields.remote_fields(connection, object_type, api.describe(object_type, fresh=True))


@hookimpl
def list_campaigns(connection: ConnectionView, client: VendorClient) -> list[Campaign]:
    return reads.list_campaigns(SalesforceApi(connection, client))


@hookimpl
def fetch_contacts(
    connection: ConnectionView,
    client: VendorClient,
    object_type: str,
    since: datetime | None,
    cursor: str | None,
) -> Page[Contact]:
    return reads.fetch_contacts(connection, SalesforceApi(connection, client), object_type, since, cursor)


@hookimpl
def fetch_companies(
    connection: ConnectionView, client: VendorClient, since: datetime | None, cursor: str | None
) -> Page[Company]:
    return reads.fetch_companies(connection, SalesforceApi(connection, client), since, cursor)


@hookimpl
def fetch_campaign_members(
    connection: ConnectionView, client: VendorClient, campaign_id: str, cursor: str | None
) -> Page[Contact]:
    return reads.fetch_campaign_members(SalesforceApi(connection, client), campaign_id, cursor)


@hookimpl
def upsert_contact(
    connection: ConnectionView, client: VendorClient, object_type: str, contacts: Sequence[Contact]
) -> list[RecordResult]:
    # Only Leads reach here: Contacts are declared import-only (the brief: they are the sales
    # team's), so the core refuses to write them before any call.
    return writes.upsert_leads(connection, SalesforceApi(connection, client), contacts)


@hookimpl
def delete_contacts(
    connection: ConnectionView, client: VendorClient, object_type: str, remote_ids: Sequence[str]
) -> list[RecordResult]:
    return writes.delete_records(SalesforceApi(connection, client), remote_ids)


@hookimpl
def create_action(connection: ConnectionView, client: VendorClient, action: Action) -> RecordResult:
    return writes.create_task(connection, SalesforceApi(connection, client), action)
