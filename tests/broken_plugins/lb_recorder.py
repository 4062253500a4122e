"""A tiny working connector that records every call it receives (no vendor behind it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lb_plugin_common import make_info
from leadbridge import hookimpl
from leadbridge.connection_view import ConnectionView
from leadbridge.metadata import ConnectorInfo
from leadbridge.types import Contact, FieldType, Outcome, RecordResult, RemoteField

#: (hook, connection id, payload) of every call, in order; tests clear it.
CALLS: list[tuple[str, int, Any]] = []


@hookimpl
def connector_info() -> ConnectorInfo:
    return make_info("recorder")


@hookimpl
def api_base_url(connection: ConnectionView) -> str:
    return connection.base_url_override or "https://recorder.invalid/"


@hookimpl
def field_types(connection: ConnectionView, object_type: str) -> list[RemoteField]:
    CALLS.append(("field_types", connection.id, object_type))
    return [RemoteField(name="email", label="Email", type=FieldType.EMAIL, hub_field="email")]


@hookimpl
def upsert_contact(
    connection: ConnectionView, object_type: str, contacts: Sequence[Contact]
) -> list[RecordResult]:
    CALLS.append(("upsert_contact", connection.id, [c.email for c in contacts]))
    return [RecordResult(Outcome.CREATED, ref=c.ref, remote_id=f"rec-{i}") for i, c in enumerate(contacts)]
