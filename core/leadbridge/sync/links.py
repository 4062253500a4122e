"""Links: a hub record and its CRM twin in one connection, with the values both last agreed on."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select

from ..db import db
from ..models import Link
from .merge import fingerprint


def by_remote(conn_id: int, object_type: str, remote_id: str) -> Link | None:
    return db.session.execute(
        select(Link).where(
            Link.connection_id == conn_id, Link.object_type == object_type, Link.remote_id == str(remote_id)
        )
    ).scalar_one_or_none()


def by_remote_ids(conn_id: int, object_type: str, remote_ids: Sequence[str]) -> dict[str, Link]:
    """The links holding any of ``remote_ids``, by remote id (one statement)."""
    if not remote_ids:
        return {}
    rows = db.session.execute(
        select(Link).where(
            Link.connection_id == conn_id,
            Link.object_type == object_type,
            Link.remote_id.in_(list(remote_ids)),
        )
    ).scalars()
    return {row.remote_id: row for row in rows}


def by_hub(conn_id: int, object_type: str, kind: str, hub_id: int) -> Link | None:
    return db.session.execute(
        select(Link)
        .where(
            Link.connection_id == conn_id,
            Link.object_type == object_type,
            Link.hub_kind == kind,
            Link.hub_id == hub_id,
        )
        .order_by(Link.id)
        .limit(1)
    ).scalar_one_or_none()


def save(
    link: Link | None,
    *,
    conn_id: int,
    object_type: str,
    kind: str,
    hub_id: int,
    remote_id: str,
    last: dict[str, Any],
    synced_at: datetime,
    remote_modified_at: datetime | None = None,
) -> Link:
    """Create or update a link with the newly agreed values."""
    if link is None:
        link = Link(connection_id=conn_id, object_type=object_type, hub_kind=kind, hub_id=hub_id)
        db.session.add(link)
    link.remote_id = str(remote_id)
    link.hub_id = hub_id
    link.last_values = dict(last)
    link.fingerprint = fingerprint(last)
    link.synced_at = synced_at
    if remote_modified_at is not None:
        link.remote_modified_at = remote_modified_at
    return link
