"""Pipedrive → Maileon through the engine: webhooks registered by the core and delivered over real
HTTP by the Pipedrive sandbox to a served hub, persons relayed to Maileon by consent, deals as
transactions, unsubscribes back to Pipedrive on the next sync."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, current_app
from leadbridge import clock as clocks
from leadbridge.db import db
from leadbridge.models import Connection, SyncRun, WebhookInbox
from leadbridge.models import Contact as HubContact
from leadbridge.state import get_executor
from leadbridge.sync import run_sync, subscriptions
from sqlalchemy import func, select
from werkzeug.serving import make_server

CUSTOM = "Lead source"


class Hub:
    """The hub served on loopback, so the sandbox's webhook deliveries are real HTTP requests; it
    can be stopped and started again on the same port (a restart)."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.port = 0
        self.start()

    def start(self) -> None:
        self.server = make_server("127.0.0.1", self.port, self.app, threaded=True)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02})
        self.thread.daemon = True
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def hub(app: Flask) -> Iterator[Hub]:
    served = Hub(app)
    app.config["HUB_URL"] = served.url
    try:
        yield served
    finally:
        served.stop()


@pytest.fixture
def hub_url(hub: Hub) -> str:
    return hub.url


@pytest.fixture
def conn(hub_url: str, make_connection: Any, sandbox: Any) -> Connection:
    settings, secrets = sandbox.connection_settings("")
    values = {**settings, **secrets, "custom_fields": CUSTOM, "initial_permission": "2"}
    connection = make_connection(values, options={"delete_policy": {"to_crm": "unsubscribe"}})
    connection.direction = "both"
    db.session.commit()
    subscriptions.reconcile(connection)
    return connection


def hub_contact(email: str) -> HubContact | None:
    db.session.expire_all()
    return db.session.execute(
        select(HubContact).where(HubContact.email_key == email.lower())
    ).scalar_one_or_none()


def tick() -> None:
    """A few milliseconds pass between two edits in Pipedrive's UI (event times have milliseconds)."""
    clocks.get_clock().advance(0.005)  # type: ignore[attr-defined]


def subscribe(sandbox: Any, name: str, email: str, **custom: Any) -> int:
    tick()
    pd = sandbox.pipedrive
    values = {pd.field_key("Newsletter"): pd.option_id("Newsletter", "Subscribe"), **custom}
    return int(pd.add_person(name, email, org_name="Acme Oy", custom=values).id)


def deliver(pd: Any) -> int:
    """Pipedrive delivers what is due; the hub answers at once and applies in the background."""
    attempts = int(pd.deliver_due())
    get_executor(current_app).wait(60)
    return attempts


def webhook_runs() -> list[SyncRun]:
    db.session.expire_all()
    return list(db.session.execute(select(SyncRun).where(SyncRun.trigger == "webhook")).scalars())


def test_enabling_registers_exactly_the_needed_webhooks_and_disabling_removes_them(
    conn: Connection, sandbox: Any, hub_url: str
) -> None:
    hooks = sandbox.pipedrive.webhooks
    pairs = sorted((w["event_object"], w["event_action"]) for w in hooks.values())
    assert pairs == [
        ("deal", "change"),
        ("deal", "create"),
        ("person", "change"),
        ("person", "create"),
        ("person", "delete"),
    ]
    assert {w["subscription_url"] for w in hooks.values()} == {f"{hub_url}/webhooks/{conn.id}"}
    before = set(hooks)
    for _ in range(2):
        subscriptions.reconcile(conn)  # what saving the settings does
    assert set(sandbox.pipedrive.webhooks) == before

    conn.settings = {**conn.settings, "deals_sync": False}
    db.session.commit()
    subscriptions.reconcile(conn)
    assert sorted(w["event_object"] for w in sandbox.pipedrive.webhooks.values()) == ["person"] * 3

    subscriptions.remove(conn)  # what "Disable" does first, while the connection may still call Pipedrive
    conn.enabled = False
    db.session.commit()
    assert sandbox.pipedrive.webhooks == {}, subscriptions.status(conn).error


