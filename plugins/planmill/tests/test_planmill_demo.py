"""`leadbridge demo` starts the PlanMill sandbox with demo data and a ready connection."""

from __future__ import annotations

from flask import Flask
from leadbridge import connections
from leadbridge.app import get_plugins
from leadbridge.db import db
from leadbridge.demo import prepare_demo
from leadbridge.models import Connection
from sqlalchemy import select


def test_demo_connection_works_and_offers_campaigns(app_ctx: Flask) -> None:
    summary = prepare_demo(app_ctx)
    try:
        conn = db.session.execute(select(Connection).where(Connection.plugin == "planmill")).scalar_one()
        ok, message = connections.test_connection(conn)
        assert ok, message
        campaigns = get_plugins().call(
            connections.view(conn), "list_campaigns", client=connections.client_for(conn)
        )
        names = {c.name: c.member_count for c in campaigns}
        assert names["Spring webinar 2026"] == 16
        assert summary.sandboxes["planmill"].contact_count() >= 24
    finally:
        summary.stop()
