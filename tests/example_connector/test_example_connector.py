"""The example connector beyond the conformance suite: its vendor quirks, its registration as an
installed distribution, and the kit's own promises (the suite fails on a broken connector)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from importlib import metadata as importlib_metadata
from pathlib import Path

import pytest
from flask import Flask
from leadbridge.app import get_plugins
from leadbridge.connections import revoke
from leadbridge.db import db
from leadbridge.errors import AuthError, ConfigError, QuotaExhausted
from leadbridge.models import Connection
from leadbridge.plugins import hook_names
from leadbridge.testing import ConnectorHarness, install_entry_point, temporary_database
from leadbridge.types import Action, Company, Contact, Outcome, WebhookRequest
from leadbridge_example.sandbox import ExampleSandbox
from sqlalchemy import create_engine, text

EXAMPLE_ROOT = Path(__file__).parent
LEADBRIDGE = str(Path(sys.executable).parent / "leadbridge")


@pytest.fixture
def harness(connection: Connection, sandbox: ExampleSandbox) -> ConnectorHarness:
    return ConnectorHarness(connection, sandbox)


def test_every_hook_of_the_contract_is_implemented(app_ctx: Flask) -> None:
    """The reference connector shows every hook; a new hook in the contract needs an example here."""
    assert set(get_plugins().records["example"].hooks) == set(hook_names())


def test_revoke_access_ends_the_grant_at_the_vendor(
    harness: ConnectorHarness, sandbox: ExampleSandbox, connection: Connection
) -> None:
    harness.login()
    assert sandbox.tokens and sandbox.refresh_tokens
    db.session.refresh(connection)
    revoke(connection)
    db.session.commit()
    assert connection.credentials_encrypted is None
    assert sandbox.refresh_tokens == {} and sandbox.tokens == {}
    assert sandbox.count_calls("POST", "/oauth/revoke") == 1
    # The next client starts over with a fresh client-credentials grant.
    assert ConnectorHarness(connection, sandbox).fields("contact")
    assert sandbox.count_calls("POST", "/oauth/token") == 2


# -- writes ---------------------------------------------------------------------------------------


def test_batch_results_keep_input_order_with_per_record_errors(
    harness: ConnectorHarness, sandbox: ExampleSandbox
) -> None:
    contacts = [
        Contact(email="ok@example.com", fields={"last_name": "Okay"}, ref="10"),
        Contact(email="nolast@example.com", fields={"first_name": "No"}, ref="11"),
        Contact(email="bad@example.com", fields={"last_name": "X", "lifecycle_stage": "vip"}, ref="12"),
    ]
    results = harness.call("upsert_contact", object_type="contact", contacts=contacts)
    assert [r.ref for r in results] == ["10", "11", "12"]
    assert results[0].outcome is Outcome.CREATED and results[0].remote_id
    assert (results[1].outcome, results[1].code, results[1].extra) == (
        Outcome.FAILED,
        "REQUIRED_FIELD_MISSING",
        {"field": "last_name"},
    )
    assert (results[2].outcome, results[2].code) == (Outcome.FAILED, "INVALID_OPTION")
    assert sandbox.contact_count() == 1


def test_upsert_matches_email_case_insensitively_and_links_the_company(
    harness: ConnectorHarness, sandbox: ExampleSandbox
) -> None:
    company = harness.call("upsert_company", companies=[Company(name="Acme Oy", ref="1")])[0]
    first = harness.call(
        "upsert_contact",
        object_type="contact",
        contacts=[Contact(email="Mia@Example.com", fields={"last_name": "Virta"})],
    )[0]
    second = harness.call(
        "upsert_contact",
        object_type="contact",
        contacts=[
            Contact(
                email="mia@example.COM",
                fields={"job_title": "CMO"},
                company=Company(name="Acme Oy", remote_id=company.remote_id),
            )
        ],
    )[0]
    assert second.outcome is Outcome.UPDATED and second.remote_id == first.remote_id
    stored = sandbox.contact(str(first.remote_id))
    assert stored is not None
    assert (stored["job_title"], stored["company_id"]) == ("CMO", company.remote_id)
    fetched = {c.remote_id: c for c in harness.fetch_all("contact")[0]}
    assert fetched[first.remote_id].company == Company(name="Acme Oy", remote_id=company.remote_id)


def test_a_batch_over_the_vendor_limit_is_a_config_error(harness: ConnectorHarness) -> None:
    contacts = [Contact(email=f"p{i}@example.com", fields={"last_name": "P"}) for i in range(101)]
    with pytest.raises(ConfigError, match="batch size"):
        harness.call("upsert_contact", object_type="contact", contacts=contacts)


def test_daily_quota_answer_pauses_instead_of_retrying(
    harness: ConnectorHarness, sandbox: ExampleSandbox
) -> None:
    harness.login()
    sandbox.fail_next(429, body={"error": "quota_exceeded"}, path_prefix="/api/fields")
    with pytest.raises(QuotaExhausted):
        harness.fields("contact")
    assert sandbox.count_calls(prefix="/api/fields") == 1


def test_delete_is_reported_by_the_next_incremental_fetch(
    harness: ConnectorHarness, sandbox: ExampleSandbox
) -> None:
    sandbox.set_now(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))
    ids = sandbox.add_contacts(3)
    sandbox.set_now(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    results = harness.call("delete_contacts", object_type="contact", remote_ids=[ids[1], "999999"])
    assert [r.outcome for r in results] == [Outcome.DELETED, Outcome.DELETED]  # gone already = deleted
    changed, _ = harness.fetch_all("contact", since=datetime(2026, 3, 2, tzinfo=UTC))
    assert [(c.remote_id, c.deleted) for c in changed] == [(ids[1], True)]
    assert changed[0].modified_at == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_actions_are_events_titled_as_given(harness: ConnectorHarness, sandbox: ExampleSandbox) -> None:
    contact_id = sandbox.add_contacts(1)[0]
    action = Action(
        title="Downloaded the price list",
        contact=Contact(email=None, remote_id=contact_id),
        company=Company(name="Acme Oy"),
        occurred_at=datetime(2026, 3, 1, tzinfo=UTC),
        ref="7",
    )
    first = harness.call("create_action", action=action)
    harness.call("create_action", action=action)
    assert first.outcome is Outcome.CREATED and first.ref == "7"
    # Actions are events: twice is two. The core fills the title template before the call.
    assert [a["title"] for a in sandbox.actions] == ["Downloaded the price list"] * 2


# -- reads ----------------------------------------------------------------------------------------


def test_fields_are_typed_with_presets_and_options(harness: ConnectorHarness) -> None:
    fields = {f.name: f for f in harness.fields("contact")}
    assert fields["last_name"].required and fields["last_name"].hub_field == "last_name"
    assert fields["job_title"].hub_field == "title"
    industry = fields["cf_industry"]
    assert industry.custom and industry.type.value == "select"
    assert [c.value for c in industry.choices] == ["software", "retail", "manufacturing", "public_sector"]
    assert not fields["created_at"].writable


def test_campaign_members_are_paged_including_people_without_email(
    harness: ConnectorHarness, sandbox: ExampleSandbox
) -> None:
    sandbox.page_size = 2
    members = sandbox.add_contacts(3) + sandbox.add_contacts(2, with_email=False)
    campaign_id = sandbox.add_campaign("Spring webinar", members)
    campaigns = harness.call("list_campaigns")
    assert [(c.remote_id, c.name, c.member_count) for c in campaigns] == [(campaign_id, "Spring webinar", 5)]
    seen: list[Contact] = []
    cursor = None
    pages = 0
    while True:
        page = harness.call("fetch_campaign_members", campaign_id=campaign_id, cursor=cursor)
        seen.extend(page.items)
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == 3
    assert sorted(c.remote_id for c in seen if c.remote_id) == sorted(members)
    assert sum(1 for c in seen if c.email is None) == 2


def test_incremental_fetch_with_a_frozen_clock_keeps_ties_on_one_cursor(
    harness: ConnectorHarness, sandbox: ExampleSandbox
) -> None:
    """Many records changed in the same instant (a bulk import) still page without loss or repeats."""
    sandbox.page_size = 4
    sandbox.set_now(datetime(2026, 1, 1, tzinfo=UTC))
    ids = sandbox.add_contacts(10)
    records, pages = harness.fetch_all("contact", since=datetime(2026, 1, 1, tzinfo=UTC))
    assert [r.remote_id for r in records] == ids
    assert pages == 3
    none_later, _ = harness.fetch_all(
        "contact", since=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=1)
    )
    assert none_later == []


# -- webhooks ---------------------------------------------------------------------------------------


def test_signed_webhook_is_parsed_and_a_forged_one_refused(
    harness: ConnectorHarness, sandbox: ExampleSandbox
) -> None:
    events = [
        {"id": "evt_1", "type": "contact.updated", "data": {"id": "1001", "email": "a@example.com"}},
        {"id": "evt_2", "type": "contact.deleted", "data": {"id": "1002", "deleted": True}},
    ]
    body, headers = sandbox.webhook_delivery(events)
    parsed = harness.call("handle_webhook", request=WebhookRequest("POST", headers, body, {}))
    assert [(e.kind, e.event_id, e.contact.remote_id if e.contact else None) for e in parsed] == [
        ("upsert", "evt_1", "1001"),
        ("delete", "evt_2", "1002"),
    ]
    assert parsed[0].contact is not None and parsed[0].contact.email == "a@example.com"

    _, forged_headers = sandbox.webhook_delivery(events, secret="someone-elses-secret")
    with pytest.raises(AuthError):
        harness.call("handle_webhook", request=WebhookRequest("POST", forged_headers, body, {}))
    tampered = body.replace(b"evt_1", b"evt_9")
    with pytest.raises(AuthError):
        harness.call("handle_webhook", request=WebhookRequest("POST", headers, tampered, {}))


def test_register_webhooks_is_idempotent(harness: ConnectorHarness, sandbox: ExampleSandbox) -> None:
    url = "https://hub.example/webhooks/1"
    first = harness.call("register_webhooks", url=url, secret=sandbox.webhook_secret)
    again = harness.call("register_webhooks", url=url, secret=sandbox.webhook_secret)
    assert first == again and len(sandbox.webhooks) == 1


# -- registration as an installed distribution ------------------------------------------------------


def test_example_is_an_installed_distribution_for_the_session() -> None:
    dist = importlib_metadata.distribution("leadbridge-example")
    assert [(ep.group, ep.name, ep.value) for ep in dist.entry_points] == [
        ("leadbridge", "example", "leadbridge_example")
    ]


def test_install_entry_point_writes_what_importlib_metadata_reads(tmp_path: Path) -> None:
    info = install_entry_point(
        tmp_path, dist_name="acme.crm-Connector", name="acme", module="acme_conn.hooks"
    )
    assert info.name == "acme_crm_Connector-0.0.0.dist-info"
    probe = (
        "import importlib.metadata as m, json;"
        "print(json.dumps([(e.name, e.value, e.dist.name) for e in m.entry_points(group='leadbridge')"
        " if e.name == 'acme']))"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    without = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True
    )
    assert json.loads(without.stdout) == []
    env["PYTHONPATH"] = str(tmp_path)
    found = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True)
    assert json.loads(found.stdout) == [["acme", "acme_conn.hooks", "acme.crm-Connector"]]


@pytest.mark.slow
def test_cli_subprocesses_see_the_example_but_the_demo_leaves_it_out(tmp_path: Path) -> None:
    env = {**os.environ, "LEADBRIDGE_INSTANCE_PATH": str(tmp_path / "instance")}
    env.pop("LEADBRIDGE_PLUGINS_ALLOW", None)
    listed = subprocess.run(
        [LEADBRIDGE, "plugins", "--json"], capture_output=True, text=True, env=env, check=True, timeout=120
    )
    plugins = {p["name"]: p for p in json.loads(listed.stdout)}
    assert plugins["example"]["state"] == "loaded"
    assert plugins["example"]["distribution"] == "leadbridge-example"
    demo = subprocess.run(
        [LEADBRIDGE, "demo", "--no-serve"], capture_output=True, text=True, env=env, timeout=300
    )
    assert demo.returncode == 0, demo.stderr[-2000:]
    assert "sandbox on http://127.0.0.1" in demo.stdout  # the real connectors' sandboxes did start
    assert "ExampleCRM" not in demo.stdout and "example" not in demo.stdout.lower().replace("example.", "")


# -- the kit itself ---------------------------------------------------------------------------------


@pytest.mark.skipif(not os.environ.get("LEADBRIDGE_TEST_DATABASE_URL"), reason="needs PostgreSQL")
@pytest.mark.postgres
def test_each_postgres_test_database_is_fresh_and_dropped(tmp_path: Path) -> None:
    server = os.environ["LEADBRIDGE_TEST_DATABASE_URL"]
    with temporary_database(tmp_path) as one, temporary_database(tmp_path) as two:
        assert one != two
        name = one.rsplit("/", 1)[1]
    admin = create_engine(server.rsplit("/", 1)[0] + "/postgres")
    try:
        with admin.connect() as conn:
            left = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).all()
    finally:
        admin.dispose()
    assert left == []


def test_sqlite_is_the_default_database(leadbridge_database_url: str, tmp_path: Path) -> None:
    if os.environ.get("LEADBRIDGE_TEST_DATABASE_URL"):
        assert leadbridge_database_url.startswith("postgresql")
    else:
        assert leadbridge_database_url == f"sqlite:///{tmp_path / 'leadbridge-test.sqlite'}"


BROKEN_CONNECTOR = '''
"""The example connector with a sandbox that creates a duplicate on every upsert."""
from leadbridge import hookimpl
from leadbridge_example import *  # noqa: F403 - every hook of the example...
from leadbridge_example import INFO
from leadbridge_example.sandbox import ExampleSandbox
import dataclasses


class DuplicatingSandbox(ExampleSandbox):
    def _by_email(self, email):
        return None


@hookimpl
def connector_info():  # ...but named "dupes"
    return dataclasses.replace(INFO, name="dupes")


@hookimpl
def connector_sandbox():
    return DuplicatingSandbox()
'''


@pytest.mark.slow
def test_the_conformance_suite_fails_a_connector_that_duplicates(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(lb_dupes=BROKEN_CONNECTOR)
    install_entry_point(pytester.path / "site", dist_name="lb-dupes", name="dupes", module="lb_dupes")
    pytester.makepyfile(
        test_dupes=textwrap.dedent(
            """
            from leadbridge.testing import ConnectorConformance

            class TestDupes(ConnectorConformance):
                connector = "dupes"
            """
        )
    )
    paths = [
        str(pytester.path),
        str(pytester.path / "site"),
        str(EXAMPLE_ROOT),
        os.environ.get("PYTHONPATH", ""),
    ]
    pytester._monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", "-W", "ignore::DeprecationWarning")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed") == 1 and outcomes.get("passed", 0) >= 10, outcomes
    result.stdout.fnmatch_lines(["*FAILED*test_upserting_the_same_contact_twice_leaves_one_record*"])
