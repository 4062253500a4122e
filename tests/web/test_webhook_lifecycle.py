"""The core owns the webhook lifecycle: registered once when a connection is enabled or saved, removed
when it is disabled or deleted, its state shown in the panel; deliveries cost no field-list call."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from leadbridge import clock as clocks
from leadbridge.db import db
from leadbridge.models import Connection, WebhookSubscription
from leadbridge.state import get_executor
from leadbridge.sync import default_mappings, run_sync
from leadbridge.sync.fieldcache import FIELD_CACHE_SECONDS


def _settings_form(conn: Connection, csrf: str, base_url: str, **extra: str) -> dict[str, str]:
    return {
        "csrf_token": csrf,
        "name": conn.name,
        "client_id": conn.settings["client_id"],
        "client_secret": "",  # empty keeps the stored secret
        "webhook_secret": "",
        "base_url": base_url,
        **extra,
    }


def _toggle(client: FlaskClient, url: Any, csrf: str, conn_id: int, enabled: str) -> None:
    response = client.post(
        url("integrations.set_enabled", conn_id=conn_id), data={"csrf_token": csrf, "enabled": enabled}
    )
    assert response.status_code == 302


def test_enable_registers_once_resave_reuses_disable_and_delete_remove(
    app: Flask, logged_in: FlaskClient, csrf: str, make_connection, sandbox: Any, sandbox_server: Any, url
) -> None:
    conn = make_connection(enabled=False)
    conn_id, hook_url = conn.id, f"{app.config['HUB_URL'].rstrip('/')}/webhooks/{conn.id}"
    settings_page = url("integrations.settings", conn_id=conn_id)
    assert sandbox.webhooks == []
    assert 'data-webhooks="none"' in logged_in.get(settings_page).get_data(as_text=True)

    enabled = logged_in.post(
        url("integrations.set_enabled", conn_id=conn_id), data={"csrf_token": csrf, "enabled": "1"}
    )
    assert enabled.status_code == 302
    assert [w["url"] for w in sandbox.webhooks] == [hook_url]
    first_id = sandbox.webhooks[0]["id"]
    page = logged_in.get(settings_page).get_data(as_text=True)
    assert 'data-webhooks="registered"' in page and "✓ Registered" in page and first_id in page
    assert "Webhooks registered at the vendor (1)" in page

    for _ in range(2):  # saving again re-uses the subscription: never a duplicate
        saved = logged_in.post(settings_page, data=_settings_form(conn, csrf, sandbox_server.url))
        assert saved.status_code == 302
    assert [w["id"] for w in sandbox.webhooks] == [first_id]

    logged_in.post(
        url("integrations.set_enabled", conn_id=conn_id), data={"csrf_token": csrf, "enabled": "0"}
    )
    assert sandbox.webhooks == []
    page = logged_in.get(settings_page).get_data(as_text=True)
    assert 'data-webhooks="removed"' in page and "Not registered" in page

    logged_in.post(
        url("integrations.set_enabled", conn_id=conn_id), data={"csrf_token": csrf, "enabled": "1"}
    )
    assert len(sandbox.webhooks) == 1
    deleted = logged_in.post(
        url("integrations.delete", conn_id=conn_id), data={"csrf_token": csrf, "confirm": conn.name}
    )
    assert deleted.status_code == 302
    assert sandbox.webhooks == []
    with app.app_context():
        assert db.session.get(Connection, conn_id) is None
        assert db.session.get(WebhookSubscription, conn_id) is None


def test_a_connection_that_only_pushes_wants_no_webhooks(
    app: Flask, logged_in: FlaskClient, csrf: str, make_connection, sandbox: Any, url
) -> None:
    conn = make_connection(enabled=False)
    with app.app_context():
        row = db.session.get(Connection, conn.id)
        row.direction = "to_crm"
        db.session.commit()
    logged_in.post(
        url("integrations.set_enabled", conn_id=conn.id), data={"csrf_token": csrf, "enabled": "1"}
    )
    assert sandbox.webhooks == []


def test_a_vendor_refusal_is_shown_and_the_next_save_retries(
    app: Flask, logged_in: FlaskClient, csrf: str, make_connection, sandbox: Any, sandbox_server: Any, url
) -> None:
    conn = make_connection(enabled=False)
    settings_page = url("integrations.settings", conn_id=conn.id)
    sandbox.fail_next(500, times=5, path_prefix="/api/webhooks")
    response = logged_in.post(
        url("integrations.set_enabled", conn_id=conn.id),
        data={"csrf_token": csrf, "enabled": "1"},
        follow_redirects=True,
    )
    html = response.get_data(as_text=True)
    assert "is enabled" in html  # the change itself was kept
    assert "Webhooks: could not register the webhooks" in html
    page = logged_in.get(settings_page).get_data(as_text=True)
    assert 'data-webhooks="failed"' in page and "✕ Failed" in page
    assert sandbox.webhooks == []
    logged_in.post(settings_page, data=_settings_form(conn, csrf, sandbox_server.url))
    assert len(sandbox.webhooks) == 1
    assert 'data-webhooks="registered"' in logged_in.get(settings_page).get_data(as_text=True)


def _delivery(client: FlaskClient, sandbox: Any, conn_id: int, rid: str, event_id: str, name: str) -> None:
    when = (clocks.utcnow() + timedelta(seconds=1)).isoformat()
    event = {
        "id": event_id,
        "type": "contact.updated",
        "data": {"id": rid, "email": f"person{rid}@example.net", "updated_at": when, "first_name": name},
    }
    body, headers = sandbox.webhook_delivery([event])
    response = client.post(f"/webhooks/{conn_id}", data=body, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    get_executor(client.application).wait(30)  # the delivery is applied in the background


def test_a_delivery_makes_no_field_list_call_until_the_cache_expires(
    app_ctx: Flask, client: FlaskClient, connection: Connection, sandbox: Any
) -> None:
    default_mappings(connection)
    db.session.commit()
    [rid] = sandbox.add_contacts(1)
    run_sync(connection.id, direction="from_crm")
    sandbox.reset_calls()
    for i in range(3):
        _delivery(client, sandbox, connection.id, rid, f"ev-{i}", f"Hooked {i}")
    assert sandbox.count_calls(prefix="/api/fields") == 0
    assert sandbox.count_calls() == 0  # nothing else either: the delivery carries the record
    clocks.get_clock().advance(FIELD_CACHE_SECONDS + 1)  # type: ignore[attr-defined]
    _delivery(client, sandbox, connection.id, rid, "ev-late", "Hooked late")
    assert sandbox.count_calls(prefix="/api/fields") == 1  # the contact fields, fetched again


def test_refresh_fields_fetches_again_and_a_cached_page_does_not(
    app_ctx: Flask, logged_in: FlaskClient, connection: Connection, sandbox: Any, url
) -> None:
    page = url("mapping.edit", conn_id=connection.id, object="contact")
    logged_in.get(page)
    logged_in.get(page)
    assert sandbox.count_calls(prefix="/api/fields") == 1
    logged_in.get(url("mapping.edit", conn_id=connection.id, object="contact", refresh="1"))
    assert sandbox.count_calls(prefix="/api/fields") == 2
