"""The JSON API /api/v1: bearer tokens, contacts/companies/lists/connections/runs, and every response
validated against the served OpenAPI 3.1 document."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from leadbridge.db import db
from leadbridge.models import ApiToken, Connection, Contact
from leadbridge.sync import wait_for_runs
from leadbridge.web.openapi import document
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

DOC = document()


def _inline(node: Any) -> Any:
    """The schema with every local $ref replaced by its target (the document has no cycles)."""
    if isinstance(node, dict):
        if "$ref" in node:
            target: Any = DOC
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            return _inline(target)
        return {k: _inline(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(v) for v in node]
    return node


class Api:
    """A test client that sends the bearer token and checks each response against the document."""

    def __init__(self, client: FlaskClient, token: str) -> None:
        self.client, self.token = client, token

    def call(self, method: str, template: str, expected: int, *, json: Any = None, **params: Any) -> Any:
        path = "/api/v1" + re.sub(r"\{(\w+)\}", lambda m: str(params.pop(m.group(1))), template)
        response = self.client.open(
            path,
            method=method.upper(),
            json=json,
            query_string=params,
            headers={"Authorization": f"Bearer {self.token}"},
        )
        assert response.status_code == expected, response.data
        operation = DOC["paths"][template][method]
        spec = operation["responses"][str(expected)]
        if "content" in spec:
            OAS31Validator(_inline(spec["content"]["application/json"]["schema"])).validate(response.json)
            return response.json
        assert response.data == b""
        return None


@pytest.fixture
def api(app: Flask, logged_in: FlaskClient, csrf: str, url) -> Api:
    html = logged_in.post(url("settings.tokens"), data={"csrf_token": csrf, "name": "tests"}).get_data(
        as_text=True
    )
    token = re.search(r"data-copy-source>(lb_[^<]+)<", html).group(1)
    with app.app_context():
        assert token not in db.session.query(ApiToken).one().token_hash
    return Api(app.test_client(), token)


def test_the_document_is_valid_openapi_3_1(client: FlaskClient, url) -> None:
    served = client.get(url("api.openapi_json")).json
    validate(served)
    assert served["openapi"] == "3.1.0" and served == DOC


def test_every_api_route_is_documented(app: Flask) -> None:
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("api.") or rule.endpoint == "api.openapi_json":
            continue
        template = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule.removeprefix("/api/v1"))
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert method.lower() in DOC["paths"][template], (method, template)


def test_tokens_are_required_and_checked(app: Flask, api: Api, url) -> None:
    plain = app.test_client()
    missing = plain.get(url("api.contacts_list"))
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert plain.get(url("api.contacts_list"), headers={"Authorization": "Bearer lb_nope"}).status_code == 401
    OAS31Validator(
        _inline(DOC["paths"]["/contacts"]["get"]["responses"]["401"]["content"]["application/json"]["schema"])
    ).validate(missing.json)
    api.call("get", "/contacts", 200)
    with app.app_context():
        assert db.session.query(ApiToken).one().last_used_at is not None


def test_revoked_token_stops_working(app: Flask, api: Api, logged_in: FlaskClient, csrf: str, url) -> None:
    with app.app_context():
        token_id = db.session.query(ApiToken).one().id
    logged_in.post(url("settings.delete_token", token_id=token_id), data={"csrf_token": csrf})
    api.call("get", "/contacts", 401)


def test_contacts_crud_search_and_upsert(app: Flask, api: Api) -> None:
    created = api.call("post", "/contacts", 201, json={"email": "Aino@Example.com", "first_name": "Aino"})
    assert created["email"] == "Aino@Example.com" and created["consent"] == "none"
    api.call("post", "/contacts", 409, json={"email": "aino@example.com"})
    bad = api.call("post", "/contacts", 400, json={"email": 5, "shoe_size": 44})
    assert len(bad["problems"]) == 2
    cid = created["id"]
    assert api.call("get", "/contacts/{contact_id}", 200, contact_id=cid)["first_name"] == "Aino"
    patched = api.call(
        "patch",
        "/contacts/{contact_id}",
        200,
        contact_id=cid,
        json={"last_name": "Virtanen", "score": 7, "custom": {"shoe": "44"}},
    )
    assert (patched["last_name"], patched["score"], patched["custom"]) == ("Virtanen", 7, {"shoe": "44"})
    again = api.call("post", "/contacts/upsert", 200, json={"email": "AINO@example.com", "title": "CMO"})
    assert again["id"] == cid and again["title"] == "CMO"
    new = api.call("post", "/contacts/upsert", 201, json={"email": "mikko@example.com"})
    for i in range(3):
        api.call("post", "/contacts", 201, json={"email": f"p{i}@other.example", "last_name": f"Person{i}"})
    page = api.call("get", "/contacts", 200, limit=2)
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = api.call("get", "/contacts", 200, limit=10, cursor=page["next_cursor"])
    assert len(rest["items"]) == 3 and rest["next_cursor"] is None
    assert [c["id"] for c in api.call("get", "/contacts", 200, q="aino")["items"]] == [cid]
    assert len(api.call("get", "/contacts", 200, q="Person")["items"]) == 3
    api.call("get", "/contacts", 400, limit=0)
    api.call("delete", "/contacts/{contact_id}", 204, contact_id=new["id"])
    api.call("get", "/contacts/{contact_id}", 404, contact_id=new["id"])
    with app.app_context():
        assert db.session.get(Contact, new["id"]).deleted_at is not None  # soft: the engine propagates it


def test_companies_crud(api: Api) -> None:
    acme = api.call("post", "/companies", 201, json={"name": "Acme  Oy", "domain": "acme.example"})
    api.call("post", "/companies", 400, json={"domain": "x"})
    assert api.call("get", "/companies/{company_id}", 200, company_id=acme["id"])["name"] == "Acme  Oy"
    assert api.call("get", "/companies", 200, q="acme o")["items"][0]["id"] == acme["id"]
    assert (
        api.call("patch", "/companies/{company_id}", 200, company_id=acme["id"], json={"phone": "+358 1"})[
            "phone"
        ]
        == "+358 1"
    )
    api.call("post", "/contacts", 201, json={"email": "a@acme.example", "company_id": acme["id"]})
    api.call("post", "/contacts", 400, json={"email": "b@acme.example", "company_id": 999})
    api.call("delete", "/companies/{company_id}", 204, company_id=acme["id"])
    api.call("get", "/companies/{company_id}", 404, company_id=acme["id"])


def test_lists_and_members(api: Api) -> None:
    lst = api.call("post", "/lists", 201, json={"name": "Newsletter"})
    api.call("post", "/lists", 409, json={"name": "Newsletter"})
    ids = [api.call("post", "/contacts", 201, json={"email": f"m{i}@example.com"})["id"] for i in range(3)]
    after = api.call(
        "post",
        "/lists/{list_id}/members",
        200,
        list_id=lst["id"],
        json={"contact_ids": ids, "status": "registered"},
    )
    assert after["member_count"] == 3
    api.call("post", "/lists/{list_id}/members", 404, list_id=lst["id"], json={"contact_ids": [999]})
    members = api.call("get", "/lists/{list_id}/members", 200, list_id=lst["id"], limit=2)
    assert [m["status"] for m in members["items"]] == ["registered", "registered"] and members["next_cursor"]
    api.call("delete", "/lists/{list_id}/members/{contact_id}", 204, list_id=lst["id"], contact_id=ids[0])
    api.call("delete", "/lists/{list_id}/members/{contact_id}", 404, list_id=lst["id"], contact_id=ids[0])
    assert api.call("get", "/lists/{list_id}", 200, list_id=lst["id"])["member_count"] == 2
    assert [x["name"] for x in api.call("get", "/lists", 200)] == ["Newsletter"]
    api.call("get", "/lists/{list_id}", 404, list_id=999)


def test_connections_runs_and_records(
    app: Flask, api: Api, connection: Connection, make_connection, sandbox
) -> None:
    sandbox.seed_demo()
    listed = api.call("get", "/connections", 200)
    assert listed[0]["id"] == connection.id and listed[0]["plugin_state"] == "loaded"
    assert (
        api.call("get", "/connections/{connection_id}", 200, connection_id=connection.id)["enabled"] is True
    )
    api.call("get", "/connections/{connection_id}", 404, connection_id=999)
    started = api.call(
        "post", "/connections/{connection_id}/runs", 202, connection_id=connection.id, json={"dry_run": True}
    )
    wait_for_runs(app, timeout=60)
    run = api.call("get", "/runs/{run_id}", 200, run_id=started["run_id"])
    assert run["dry_run"] is True and run["trigger"] == "api" and run["status"] in ("succeeded", "partial")
    records = api.call("get", "/runs/{run_id}/records", 200, run_id=run["id"], side="hub", limit=5)
    assert records["items"] and {r["side"] for r in records["items"]} == {"hub"} and records["next_cursor"]
    assert api.call("get", "/runs", 200, connection=connection.id)["items"][0]["id"] == run["id"]
    api.call("get", "/runs/{run_id}", 404, run_id=999)
    api.call("post", "/connections/{connection_id}/runs", 400, connection_id=connection.id, json={"dry": 1})
    off = make_connection(enabled=False)
    api.call("post", "/connections/{connection_id}/runs", 409, connection_id=off.id, json={})
