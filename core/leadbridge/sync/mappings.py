"""Field mappings: defaults from the connector's presets, validation when saved, and the resolved
form the engine works with (types and options of both sides, direction, write policy, value map).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from .. import fieldtypes
from ..db import db
from ..errors import ConfigError
from ..http import VendorClient
from ..metadata import ObjectSpec
from ..models import Connection, FieldMapping
from ..state import get_plugins
from ..types import Direction, FieldType, HubKind, RemoteField, WritePolicy
from .fieldcache import remote_fields
from .hubfields import HUB_CHOICES, hub_field_type

WRITE_POLICIES = tuple(WritePolicy)


@dataclass(frozen=True, slots=True)
class FieldRule:
    """One mapping, resolved against the live remote field (the engine's working form)."""

    hub_field: str
    remote_field: str
    direction: Direction
    write_policy: str
    value_map: dict[str, str]
    hub_type: FieldType
    remote_type: FieldType
    required: bool = False
    #: the remote field's option values (select/multiselect), empty when free
    choices: frozenset[str] = frozenset()

    def pushes(self) -> bool:
        return self.direction.includes(Direction.TO_CRM)

    def pulls(self) -> bool:
        return self.direction.includes(Direction.FROM_CRM)

    @property
    def two_way(self) -> bool:
        return self.direction is Direction.BOTH


@dataclass(slots=True)
class ObjectMappings:
    """Every mapping of one connector object, plus the remote fields the connector reported."""

    spec: ObjectSpec
    items: list[FieldRule] = field(default_factory=list)
    remote: dict[str, RemoteField] = field(default_factory=dict)

    @property
    def required_remote(self) -> list[RemoteField]:
        return [f for f in self.remote.values() if f.required and f.writable]

    def for_hub(self, hub_field: str) -> FieldRule | None:
        return next((m for m in self.items if m.hub_field == hub_field), None)


def fetch_remote_fields(
    conn: Connection, object_type: str, client: VendorClient | None = None
) -> list[RemoteField]:
    """The connector's ``field_types`` for ``object_type``, through the connection's field cache
    (a vendor call when the cache is cold or stale: this commits first)."""
    return remote_fields(conn, object_type, client).fields


def validate_mapping(
    connection: Connection,
    object_type: str,
    hub_field: str,
    remote_field: str,
    direction: str,
    write_policy: str,
    value_map: Mapping[str, str] | None,
    *,
    remote_fields: Sequence[RemoteField] | None = None,
) -> None:
    """Check a mapping before it is saved; raise :class:`ConfigError` saying what is wrong.

    Checks that the object and both fields exist, the direction is one the connector and the vendor
    field allow (writable for pushes, readable for pulls), the write policy is known, the types
    convert in every direction the mapping flows, and the value map uses options of both sides.
    ``remote_fields`` skips the vendor call when the caller already has the connector's fields.
    """
    info = get_plugins().info(connection.plugin)
    spec = info.object(object_type)
    try:
        flow = Direction(direction)
    except ValueError:
        raise ConfigError(f"unknown direction {direction!r}", code="invalid_mapping") from None
    if write_policy not in WRITE_POLICIES:
        raise ConfigError(
            f"unknown write policy {write_policy!r} (use {', '.join(WRITE_POLICIES)})", code="invalid_mapping"
        )
    if flow not in spec.directions:
        raise ConfigError(
            f"{info.display_name} {spec.label} cannot sync {flow.value}", code="invalid_mapping"
        )
    fields = {
        f.name: f
        for f in (
            remote_fields if remote_fields is not None else fetch_remote_fields(connection, object_type)
        )
    }
    remote = fields.get(remote_field)
    if remote is None:
        raise ConfigError(f"{spec.label} has no field {remote_field!r}", code="invalid_mapping")
    if flow not in remote.directions:
        raise ConfigError(f"{remote.label} cannot sync {flow.value}", code="invalid_mapping")
    if flow.includes(Direction.TO_CRM) and not remote.writable:
        raise ConfigError(f"{remote.label} is read-only in {info.display_name}", code="invalid_mapping")
    if flow.includes(Direction.FROM_CRM) and not remote.readable:
        raise ConfigError(f"{remote.label} cannot be read from {info.display_name}", code="invalid_mapping")
    hub_type = hub_field_type(spec.hub_kind, hub_field, remote.type)
    if flow.includes(Direction.TO_CRM):
        _check_types(hub_type, remote.type, f"{hub_field} → {remote.label}")
    if flow.includes(Direction.FROM_CRM):
        _check_types(remote.type, hub_type, f"{remote.label} → {hub_field}")
    _check_value_map(hub_field, remote, dict(value_map or {}))


def _check_types(source: FieldType, target: FieldType, what: str) -> None:
    reason = fieldtypes.compatibility_reason(source, target)
    if reason:
        raise ConfigError(f"{what}: {reason}", code="incompatible_types")


def _check_value_map(hub_field: str, remote: RemoteField, value_map: dict[str, str]) -> None:
    if not value_map:
        return
    if remote.type not in (FieldType.SELECT, FieldType.MULTISELECT) and hub_field not in HUB_CHOICES:
        raise ConfigError("a value map needs a select or multiselect field", code="invalid_mapping")
    hub_options = HUB_CHOICES.get(hub_field)
    if hub_options:
        unknown = sorted(set(value_map) - set(hub_options))
        if unknown:
            raise ConfigError(f"{', '.join(unknown)}: not options of {hub_field}", code="invalid_value_map")
    if remote.choices:
        remote_options = {c.value for c in remote.choices}
        unknown = sorted(set(value_map.values()) - remote_options)
        if unknown:
            raise ConfigError(
                f"{', '.join(unknown)}: not options of {remote.label}", code="invalid_value_map"
            )
    values = list(value_map.values())
    if len(values) != len(set(values)):
        # Two hub options on one remote option could not be pulled back unambiguously.
        raise ConfigError("two hub options map to the same remote option", code="invalid_value_map")


def default_mappings(connection: Connection, *, client: VendorClient | None = None) -> list[FieldMapping]:
    """Create FieldMapping rows from the connector's :attr:`RemoteField.hub_field` presets.

    Existing mappings of a remote field are kept. The direction is the widest the connection, the
    object and the field all allow. Required fields are locked. Calls the vendor (``field_types``)
    before adding rows; the caller commits.
    """
    info = get_plugins().info(connection.plugin)
    fetched: list[tuple[ObjectSpec, list[RemoteField]]] = []
    for spec in info.objects:
        if spec.hub_kind not in (HubKind.CONTACT, HubKind.COMPANY):
            continue
        fetched.append((spec, fetch_remote_fields(connection, spec.name, client)))
    existing = {
        (m.object_type, m.remote_field)
        for m in db.session.execute(
            select(FieldMapping).where(FieldMapping.connection_id == connection.id)
        ).scalars()
    }
    created: list[FieldMapping] = []
    for spec, fields in fetched:
        for row in preset_rows(connection, spec, fields):
            if (spec.name, row.remote_field) not in existing:
                db.session.add(row)
                created.append(row)
    db.session.flush()
    return created


def preset_rows(
    connection: Connection, spec: ObjectSpec, fields: Sequence[RemoteField]
) -> list[FieldMapping]:
    """Unsaved FieldMapping rows for the connector's presets of ``spec`` (invalid presets left out)."""
    wanted = Direction(connection.direction)
    rows: list[FieldMapping] = []
    for rf in fields:
        if not rf.hub_field:
            continue
        try:
            hub_field_type(spec.hub_kind, rf.hub_field, rf.type)
        except ConfigError:
            continue  # a preset naming no hub field of this kind
        flow = _widest(wanted, spec.directions, rf)
        if flow is None:
            continue
        rows.append(
            FieldMapping(
                connection_id=connection.id,
                object_type=spec.name,
                hub_field=rf.hub_field,
                remote_field=rf.name,
                direction=flow.value,
                write_policy="overwrite",
                value_map={},
                locked=rf.required,
            )
        )
    return rows


def _widest(wanted: Direction, allowed: frozenset[Direction], rf: RemoteField) -> Direction | None:
    for flow in (Direction.BOTH, Direction.TO_CRM, Direction.FROM_CRM):
        if not wanted.includes(flow) and wanted is not flow:
            continue
        if flow not in allowed or flow not in rf.directions:
            continue
        if flow.includes(Direction.TO_CRM) and not rf.writable:
            continue
        if flow.includes(Direction.FROM_CRM) and not rf.readable:
            continue
        return flow
    return None


def resolve(
    conn: Connection,
    spec: ObjectSpec,
    remote_fields: Sequence[RemoteField],
    rows: Sequence[FieldMapping] | None = None,
) -> ObjectMappings:
    """The connection's mappings of ``spec`` (or ``rows``), typed with the live remote fields.

    Mappings whose remote field disappeared from the CRM are dropped (schema drift) instead of
    failing every push; the engine notes them in the run details.
    """
    remote = {f.name: f for f in remote_fields}
    result = ObjectMappings(spec=spec, remote=remote)
    if rows is None:
        rows = list(
            db.session.execute(
                select(FieldMapping)
                .where(FieldMapping.connection_id == conn.id, FieldMapping.object_type == spec.name)
                .order_by(FieldMapping.id)
            ).scalars()
        )
    for row in rows:
        rf = remote.get(row.remote_field)
        if rf is None:
            continue
        result.items.append(
            FieldRule(
                hub_field=row.hub_field,
                remote_field=row.remote_field,
                direction=Direction(row.direction),
                write_policy=row.write_policy,
                value_map=dict(row.value_map or {}),
                hub_type=hub_field_type(spec.hub_kind, row.hub_field, rf.type),
                remote_type=rf.type,
                required=rf.required,
                choices=frozenset(c.value for c in rf.choices),
            )
        )
    return result


def missing_remote_fields(
    conn: Connection, spec: ObjectSpec, remote_fields: Sequence[RemoteField]
) -> list[str]:
    """Mapped remote fields the connector no longer reports."""
    names = {f.name for f in remote_fields}
    return [
        row.remote_field
        for row in db.session.execute(
            select(FieldMapping).where(
                FieldMapping.connection_id == conn.id, FieldMapping.object_type == spec.name
            )
        ).scalars()
        if row.remote_field not in names
    ]


def to_remote(m: FieldRule, value: Any) -> Any:
    """A hub value converted for the CRM (value map first, then type conversion)."""
    return fieldtypes.convert(fieldtypes.map_choice(value, m.value_map), m.hub_type, m.remote_type)


def to_hub(m: FieldRule, value: Any) -> Any:
    """A CRM value converted for the hub (type conversion, then the value map backwards)."""
    return fieldtypes.convert(
        fieldtypes.map_choice(value, m.value_map, reverse=True), m.remote_type, m.hub_type
    )
