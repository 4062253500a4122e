"""The Pipedrive sandbox over real HTTP: auth, paging, strict typing, fields, search, webhooks and their
deliveries, rate limits. Every answer (and every accepted request) is checked against Pipedrive's OpenAPI
documents by :mod:`pipedrive_openapi`; webhook payloads against the developer notes."""

from __future__ import annotations

import base64
import json
import random
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from flask import Response
from leadbridge.clock import VirtualClock
from leadbridge.sandbox import Sandbox, SandboxServer
from leadbridge_pipedrive_maileon.sandbox.pipedrive import TOKEN_COSTS, PipedriveAPI
from pipedrive_openapi import check_exchange, check_webhook_payload, token_cost
from werkzeug.serving import make_server

HEX40 = re.compile(r"^[0-9a-f]{40}$")
RFC3339_SECONDS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


class _Only(Sandbox):
    name = "pipedrive_only"
    pipedrive: PipedriveAPI

    def setup_routes(self) -> None:
        self.pipedrive = PipedriveAPI(self)

    def error_response(self, status: int, code: str, message: str) -> Response:
        return self.pipedrive.error_response(status, message)


class Client:
    """Calls the sandbox and validates every exchange against the OpenAPI documents."""

    def __init__(self, pd: PipedriveAPI, base: str) -> None:
        self.pd, self.base = pd, base

    def call(self, method: str, path: str, *, params: dict[str, Any] | None = None, json_body: Any = None,
             form: dict[str, str] | None = None, token: str | None = "default",
             headers: dict[str, str] | None = None) -> requests.Response:  # fmt: skip
        sent = dict(headers or {})
        if token is not None:
            sent["x-api-token"] = self.pd.api_token if token == "default" else token
        query = {k: str(v) for k, v in (params or {}).items()}
        resp = requests.request(method, self.base + path, params=query, json=json_body, data=form,
                                headers=sent, timeout=10)  # fmt: skip
        body = resp.json() if resp.headers.get("Content-Type", "").startswith("application/json") else None
        check_exchange(method, path, query, json_body, resp.status_code, body)
        return resp

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.call("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> requests.Response:
        return self.call("POST", path, json_body=body, **kw)

    def patch(self, path: str, body: Any, **kw: Any) -> requests.Response:
        return self.call("PATCH", path, json_body=body, **kw)

    def delete(self, path: str, **kw: Any) -> requests.Response:
        return self.call("DELETE", path, **kw)


class Receiver:
    """A tiny loopback webhook receiver (answers ``statuses`` in turn, then ``default``)."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.statuses: deque[int] = deque()
        self.default = 200
        self.delay = 0.0
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}/hooks/pipedrive"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02})

    def _app(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        self.received.append({"auth": environ.get("HTTP_AUTHORIZATION"), "payload": json.loads(raw)})
        if self.delay:
            time.sleep(self.delay)  # a slow receiver (real time: the sandbox's HTTP timeout is real)
        status = self.statuses.popleft() if self.statuses else self.default
        start_response(f"{status} Sandbox", [("Content-Type", "text/plain")])
        return [b"ok"]

    @property
    def payloads(self) -> list[dict[str, Any]]:
        return [r["payload"] for r in self.received]


@pytest.fixture
def api() -> Iterator[Client]:
    sandbox = _Only()
    with SandboxServer(sandbox) as server:
        yield Client(sandbox.pipedrive, server.url)
    sandbox.pipedrive.stop_delivery_thread()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    rec._thread.start()
    yield rec
    rec._server.shutdown()
    rec._server.server_close()
    for payload in rec.payloads:  # every delivery of every test, against the notes and the v2 schemas
        check_webhook_payload(payload)


def _hook(api: Client, url: str, obj: str = "person", action: str = "*", **extra: Any) -> dict[str, Any]:
    body = {
        "subscription_url": url,
        "event_action": action,
        "event_object": obj,
        "name": f"hub {obj}",
        **extra,
    }
    resp = api.post("/v1/webhooks", body)
    assert resp.status_code == 201, resp.text
    return resp.json()["data"]  # type: ignore[no-any-return]


# -- auth and envelopes ----------------------------------------------------------------------------


def test_auth_by_header_query_and_bearer_and_401_body(api: Client) -> None:
    unauthorized = {"success": False, "error": "unauthorized access", "errorCode": 401}
    assert api.get("/api/v2/persons", token=None).json() == unauthorized
    assert api.get("/api/v2/persons", token="wrong").status_code == 401
    assert api.get("/api/v2/persons").status_code == 200
    assert api.get("/api/v2/persons", token=None, params={"api_token": api.pd.api_token}).status_code == 200
    bearer = {"Authorization": f"Bearer {api.pd.api_token}"}
    assert api.get("/v1/users/me", token=None, headers=bearer).status_code == 200
    api.pd.accept_query_token = False
    assert api.get("/api/v2/persons", token=None, params={"api_token": api.pd.api_token}).status_code == 401
    api.pd.account_open = False  # trial ended or unpaid
    assert api.get("/api/v2/persons").json()["errorCode"] == 402


def test_v1_answers_under_both_prefixes_and_unknown_routes_use_the_envelope(api: Client) -> None:
    for prefix in ("/v1", "/api/v1"):
        me = api.get(f"{prefix}/users/me").json()
        assert me["success"] is True and me["data"]["company_domain"] == "leadbridge-sandbox"
    missing = api.get("/api/v2/no-such-thing")
    assert missing.status_code == 404 and missing.json()["data"] is None
    assert api.call("PUT", "/api/v2/persons").status_code == 405
    assert api.get("/api/v2/webhooks").status_code == 404  # webhooks exist in v1 only
    # Maileon's paths are not Pipedrive's business: no Pipedrive auth there
    assert requests.get(api.base + "/1.0/ping", timeout=5).status_code == 404


# -- persons: paging, filters, typing -------------------------------------------------------------


def test_paging_an_exact_multiple_of_the_limit_ends_with_a_null_cursor(api: Client) -> None:
    ids = [api.pd.add_person(f"P {i}", f"p{i}@example.com").id for i in range(4)]
    first = api.get("/api/v2/persons", params={"limit": 2}).json()
    assert [p["id"] for p in first["data"]] == ids[:2]
    second = api.get(
        "/api/v2/persons", params={"limit": 2, "cursor": first["additional_data"]["next_cursor"]}
    )
    assert [p["id"] for p in second.json()["data"]] == ids[2:]
    assert second.json()["additional_data"]["next_cursor"] is None
    api.pd.cursor_on_exact_last_page = True  # the other behaviour the notes leave open (§9.6)
    cursor = api.get("/api/v2/persons", params={"limit": 4}).json()["additional_data"]["next_cursor"]
    empty = api.get("/api/v2/persons", params={"limit": 4, "cursor": cursor}).json()
    assert empty["data"] == [] and empty["additional_data"]["next_cursor"] is None


def test_descending_pages_and_cursor_opacity(api: Client) -> None:
    ids = [api.pd.add_person(f"P {i}", None).id for i in range(5)]
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {
            "limit": 2,
            "sort_direction": "desc",
            **({"cursor": cursor} if cursor else {}),
        }
        page = api.get("/api/v2/persons", params=params).json()
        seen += [p["id"] for p in page["data"]]
        cursor = page["additional_data"]["next_cursor"]
        if cursor is None:
            break
        decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        assert decoded["field"] == "id" and decoded["sortDirection"] == "desc"
    assert seen == ids[::-1]


def test_bad_limits_and_cursors_are_400(api: Client) -> None:
    api.pd.add_person("A", None)
    api.pd.add_person("B", None)
    assert api.get("/api/v2/persons", params={"limit": 500}).status_code == 200
    for limit in (501, 0, "ten"):
        resp = api.get("/api/v2/persons", params={"limit": limit})
        assert resp.status_code == 400 and resp.json()["success"] is False
    assert api.get("/api/v2/persons", params={"cursor": "eyJpZCI6MX0"}).status_code == 400
    cursor = api.get("/api/v2/persons", params={"limit": 1}).json()["additional_data"]["next_cursor"]
    assert api.get("/api/v2/persons", params={"cursor": cursor, "sort_by": "add_time"}).status_code == 400
    assert api.get("/api/v2/deals", params={"cursor": cursor}).status_code == 400  # another list's cursor
    assert api.get("/api/v2/persons", params={"sort_by": "name"}).status_code == 400
    assert api.get("/api/v2/persons", params={"updated_since": "2025-01-01 10:00:00"}).status_code == 400


def test_updated_since_is_inclusive_and_until_exclusive(api: Client, leadbridge_clock: VirtualClock) -> None:
    first = api.pd.add_person("First", None)
    leadbridge_clock.advance(5)
    second = api.pd.add_person("Second", None)
    leadbridge_clock.advance(5)
    third = api.pd.add_person("Third", None)
    stamp = api.get(f"/api/v2/persons/{second.id}").json()["data"]["update_time"]
    assert RFC3339_SECONDS.match(stamp)
    since = api.get("/api/v2/persons", params={"updated_since": stamp}).json()["data"]
    assert [p["id"] for p in since] == [second.id, third.id]
    until = api.get("/api/v2/persons", params={"updated_until": stamp}).json()["data"]
    assert [p["id"] for p in until] == [first.id]
    leadbridge_clock.advance(5)
    api.pd.update_person(first.id, job_title="Buyer")
    ordered = api.get("/api/v2/persons", params={"updated_since": stamp, "sort_by": "update_time"}).json()
    assert [p["id"] for p in ordered["data"]] == [second.id, third.id, first.id]


def test_create_derives_names_and_answers_200(api: Client) -> None:
    resp = api.post("/api/v2/persons", {"name": "Jane Q Doe", "emails": [{"value": "jane@example.com"}]})
    assert resp.status_code == 200
    person = resp.json()["data"]
    assert (person["first_name"], person["last_name"], person["visible_to"]) == ("Jane", "Q Doe", 3)
    assert person["emails"] == [{"value": "jane@example.com", "primary": True, "label": "work"}]
    assert set(person["custom_fields"]) == {api.pd.field_key("Lead source"), api.pd.field_key("Segment")}
    other = api.post("/api/v2/persons", {"first_name": "Ola", "last_name": "Nordmann"}).json()["data"]
    assert other["name"] == "Ola Nordmann"


def _strict_bodies(pd: PipedriveAPI) -> list[dict[str, Any]]:
    segment = pd.field_key("Segment")
    return [
        {"name": "A", "visible_to": "3"},  # a number sent as a string
        {"name": "A", "org_id": "11"},
        {"name": "A", "owner_id": True},  # a boolean where a number belongs
        {"name": "A", "emails": [{"value": "a@example.com", "primary": 1}]},  # 0/1 as a boolean
        {"name": "A", "custom_fields": {"0" * 40: "x"}},  # unknown custom field key
        {"name": "A", "custom_fields": {segment: 999}},  # not an option id of the field
        {"name": "A", "custom_fields": {segment: "Gold"}},  # the label instead of the option id
        {"name": "A", "marketing_status": "yes"},
        {"name": "A", "colour": "red"},  # unknown field
        {"emails": [{"value": "a@example.com"}]},  # no name
    ]


def test_strict_typing_refuses_with_400(api: Client) -> None:
    person = api.pd.add_person("Kept", None)
    for body in _strict_bodies(api.pd):
        created = api.post("/api/v2/persons", body)
        assert created.status_code == 400, body
        assert created.json()["error"].startswith("Validation failed"), created.json()
        if "name" in body:
            assert api.patch(f"/api/v2/persons/{person.id}", body).status_code == 400, body
    assert len(api.pd.persons) == 1
    assert api.call("POST", "/api/v2/persons", form={"name": "A"}).status_code == 400  # not JSON


def test_patch_custom_fields_and_marketing_status(api: Client) -> None:
    person = api.pd.add_person("Jane Doe", "jane@example.com", org_name="Acme Oy")
    gold = api.pd.option_id("Segment", "Gold")
    body = {"custom_fields": {api.pd.field_key("Segment"): gold}, "marketing_status": "unsubscribed"}
    data = api.patch(f"/api/v2/persons/{person.id}", body).json()["data"]
    assert data["custom_fields"][api.pd.field_key("Segment")] == gold
    assert api.pd.person_custom(person.id, "Segment") == gold
    listed = api.get("/api/v2/persons").json()["data"][0]
    assert "marketing_status" not in listed  # only on request, as v2 does
    asked = api.get("/api/v2/persons", params={"include_fields": "marketing_status"}).json()["data"][0]
    assert asked["marketing_status"] == "unsubscribed"
    only = api.get(f"/api/v2/persons/{person.id}", params={"custom_fields": api.pd.field_key("Segment")})
    assert list(only.json()["data"]["custom_fields"]) == [api.pd.field_key("Segment")]


def test_soft_delete_hides_the_person(api: Client) -> None:
    person = api.pd.add_person("Gone Soon", None)
    kept = api.pd.add_person("Kept", None)
    assert api.delete(f"/api/v2/persons/{person.id}").json() == {"success": True, "data": {"id": person.id}}
    assert api.pd.persons[person.id].deleted
    assert api.get(f"/api/v2/persons/{person.id}").status_code == 404
    assert api.patch(f"/api/v2/persons/{person.id}", {"name": "Back"}).status_code == 404
    assert [p["id"] for p in api.get("/api/v2/persons").json()["data"]] == [kept.id]


def test_ids_and_org_filters(api: Client) -> None:
    a = api.pd.add_person("A", None, org_name="Acme Oy")
    b = api.pd.add_person("B", None)
    c = api.pd.add_person("C", None, org_name="Acme Oy")
    found = api.get("/api/v2/persons", params={"ids": f"{a.id},{b.id}"}).json()["data"]
    assert [p["id"] for p in found] == [a.id, b.id]
    by_org = api.get("/api/v2/persons", params={"org_id": a.values["org_id"]}).json()["data"]
    assert [p["id"] for p in by_org] == [a.id, c.id]
    assert api.get("/api/v2/persons", params={"ids": "1,x"}).status_code == 400


# -- person fields ---------------------------------------------------------------------------------


def test_person_fields_paging_and_creating_an_enum(api: Client) -> None:
    fields, cursor = [], None
    while True:
        page = api.get("/api/v2/personFields", params={"limit": 5, **({"cursor": cursor} if cursor else {})})
        fields += page.json()["data"]
        cursor = page.json()["additional_data"]["next_cursor"]
        if cursor is None:
            break
    names = {f["field_name"]: f for f in fields}
    assert {"Name", "Email", "Phone", "Organization", "Marketing status", "Lead source", "Segment"} <= set(
        names
    )
    assert "Newsletter" not in names  # the connector must create it
    assert names["Email"]["field_code"] == "emails" and not names["Email"]["is_custom_field"]
    segment = names["Segment"]
    assert HEX40.match(segment["field_code"]) and segment["is_custom_field"]
    assert [o["label"] for o in segment["options"]] == ["Gold", "Silver"]
    assert all(isinstance(o["id"], int) for o in segment["options"])

    body = {"field_name": "Newsletter", "field_type": "enum", "options": [{"label": "yes"}, {"label": "no"}]}
    created = api.post("/api/v2/personFields", body)
    assert created.status_code == 200
    newsletter = created.json()["data"]
    assert HEX40.match(newsletter["field_code"]) and newsletter["field_code"] == api.pd.field_key(
        "Newsletter"
    )
    assert api.pd.option_id("Newsletter", "no") == newsletter["options"][1]["id"]
    assert api.get(f"/api/v2/personFields/{newsletter['field_code']}").json()["data"] == newsletter
    assert api.get("/api/v2/personFields/0123").status_code == 404
    person = api.pd.add_person("Jane", None)
    patch = {"custom_fields": {newsletter["field_code"]: newsletter["options"][0]["id"]}}
    assert api.patch(f"/api/v2/persons/{person.id}", patch).status_code == 200
    assert api.pd.person_custom(person.id, "Newsletter") == api.pd.option_id("Newsletter", "yes")


def test_person_field_creation_is_validated(api: Client) -> None:
    assert (
        api.post("/api/v2/personFields", {"field_name": "Flag", "field_type": "boolean"}).status_code == 400
    )
    assert api.post("/api/v2/personFields", {"field_name": "Choice", "field_type": "enum"}).status_code == 400
    assert api.post("/api/v2/personFields", {"field_name": "", "field_type": "varchar"}).status_code == 400
    money = api.post("/api/v2/personFields", {"field_name": "Budget", "field_type": "monetary"}).json()[
        "data"
    ]
    person = api.pd.add_person("Jane", None)
    good = {"custom_fields": {money["field_code"]: {"value": 500, "currency": "EUR"}}}
    assert api.patch(f"/api/v2/persons/{person.id}", good).status_code == 200
    bad = {"custom_fields": {money["field_code"]: 500}}
    assert api.patch(f"/api/v2/persons/{person.id}", bad).status_code == 400


# -- search ----------------------------------------------------------------------------------------


def test_search_exact_match_min_length_and_own_limit(api: Client, leadbridge_clock: VirtualClock) -> None:
    jane = api.pd.add_person("Jane Doe", "jane@example.com", org_name="Acme Oy")
    dup = api.pd.add_person("Jane Duplicate", "JANE@example.com")  # Pipedrive allows duplicate e-mails
    api.pd.add_person("Janet", "janet@example.com")
    params = {"term": "jane@example.com", "fields": "email", "exact_match": "true"}
    items = api.get("/api/v2/persons/search", params=params).json()["data"]["items"]
    assert [i["item"]["id"] for i in items] == [jane.id, dup.id]
    assert items[0]["item"]["organization"]["name"] == "Acme Oy"
    fuzzy = api.get("/api/v2/persons/search", params={"term": "jane"}).json()["data"]["items"]
    assert len(fuzzy) == 3
    assert api.get("/api/v2/persons/search", params={"term": "j"}).status_code == 400
    assert api.get("/api/v2/persons/search", params={"term": "j", "exact_match": "true"}).status_code == 200
    orgs = api.get("/api/v2/organizations/search", params={"term": "acme oy", "exact_match": "true"})
    assert [i["item"]["name"] for i in orgs.json()["data"]["items"]] == ["Acme Oy"]
    for _ in range(5):  # 10 searches per 2 s, whatever the plan: 5 spent above (refused ones count)
        assert api.get("/api/v2/persons/search", params={"term": "jane"}).status_code == 200
    limited = api.get("/api/v2/persons/search", params={"term": "jane"})
    assert limited.status_code == 429 and limited.json()["errorCode"] == 429
    assert api.get("/api/v2/persons").status_code == 200  # the other calls are not limited
    leadbridge_clock.advance(2.0)
    assert api.get("/api/v2/persons/search", params={"term": "jane"}).status_code == 200


# -- organizations and deals ------------------------------------------------------------------------


def test_organizations_and_deals(api: Client) -> None:
    org = api.post("/api/v2/organizations", {"name": "Acme Oy", "visible_to": 3}).json()["data"]
    assert api.get(f"/api/v2/organizations/{org['id']}").json()["data"]["name"] == "Acme Oy"
    assert api.patch(f"/api/v2/organizations/{org['id']}", {"name": "Acme"}).json()["data"]["name"] == "Acme"
    assert api.post("/api/v2/organizations", {"visible_to": 3}).status_code == 400
    person = api.pd.add_person("Jane", None)
    body = {"title": "Licence", "person_id": person.id, "org_id": org["id"], "value": 100, "currency": "EUR"}
    deal = api.post("/api/v2/deals", body).json()["data"]
    assert (deal["status"], deal["value"], deal["close_time"]) == ("open", 100, None)
    assert api.post("/api/v2/deals", {**body, "value": "100"}).status_code == 400
    assert api.post("/api/v2/deals", {**body, "person_id": 999_999}).status_code == 400
    won = api.patch(f"/api/v2/deals/{deal['id']}", {"status": "won"}).json()["data"]
    assert won["close_time"] and won["won_time"] == won["close_time"]
    api.pd.add_deal("Other", None, value=5.5)
    listed = api.get("/api/v2/deals", params={"person_id": person.id, "status": "won"}).json()["data"]
    assert [d["id"] for d in listed] == [deal["id"]]
    assert len(api.get("/api/v2/deals").json()["data"]) == 2
    assert api.get("/api/v2/deals", params={"status": "closed"}).status_code == 400


# -- webhooks ----------------------------------------------------------------------------------------


def test_webhook_register_list_delete(api: Client, receiver: Receiver) -> None:
    hook = _hook(api, receiver.url, http_auth_user="hub", http_auth_password="s3cret")
    assert hook["version"] == "2.0" and hook["is_active"] == 1 and hook["http_auth_user"] == "hub"
    assert hook["http_auth_password"] is None  # never echoed
    form = {
        "subscription_url": receiver.url,
        "event_action": "create",
        "event_object": "deal",
        "name": "deals",
    }
    assert api.call("POST", "/v1/webhooks", form=form).status_code == 201
    listed = api.get("/v1/webhooks").json()["data"]
    assert [h["event_object"] for h in listed] == ["person", "deal"] and listed[0]["id"] == hook["id"]
    assert api.delete(f"/api/v1/webhooks/{hook['id']}").json() == {"status": "ok", "success": True}
    assert api.delete(f"/v1/webhooks/{hook['id']}").status_code == 404
    assert len(api.get("/v1/webhooks").json()["data"]) == 1


def test_webhook_validation_loopback_only_and_the_40_cap(api: Client, receiver: Receiver) -> None:
    body = {"subscription_url": "https://hub.example/hooks", "event_action": "*", "event_object": "person",
            "name": "public"}  # fmt: skip
    refused = api.post("/v1/webhooks", body)
    assert refused.status_code == 400
    assert refused.json() == {"status": "error", "success": False,
                              "errors": {"subscription_url": ["invalid or non-reachable URL"]}}  # fmt: skip
    missing = api.post("/v1/webhooks", {"subscription_url": receiver.url, "event_action": "*"})
    assert set(missing.json()["errors"]) == {"event_object", "name"}
    assert (
        api.post(
            "/v1/webhooks", {**body, "subscription_url": receiver.url, "event_action": "update"}
        ).status_code
        == 400
    )
    for i in range(39):
        _hook(api, f"http://localhost:{9000 + i}/h")
    _hook(api, "http://[::1]:9100/h")
    assert api.post("/v1/webhooks", {**body, "subscription_url": receiver.url}).status_code == 422


def test_delivery_payloads_basic_auth_sources_and_previous(api: Client, receiver: Receiver) -> None:
    hook = _hook(api, receiver.url, http_auth_user="hub", http_auth_password="s3cret")
    person = api.pd.add_person("Jane Doe", "jane@example.com")
    assert api.pd.deliver_due() == 1
    (created,) = receiver.received
    assert created["auth"] == "Basic " + base64.b64encode(b"hub:s3cret").decode()
    meta = created["payload"]["meta"]
    assert (meta["action"], meta["entity"], meta["entity_id"], meta["change_source"], meta["attempt"]) == (
        "create", "person", str(person.id), "app", 1)  # fmt: skip
    assert meta["webhook_id"] == str(hook["id"]) and created["payload"]["previous"] is None
    assert created["payload"]["data"]["emails"][0]["value"] == "jane@example.com"

    lead_source = api.pd.field_key("Lead source")
    patch = {"job_title": "CTO", "custom_fields": {lead_source: "Trade fair"}}
    assert api.patch(f"/api/v2/persons/{person.id}", patch).status_code == 200
    assert api.patch(f"/api/v2/persons/{person.id}", patch).status_code == 200  # no change: no event
    api.pd.deliver_due()
    changed = receiver.payloads[1]
    assert changed["meta"]["action"] == "change" and changed["meta"]["change_source"] == "api"
    assert changed["previous"] == {"job_title": None, "custom_fields": {lead_source: None}}
    assert changed["data"]["custom_fields"][lead_source] == "Trade fair"

    assert api.delete(f"/api/v2/persons/{person.id}").status_code == 200
    api.pd.deliver_due()
    deleted = receiver.payloads[2]
    assert deleted["meta"]["action"] == "delete" and deleted["data"] is None
    assert deleted["previous"]["job_title"] == "CTO" and deleted["previous"]["id"] == person.id
    for payload in receiver.payloads:
        check_webhook_payload(payload)
    assert len(receiver.received) == 3 and len({p["meta"]["id"] for p in receiver.payloads}) == 3
    listed = api.get("/v1/webhooks").json()["data"][0]
    assert listed["last_http_status"] == 200 and listed["last_delivery_time"]


def test_events_go_only_to_matching_webhooks(api: Client, receiver: Receiver) -> None:
    person_hook = _hook(api, receiver.url, obj="person", action="change")
    deal_hook = _hook(api, receiver.url, obj="deal", action="*")
    person = api.pd.add_person("Jane", None)  # a create: the person hook wants changes only
    deal = api.pd.add_deal("Licence", person.id, value=100)
    api.pd.update_deal(deal.id, status="lost")
    api.pd.update_person(person.id, custom={"Segment": "Silver"})
    api.pd.deliver_due()
    got = [(p["meta"]["webhook_id"], p["meta"]["entity"], p["meta"]["action"]) for p in receiver.payloads]
    assert got == [(str(deal_hook["id"]), "deal", "create"), (str(deal_hook["id"]), "deal", "change"),
                   (str(person_hook["id"]), "person", "change")]  # fmt: skip
    assert receiver.payloads[1]["previous"] == {"status": "open", "close_time": None, "lost_time": None}
    assert receiver.payloads[2]["previous"] == {"custom_fields": {api.pd.field_key("Segment"): None}}
    for payload in receiver.payloads:
        check_webhook_payload(payload)


def test_failed_deliveries_are_retried_after_3_30_150_seconds(
    api: Client, receiver: Receiver, leadbridge_clock: VirtualClock
) -> None:
    hook = _hook(api, receiver.url)
    receiver.default = 500
    api.pd.add_person("Jane", None)
    assert api.pd.deliver_due() == 1
    for delay in (3.0, 30.0, 150.0):
        leadbridge_clock.advance(delay - 0.2)
        assert api.pd.deliver_due() == 0
        leadbridge_clock.advance(0.4)
        assert api.pd.deliver_due() == 1
    leadbridge_clock.advance(3600)
    assert api.pd.deliver_due() == 0  # given up after the 4th attempt
    assert [p["meta"]["attempt"] for p in receiver.payloads] == [1, 2, 3, 4]
    assert len({p["meta"]["id"] for p in receiver.payloads}) == 1
    assert [d.status for d in api.pd.deliveries] == [500] * 4
    assert api.pd.webhooks[hook["id"]]["last_http_status"] == 500


def test_a_retry_that_succeeds_stops_the_retries(
    api: Client, receiver: Receiver, leadbridge_clock: VirtualClock
) -> None:
    _hook(api, receiver.url)
    receiver.statuses.extend([503])
    api.pd.add_person("Jane", None)
    api.pd.deliver_due()
    leadbridge_clock.advance(3.1)
    assert api.pd.deliver_due() == 1
    leadbridge_clock.advance(300)
    assert api.pd.deliver_due() == 0
    assert [(d.attempt, d.status) for d in api.pd.deliveries] == [(1, 503), (2, 200)]


@pytest.mark.real_clock("the sandbox's HTTP timeout is real time")
def test_a_timeout_or_a_dead_receiver_counts_as_failure(api: Client, receiver: Receiver) -> None:
    _hook(api, receiver.url)
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    _hook(api, f"http://127.0.0.1:{dead_port}/gone")
    api.pd.delivery_timeout = 0.2
    receiver.delay = 0.6
    api.pd.add_person("Jane", None)
    assert api.pd.deliver_due() == 2
    assert [d.status for d in api.pd.deliveries] == [None, None]
    assert all(d.error for d in api.pd.deliveries)
    assert api.pd.pending_deliveries() == 2  # both retried later


def test_ten_first_attempt_failures_ban_the_webhook_for_30_minutes(
    api: Client, receiver: Receiver, leadbridge_clock: VirtualClock
) -> None:
    hook = _hook(api, receiver.url)
    receiver.statuses.extend([500] * 9 + [200] + [500] * 9)  # a success resets the count
    for i in range(19):
        api.pd.add_person(f"P {i}", None)
        api.pd.deliver_due()
    assert not api.pd.is_banned(hook["id"])
    receiver.statuses.extend([500])
    api.pd.add_person("Tenth failure", None)
    api.pd.deliver_due()
    assert api.pd.is_banned(hook["id"])
    lost = api.pd.add_person("Lost", None)
    assert [e["entity_id"] for e in api.pd.lost] == [lost.id]
    leadbridge_clock.advance(30 * 60 + 1)
    receiver.statuses.clear()
    receiver.default = 200
    api.pd.add_person("After the ban", None)
    api.pd.deliver_due()
    assert any(p["data"]["name"] == "After the ban" for p in receiver.payloads)


def test_a_webhook_without_success_for_3_days_is_deleted(
    api: Client, receiver: Receiver, leadbridge_clock: VirtualClock
) -> None:
    hook = _hook(api, receiver.url)
    receiver.default = 500
    api.pd.add_person("Jane", None)
    api.pd.deliver_due()
    leadbridge_clock.advance(3 * 24 * 3600)
    api.pd.deliver_due()
    assert hook["id"] not in api.pd.webhooks
    assert api.pd.removed_webhooks[0]["id"] == hook["id"]
    assert api.get("/v1/webhooks").json()["data"] == []


def test_duplicate_deliveries_share_the_event_id(api: Client, receiver: Receiver) -> None:
    _hook(api, receiver.url)
    api.pd.duplicate_deliveries = 3
    api.pd.add_person("Jane", None)
    assert api.pd.deliver_due() == 3
    metas = [p["meta"] for p in receiver.payloads]
    assert len({m["id"] for m in metas}) == 1 and len({m["correlation_id"] for m in metas}) == 1


def test_shuffled_deliveries_arrive_out_of_order(api: Client, receiver: Receiver) -> None:
    _hook(api, receiver.url)
    ids = [api.pd.add_person(f"P {i}", None).id for i in range(6)]
    api.pd.shuffle_pending(random.Random(7))
    assert api.pd.deliver_due() == 6
    arrived = [int(p["meta"]["entity_id"]) for p in receiver.payloads]
    assert sorted(arrived) == ids and arrived != ids


@pytest.mark.real_clock("the delivery thread wakes on real time")
def test_the_delivery_thread_delivers_in_the_background(api: Client, receiver: Receiver) -> None:
    _hook(api, receiver.url)
    api.pd.start_delivery_thread(interval=0.05)
    api.pd.add_person("Jane", None)
    deadline = time.monotonic() + 5
    while not receiver.received and time.monotonic() < deadline:
        time.sleep(0.02)
    api.pd.stop_delivery_thread()
    assert len(receiver.received) == 1


# -- rate limits ------------------------------------------------------------------------------------


def test_burst_limit_headers_and_429(api: Client, leadbridge_clock: VirtualClock) -> None:
    assert "x-ratelimit-limit" not in api.get("/api/v2/persons").headers  # off by default
    api.pd.set_burst_limit(3)
    remaining = [api.get("/api/v2/persons").headers["x-ratelimit-remaining"] for _ in range(3)]
    assert remaining == ["2", "1", "0"]
    limited = api.get("/v1/users/me")
    assert limited.status_code == 429
    assert limited.json()["errorCode"] == 429 and limited.json()["success"] is False
    assert limited.headers["x-ratelimit-limit"] == "3" and limited.headers["x-ratelimit-remaining"] == "0"
    assert 1 <= int(limited.headers["Retry-After"]) <= 2
    leadbridge_clock.advance(2.0)
    ok = api.get("/api/v2/persons")
    assert ok.status_code == 200 and ok.headers["x-ratelimit-reset"] == "2"


def test_daily_budget_is_spent_by_token_cost(api: Client, leadbridge_clock: VirtualClock) -> None:
    person = api.pd.add_person("Jane", None)
    api.pd.set_daily_budget(12)
    assert api.get("/api/v2/persons").status_code == 200  # 10 tokens
    assert api.get(f"/api/v2/persons/{person.id}").status_code == 200  # 1
    assert api.get(f"/api/v2/persons/{person.id}").status_code == 200  # 1
    assert api.get(f"/api/v2/persons/{person.id}").status_code == 429
    assert api.pd.daily_tokens_used == 12
    leadbridge_clock.advance(24 * 3600)  # a new day
    assert api.get(f"/api/v2/persons/{person.id}").status_code == 200


def test_token_costs_match_the_openapi_documents(api: Client) -> None:
    checked = 0
    for rule in api.pd.sandbox.app.url_map.iter_rules():
        name = api.pd._route_names.get(rule.endpoint)
        if name is None:
            continue
        path = re.sub(r"<int:[^>]+>", "1", re.sub(r"<(?!int:)[^>]+>", "abc", rule.rule))
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert TOKEN_COSTS[name] == token_cost(method, path), (method, path)
            checked += 1
    assert checked == 20 + 2 * 4  # 20 v2 routes; 4 v1 routes under /v1 and /api/v1
