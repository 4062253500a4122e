"""Field mapping per connection and object: remote fields discovered live, hub fields, direction,
write policy and value maps; every change validated by the engine before it is saved."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from ..db import db
from ..errors import ConfigError, LeadbridgeError
from ..metadata import ConnectorInfo, ObjectSpec
from ..models import Connection, Contact, FieldMapping
from ..sync import default_mappings, fieldcache, hubfields, validate_mapping
from ..types import Direction, FieldType, HubKind, RemoteField
from .util import connection_info, get_or_404

bp = Blueprint("mapping", __name__)

WRITE_POLICIES = (("overwrite", "Overwrite"), ("if_empty", "Only if empty"), ("never", "Never overwrite"))
DIRECTION_LABELS = {"to_crm": "→ CRM", "from_crm": "← from CRM", "both": "⇄ both"}


@dataclass
class Discovered:
    fields: list[RemoteField]
    at: datetime


def _hub_fields(kind: HubKind) -> tuple[str, ...]:
    return tuple(hubfields.hub_fields(kind))


def _hub_choices(hub_field: str) -> tuple[str, ...]:
    return tuple(hubfields.HUB_CHOICES.get(hub_field, ()))


def _hub_statuses() -> list[str]:
    """Statuses in use in the hub: suggestions for the keys of a ``status`` value map."""
    rows = db.session.execute(
        select(Contact.status)
        .where(Contact.status.is_not(None))
        .distinct()
        .order_by(Contact.status)
        .limit(100)
    )
    return [s for (s,) in rows if s]


def discover(conn: Connection, object_type: str, *, refresh: bool = False) -> Discovered:
    """The connector's fields of ``object_type`` from the connection's field cache ("Refresh fields"
    fetches them again: a vendor call)."""
    cached = fieldcache.remote_fields(conn, object_type, refresh=refresh)
    return Discovered(fields=cached.fields, at=cached.fetched_at)


def allowed_directions(spec: ObjectSpec, rf: RemoteField) -> list[str]:
    out = []
    for d in (Direction.BOTH, Direction.TO_CRM, Direction.FROM_CRM):
        if d not in spec.directions or d not in rf.directions:
            continue
        if d.includes(Direction.TO_CRM) and not rf.writable:
            continue
        if d.includes(Direction.FROM_CRM) and not rf.readable:
            continue
        out.append(d.value)
    return out


def _mappable(info: ConnectorInfo) -> list[ObjectSpec]:
    return [o for o in info.objects if o.hub_kind in (HubKind.CONTACT, HubKind.COMPANY)]


def _rows(
    spec: ObjectSpec,
    fields: list[RemoteField],
    mappings: dict[str, FieldMapping],
    submitted: dict[str, dict[str, Any]] | None,
) -> list[dict[str, Any]]:
    rows = []
    for i, rf in enumerate(sorted(fields, key=lambda f: (not f.required, f.custom, f.label.lower()))):
        m = mappings.get(rf.name)
        sub = (submitted or {}).get(rf.name)
        hub = sub["hub_field"] if sub else (m.hub_field if m else "")
        direction = sub["direction"] if sub else (m.direction if m else "")
        policy = sub["write_policy"] if sub else (m.write_policy if m else "overwrite")
        value_map = sub["value_map"] if sub else (dict(m.value_map or {}) if m else {})
        rows.append(
            {
                "i": i,
                "rf": rf,
                "hub_field": hub,
                "direction": direction,
                "write_policy": policy,
                "value_map": value_map,
                "locked": bool(m and m.locked) or rf.required,
                "directions": allowed_directions(spec, rf),
                "error": (sub or {}).get("error"),
                "selectish": rf.type in (FieldType.SELECT, FieldType.MULTISELECT),
            }
        )
    return rows


def _parse_row(i: int) -> dict[str, Any]:
    f = request.form
    value_map: dict[str, str] = {}
    for j in range(int(f.get(f"vm_{i}_n", "0") or 0)):
        k, v = f.get(f"vm_{i}_k{j}", "").strip(), f.get(f"vm_{i}_v{j}", "").strip()
        if k and v:
            value_map[k] = v
    return {
        "hub_field": f.get(f"hub_{i}", "").strip(),
        "direction": f.get(f"dir_{i}", "both"),
        "write_policy": f.get(f"policy_{i}", "overwrite"),
        "value_map": value_map,
    }


@bp.route("/connections/<int:conn_id>/mapping", methods=["GET", "POST"])
def edit(conn_id: int) -> ResponseReturnValue:
    conn = get_or_404(Connection, conn_id)
    info = connection_info(conn)
    if info is None:
        abort(404)
    objects = _mappable(info)
    if not objects:
        abort(404)
    object_type = request.values.get("object") or objects[0].name
    spec = next((o for o in objects if o.name == object_type), None)
    if spec is None:
        abort(404)
    problem = None
    discovered: Discovered | None = None
    if not conn.enabled:
        problem = "Enable the connection to discover its fields."
    else:
        try:
            discovered = discover(conn, spec.name, refresh=request.args.get("refresh") == "1")
        except LeadbridgeError as exc:
            db.session.rollback()
            problem = f"Could not read the fields from {info.display_name}: {exc}"
    fields = discovered.fields if discovered else []
    mappings = {
        m.remote_field: m
        for m in db.session.execute(
            select(FieldMapping).where(
                FieldMapping.connection_id == conn.id, FieldMapping.object_type == spec.name
            )
        ).scalars()
    }
    submitted: dict[str, dict[str, Any]] | None = None
    status = 200
    if request.method == "POST" and discovered is not None:
        submitted, ok = _save(conn, spec, fields, mappings)
        if ok:
            flash("Field mapping saved.", "success")
            return redirect(url_for("mapping.edit", conn_id=conn.id, object=spec.name, saved=1))
        status = 400
    elif request.method == "POST":
        status = 400
    hub_kind = spec.hub_kind
    return render_template(
        "mapping/edit.html",
        conn=conn,
        info=info,
        spec=spec,
        objects=objects,
        problem=problem,
        discovered=discovered,
        rows=_rows(spec, fields, mappings, submitted),
        hub_fields=_hub_fields(hub_kind),
        hub_choices=_hub_choices,
        hub_statuses=_hub_statuses(),
        WRITE_POLICIES=WRITE_POLICIES,
        DIRECTION_LABELS=DIRECTION_LABELS,
        saved=request.args.get("saved") == "1",
        has_errors=any(s.get("error") for s in (submitted or {}).values()),
    ), status


def _save(
    conn: Connection, spec: ObjectSpec, fields: list[RemoteField], existing: dict[str, FieldMapping]
) -> tuple[dict[str, dict[str, Any]], bool]:
    ordered = sorted(fields, key=lambda f: (not f.required, f.custom, f.label.lower()))
    by_name = {f.name: f for f in ordered}
    submitted: dict[str, dict[str, Any]] = {}
    for i, rf in enumerate(ordered):
        if request.form.get(f"remote_{i}") != rf.name:
            continue  # the field list changed since the page was drawn; keep what is stored
        row = _parse_row(i)
        m = existing.get(rf.name)
        if (m is not None and m.locked) and not row["hub_field"]:
            row["hub_field"] = m.hub_field  # a locked mapping cannot be removed
        submitted[rf.name] = row
    ok = True
    for name, row in submitted.items():
        rf = by_name[name]
        if not row["hub_field"]:
            if rf.required:
                row["error"] = f"{rf.label} is required by the CRM: map a hub field to it."
                ok = False
            continue
        try:
            validate_mapping(
                conn,
                spec.name,
                row["hub_field"],
                name,
                row["direction"],
                row["write_policy"],
                row["value_map"],
                remote_fields=fields,
            )
        except ConfigError as exc:
            row["error"] = exc.message
            ok = False
    if not ok:
        return submitted, False
    for name, row in submitted.items():
        m = existing.get(name)
        if not row["hub_field"]:
            if m is not None:
                db.session.delete(m)
            continue
        if m is None:
            m = FieldMapping(connection_id=conn.id, object_type=spec.name, remote_field=name)
            db.session.add(m)
        m.hub_field = row["hub_field"]
        m.direction = row["direction"]
        m.write_policy = row["write_policy"]
        m.value_map = row["value_map"]
        m.locked = by_name[name].required
    db.session.commit()
    return submitted, True


@bp.post("/connections/<int:conn_id>/mapping/defaults")
def defaults(conn_id: int) -> ResponseReturnValue:
    """Create the connector's preset mappings for fields not mapped yet."""
    conn = get_or_404(Connection, conn_id)
    if connection_info(conn) is None:
        abort(404)
    try:
        db.session.commit()
        created = default_mappings(conn)
        db.session.commit()
    except LeadbridgeError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        flash(
            f"{len(created)} suggested mappings added." if created else "Every suggested field is mapped.",
            "success",
        )
    return redirect(url_for("mapping.edit", conn_id=conn.id, object=request.form.get("object") or None))
