"""POST /webhooks/<connection id>: verified by the connector, applied by the engine, no login or CSRF."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from leadbridge import clock as clocks
from leadbridge.db import db
from leadbridge.models import Connection, Contact, SyncRun
from leadbridge.state import get_executor
from leadbridge.sync import default_mappings, run_sync


@pytest.fixture
def conn(connection: Connection) -> Connection:
    default_mappings(connection)
    db.session.commit()
    return connection


def _event(rid: str, first_name: str) -> dict[str, Any]:
    when = (clocks.utcnow() + timedelta(seconds=1)).isoformat()
    return {
        "id": f"ev-{first_name}",
        "type": "contact.updated",
        "data": {
            "id": rid,
            "email": f"person{rid}@example.net",
            "updated_at": when,
            "first_name": first_name,
        },
    }


def test_a_signed_delivery_is_applied_once(app: Flask, conn: Connection, sandbox: Any, url) -> None:
    [rid] = sandbox.add_contacts(1)
    run_sync(conn.id, direction="from_crm")
    body, headers = sandbox.webhook_delivery([_event(rid, "Hooked")])
    public = app.test_client()
    response = public.post(url("webhooks.receive", conn_id=conn.id), data=body, headers=headers)
    # Answered once the event is stored; a background run applies it.
    assert response.status_code == 200 and response.json["queued"] == 1, response.json
    get_executor(app).wait(30)
    db.session.rollback()
    assert db.session.query(Contact).one().first_name == "Hooked"
    drain = db.session.get(SyncRun, response.json["run_id"])
    assert drain.trigger == "webhook" and drain.status == "succeeded" and drain.counts["hub"]["updated"] == 1
    again = public.post(url("webhooks.receive", conn_id=conn.id), data=body, headers=headers)
    assert again.status_code == 200 and again.json["duplicates"] == 1 and again.json["run_id"] is None


def test_a_forged_delivery_is_refused_and_stores_nothing(
    app: Flask, conn: Connection, sandbox: Any, url
) -> None:
    [rid] = sandbox.add_contacts(1)
    body, headers = sandbox.webhook_delivery([_event(rid, "Forged")], secret="not-the-secret")
    before = db.session.query(SyncRun).count()
    response = app.test_client().post(url("webhooks.receive", conn_id=conn.id), data=body, headers=headers)
    assert response.status_code == 401
    db.session.rollback()
    assert db.session.query(SyncRun).count() == before and db.session.query(Contact).count() == 0


def test_unknown_or_disabled_connection_is_404(app: Flask, make_connection: Any, sandbox: Any, url) -> None:
    off = make_connection(enabled=False)
    body, headers = sandbox.webhook_delivery([])
    public = app.test_client()
    assert public.post(url("webhooks.receive", conn_id=off.id), data=body, headers=headers).status_code == 404
    assert public.post(url("webhooks.receive", conn_id=999), data=body, headers=headers).status_code == 404


def test_the_settings_page_shows_the_webhook_url(logged_in: Any, connection: Connection, url) -> None:
    html = logged_in.get(url("integrations.settings", conn_id=connection.id)).get_data(as_text=True)
    assert f"/webhooks/{connection.id}</code>" in html