def test_a_subscribed_person_reaches_maileon_with_permission_fields_and_custom_fields(
    conn: Connection, sandbox: Any
) -> None:
    sandbox.pipedrive.add_person_field(CUSTOM, "varchar")  # no-op when it exists
    pd = sandbox.pipedrive
    # The connector creates the Newsletter option on first use (Test connection reads the fields).
    run = run_sync(conn.id)
    assert run.status == "succeeded", run.error
    assert pd.field_key("Newsletter")
    person = subscribe(sandbox, "Jane Doe", "jane@example.com", **{pd.field_key(CUSTOM): "Fair"})
    pd.add_person("Silent Sam", "sam@example.com", org_name="Acme Oy")  # Newsletter not set
    assert deliver(pd) >= 2
    run = run_sync(conn.id)  # the webhook stored the person; the sync relays it
    assert run.status == "succeeded", run.error

    jane = sandbox.maileon.contact_by_email("jane@example.com")
    assert jane is not None
    assert jane.permission == 2
    assert str(jane.external_id) == str(person)
    assert jane.standard["FIRSTNAME"] == "Jane" and jane.standard["LASTNAME"] == "Doe"
    assert jane.standard["FULLNAME"] == "Jane Doe" and jane.standard["ORGANIZATION"] == "Acme Oy"
    assert jane.custom[CUSTOM] == "Fair" and str(jane.custom["createdByPipedrive"]).lower() == "true"
    assert sandbox.maileon.contact_by_email("sam@example.com") is None
    sam = hub_contact("sam@example.com")
    assert sam is not None and sam.consent == "none"  # in the hub, visible, but not sent


def test_doi_starts_with_the_chosen_mailing(hub_url: str, make_connection: Any, sandbox: Any) -> None:
    settings, secrets = sandbox.connection_settings("")
    conn = make_connection(
        {**settings, **secrets, "doi": True, "doi_mailing": "doi-1001", "initial_permission": "5"}
    )
    conn.direction = "both"
    db.session.commit()
    subscribe_after_fields(sandbox, conn)
    person = sandbox.maileon.contact_by_email("doi@example.com")
    assert person is not None and person.doi_pending and person.doi_mailing == "doi-1001"
    assert person.permission == 1  # DOI+ becomes 5 only after the click
    # A later change is pushed without granting the DOI permission the person has not clicked for.
    clocks.get_clock().advance(5)  # type: ignore[attr-defined]
    pd_id = int(sandbox.maileon.contact_by_email("doi@example.com").external_id)
    sandbox.pipedrive.update_person(pd_id, first_name="Dorothea")
    assert run_sync(conn.id).status == "succeeded"
    again = sandbox.maileon.contact_by_email("doi@example.com")
    assert again.standard["FIRSTNAME"] == "Dorothea" and again.permission == 1 and again.doi_pending
    sandbox.maileon.confirm_doi("doi@example.com")
    assert sandbox.maileon.contact_by_email("doi@example.com").permission == 5


def subscribe_after_fields(sandbox: Any, conn: Connection) -> None:
    assert run_sync(conn.id).status == "succeeded"
    subscribe(sandbox, "Dora Oi", "doi@example.com")
    run = run_sync(conn.id)
    assert run.status == "succeeded", run.error


def test_a_doi_mailing_that_is_not_a_doi_mailing_is_refused_by_test_connection(
    hub_url: str, make_connection: Any, sandbox: Any
) -> None:
    from leadbridge.connections import test_connection

    settings, secrets = sandbox.connection_settings("")
    conn = make_connection({**settings, **secrets, "doi": True, "doi_mailing": "news-2001"})
    ok, message = test_connection(conn)
    assert not ok and "not a DOI mailing" in message
    conn2 = make_connection({**settings, **secrets, "doi": True, "doi_mailing": "nope"}, name="other")
    ok, message = test_connection(conn2)
    assert not ok and "no mailing" in message


def test_each_delivery_three_times_shuffled_across_a_restart_gives_one_effect_per_event(
    conn: Connection, sandbox: Any, hub: Hub
) -> None:
    pd = sandbox.pipedrive
    assert run_sync(conn.id).status == "succeeded"
    pd.duplicate_deliveries = 3
    ids = [subscribe(sandbox, f"P{i} Person", f"p{i}@example.com") for i in range(20)]
    for pid in ids[:10]:
        clocks.get_clock().advance(1)  # type: ignore[attr-defined]
        pd.update_person(pid, first_name="Renamed")
    pd.shuffle_pending(random.Random(7))  # retries and parallel senders reorder deliveries
    hub.stop()  # the hub restarts: every delivery of this round fails and is retried later
    assert deliver(pd) > 0
    assert all(d.status is None for d in pd.deliveries)
    hub.start()
    clocks.get_clock().advance(3)  # type: ignore[attr-defined]
    deliver(pd)
    assert pd.pending_deliveries() == 0
    runs = webhook_runs()
    assert runs and all(r.status == "succeeded" for r in runs), [
        r.error for r in runs if r.status != "succeeded"
    ]
    db.session.expire_all()
    assert db.session.execute(select(func.count()).select_from(HubContact)).scalar_one() == 20
    for i in range(10):
        c = hub_contact(f"p{i}@example.com")
        assert c is not None and c.first_name == "Renamed"  # an older 'create' after the change loses
    created = sum(r.counts.get("hub", {}).get("created", 0) for r in runs)
    assert created == 20


