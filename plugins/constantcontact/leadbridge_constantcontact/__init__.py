"""Constant Contact connector for leadbridge.

The hooks below are thin: the vendor's quirks live in small modules (:mod:`.auth`, :mod:`.errors`,
:mod:`.fields`, :mod:`.contacts`, :mod:`.bulk`); the loopback imitation of the API is :mod:`.sandbox`.
"""

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
from leadbridge.types import Campaign, Contact, Credentials, Page, RecordResult, RemoteField

from . import auth, contacts, errors, fields
from .info import INFO

if TYPE_CHECKING:
    from .sandbox import ConstantContactSandbox

__version__ = INFO.version


@hookimpl
def connector_info() -> ConnectorInfo:
    return INFO


@hookimpl
def connector_sandbox() -> ConstantContactSandbox:
    from .sandbox import ConstantContactSandbox

    return ConstantContactSandbox()


@hookimpl
def api_base_url(connection: ConnectionView) -> str:
    return auth.api_base(connection)


@hookimpl
def authenticate(
    connection: ConnectionView, client: VendorClient, previous: Credentials | None
) -> Credentials:
    return auth.authenticate(connection, client, previous)


@hookimpl
def revoke_credentials(connection: ConnectionView, client: VendorClient) -> bool | None:
    return auth.revoke(connection, client)


@hookimpl
def classify_error(connection: ConnectionView, response: requests.Response) -> LeadbridgeError | None:
    return errors.classify(response)


@hookimpl
def field_types(connection: ConnectionView, client: VendorClient, object_type: str) -> list[RemoteField]:
    return fields.remote_fields(fields.load_custom_fields(client))


@hookimpl
def list_campaigns(connection: ConnectionView, client: VendorClient) -> list[Campaign]:
    return contacts.list_campaigns(client)


@hookimpl
def fetch_contacts(
    connection: ConnectionView,
    client: VendorClient,
    object_type: str,
    since: datetime | None,
    cursor: str | None,
) -> Page[Contact]:
    return contacts.fetch_contacts(client, since, cursor)


@hookimpl
def fetch_campaign_members(
    connection: ConnectionView, client: VendorClient, campaign_id: str, cursor: str | None
) -> Page[Contact]:
    return contacts.fetch_list_members(client, campaign_id, cursor)


@hookimpl
def upsert_contact(
    connection: ConnectionView, client: VendorClient, object_type: str, contacts: Sequence[Contact]
) -> list[RecordResult]:
    return _contacts.upsert_contacts(connection, client, contacts)


@hookimpl
def delete_contacts(
    connection: ConnectionView, client: VendorClient, object_type: str, remote_ids: Sequence[str]
) -> list[RecordResult]:
    return _contacts.delete_contacts(client, remote_ids)


_contacts = contacts  # the hook parameters above shadow the module name
