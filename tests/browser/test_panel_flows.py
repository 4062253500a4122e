"""End-to-end flows in headless Chromium: from first run to a finished sync, its log and CSV, sending
contacts and importing a list; each main screen is saved under docs/screenshots/."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

pytestmark = pytest.mark.browser

PASSWORD = "a long admin password"


def seed_hub(app: Flask) -> None:
    from leadbridge.db import db
    from leadbridge.demo import _seed_hub

    with app.app_context():
        _seed_hub(7)
        db.session.commit()


def setup_admin(page: Any, shot: Any) -> None:
    page.goto("/")
    assert page.url.endswith("/setup")
    shot(page, "01-setup")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.click("button:has-text('Create account')")
    page.wait_for_url(re.compile(r"/integrations$"))


def test_first_run_setup_then_sign_out_and_in(page: Any, shot: Any) -> None:
    setup_admin(page, shot)
    assert page.locator(".flash-success").inner_text().startswith("Welcome")
    page.click("button:has-text('Sign out')")
    page.wait_for_url(re.compile(r"/login"))
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "wrong password!")
    page.click("button:has-text('Sign in')")
    assert "Wrong username or password" in page.locator(".flash-error").inner_text()
    page.fill("input[name=password]", PASSWORD)
    shot(page, "02-login")
    page.click("button:has-text('Sign in')")
    page.wait_for_url(re.compile(r"/$"))
    assert page.locator("h1").inner_text() == "Overview"


def test_connect_map_sync_log_send_import(
    app: Flask, page: Any, shot: Any, sandbox: Any, sandbox_server: Any
) -> None:
    sandbox.seed_demo()
    seed_hub(app)
    setup_admin(page, shot)
    shot(page, "03-integrations-empty")

    # Enable a connector and fill its settings.
    settings, secrets = sandbox.connection_settings(sandbox_server.url)
    page.click("text=Set up ExampleCRM")
    page.fill("input[name=name]", "ExampleCRM")
    page.fill("input[name=client_id]", settings["client_id"])
    page.fill("input[name=client_secret]", secrets["client_secret"])
    page.fill("input[name=base_url]", sandbox_server.url)
    page.check("input[name=enabled]")
    page.click("button:has-text('Save')")
    assert "Connection ExampleCRM saved" in page.locator(".flash-success").inner_text()
    assert page.locator("input[name=client_secret]").input_value() == ""  # secrets are write-only

    # Test connection.
    page.click("button:has-text('Test connection')")
    assert "Connection works" in page.locator(".flash-success").inner_text()
    shot(page, "04-connection-settings")

    # Map fields: take the connector's suggestions, map one more, save.
    page.click("nav.tabs >> text=Field mapping")
    page.click("button:has-text('Add suggested mappings')")
    assert "suggested mappings added" in page.locator(".flash-success").inner_text()
    page.click("button:has-text('Save mapping')")
    assert "Field mapping saved" in page.locator(".flash-success").inner_text()
    assert page.locator("text=Run a full sync now").count() == 1
    shot(page, "05-field-mapping")

    # Sync settings, then Sync now and watch it finish.
    page.click("nav.tabs >> text=Sync settings")
    page.check("input[name=debug]")
    page.click("button:has-text('Save sync settings')")
    assert "Sync settings saved" in page.locator(".flash-success").inner_text()
    shot(page, "06-sync-settings")
    page.click(".page-head button:has-text('Sync now')")
    page.wait_for_url(re.compile(r"/runs/\d+"))
    page.wait_for_selector("#progress[data-status=succeeded], #progress[data-status=partial]", timeout=60_000)
    created = int(page.locator(".side-card").nth(1).locator(".outcome-created .outcome-num").inner_text())
    assert created > 0  # contacts pulled from the CRM into leadbridge
    shot(page, "07-run")

    # Failed records say why (the vendor's reason and code).
    failed = page.locator(".side-card").nth(0).locator(".outcome-failed")
    if int(failed.locator(".outcome-num").inner_text()):
        failed.click()
        assert page.locator("table.records td.reason").first.inner_text() != ""
        shot(page, "07b-run-failed-records")
        page.goto(page.url.split("?")[0])

    # The filtered record list behind a number, and the CSV download.
    page.locator(".side-card").nth(1).locator(".outcome-created").click()
    assert page.locator("table.records tbody tr").count() > 0
    with page.expect_download() as download_info:
        page.click(".page-head a:has-text('Download CSV')")
    csv_text = Path(download_info.value.path()).read_text(encoding="utf-8")
    assert csv_text.splitlines()[0].lower().count(",") >= 3
    page.click("text=Debug log")
    assert page.locator(".debug-entry").count() > 0

    # Sync log with its chart.
    page.click(".sidebar >> text=Sync log")
    page.wait_for_selector("table.runs-table")
    shot(page, "08-sync-log")

    # Select contacts and send them.
    page.click(".sidebar >> text=Contacts")
    assert page.locator("[data-selection-bar]").is_hidden()
    boxes = page.locator("input[name=contact_ids]")
    boxes.nth(0).check()
    boxes.nth(1).check()
    assert page.locator("[data-selection-count]").inner_text() == "2"
    shot(page, "09-contacts-selected")
    page.click("[data-selection-bar] button:has-text('Send to ExampleCRM')")
    page.wait_for_selector("#job[data-finished=yes]", timeout=60_000)
    assert "Done" in page.locator("#job").inner_text()
    page.click("#job >> text=Open the run log")
    assert page.locator("h1").inner_text().startswith("Run #")

    # A contact's page shows its CRM link and its sync history.
    page.click(".sidebar >> text=Contacts")
    page.locator("table.contacts-table tbody tr a").first.click()
    page.wait_for_selector("text=Sync history")
    shot(page, "10-contact")

    # Import a CRM campaign into a list.
    page.click(".sidebar >> text=Lists")
    page.click("text=Webinar 2026")
    before = page.locator("p.muted").first.inner_text()
    page.click("text=Import from ExampleCRM")
    value = page.locator("select[name=campaign_id] option", has_text="Spring webinar").get_attribute("value")
    page.select_option("select[name=campaign_id]", value=value)
    page.fill("input[name=status]", "registered")
    shot(page, "11-import")
    page.click("button:has-text('Import')")
    page.wait_for_selector("#job[data-finished=yes]", timeout=60_000)
    assert "Done" in page.locator("#job").inner_text()
    page.click("#job >> text=Back")
    page.wait_for_url(re.compile(r"/lists/\d+"))
    assert page.locator("p.muted").first.inner_text() != before
    assert page.locator("table.contacts-table td:has-text('registered')").count() > 0
    shot(page, "12-list")

    # A form endpoint: its token is shown once.
    page.click(".sidebar >> text=Forms")
    page.fill("input[name=name]", "Newsletter sign-up")
    page.select_option("select[name=list_id]", label="Newsletter")
    page.click("button:has-text('Create form')")
    assert page.locator("[data-copy-source]").inner_text().startswith("lbf_")
    shot(page, "15-forms")
    page.click(".sidebar >> text=API tokens")
    page.fill("input[name=name]", "website backend")
    page.click("button:has-text('Create token')")
    assert page.locator("[data-copy-source]").inner_text().startswith("lb_")
    shot(page, "16-api-tokens")

    page.click(".sidebar >> text=Overview")
    shot(page, "13-overview")
    page.click(".sidebar >> text=Integrations")
    assert page.locator(".connector[data-connector=example] .connector-head .state-ok").count() == 1
    shot(page, "14-integrations")