def test_a_deal_create_and_update_become_one_transaction_each(conn: Connection, sandbox: Any) -> None:
    pd = sandbox.pipedrive
    assert run_sync(conn.id).status == "succeeded"
    person = subscribe(sandbox, "Deal Maker", "deal@example.com")
    deliver(pd)
    assert run_sync(conn.id).status == "succeeded"  # Deal Maker is in Maileon now
    deal = pd.add_deal("Big deal", person, value=1200, currency="EUR")
    pd.update_deal(int(deal.id), status="won")
    pd.duplicate_deliveries = 2
    deliver(pd)
    sent = [(t["type_name"], t["content"]) for t in sandbox.maileon.transactions]
    assert [name for name, _ in sent] == ["pipedrive_deal_added", "pipedrive_deal_updated"]
    assert sent[0][1]["deal_id"] == int(deal.id) and sent[0][1]["title"] == "Big deal"
    assert sent[1][1]["status"] == "won" and float(sent[0][1]["value"]) == 1200.0


def test_a_deal_of_a_person_maileon_does_not_know_is_logged_failed(conn: Connection, sandbox: Any) -> None:
    pd = sandbox.pipedrive
    assert run_sync(conn.id).status == "succeeded"
    person = int(pd.add_person("Not Subscribed", "ns@example.com").id)  # in the hub, never in Maileon
    deliver(pd)
    pd.add_deal("Lonely deal", person, value=5, currency="EUR")
    deliver(pd)
    assert sandbox.maileon.transactions == []
    assert sandbox.maileon.contact_by_email("ns@example.com") is None
    runs = webhook_runs()
    failed = [r for r in runs if r.counts.get("crm", {}).get("failed")]
    assert failed, "the not-queued transaction must be logged as failed"


def test_an_unsubscribe_in_maileon_turns_the_newsletter_off_in_pipedrive(
    conn: Connection, sandbox: Any
) -> None:
    pd = sandbox.pipedrive
    assert run_sync(conn.id).status == "succeeded"
    person = subscribe(sandbox, "Una Sub", "una@example.com")
    deliver(pd)
    assert run_sync(conn.id).status == "succeeded"
    assert sandbox.maileon.contact_by_email("una@example.com") is not None
    clocks.get_clock().advance(60)  # type: ignore[attr-defined]
    sandbox.maileon.unsubscribe("una@example.com")
    clocks.get_clock().advance(60)  # type: ignore[attr-defined]
    run = run_sync(conn.id)
    assert run.status == "succeeded", run.error
    assert pd.person_custom(person, "Newsletter") == pd.option_id("Newsletter", "Unsubscribe")
    una = hub_contact("una@example.com")
    assert una is not None and una.unsubscribed and una.consent == "none"
    # The echo of leadbridge's own change (change_source api) changes nothing more.
    deliver(pd)
    assert run_sync(conn.id).counts.get("crm", {}).get("updated", 0) == 0


@pytest.mark.slow
def test_a_thousand_events_lose_nothing(conn: Connection, sandbox: Any) -> None:
    pd = sandbox.pipedrive
    assert run_sync(conn.id).status == "succeeded"
    ids = [subscribe(sandbox, f"Bulk {i}", f"bulk{i}@example.com") for i in range(500)]
    for pid in ids:
        tick()
        pd.update_person(pid, job_title="Buyer")  # 1,000 events in all
    pd.shuffle_pending(random.Random(3))
    deliver(pd)
    assert pd.pending_deliveries() == 0 and not pd.lost
    assert all(d.status == 200 for d in pd.deliveries)
    db.session.expire_all()
    titles = db.session.execute(
        select(HubContact.title, func.count())
        .where(HubContact.email_key.like("bulk%"))
        .group_by(HubContact.title)
    ).all()
    assert dict(titles) == {"Buyer": 500}
    run = run_sync(conn.id)
    assert run.status == "succeeded", run.error
    assert sum(1 for c in sandbox.maileon.contacts.values() if c.email.startswith("bulk")) == 500


def test_a_person_deleted_in_pipedrive_is_unsubscribed_in_maileon(conn: Connection, sandbox: Any) -> None:
    conn.options = {**conn.options, "delete_policy": {"from_crm": "delete", "to_crm": "unsubscribe"}}
    db.session.commit()
    pd = sandbox.pipedrive
    assert run_sync(conn.id).status == "succeeded"
    person = subscribe(sandbox, "Gone Soon", "gone@example.com")
    deliver(pd)
    assert run_sync(conn.id).status == "succeeded"
    assert not sandbox.maileon.contact_by_email("gone@example.com").unsubscribed
    pd.delete_person(person)
    deliver(pd)
    gone = hub_contact("gone@example.com")
    assert gone is not None and gone.deleted_at is not None
    run = run_sync(conn.id)
    assert run.status == "succeeded", run.error
    assert sandbox.maileon.contact_by_email("gone@example.com").unsubscribed


