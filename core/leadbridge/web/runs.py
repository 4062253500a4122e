"""The sync log: runs over time, one run's two tables (CRM and leadbridge), its records, CSV, debug log."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import timedelta
from typing import Any

from flask import Blueprint, Response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import func, or_, select

from .. import clock as clocks
from ..db import db
from ..models import Connection, DebugEntry, SyncRecord, SyncRun
from ..sync import export_run_csv
from ..types import HubKind, RunStatus
from .util import OUTCOMES, connection_info, get_or_404, int_arg, like_escape, side_counts

bp = Blueprint("runs", __name__)

SIDES = (("crm", "CRM"), ("hub", "leadbridge"))
ACTIVE = frozenset(s for s in RunStatus if s.active)
RECORDS_PAGE = 100


def chart_data(runs: list[SyncRun], days: int = 30) -> dict[str, Any]:
    """Per day and side, the summed outcome counts of ``runs`` (dry runs left out): stacked bars."""
    today = clocks.utcnow().date()
    labels = [(today - timedelta(days=days - 1 - i)).isoformat() for i in range(days)]
    sums: dict[str, dict[str, dict[str, int]]] = {s: defaultdict(lambda: defaultdict(int)) for s, _ in SIDES}
    for run in runs:
        if run.dry_run:
            continue
        day = run.started_at.date().isoformat()
        for side, _ in SIDES:
            for outcome, n in side_counts(run.counts, side).items():
                sums[side][day][outcome] += n
    return {
        "labels": labels,
        "sides": {side: {o: [sums[side][d][o] for d in labels] for o in OUTCOMES} for side, _ in SIDES},
    }


@bp.get("/runs")
def index() -> ResponseReturnValue:
    conn_id = int_arg("connection")
    status = request.args.get("status", "")
    query = select(SyncRun).order_by(SyncRun.id.desc())
    if conn_id:
        query = query.where(SyncRun.connection_id == conn_id)
    if status:
        query = query.where(SyncRun.status == status)
    before = int_arg("before")
    if before:
        query = query.where(SyncRun.id < before)
    runs = list(db.session.execute(query.limit(50)).scalars())
    since = clocks.utcnow() - timedelta(days=30)
    chart_q = select(SyncRun).where(SyncRun.started_at >= since)
    if conn_id:
        chart_q = chart_q.where(SyncRun.connection_id == conn_id)
    chart_runs = list(db.session.execute(chart_q).scalars())
    connections = list(db.session.execute(select(Connection).order_by(Connection.name)).scalars())
    return render_template(
        "runs/index.html",
        runs=runs,
        connections=connections,
        conn_id=conn_id,
        status=status,
        chart_json=json.dumps(chart_data(chart_runs)),
        next_before=runs[-1].id if len(runs) == 50 else None,
        SIDES=SIDES,
    )


def _records_query(run: SyncRun) -> Any:
    q = select(SyncRecord).where(SyncRecord.run_id == run.id)
    side = request.args.get("side", "")
    if side in {s for s, _ in SIDES}:
        q = q.where(SyncRecord.side == side)
    outcome = request.args.get("outcome", "")
    if outcome:
        q = q.where(SyncRecord.outcome == outcome)
    text = request.args.get("q", "").strip()
    if text:
        like = "%" + like_escape(text) + "%"
        q = q.where(
            or_(
                SyncRecord.label.ilike(like, escape="\\"),
                SyncRecord.reason.ilike(like, escape="\\"),
                SyncRecord.code.ilike(like, escape="\\"),
                SyncRecord.remote_id.ilike(like, escape="\\"),
            )
        )
    return q


@bp.get("/runs/<int:run_id>")
def show(run_id: int) -> ResponseReturnValue:
    run = get_or_404(SyncRun, run_id)
    conn = run.connection
    info = connection_info(conn)
    after = int_arg("after", 0) or 0
    records = list(
        db.session.execute(
            _records_query(run).where(SyncRecord.id > after).order_by(SyncRecord.id).limit(RECORDS_PAGE + 1)
        ).scalars()
    )
    more = len(records) > RECORDS_PAGE
    records = records[:RECORDS_PAGE]
    kinds: dict[str, str] = {}
    if info is not None:
        kinds = {o.name: o.hub_kind.value for o in info.objects}
    outcomes_present = [
        r[0]
        for r in db.session.execute(select(SyncRecord.outcome).where(SyncRecord.run_id == run.id).distinct())
    ]
    debug_count = db.session.execute(
        select(func.count(DebugEntry.id)).where(DebugEntry.run_id == run.id)
    ).scalar_one()
    has_diff = any(r.diff for r in records)
    return render_template(
        "runs/show.html",
        run=run,
        conn=conn,
        info=info,
        records=records,
        more=more,
        next_after=records[-1].id if more and records else None,
        kinds=kinds,
        SIDES=SIDES,
        active=run.status in ACTIVE,
        filters={k: request.args.get(k, "") for k in ("side", "outcome", "q")},
        outcomes_present=sorted(set(outcomes_present) | set(OUTCOMES)),
        debug_count=debug_count,
        has_diff=has_diff,
        HubKind=HubKind,
    )


@bp.get("/runs/<int:run_id>/progress")
def progress(run_id: int) -> ResponseReturnValue:
    """The live progress fragment htmx polls; once the run is over it asks for a full reload."""
    run = get_or_404(SyncRun, run_id)
    response = Response(render_template("runs/_progress.html", run=run, active=run.status in ACTIVE))
    if run.status not in ACTIVE and request.args.get("was_active") == "1":
        response.headers["HX-Refresh"] = "true"
    return response


@bp.get("/runs/<int:run_id>/csv")
def csv(run_id: int) -> ResponseReturnValue:
    run = get_or_404(SyncRun, run_id)
    side = request.args.get("side") or None
    outcome = request.args.get("outcome") or None
    body = export_run_csv(run.id, side=side, outcome=outcome)
    suffix = "".join(f"-{p}" for p in (side, outcome) if p)
    return Response(
        body,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="leadbridge-run-{run.id}{suffix}.csv"'},
    )


@bp.get("/runs/<int:run_id>/debug")
def debug_log(run_id: int) -> ResponseReturnValue:
    run = get_or_404(SyncRun, run_id)
    after = int_arg("after", 0) or 0
    entries = list(
        db.session.execute(
            select(DebugEntry)
            .where(DebugEntry.run_id == run.id, DebugEntry.id > after)
            .order_by(DebugEntry.id)
            .limit(101)
        ).scalars()
    )
    more = len(entries) > 100
    entries = entries[:100]
    return render_template(
        "runs/debug.html",
        run=run,
        conn=run.connection,
        entries=entries,
        next_after=entries[-1].id if more else None,
    )


@bp.get("/connections/<int:conn_id>/runs")
def for_connection(conn_id: int) -> ResponseReturnValue:
    get_or_404(Connection, conn_id)
    return redirect(url_for("runs.index", connection=conn_id))
