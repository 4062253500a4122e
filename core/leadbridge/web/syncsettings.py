"""Sync settings per connection, and the "Sync now" / "Dry run" buttons."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from ..db import db
from ..errors import LeadbridgeError
from ..models import Connection
from ..sync import start_run
from ..types import Direction
from .integrations import reconcile_webhooks
from .util import connection_info, get_or_404

bp = Blueprint("syncsettings", __name__)

DIRECTIONS = (
    ("to_crm", "leadbridge → CRM"),
    ("from_crm", "CRM → leadbridge"),
    ("both", "Both ways"),
)
DELETE_POLICIES = {
    "to_crm": (
        ("ignore", "Ignore"),
        ("unsubscribe", "Unsubscribe in the CRM"),
        ("delete", "Delete in the CRM"),
    ),
    "from_crm": (
        ("ignore", "Ignore"),
        ("unsubscribe", "Unsubscribe in leadbridge"),
        ("delete", "Delete in leadbridge"),
    ),
}
CONFLICTS = (("newest", "Newest change wins"), ("hub", "leadbridge wins"), ("crm", "The CRM wins"))
INTERVALS = (15, 30, 60, 120, 240, 720, 1440)
_CRON = re.compile(r"^\s*(\S+\s+){4}\S+\s*$")


def _parse(conn: Connection, form: Any, object_names: list[str]) -> list[str]:
    problems: list[str] = []
    direction = form.get("direction", "both")
    if direction not in {d for d, _ in DIRECTIONS}:
        problems.append("Direction: choose one of the options")
    objects = [o for o in form.getlist("objects") if o in object_names]
    if not objects:
        problems.append("Objects: choose at least one object to sync")
    mode = form.get("frequency", "interval")
    interval: int | None = None
    cron: str | None = None
    if mode == "interval":
        raw = form.get("interval_minutes", "")
        if not raw.isdigit() or not 5 <= int(raw) <= 10080:
            problems.append("Frequency: every 5 to 10080 minutes")
        else:
            interval = int(raw)
    elif mode == "cron":
        cron = form.get("cron", "").strip()
        if not _CRON.match(cron):
            problems.append("Cron: five fields, e.g. 0 */2 * * *")
    elif mode != "manual":
        problems.append("Frequency: choose one of the options")
    sync_from: datetime | None = None
    raw_from = form.get("sync_from", "").strip()
    if raw_from:
        try:
            sync_from = datetime.fromisoformat(raw_from).replace(tzinfo=UTC)
        except ValueError:
            problems.append("Sync records from: a date like 2026-01-31")
    policy = {}
    for side, choices in DELETE_POLICIES.items():
        value = form.get(f"delete_{side}", "ignore")
        if value not in {c for c, _ in choices}:
            problems.append("Delete policy: choose one of the options")
        policy[side] = value
    conflict = form.get("conflict", "newest")
    if conflict not in {c for c, _ in CONFLICTS}:
        problems.append("Conflict winner: choose one of the options")
    if problems:
        return problems
    conn.direction = Direction(direction).value
    conn.schedule_interval_minutes = interval
    conn.schedule_cron = cron
    conn.sync_from = sync_from
    conn.options = {
        **(conn.options or {}),
        "objects": objects,
        "debug": form.get("debug") == "on",
        "delete_policy": policy,
        "conflict": conflict,
        "push_actions_on_schedule": form.get("push_actions_on_schedule") == "on",
    }
    return []


@bp.route("/connections/<int:conn_id>/sync", methods=["GET", "POST"])
def sync_settings(conn_id: int) -> ResponseReturnValue:
    conn = get_or_404(Connection, conn_id)
    info = connection_info(conn)
    if info is None:
        abort(404)
    object_names = [o.name for o in info.objects]
    problems: list[str] = []
    if request.method == "POST":
        problems = _parse(conn, request.form, object_names)
        if not problems:
            db.session.commit()
            flash("Sync settings saved. A full sync applies them to records synced before.", "success")
            reconcile_webhooks(conn)  # the direction decides whether webhooks are wanted
            return redirect(url_for("syncsettings.sync_settings", conn_id=conn.id, changed=1))
        db.session.rollback()
    options = conn.options or {}
    return render_template(
        "sync/settings.html",
        conn=conn,
        info=info,
        problems=problems,
        selected_objects=options.get("objects") or object_names,
        options=options,
        policy=options.get("delete_policy") or {},
        DIRECTIONS=DIRECTIONS,
        DELETE_POLICIES=DELETE_POLICIES,
        CONFLICTS=CONFLICTS,
        INTERVALS=INTERVALS,
        changed=request.args.get("changed") == "1",
    ), (400 if problems else 200)


@bp.post("/connections/<int:conn_id>/run")
def run_now(conn_id: int) -> ResponseReturnValue:
    """ "Sync now", "Dry run" and "Run a full sync now": start a background run, then watch it."""
    conn = get_or_404(Connection, conn_id)
    if connection_info(conn) is None:
        abort(404)
    if not conn.enabled:
        flash("Enable the connection first.", "warning")
        return redirect(url_for("syncsettings.sync_settings", conn_id=conn.id))
    dry_run = request.form.get("dry_run") == "1"
    full = request.form.get("full") == "1"
    db.session.commit()
    try:
        run_id = start_run(conn.id, trigger="manual", dry_run=dry_run, full=full)
    except LeadbridgeError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("syncsettings.sync_settings", conn_id=conn.id))
    return redirect(url_for("runs.show", run_id=int(run_id)))