def test_deliveries_without_the_registered_credentials_are_refused(
    conn: Connection, sandbox: Any, hub_url: str
) -> None:
    import requests

    body = {
        "meta": {"action": "create", "entity": "person", "entity_id": "1", "id": "forged"},
        "data": {"id": 1},
    }
    answer = requests.post(
        f"{hub_url}/webhooks/{conn.id}", json=body, auth=("leadbridge", "guess"), timeout=10
    )
    assert answer.status_code == 401
    assert requests.post(f"{hub_url}/webhooks/{conn.id}", json=body, timeout=10).status_code == 401
    assert webhook_runs() == []
    db.session.expire_all()
    assert db.session.execute(select(func.count()).select_from(WebhookInbox)).scalar_one() == 0


def test_a_transaction_maileon_refuses_for_now_is_sent_later_exactly_once(
    conn: Connection, sandbox: Any
) -> None:
    from leadbridge.sync import inbox

    pd = sandbox.pipedrive
    assert run_sync(conn.id).status == "succeeded"
    person = subscribe(sandbox, "Retry Deal", "retry@example.com")
    deliver(pd)
    assert run_sync(conn.id).status == "succeeded"
    sandbox.fail_next(503, times=50, path_prefix="/1.0/transactions")  # Maileon is down for a while
    pd.add_deal("Patient deal", person, value=10, currency="EUR")
    deliver(pd)
    assert sandbox.maileon.transactions == [] and all(d.status == 200 for d in pd.deliveries[-1:])
    sandbox.faults.clear()  # accepted by the hub (200), not lost: waiting for its back-off
    clocks.get_clock().advance(60)  # type: ignore[attr-defined]
    inbox.sweep()
    get_executor(current_app).wait(30)
    assert [t["type_name"] for t in sandbox.maileon.transactions] == ["pipedrive_deal_added"]
    clocks.get_clock().advance(3600)  # type: ignore[attr-defined]
    inbox.sweep()
    get_executor(current_app).wait(30)
    assert len(sandbox.maileon.transactions) == 1


def test_another_apps_api_change_is_applied_but_leadbridges_own_echo_is_not(
    conn: Connection, sandbox: Any, hub_url: str
) -> None:
    import base64

    import requests

    pd = sandbox.pipedrive
    assert run_sync(conn.id).status == "succeeded"
    hook = next(
        w for w in pd.webhooks.values() if (w["event_object"], w["event_action"]) == ("person", "create")
    )
    auth = {"Authorization": "Basic " + base64.b64encode(f"leadbridge:{hook['_password']}".encode()).decode()}

    def post(event_id: str, user_id: int, email: str) -> Any:
        stamp = "2026-12-07T10:00:00.000Z"
        meta = {"action": "create", "entity": "person", "entity_id": "9001", "id": event_id}
        meta |= {"timestamp": stamp, "change_source": "api", "user_id": str(user_id), "version": "2.0"}
        data = {"id": 9001, "name": "Zap Ier", "first_name": "Zap", "last_name": "Ier", "update_time": stamp}
        data |= {"emails": [{"value": email, "primary": True}], "custom_fields": {}}
        answer = requests.post(
            f"{hub_url}/webhooks/{conn.id}", json={"meta": meta, "data": data}, headers=auth, timeout=10
        )
        get_executor(current_app).wait(30)
        return answer.json()

    assert post("zap-1", 4242, "zap@example.com")["queued"] == 1  # a form tool writing through the API
    assert hub_contact("zap@example.com") is not None
    assert post("own-1", pd.user_id, "own@example.com")["queued"] == 0  # leadbridge's own token: an echo
    assert hub_contact("own@example.com") is None


def test_a_new_subscriber_reaches_maileon_within_the_delivery_not_at_the_next_sync(
    conn: Connection, sandbox: Any
) -> None:
    pd = sandbox.pipedrive
    assert run_sync(conn.id).status == "succeeded"
    subscribe(sandbox, "Quick Sub", "quick@example.com")
    deliver(pd)  # no sync in between: the drain relays what it stored
    assert sandbox.maileon.contact_by_email("quick@example.com") is not None
    relayed = db.session.execute(select(SyncRun).where(SyncRun.trigger == "webhook_relay")).scalars().all()
    assert [r.status for r in relayed] == ["succeeded"] and relayed[0].counts["crm"]["created"] == 1
