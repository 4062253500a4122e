"""The sandbox imitates PlanMill where the connector depends on it; its answers match PlanMill's schemas."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from leadbridge.sandbox import SandboxServer
from leadbridge_planmill.sandbox import PlanMillSandbox
from planmill_testkit import schema_errors, spec_file


class Api:
    def __init__(self, server: SandboxServer, pm: PlanMillSandbox) -> None:
        self.root = f"{server.url}/{pm.instance}/api"
        self.pm = pm
        self.token = self.grant().json()["access_token"]

    def grant(self, **form: str) -> requests.Response:
        data = {
            "grant_type": "client_credentials",
            "client_id": self.pm.client_id,
            "client_secret": self.pm.client_secret,
            **form,
        }
        return requests.post(f"{self.root}/oauth2/token", data=data, timeout=5)

    def __call__(self, method: str, path: str, **kw: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kw.pop("headers", {})}
        return requests.request(method, f"{self.root}/1.5/{path}", headers=headers, timeout=5, **kw)


@pytest.fixture
def api(sandbox_server: SandboxServer, pm: PlanMillSandbox) -> Api:
    return Api(sandbox_server, pm)


def test_list_and_single_answers_match_planmills_schemas(api: Api, pm: PlanMillSandbox) -> None:
    account = pm.add_account("Schema Oy", website="https://schema.example")
    pm.add_contact("schema@example.com", account=account, lastName="Schema", firstName="S")
    for path, schema_name in [
        ("contacts", "contact_getAll.schema"),
        ("accounts", "account_getAll.schema"),
        ("campaigns", "campaign1_5.schema"),
        ("actions", "action1_5.schema"),
    ]:
        response = api("GET", path, params={"rowcount": 500})
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("application/json")
        assert isinstance(response.json(), list) and response.json()
        assert schema_errors(schema_name, response.json()) == [], path
    for res, schema_name in [("contacts", "contact_getId.schema"), ("accounts", "account_getId.schema")]:
        for rid in pm.records[res]:
            assert schema_errors(schema_name, api("GET", f"{res}/{rid}").json()) == []
    assert api("GET", "me").json() == {
        **spec_file("me1_5.sample"),
        "firstName": "Sandra",
        "lastName": "Sandbox",
    }


def test_create_update_delete_status_codes(api: Api, pm: PlanMillSandbox) -> None:
    created = api("POST", "accounts", json={"name": "Status Oy"})
    assert created.status_code == 201 and set(created.json()) == {"id"}
    rid = created.json()["id"]
    updated = api("POST", f"accounts/{rid}", json={"website": "https://status.example"})
    assert updated.status_code == 204 and updated.content == b""
    via_collection = api("POST", "accounts/", json={"id": rid, "phone": "040-1"})  # trailing slash too
    assert via_collection.status_code == 204 and pm.records["accounts"][rid]["phone"] == "040-1"
    assert api("DELETE", f"accounts/{rid}").status_code == 204
    missing = api("GET", f"accounts/{rid}")
    assert (missing.status_code, missing.json()) == (404, {"message": "Item not found", "code": "00404"})
    malformed = api("GET", "accounts/12ab")
    assert malformed.status_code == 400 and malformed.json()["code"] == "00003"


def test_validation_errors_name_the_fields(api: Api) -> None:
    response = api("POST", "contacts", json={"lastName": "No Account", "email": "nodot@example"})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "00018" and body["message"] == "Validation failed"
    assert set(body["fields"]) == {"account", "email"}
    unknown = api("POST", "accounts", json={"name": "X", "colour": "red"})
    assert unknown.status_code == 400 and unknown.json()["code"] == "00018"


def test_paging_wraps_around_past_the_end(api: Api, pm: PlanMillSandbox) -> None:
    ids = sorted(pm.records["campaigns"])
    page = api("GET", "campaigns", params={"sort": "id", "order": 0, "rowcount": 1, "nextrows": 2})
    assert [r["id"] for r in page.json()] == ids[1:2]
    past = api("GET", "campaigns", params={"sort": "id", "order": 0, "rowcount": 1, "nextrows": 99})
    assert [r["id"] for r in past.json()] == ids[:1]  # the trap: the start again, not []
    pm.wrap_around = False
    assert api("GET", "campaigns", params={"rowcount": 1, "nextrows": 99}).json() == []
    default = api("GET", "contacts")
    assert len(default.json()) == min(100, pm.contact_count())


def test_interval_filter_needs_all_three_parameters_and_escaped_offsets(api: Api) -> None:
    start, finish = "2015-01-01T00:00:00.000+0200", "2015-12-31T00:00:00.000+0200"
    ok = api(
        "GET",
        "contacts",
        params={"interval": "Person.Modified", "intervalstart": start, "intervalfinish": finish},
    )
    assert [r["id"] for r in ok.json()] == [3574]
    half = api("GET", "contacts", params={"interval": "Person.Modified", "intervalstart": start})
    assert half.status_code == 400
    raw_plus = api("GET", f"contacts?interval=Person.Modified&intervalstart={start}&intervalfinish={finish}")
    assert raw_plus.status_code == 500 and raw_plus.json() == {
        "message": "Invalid date pattern",
        "code": "00500",
    }


def test_searchkey_is_a_fuzzy_substring_and_duplicates_are_allowed(api: Api, pm: PlanMillSandbox) -> None:
    hits = api("GET", "contacts", params={"searchkey": "FIRST.TESTER"}).json()
    assert sorted(r["id"] for r in hits) == [1534, 3574]  # the vendor's sample: same email twice
    assert api("POST", "accounts", json={"name": "Finance Department"}).status_code == 201


def test_tokens_expire_and_bodies_or_basic_authenticate(api: Api, pm: PlanMillSandbox) -> None:
    assert api.grant().json()["expires_in"] == 3600
    basic = requests.post(
        f"{api.root}/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(pm.client_id, pm.client_secret),
        timeout=5,
    )
    assert basic.status_code == 200 and basic.json()["token_type"] == "Bearer"
    refused = api.grant(client_secret="wrong")
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    pm.expire_tokens()
    expired = api("GET", "me")
    assert (expired.status_code, expired.json()["code"]) == (401, "00401")
    pm.expired_status = 400
    assert api("GET", "me").status_code == 400


def test_authorization_code_and_one_live_refresh_token(api: Api, pm: PlanMillSandbox) -> None:
    redirect = requests.get(
        f"{api.root}/oauth2/authorize",
        params={
            "response_type": "code",
            "client_id": pm.client_id,
            "redirect_uri": "https://hub.example/cb",
            "state": "xyz",
        },
        allow_redirects=False,
        timeout=5,
    )
    assert redirect.status_code == 302 and "state=xyz" in redirect.headers["Location"]
    code = redirect.headers["Location"].split("code=")[1].split("&")[0]
    first = api.grant(
        grant_type="authorization_code", code=code, redirect_uri="https://hub.example/cb"
    ).json()
    second = api.grant(grant_type="refresh_token", refresh_token=first["refresh_token"]).json()
    assert second["refresh_token"] != first["refresh_token"]
    reused = api.grant(grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"


def test_rate_limit_answers_429_in_planmills_format(api: Api, pm: PlanMillSandbox) -> None:
    pm.fail_next(429, mode="rate_limit", retry_after=3)
    limited = api("GET", "me")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "3"
    assert limited.json() == {"message": "Too many requests", "code": "00429"}
    pm.retry_after = None
    pm.fail_next(429, mode="rate_limit")
    assert "Retry-After" not in api("GET", "me").headers


def test_hidden_fields_are_omitted_and_forbidden_items_answer_401(api: Api, pm: PlanMillSandbox) -> None:
    pm.hidden_fields["contacts"] = {"mobilePhone"}
    assert all("mobilePhone" not in r for r in api("GET", "contacts").json())
    pm.no_access.add(("contacts", 3574))
    assert api("GET", "contacts/3574").status_code == 401


def test_hooks_are_registered_listed_deleted_and_delivered_once(
    api: Api, pm: PlanMillSandbox, sandbox_server: SandboxServer
) -> None:
    target = PlanMillSandbox(seed=False)  # any loopback HTTP server can receive the delivery
    with SandboxServer(target) as receiver:
        hook = api("POST", "hooks", json={"hook": "account.update", "url": f"{receiver.url}/receive"})
        assert hook.status_code == 201
        assert [h["hook"] for h in api("GET", "hooks").json()] == ["account.update"]
        assert pm.deliver("account.update", "accounts", 2805224) == [404]  # non-2xx: only logged
        assert target.count_calls("POST", "/receive") == 1
    assert api("DELETE", f"hooks/{hook.json()['id']}").status_code == 204
    assert api("GET", "hooks").json() == []


def test_batch_runs_in_order_and_fails_everything_after_a_failure(api: Api, pm: PlanMillSandbox) -> None:
    answer = api(
        "POST",
        "batch",
        json=[
            {"destination": "accounts", "method": "POST", "headers": {}, "body": {"name": "Batch One"}},
            {"destination": "contacts", "method": "POST", "body": {"lastName": "No account"}},
            {"destination": "accounts", "method": "POST", "body": {"name": "Batch Three"}},
        ],
    )
    assert [r["status"] for r in answer.json()] == [201, 400, 424]
    assert pm.find("accounts", name="Batch One") and not pm.find("accounts", name="Batch Three")


def test_the_instance_must_match(sandbox_server: SandboxServer, pm: PlanMillSandbox) -> None:
    other = requests.post(
        f"{sandbox_server.url}/other/api/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": pm.client_id,
            "client_secret": pm.client_secret,
        },
        timeout=5,
    )
    assert other.status_code == 404
