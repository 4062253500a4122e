"""Integrations: connector cards and states, settings forms generated from the schema (secrets
write-only), validation, Test connection, enable/disable, delete."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from leadbridge.connections import decrypt_secrets
from leadbridge.db import db
from leadbridge.models import Connection
from leadbridge.testing import install_entry_point

BROKEN_DIR = Path(__file__).resolve().parents[1] / "broken_plugins"


@pytest.fixture
def broken_connector_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A connector whose import fails, installed before the app loads its plugins."""
    site = tmp_path / "site"
    install_entry_point(site, dist_name="lb-test-broken", name="broken_import", module="lb_broken_import")
    monkeypatch.syspath_prepend(str(BROKEN_DIR))
    monkeypatch.syspath_prepend(str(site))


@pytest.fixture
def app(broken_connector_installed: None, app: Flask) -> Flask:
    """The kit's app, created after the broken connector was installed."""
    return app


def test_cards_show_every_connector_with_its_state(logged_in: FlaskClient, url) -> None:
    html = logged_in.get(url("integrations.index")).get_data(as_text=True)
    for name in ("ExampleCRM", "Constant Contact", "PlanMill", "Salesforce"):
        assert name in html
    card = html.split('data-connector="broken_import"')[1].split("</article>")[0]
    assert "Broken" in card and "vendor SDK missing: cannot import acme_sdk" in card
    example = html.split('data-connector="example"')[1].split("</article>")[0]
    assert "v0.1.0" in example and "Not enabled" in example and "Set up ExampleCRM" in example


def test_logos_are_images_never_inline_markup(logged_in: FlaskClient, url) -> None:
    html = logged_in.get(url("integrations.index")).get_data(as_text=True)
    assert 'src="data:image/svg+xml;base64,' in html
    assert "<svg" not in html  # an SVG as <img> cannot run scripts; inline it could


def test_enabled_connection_shows_a_check_mark_and_disabled_does_not(
    app: Flask, logged_in: FlaskClient, csrf: str, connection: Connection, url
) -> None:
    html = logged_in.get(url("integrations.index")).get_data(as_text=True)
    example = html.split('data-connector="example"')[1].split("</article>")[0]
    assert "✓ Enabled" in example
    back = url("integrations.index")
    response = logged_in.post(
        url("integrations.set_enabled", conn_id=connection.id),
        data={"enabled": "0", "back": back, "csrf_token": csrf},
    )
    assert response.status_code == 302 and response.headers["Location"] == back
    with app.app_context():
        assert db.session.get(Connection, connection.id).enabled is False
    html = logged_in.get(back).get_data(as_text=True)
    example = html.split('data-connector="example"')[1].split("</article>")[0]
    assert "○ Disabled" in example and "✓ Enabled" not in example
    logged_in.post(
        url("integrations.set_enabled", conn_id=connection.id),
        data={"enabled": "1", "back": "//evil.example", "csrf_token": csrf},
    )
    with app.app_context():
        assert db.session.get(Connection, connection.id).enabled is True


def test_needs_reconnect_shows_the_advice(
    app: Flask, logged_in: FlaskClient, connection: Connection, url
) -> None:
    # ``connection`` keeps an app context pushed: requests share its session, so write through it.
    connection.state, connection.state_message = "needs_reconnect", "Token refused — reconnect the account"
    db.session.commit()
    html = logged_in.get(url("integrations.index")).get_data(as_text=True)
    assert "Needs reconnect" in html and "reconnect the account" in html
    assert "reconnect the account" in logged_in.get(url("dashboard.index")).get_data(as_text=True)


def test_new_connection_form_is_generated_from_the_schema(logged_in: FlaskClient, url) -> None:
    html = logged_in.get(url("integrations.new_connection", plugin="example")).get_data(as_text=True)
    assert re.search(r'name="client_id" type="text"', html)
    assert re.search(r'name="client_secret" type="password"', html)
    assert "Webhook signing secret" in html and "secret</span>" in html
    assert logged_in.get(url("integrations.new_connection", plugin="broken_import")).status_code == 404
    assert logged_in.get(url("integrations.new_connection", plugin="nope")).status_code == 404


def test_save_validates_and_lists_every_problem(app: Flask, logged_in: FlaskClient, csrf: str, url) -> None:
    response = logged_in.post(
        url("integrations.new_connection", plugin="example"), data={"name": "Example", "csrf_token": csrf}
    )
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Client ID: required" in html and "Client secret: required" in html
    with app.app_context():
        assert db.session.query(Connection).count() == 0


