"""One ``test_hook_<name>`` per hook of the contract (tests/test_meta.py insists), against the example
connector: each goes through ``Plugins.call`` on a real connection to the ExampleCRM sandbox on loopback.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import requests
from flask import Flask
from leadbridge import clock as clocks
from leadbridge.app import get_plugins
from leadbridge.connections import client_for, load_credentials, revoke, view
from leadbridge.db import db
from leadbridge.errors import AuthError, NeedsReconnect, QuotaExhausted, RecordError
from leadbridge.http import VendorClient
from leadbridge.metadata import ConnectorInfo
from leadbridge.models import Connection
from leadbridge.sandbox import SandboxServer
from leadbridge.types import (
    Action,
    Campaign,
    Company,
    Contact,
    FieldType,
    Outcome,
    RateUsage,
    WebhookRequest,
)
from leadbridge_example.sandbox import ExampleSandbox

Call = Callable[..., Any]


@pytest.fixture
def call(connection: Connection) -> Call:
    """``call(hook, **kw)``: the hook on the example connection, with a core-built client."""
    client = client_for(connection)

    def invoke(hook: str, *, with_client: bool = True, **kwargs: Any) -> Any:
        if with_client:
            kwargs["client"] = client
        return get_plugins().call(view(connection), hook, **kwargs)

    return invoke


def _person(email: str, **fields: Any) -> Contact:
    return Contact(email=email, fields={"first_name": "Ann", "last_name": "Lee", **fields}, ref=email)


# -- metadata -------------------------------------------------------------------------------------


def test_hook_connector_info(app: Flask) -> None:
    info = get_plugins(app).call_plugin("example", "connector_info")
    assert isinstance(info, ConnectorInfo)
    assert info.name == "example"
    assert info.secret_names == {"client_secret", "webhook_secret"}
    assert [o.name for o in info.objects] == ["contact", "company"]


def test_hook_connector_sandbox(app: Flask) -> None:
    plugins = get_plugins(app)
    first, second = (
        plugins.call_plugin("example", "connector_sandbox"),
        plugins.call_plugin("example", "connector_sandbox"),
    )
    assert first is not second
    first.add_contacts(3)
    assert (first.contact_count(), second.contact_count()) == (3, 0)  # each call: its own state


# -- authentication and transport -----------------------------------------------------------------


def test_hook_api_base_url(app_ctx: Flask, connection: Connection, sandbox_server: SandboxServer) -> None:
    # always the real vendor URL: the core's client, not the connector, redirects it to the sandbox
    assert get_plugins().connector(view(connection)).api_base_url() == "https://api.examplecrm.test"
    client = client_for(connection)
    assert client.destination(client.url("api/fields")) == f"{sandbox_server.url}/api/fields"
    app_ctx.config["ALLOW_BASE_URL_OVERRIDE"] = False  # production: the override is ignored
    real = client_for(connection)
    assert real.destination("https://api.examplecrm.test/x") == "https://api.examplecrm.test/x"


def test_hook_authenticate(
    connection: Connection, sandbox: ExampleSandbox, make_connection: Callable[..., Connection]
) -> None:
    plugins = get_plugins()
    bare = VendorClient(
        plugins.connector(view(connection)).api_base_url(), override=view(connection).base_url_override
    )
    creds = plugins.call(view(connection), "authenticate", client=bare, previous=None)
    assert creds.headers["Authorization"].startswith("Bearer ex_")
    assert creds.expires_at is not None and creds.expires_at > clocks.utcnow()
    assert sandbox.token_requests == 1

    # A refresh rotates the refresh token; the spent one is refused and asks for a reconnect.
    renewed = plugins.call(view(connection), "authenticate", client=bare, previous=creds)
    assert renewed.refresh_token != creds.refresh_token
    with pytest.raises(NeedsReconnect):
        plugins.call(view(connection), "authenticate", client=bare, previous=creds)

    bad = make_connection(bad=True, name="Bad secret")
    with pytest.raises(AuthError):
        plugins.call(view(bad), "authenticate", client=bare, previous=None)


def test_hook_classify_error(
    connection: Connection, sandbox: ExampleSandbox, sandbox_server: SandboxServer
) -> None:
    sandbox.fail_next(429, body={"error": "quota_exceeded"})
    sandbox.fail_next(429, body={"error": "rate_limited"})
    quota = requests.get(f"{sandbox_server.url}/api/contacts", timeout=10)
    throttled = requests.get(f"{sandbox_server.url}/api/contacts", timeout=10)
    error = get_plugins().connector(view(connection)).classify_error(quota)
    assert isinstance(error, QuotaExhausted) and error.code == "quota_exceeded"
    assert get_plugins().connector(view(connection)).classify_error(throttled) is None  # core default


def test_hook_read_rate_limits(app_ctx: Flask, connection: Connection) -> None:
    limited = ExampleSandbox(rate_limit=(5, 1.0))
    with SandboxServer(limited) as server:
        answer = requests.post(
            f"{server.url}/oauth/token",
            timeout=10,
            data={
                "grant_type": "client_credentials",
                "client_id": limited.client_id,
                "client_secret": limited.client_secret,
            },
        )
    assert answer.status_code == 200
    usage = get_plugins().connector(view(connection)).read_rate_limits(answer)
    assert usage == RateUsage(remaining=4, limit=5, reset_in=1.0)
    unlimited = requests.Response()  # a vendor answer without rate-limit headers
    unlimited.status_code = 200
    assert get_plugins().connector(view(connection)).read_rate_limits(unlimited) is None


# -- discovery ------------------------------------------------------------------------------------


def test_hook_field_types(call: Call) -> None:
    fields = call("field_types", object_type="contact")
    names = [f.name for f in fields]
    assert len(names) == len(set(names))
    by_name = {f.name: f for f in fields}
    assert by_name["email"].type is FieldType.EMAIL and by_name["email"].hub_field == "email"
    selects = [f for f in fields if f.type is FieldType.SELECT]
    assert selects and all(f.choices for f in selects)
    assert any(f.custom for f in fields)


def test_hook_list_campaigns(call: Call, sandbox: ExampleSandbox) -> None:
    campaign_id = sandbox.add_campaign("Spring webinar", sandbox.add_contacts(3))
    assert call("list_campaigns") == [Campaign(remote_id=campaign_id, name="Spring webinar", member_count=3)]


# -- reads ----------------------------------------------------------------------------------------


def test_hook_fetch_contacts(call: Call, sandbox: ExampleSandbox) -> None:
    sandbox.page_size = 2
    ids = sandbox.add_contacts(5)
    seen: list[str] = []
    cursor, pages = None, 0
    while True:
        page = call("fetch_contacts", object_type="contact", since=None, cursor=cursor)
        pages += 1
        seen += [c.remote_id for c in page.items]
        assert all(c.modified_at is not None and c.modified_at.tzinfo for c in page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert (sorted(seen), pages) == (sorted(ids), 3)
    later = clocks.utcnow() + timedelta(minutes=1)
    assert call("fetch_contacts", object_type="contact", since=later, cursor=None).items == []


def test_hook_fetch_companies(call: Call, sandbox: ExampleSandbox) -> None:
    acme = sandbox.add_company("Acme Oy", domain="acme.example")
    page = call("fetch_companies", since=None, cursor=None)
    assert [(c.remote_id, c.name, c.fields.get("domain")) for c in page.items] == [
        (acme, "Acme Oy", "acme.example")
    ]


def test_hook_fetch_campaign_members(call: Call, sandbox: ExampleSandbox) -> None:
    members = sandbox.add_contacts(2) + sandbox.add_contacts(1, with_email=False)
    campaign_id = sandbox.add_campaign("Fair", members)
    page = call("fetch_campaign_members", campaign_id=campaign_id, cursor=None)
    assert sorted(c.remote_id or "" for c in page.items) == sorted(members)
    assert sum(1 for c in page.items if c.email is None) == 1  # returned, for the core to skip and count


# -- writes ---------------------------------------------------------------------------------------


def test_hook_upsert_company(call: Call, sandbox: ExampleSandbox) -> None:
    def acme() -> list[Company]:
        return [Company(name="Acme Oy", fields={"domain": "acme.example"}, ref="1")]

    first, again = call("upsert_company", companies=acme()), call("upsert_company", companies=acme())
    assert first[0].outcome is Outcome.CREATED and again[0].outcome is not Outcome.CREATED
    assert first[0].remote_id == again[0].remote_id and again[0].ref == "1"
    assert sandbox.company_count() == 1


def test_hook_upsert_contact(call: Call, sandbox: ExampleSandbox) -> None:
    results = call(
        "upsert_contact",
        object_type="contact",
        contacts=[_person("alice@x.example"), Contact(email="nolast@x.example", fields={"first_name": "No"})],
    )
    assert [r.outcome for r in results] == [Outcome.CREATED, Outcome.FAILED]
    assert results[1].code == "REQUIRED_FIELD_MISSING" and results[1].ref is None
    same_person = _person("ALICE@x.example", job_title="CMO")
    again = call("upsert_contact", object_type="contact", contacts=[same_person])
    assert again[0].outcome is Outcome.UPDATED and again[0].remote_id == results[0].remote_id
    assert sandbox.contact_count() == 1


def test_hook_delete_contacts(call: Call, sandbox: ExampleSandbox) -> None:
    keep, gone = sandbox.add_contacts(2)
    for _ in range(2):  # deleting what is already gone is still "deleted": retries are safe
        results = call("delete_contacts", object_type="contact", remote_ids=[gone])
        assert [(r.outcome, r.remote_id) for r in results] == [(Outcome.DELETED, gone)]
    assert sandbox.contact_count() == 1 and sandbox.contact(keep) is not None


def test_hook_create_action(call: Call, sandbox: ExampleSandbox) -> None:
    (remote_id,) = sandbox.add_contacts(1)
    action = Action(
        title="Downloaded the guide",
        contact=Contact(email=None, remote_id=remote_id),
        company=Company(name="Acme Oy"),
        ref="a1",
    )
    first, second = call("create_action", action=action), call("create_action", action=action)
    assert first.outcome is Outcome.CREATED and first.remote_id != second.remote_id  # events, not state
    assert [a["title"] for a in sandbox.actions] == ["Downloaded the guide"] * 2  # filled by the core
    with pytest.raises(RecordError):
        call("create_action", action=Action(title="x", contact=Contact(email="new@x.example")))


# -- webhooks -------------------------------------------------------------------------------------


def test_hook_handle_webhook(call: Call, sandbox: ExampleSandbox) -> None:
    (remote_id,) = sandbox.add_contacts(1)
    event = {"id": "evt-1", "type": "contact.updated", "data": sandbox.contact(remote_id)}
    body, headers = sandbox.webhook_delivery([event])
    request = WebhookRequest(method="POST", headers=headers, body=body, query={})
    events = call("handle_webhook", request=request)
    assert [(e.kind, e.event_id, e.contact.remote_id if e.contact else None) for e in events] == [
        ("upsert", "evt-1", remote_id)
    ]
    forged_body, forged_headers = sandbox.webhook_delivery([event], secret="not-the-secret")
    with pytest.raises(AuthError):
        call("handle_webhook", request=WebhookRequest("POST", forged_headers, forged_body, {}))


def test_hook_register_webhooks(call: Call, sandbox: ExampleSandbox) -> None:
    url = "https://hub.example/webhooks/1"
    first = call("register_webhooks", url=url, secret="hook-secret")
    second = call("register_webhooks", url=url, secret="hook-secret")
    assert first == second and len(first) == 1
    assert [w["url"] for w in sandbox.webhooks] == [url]  # idempotent: not duplicated


def test_hook_unregister_webhooks(call: Call, sandbox: ExampleSandbox) -> None:
    ids = call("register_webhooks", url="https://hub.example/webhooks/1", secret="hook-secret")
    call("unregister_webhooks", webhook_ids=ids)
    assert sandbox.webhooks == []
    call("unregister_webhooks", webhook_ids=ids)  # already gone: still a success, so retries are safe


def test_hook_revoke_credentials(connection: Connection, sandbox: ExampleSandbox) -> None:
    client = client_for(connection)
    client.get("api/fields", params={"object": "contact"})  # logs in: the core stores the grant
    db.session.refresh(connection)
    creds = load_credentials(connection)
    assert creds is not None and creds.refresh_token in sandbox.refresh_tokens

    bare = VendorClient(
        get_plugins().connector(view(connection)).api_base_url(), override=view(connection).base_url_override
    )
    assert get_plugins().call(view(connection), "revoke_credentials", client=bare) is True
    assert creds.refresh_token not in sandbox.refresh_tokens  # ended at the vendor, not only here
    fields_url = bare.destination(bare.url("api/fields"))
    assert requests.get(fields_url, headers=creds.headers, timeout=10).status_code == 401

    # Through the core's "Revoke access": the local grant is forgotten too.
    revoke(connection)
    db.session.commit()
    assert load_credentials(connection) is None
    view_without_grant = view(connection)
    assert get_plugins().call(view_without_grant, "revoke_credentials", client=bare) is None
