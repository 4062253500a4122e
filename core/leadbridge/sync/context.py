"""What one run carries around: the connection, its connector, the vendor client, the run log."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ParamSpec

from flask import Flask
from sqlalchemy import select

from ..connection_view import ConnectionView
from ..connections import client_for, rebase, view
from ..connector import Connector
from ..db import db
from ..errors import SCHEMA_CHANGED, ConfigError, SchemaChanged, TransientError, worth_resending
from ..http import CallStats, VendorClient
from ..metadata import ConnectorInfo, ObjectSpec
from ..models import Connection, FieldMapping
from ..plugins import Plugins
from ..state import get_plugins
from ..types import ConflictPolicy, DeletePolicy, Direction, HubKind, RecordResult
from . import fieldcache
from .mappings import ObjectMappings, fetch_remote_fields, missing_remote_fields, preset_rows, resolve
from .runlog import RunLog

P = ParamSpec("P")

#: How often the engine re-sends an upsert batch after a transient failure (upserts are idempotent).
WRITE_ATTEMPTS = 2
#: The paging guard besides ``next_cursor is None`` and a repeating cursor.
MAX_PAGES = 100_000


@dataclass
class RunContext:
    app: Flask
    conn_id: int
    info: ConnectorInfo
    plugins: Plugins
    client: VendorClient
    stats: CallStats
    log: RunLog
    started_at: datetime
    direction: Direction
    dry_run: bool = False
    full: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    #: company key (``id:<hub id>`` / ``name:<key>``) → remote id: one upsert per company per run
    company_cache: dict[str, str | None] = field(default_factory=dict)
    _mappings: dict[str, ObjectMappings] = field(default_factory=dict)
    _view: ConnectionView | None = None

    @classmethod
    def open(
        cls,
        conn: Connection,
        log: RunLog,
        *,
        started_at: datetime,
        direction: Direction,
        dry_run: bool = False,
        full: bool = False,
        debug: bool | None = None,
    ) -> RunContext:
        """Build the context and authenticate (a vendor call: the caller has committed)."""
        plugins = get_plugins()
        info = plugins.info(conn.plugin)
        stats = CallStats()
        client = client_for(conn, run_id=log.run_id, stats=stats, debug=debug)
        ctx = cls(
            app=_app(),
            conn_id=conn.id,
            info=info,
            plugins=plugins,
            client=client,
            stats=stats,
            log=log,
            started_at=started_at,
            direction=direction,
            dry_run=dry_run,
            full=full,
            options=dict(conn.options or {}),
        )
        if client.auth is not None:
            client.auth.headers()
            db.session.expire_all()  # the renewal committed credentials in another session
            rebase(client, ctx.conn)
        return ctx

    @property
    def conn(self) -> Connection:
        row = db.session.get(Connection, self.conn_id)
        if row is None:
            raise ConfigError("the connection was deleted during the run")
        return row

    @property
    def view(self) -> ConnectionView:
        if self._view is None:
            self._view = view(self.conn)
        return self._view

    def implements(self, hook: str) -> bool:
        return self.plugins.implements(self.info.name, hook)

    @property
    def hooks(self) -> Connector:
        """The connector's typed hooks (commit before calling one: it may hit the vendor)."""
        return self.plugins.connector(self.view)

    def write(
        self,
        name: str,
        object_type: str | None,
        hook: Callable[P, list[RecordResult]],
        *args: P.args,
        **kw: P.kwargs,
    ) -> list[RecordResult]:
        """Call an idempotent upsert/delete hook, re-sending it once after a plain transient failure.

        Safe because the contract makes these writes upserts: an ambiguous write (the vendor applied
        it, the answer was lost) re-sent creates nothing new. A schema complaint drops the cached
        fields of ``object_type``. ``name`` is the hook, for the run log.
        """
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                results = hook(*args, **kw)
            except SchemaChanged:
                self.schema_changed(object_type)
                raise
            except TransientError as exc:
                if attempt == WRITE_ATTEMPTS or not worth_resending(exc):
                    raise
                self.log.note(f"{name} re-sent after: {exc}")
                continue
            if any(r.code == SCHEMA_CHANGED for r in results):
                self.schema_changed(object_type)
            return results
        raise AssertionError("unreachable")  # pragma: no cover

    def schema_changed(self, object_type: str | None) -> None:
        """The vendor said the schema of ``object_type`` changed: forget its cached fields (and this
        run's mappings of it), so the next lookup fetches them again."""
        fieldcache.invalidate(self.conn_id, object_type)
        db.session.commit()
        if object_type is None:
            self._mappings.clear()
        else:
            self._mappings.pop(object_type, None)
        self.log.note(
            f"{object_type or 'the'} fields changed in {self.info.display_name}: they are fetched again"
        )

    def mappings(self, spec: ObjectSpec) -> ObjectMappings:
        """The mappings of ``spec`` resolved against the live fields (one ``field_types`` call per run)."""
        cached = self._mappings.get(spec.name)
        if cached is None:
            db.session.commit()
            fields = fetch_remote_fields(self.conn, spec.name, self.client)
            rows = None
            if not db.session.execute(
                select(FieldMapping.id)
                .where(FieldMapping.connection_id == self.conn_id, FieldMapping.object_type == spec.name)
                .limit(1)
            ).first():
                # An object nobody mapped yet syncs the connector's preset fields.
                rows = preset_rows(self.conn, spec, fields)
                if not self.dry_run:
                    db.session.add_all(rows)
                    db.session.commit()
                    rows = None
                    self.log.note(
                        f"{spec.label}: default field mappings created from the connector's presets"
                    )
            cached = resolve(self.conn, spec, fields, rows)
            for gone in missing_remote_fields(self.conn, spec, fields):
                self.log.note(
                    f"{spec.label}: mapped field {gone!r} no longer exists in {self.info.display_name}"
                )
            self._mappings[spec.name] = cached
        return cached

    def objects(self, kind: HubKind) -> list[ObjectSpec]:
        """The connector objects of ``kind`` this connection syncs (``options["objects"]`` narrows them)."""
        chosen = self.options.get("objects")
        return [o for o in self.info.objects_of(kind) if not chosen or o.name in chosen]

    def company_spec(self) -> ObjectSpec | None:
        specs = self.info.objects_of(HubKind.COMPANY)
        return specs[0] if specs else None

    def allows(self, spec: ObjectSpec, flow: Direction) -> bool:
        """True when this run, the connection and the connector object all allow ``flow``."""
        return self.direction.includes(flow) and any(d.includes(flow) for d in spec.directions)

    def delete_policy(self, flow: Direction) -> DeletePolicy:
        """The delete policy of ``flow`` (``to_crm`` / ``from_crm``); unknown values read as ignore."""
        policy = (self.options.get("delete_policy") or {}).get(flow.value, DeletePolicy.IGNORE)
        return DeletePolicy(policy) if policy in set(DeletePolicy) else DeletePolicy.IGNORE

    @property
    def conflict_policy(self) -> ConflictPolicy:
        policy = self.options.get("conflict", ConflictPolicy.NEWEST)
        return ConflictPolicy(policy) if policy in set(ConflictPolicy) else ConflictPolicy.NEWEST


def _app() -> Flask:
    from flask import current_app

    return current_app._get_current_object()  # type: ignore[attr-defined,no-any-return]
