"""The overview: what is connected, what ran, what needs attention."""

from __future__ import annotations

import json
from datetime import timedelta

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select

from .. import clock as clocks
from ..db import db
from ..models import Company, Connection, Contact, ContactList, SyncRun
from ..state import get_plugins
from .runs import SIDES, chart_data

bp = Blueprint("dashboard", __name__)


@bp.get("/")
def index() -> ResponseReturnValue:
    plugins = get_plugins()
    connections = list(db.session.execute(select(Connection).order_by(Connection.name)).scalars())
    last_runs = {}
    for conn in connections:
        last_runs[conn.id] = db.session.execute(
            select(SyncRun).where(SyncRun.connection_id == conn.id).order_by(SyncRun.id.desc()).limit(1)
        ).scalar_one_or_none()
    recent = list(db.session.execute(select(SyncRun).order_by(SyncRun.id.desc()).limit(8)).scalars())
    chart_runs = list(
        db.session.execute(
            select(SyncRun).where(SyncRun.started_at >= clocks.utcnow() - timedelta(days=14))
        ).scalars()
    )
    stats = {
        "contacts": db.session.execute(
            select(func.count(Contact.id)).where(Contact.deleted_at.is_(None))
        ).scalar_one(),
        "companies": db.session.execute(
            select(func.count(Company.id)).where(Company.deleted_at.is_(None))
        ).scalar_one(),
        "lists": db.session.execute(select(func.count(ContactList.id))).scalar_one(),
        "connections": sum(1 for c in connections if c.enabled),
    }
    attention = [c for c in connections if c.enabled and c.state != "ok"]
    broken = [r for r in plugins.records.values() if r.state.value == "broken"]
    return render_template(
        "dashboard.html",
        connections=connections,
        last_runs=last_runs,
        recent=recent,
        stats=stats,
        attention=attention,
        broken=broken,
        chart_json=json.dumps(chart_data(chart_runs, days=14)),
        SIDES=SIDES,
    )
