"""One remote-field cache per connection and object, shared by every process through the database.

``field_types`` is a vendor call (Salesforce ``describe``, Constant Contact's custom-field list...).
Runs, webhook deliveries and the mapping page all read the fields through :func:`remote_fields`, so
a webhook-driven connection pays no field-list call per event. An entry lives
``FIELD_CACHE_SECONDS`` (default one hour); "Refresh fields" in the mapping page, a saved setting,
and a write the vendor refused because the schema changed (:func:`invalidate`) drop it sooner.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import delete

from .. import clock as clocks
from ..connections import client_for, view
from ..db import db
from ..http import VendorClient
from ..models import Connection, RemoteFieldCache
from ..state import get_plugins
from ..types import Choice, Direction, FieldType, RemoteField

#: How long fetched fields are trusted (``FIELD_CACHE_SECONDS`` config).
FIELD_CACHE_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class CachedFields:
    fields: list[RemoteField]
    fetched_at: datetime


def remote_fields(
    conn: Connection, object_type: str, client: VendorClient | None = None, *, refresh: bool = False
) -> CachedFields:
    """The connector's fields of ``object_type``: cached, or fetched (a vendor call: this commits first)."""
    max_age = float(current_app.config.get("FIELD_CACHE_SECONDS", FIELD_CACHE_SECONDS))
    row = db.session.get(RemoteFieldCache, (conn.id, object_type))
    now = clocks.utcnow()
    if row is not None and not refresh and now - row.fetched_at < timedelta(seconds=max_age):
        return CachedFields([field_from_json(f) for f in row.fields], row.fetched_at)
    conn_id = conn.id
    db.session.commit()  # never hold a transaction across the vendor call
    fields = get_plugins().connector(view(conn)).field_types(client or client_for(conn), object_type)
    fetched_at = clocks.utcnow()
    row = db.session.get(RemoteFieldCache, (conn_id, object_type))
    if row is None:
        row = RemoteFieldCache(connection_id=conn_id, object_type=object_type)
        db.session.add(row)
    row.fields = [field_to_json(f) for f in fields]
    row.fetched_at = fetched_at
    db.session.commit()
    return CachedFields(fields, fetched_at)


def invalidate(conn_id: int, object_type: str | None = None) -> None:
    """Forget the cached fields of one object (or all of the connection's); the caller commits."""
    query = delete(RemoteFieldCache).where(RemoteFieldCache.connection_id == conn_id)
    if object_type is not None:
        query = query.where(RemoteFieldCache.object_type == object_type)
    db.session.execute(query)


def field_to_json(field: RemoteField) -> dict[str, Any]:
    return {
        "name": field.name,
        "label": field.label,
        "type": field.type.value,
        "object_type": field.object_type,
        "required": field.required,
        "writable": field.writable,
        "readable": field.readable,
        "custom": field.custom,
        "choices": [[c.value, c.label] for c in field.choices],
        "hub_field": field.hub_field,
        "directions": sorted(d.value for d in field.directions),
        "vendor_type": field.vendor_type,
    }


def field_from_json(data: dict[str, Any]) -> RemoteField:
    return RemoteField(
        name=data["name"],
        label=data["label"],
        type=FieldType(data["type"]),
        object_type=data["object_type"],
        required=bool(data["required"]),
        writable=bool(data["writable"]),
        readable=bool(data["readable"]),
        custom=bool(data["custom"]),
        choices=tuple(Choice(str(v), str(label)) for v, label in data["choices"]),
        hub_field=data["hub_field"],
        directions=frozenset(Direction(d) for d in data["directions"]),
        vendor_type=data["vendor_type"],
    )
