"""Sync settings, Sync now / Dry run with live progress, the sync log (chart, two tables, records,
filters, CSV, debug log) and the field-mapping editor, against the example connector's sandbox."""

from __future__ import annotations

import json
import re
from html import escape

import pytest
from flask import Flask
from flask.testing import FlaskClient
from leadbridge.db import db
from leadbridge.models import Connection, FieldMapping, SyncRecord, SyncRun
from leadbridge.sync import wait_for_runs


@pytest.fixture
def seeded(sandbox) -> None:
    sandbox.seed_demo()


def _run(client: FlaskClient, app: Flask, csrf: str, conn: Connection, url, **extra: str) -> int:
    response = client.post(url("syncsettings.run_now", conn_id=conn.id), data={"csrf_token": csrf, **extra})
    assert response.status_code == 302, response.data
    match = re.search(r"/runs/(\d+)$", response.headers["Location"])
    assert match, response.headers["Location"]
    wait_for_runs(app, timeout=60)
    db.session.rollback()  # end the read snapshot: see what the request committed
    return int(match.group(1))


# -- sync settings ---------------------------------------------------------------------------------


def test_sync_settings_validate_and_save(
    logged_in: FlaskClient, csrf: str, connection: Connection, url
) -> None:
    page = url("syncsettings.sync_settings", conn_id=connection.id)
    html = logged_in.get(page).get_data(as_text=True)
    assert "leadbridge → CRM" in html and "Contacts" in html and "Debug mode" in html
    bad = logged_in.post(
        page,
        data={
            "csrf_token": csrf,
            "direction": "sideways",
            "frequency": "cron",
            "cron": "every day",
            "sync_from": "yesterday",
        },
    )
    assert bad.status_code == 400
    text = bad.get_data(as_text=True)
    for problem in ("Direction:", "Objects:", "Cron:", "Sync records from:"):
        assert problem in text
    good = logged_in.post(
        page,
        data={
            "csrf_token": csrf,
            "direction": "to_crm",
            "objects": ["contact"],
            "frequency": "interval",
            "interval_minutes": "30",
            "sync_from": "2026-01-31",
            "debug": "on",
            "delete_to_crm": "unsubscribe",
            "delete_from_crm": "delete",
            "conflict": "crm",
        },
    )
    assert good.status_code == 302 and "changed=1" in good.headers["Location"]
    db.session.rollback()  # end the read snapshot: see what the request committed
    conn = db.session.get(Connection, connection.id)
    assert conn.direction == "to_crm" and conn.schedule_interval_minutes == 30 and conn.schedule_cron is None
    assert conn.sync_from is not None and conn.sync_from.isoformat().startswith("2026-01-31")
    assert conn.options["objects"] == ["contact"] and conn.options["debug"] is True
    assert conn.options["delete_policy"] == {"to_crm": "unsubscribe", "from_crm": "delete"}
    assert conn.options["conflict"] == "crm" and conn.options["base_url"]  # other options kept
    assert "Run a full sync now" in logged_in.get(good.headers["Location"]).get_data(as_text=True)
    cron = logged_in.post(
        page,
        data={
            "csrf_token": csrf,
            "direction": "both",
            "objects": ["contact", "company"],
            "frequency": "cron",
            "cron": "0 */2 * * *",
        },
    )
    assert cron.status_code == 302
    db.session.rollback()  # end the read snapshot: see what the request committed
    conn = db.session.get(Connection, connection.id)
    assert conn.schedule_cron == "0 */2 * * *" and conn.schedule_interval_minutes is None


def test_sync_now_needs_an_enabled_connection(
    logged_in: FlaskClient, csrf: str, make_connection, url
) -> None:
    conn = make_connection(enabled=False)
    response = logged_in.post(url("syncsettings.run_now", conn_id=conn.id), data={"csrf_token": csrf})
    assert response.headers["Location"].endswith(url("syncsettings.sync_settings", conn_id=conn.id))
    assert db.session.query(SyncRun).count() == 0


# -- runs --------------------------------------------------------------------------------------