def test_secrets_are_write_only_and_empty_keeps_them(
    app: Flask, logged_in: FlaskClient, csrf: str, url
) -> None:
    response = logged_in.post(
        url("integrations.new_connection", plugin="example"),
        data={
            "name": "Example",
            "client_id": "abc",
            "client_secret": "s3cr3t-value",
            "csrf_token": csrf,
            "base_url": "http://127.0.0.1:9",
        },
    )
    assert response.status_code == 302
    with app.app_context():
        conn = db.session.query(Connection).one()
        assert conn.options["base_url"] == "http://127.0.0.1:9"
        assert (
            "s3cr3t-value" not in str(conn.settings)
            and decrypt_secrets(conn)["client_secret"] == "s3cr3t-value"
        )
        conn_id = conn.id
    page = logged_in.get(url("integrations.settings", conn_id=conn_id)).get_data(as_text=True)
    assert "s3cr3t-value" not in page and "stored; leave empty to keep" in page
    saved = logged_in.post(
        url("integrations.settings", conn_id=conn_id),
        data={"name": "Example renamed", "client_id": "abc2", "client_secret": "", "csrf_token": csrf},
    )
    assert saved.status_code == 302
    with app.app_context():
        conn = db.session.get(Connection, conn_id)
        assert conn.name == "Example renamed" and conn.settings["client_id"] == "abc2"
        assert decrypt_secrets(conn)["client_secret"] == "s3cr3t-value"


def test_settings_refuses_a_duplicate_name_and_a_bad_override(
    logged_in: FlaskClient, csrf: str, make_connection, url
) -> None:
    first, second = make_connection(name="One"), make_connection(name="Two")
    clash = logged_in.post(
        url("integrations.settings", conn_id=second.id),
        data={"name": "One", "client_id": "x", "csrf_token": csrf},
    )
    assert clash.status_code == 400 and "already exists" in clash.get_data(as_text=True)
    bad = logged_in.post(
        url("integrations.settings", conn_id=first.id),
        data={"name": "One", "client_id": "x", "base_url": "javascript:alert(1)", "csrf_token": csrf},
    )
    assert bad.status_code == 400 and "must be an http(s) URL" in bad.get_data(as_text=True)


def test_test_connection_reports_success_and_failure(
    logged_in: FlaskClient, csrf: str, make_connection, sandbox, url
) -> None:
    good = make_connection(name="Good")
    back = url("integrations.settings", conn_id=good.id)
    response = logged_in.post(
        url("integrations.test", conn_id=good.id), data={"back": back, "csrf_token": csrf}
    )
    assert response.status_code == 302 and response.headers["Location"] == back
    page = logged_in.get(back).get_data(as_text=True)
    assert "Connection works. Connected to ExampleCRM" in page
    bad = make_connection(name="Bad", bad=True)
    logged_in.post(url("integrations.test", conn_id=bad.id), data={"csrf_token": csrf})
    page = logged_in.get(url("integrations.index")).get_data(as_text=True)
    assert "Connection failed:" in page
    assert "not-the-secret" not in page


def test_test_connection_on_a_disabled_connection_calls_nothing(
    logged_in: FlaskClient, csrf: str, make_connection, sandbox, url
) -> None:
    conn = make_connection(name="Off", enabled=False)
    sandbox.reset_calls()
    logged_in.post(url("integrations.test", conn_id=conn.id), data={"csrf_token": csrf})
    assert "Enable the connection before testing" in logged_in.get(url("integrations.index")).get_data(
        as_text=True
    )
    assert sandbox.count_calls() == 0


def test_delete_needs_the_name_typed(
    app: Flask, logged_in: FlaskClient, csrf: str, connection: Connection, url
) -> None:
    logged_in.post(
        url("integrations.delete", conn_id=connection.id), data={"confirm": "nope", "csrf_token": csrf}
    )
    with app.app_context():
        assert db.session.get(Connection, connection.id) is not None
    logged_in.post(
        url("integrations.delete", conn_id=connection.id),
        data={"confirm": connection.name, "csrf_token": csrf},
    )
    with app.app_context():
        assert db.session.get(Connection, connection.id) is None


def test_connect_and_revoke_are_only_for_authorization_code_connectors(
    logged_in: FlaskClient, csrf: str, connection: Connection, url
) -> None:
    assert (
        logged_in.post(
            url("integrations.connect", conn_id=connection.id), data={"csrf_token": csrf}
        ).status_code
        == 404
    )
    page = logged_in.get(url("integrations.settings", conn_id=connection.id)).get_data(as_text=True)
    assert "Revoke access" not in page


def test_unknown_connection_is_404(logged_in: FlaskClient, url) -> None:
    assert logged_in.get(url("integrations.settings", conn_id=999)).status_code == 404
