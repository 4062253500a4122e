"""CSV export of a run's records, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from sqlalchemy import select

from ..db import db
from ..errors import ConfigError
from ..models import SyncRecord, SyncRun

COLUMNS = (
    "run_id",
    "at",
    "side",
    "object_type",
    "outcome",
    "hub_id",
    "remote_id",
    "label",
    "reason",
    "code",
    "diff",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> str:
    """A cell a spreadsheet will not run as a formula (leading = + - @ tab CR get a quote prefix)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def export_run_csv(run_id: int, *, side: str | None = None, outcome: str | None = None) -> str:
    """The records of run ``run_id`` as CSV text (header first), optionally filtered by side/outcome."""
    run = db.session.get(SyncRun, run_id)
    if run is None:
        raise ConfigError(f"no run #{run_id}")
    query = select(SyncRecord).where(SyncRecord.run_id == run_id).order_by(SyncRecord.id)
    if side:
        query = query.where(SyncRecord.side == side)
    if outcome:
        query = query.where(SyncRecord.outcome == outcome)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for rec in db.session.execute(query).scalars():
        row = (
            rec.run_id,
            rec.at.isoformat() if rec.at else "",
            rec.side,
            rec.object_type,
            rec.outcome,
            rec.hub_id,
            rec.remote_id,
            rec.label,
            rec.reason,
            rec.code,
            json.dumps(rec.diff, ensure_ascii=False, default=str) if rec.diff else "",
        )
        writer.writerow([safe_cell(v) for v in row])
    return out.getvalue()


def export_runs_csv(connection_id: int | None = None, *, limit: int = 1000) -> str:
    """Recent runs (one row each, counts flattened) as CSV text."""
    query = select(SyncRun).order_by(SyncRun.id.desc()).limit(limit)
    if connection_id is not None:
        query = query.where(SyncRun.connection_id == connection_id)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    sides = ("crm", "hub")
    kinds = ("created", "updated", "skipped", "deleted", "failed")
    writer.writerow(
        [
            "run_id",
            "connection_id",
            "status",
            "trigger",
            "direction",
            "dry_run",
            "started_at",
            "finished_at",
            "duration_s",
            *[f"{s}_{k}" for s in sides for k in kinds],
            "api_calls",
            "error",
        ]
    )
    for run in db.session.execute(query).scalars():
        duration = (run.finished_at - run.started_at).total_seconds() if run.finished_at else ""
        counts = run.counts or {}
        row = [
            run.id,
            run.connection_id,
            run.status,
            run.trigger,
            run.direction,
            run.dry_run,
            run.started_at.isoformat(),
            run.finished_at.isoformat() if run.finished_at else "",
            duration,
            *[(counts.get(s) or {}).get(k, 0) for s in sides for k in kinds],
            run.api_calls,
            run.error,
        ]
        writer.writerow([safe_cell(v) for v in row])
    return out.getvalue()