def test_sync_now_then_progress_run_page_and_log(
    app: Flask, logged_in: FlaskClient, csrf: str, connection: Connection, seeded: None, url
) -> None:
    run_id = _run(logged_in, app, csrf, connection, url)
    run = db.session.get(SyncRun, run_id)
    assert run.status in ("succeeded", "partial") and run.trigger == "manual"
    # The progress fragment stops polling once the run is over and asks the page to reload once.
    fragment = logged_in.get(url("runs.progress", run_id=run_id, was_active=1))
    assert fragment.headers.get("HX-Refresh") == "true" and b"hx-get" not in fragment.data
    assert "HX-Refresh" not in logged_in.get(url("runs.progress", run_id=run_id)).headers
    # Two tables: what went to the CRM and what came into leadbridge, each number a filtered link.
    html = logged_in.get(url("runs.show", run_id=run_id)).get_data(as_text=True)
    created_hub = run.counts["hub"]["created"]
    assert created_hub > 0
    assert f'href="{escape(url("runs.show", run_id=run_id, side="hub", outcome="created"))}#records"' in html
    assert f'<span class="outcome-num">{created_hub}</span>' in html
    # The filtered record list links each record to its hub page.
    filtered = logged_in.get(url("runs.show", run_id=run_id, side="hub", outcome="created")).get_data(
        as_text=True
    )
    assert filtered.count('<span class="badge badge-created">') == min(created_hub, 100)
    assert "badge-failed" not in filtered
    contacts = re.findall(r'<a href="/contacts/(\d+)">', filtered)
    companies = re.findall(r'<a href="/contacts\?company=(\d+)">', filtered)
    assert contacts and companies and len(contacts) + len(companies) == min(created_hub, 100)
    record = db.session.query(SyncRecord).filter_by(run_id=run_id, side="hub", outcome="created").first()
    one = logged_in.get(url("runs.show", run_id=run_id, q=record.label)).get_data(as_text=True)
    assert one.count('class="badge badge-created"') >= 1 and "No records match" not in one
    none = logged_in.get(url("runs.show", run_id=run_id, q="no such record anywhere")).get_data(as_text=True)
    assert "No records match" in none
    # The sync log: table and chart data.
    log = logged_in.get(url("runs.index", connection=connection.id)).get_data(as_text=True)
    assert f'href="{url("runs.show", run_id=run_id)}"' in log
    chart = json.loads(re.search(r"data-chart='([^']+)'", log).group(1).replace("&#34;", '"'))
    assert sum(chart["sides"]["hub"]["created"]) == created_hub
    assert logged_in.get(url("runs.index", status="failed")).get_data(as_text=True).count("/runs/") == 0
    assert logged_in.get(url("runs.for_connection", conn_id=connection.id)).status_code == 302


def test_csv_download(
    app: Flask, logged_in: FlaskClient, csrf: str, connection: Connection, seeded: None, url
):
    run_id = _run(logged_in, app, csrf, connection, url)
    response = logged_in.get(url("runs.csv", run_id=run_id))
    assert response.mimetype == "text/csv"
    assert f'filename="leadbridge-run-{run_id}.csv"' in response.headers["Content-Disposition"]
    lines = response.get_data(as_text=True).splitlines()
    assert len(lines) > 1
    only = logged_in.get(url("runs.csv", run_id=run_id, side="hub", outcome="created")).get_data(as_text=True)
    assert len(only.splitlines()) == db.session.get(SyncRun, run_id).counts["hub"]["created"] + 1


def test_dry_run_shows_the_diff_and_writes_nothing(
    app: Flask, logged_in: FlaskClient, csrf: str, connection: Connection, seeded: None, url
) -> None:
    run_id = _run(logged_in, app, csrf, connection, url, dry_run="1")
    run = db.session.get(SyncRun, run_id)
    assert run.dry_run is True
    html = logged_in.get(url("runs.show", run_id=run_id)).get_data(as_text=True)
    assert "This was a dry run" in html and '<table class="diff">' in html
    assert 'class="new">' in html
    from leadbridge.models import Contact

    assert db.session.query(Contact).count() == 0


def test_debug_log_lists_redacted_exchanges(
    app: Flask, logged_in: FlaskClient, csrf: str, connection: Connection, seeded: None, sandbox, url
) -> None:
    empty = logged_in.get(url("runs.debug_log", run_id=_run(logged_in, app, csrf, connection, url)))
    assert "Turn on debug mode" in empty.get_data(as_text=True)
    connection.options = {**connection.options, "debug": True}
    connection.credentials_encrypted = None  # the run logs in again: the token exchange is in the log
    db.session.commit()
    run_id = _run(logged_in, app, csrf, connection, url)
    html = logged_in.get(url("runs.debug_log", run_id=run_id)).get_data(as_text=True)
    assert html.count('class="debug-entry"') > 0 and "/api/" in html
    assert sandbox.client_secret not in html
    assert "Debug log (" in logged_in.get(url("runs.show", run_id=run_id)).get_data(as_text=True)


def test_unknown_run_is_404(logged_in: FlaskClient, url) -> None:
    assert logged_in.get(url("runs.show", run_id=12345)).status_code == 404


# -- field mapping -------------------------------------------------------------------------------


def _indexes(html: str) -> dict[str, int]:
    return {name: int(i) for i, name in re.findall(r'name="remote_(\d+)" value="([^"]+)"', html)}


def test_mapping_lists_live_fields_and_locks_required_ones(
    logged_in: FlaskClient, connection: Connection, sandbox, url
) -> None:
    page = url("mapping.edit", conn_id=connection.id, object="contact")
    html = logged_in.get(page).get_data(as_text=True)
    rows = _indexes(html)
    assert {"email", "last_name", "cf_industry", "lifecycle_stage", "created_at"} <= set(rows)
    required_row = html.split(f'name="remote_{rows["email"]}"')[1].split("</tr>")[0]
    assert "required" in required_row and "— not synced —" not in required_row
    read_only = html.split(f'name="remote_{rows["created_at"]}"')[1].split("</tr>")[0]
    assert "read-only" in read_only and "→ CRM" not in read_only and "← from CRM" in read_only
    calls = sandbox.count_calls(prefix="/api/fields")
    logged_in.get(page)
    assert sandbox.count_calls(prefix="/api/fields") == calls  # cached until refreshed
    logged_in.get(url("mapping.edit", conn_id=connection.id, object="contact", refresh=1))
    assert sandbox.count_calls(prefix="/api/fields") == calls + 1
    assert logged_in.get(url("mapping.edit", conn_id=connection.id, object="nope")).status_code == 404


def _form(html: str, csrf: str, **mapped: tuple[str, str]) -> dict[str, str]:
    rows = _indexes(html)
    data = {"csrf_token": csrf}
    for name, i in rows.items():
        data[f"remote_{i}"] = name
        hub, direction = mapped.get(name, ("", "both"))
        data[f"hub_{i}"], data[f"dir_{i}"], data[f"policy_{i}"] = hub, direction, "overwrite"
    return data


def test_mapping_refuses_incompatible_types_with_the_reason(
    logged_in: FlaskClient, csrf: str, connection: Connection, url
) -> None:
    page = url("mapping.edit", conn_id=connection.id, object="contact")
    data = _form(
        logged_in.get(page).get_data(as_text=True),
        csrf,
        email=("email", "both"),
        last_name=("last_name", "both"),
        birthday=("score", "both"),
    )
    response = logged_in.post(page, data=data)
    assert response.status_code == 400
    assert "cannot map a number field to a date field" in response.get_data(as_text=True)
    assert db.session.query(FieldMapping).count() == 0
    # A required field cannot be left unmapped.
    data = _form(logged_in.get(page).get_data(as_text=True), csrf, last_name=("last_name", "both"))
    missing = logged_in.post(page, data=data)
    assert missing.status_code == 400 and "is required by the CRM" in missing.get_data(as_text=True)


def test_mapping_saves_direction_policy_and_value_map(
    logged_in: FlaskClient, csrf: str, connection: Connection, url
) -> None:
    page = url("mapping.edit", conn_id=connection.id, object="contact")
    html = logged_in.get(page).get_data(as_text=True)
    data = _form(
        html,
        csrf,
        email=("email", "both"),
        last_name=("last_name", "both"),
        lifecycle_stage=("status", "to_crm"),
    )
    i = _indexes(html)["lifecycle_stage"]
    data[f"policy_{i}"] = "if_empty"
    data |= {
        f"vm_{i}_n": "2",
        f"vm_{i}_k0": "marketing_qualified",
        f"vm_{i}_v0": "lead",
        f"vm_{i}_k1": "customer",
        f"vm_{i}_v1": "customer",
    }
    response = logged_in.post(page, data=data)
    assert response.status_code == 302 and "saved=1" in response.headers["Location"]
    rows = {m.remote_field: m for m in db.session.query(FieldMapping).filter_by(connection_id=connection.id)}
    assert set(rows) == {"email", "last_name", "lifecycle_stage"}
    stage = rows["lifecycle_stage"]
    assert (stage.hub_field, stage.direction, stage.write_policy) == ("status", "to_crm", "if_empty")
    assert stage.value_map == {"marketing_qualified": "lead", "customer": "customer"}
    assert rows["email"].locked is True
    after = logged_in.get(response.headers["Location"]).get_data(as_text=True)
    assert "Run a full sync now" in after and "2 mapped values" in after
    # A value map to an option the CRM does not have is refused.
    data[f"vm_{i}_v1"] = "platinum"
    refused = logged_in.post(page, data=data)
    assert refused.status_code == 400 and "platinum: not options of Lifecycle stage" in refused.get_data(
        as_text=True
    )


def test_suggested_mappings(logged_in: FlaskClient, csrf: str, connection: Connection, url) -> None:
    response = logged_in.post(
        url("mapping.defaults", conn_id=connection.id), data={"csrf_token": csrf, "object": "contact"}
    )
    assert response.status_code == 302
    assert db.session.query(FieldMapping).filter_by(connection_id=connection.id).count() > 0
    assert "suggested mappings added" in logged_in.get(response.headers["Location"]).get_data(as_text=True)
