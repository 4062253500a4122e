"""Every body the connector sent and the sandbox answered, checked against the local JSON schema.

Salesforce ships no static machine-readable spec, so ``schemas/salesforce-rest.json`` encodes the
vendor notes' shapes; this test runs a realistic session (login, two-way sync with a refused
record, campaign import, a task) and validates both directions of every exchange.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

import jsonschema
import pytest
from leadbridge.db import db
from leadbridge.models import Connection, ContactList, ListMembership
from leadbridge.models import Contact as HubContact
from leadbridge.sync import default_mappings, import_campaign, run_sync
from leadbridge.testing import ConnectorHarness
from leadbridge.types import Action, Contact
from leadbridge_salesforce.sandbox import SalesforceSandbox
from sqlalchemy import select

V = r"/services/data/v\d+\.\d"


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    text = resources.files("leadbridge_salesforce").joinpath("schemas/salesforce-rest.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(loaded)
    return loaded


def _check(schema: dict[str, Any], name: str, body: Any) -> None:
    jsonschema.validate(body, {"$ref": f"#/$defs/{name}", "$defs": schema["$defs"]})


def request_schema(method: str, path: str) -> str | None:
    rules = [
        ("POST|PATCH", rf"{V}/composite/sobjects(/\w+/\w+)?", "collectionsRequest"),
        ("POST", rf"{V}/composite", "compositeRequest"),
        ("POST", rf"{V}/sobjects/Task", "taskRequest"),
    ]
    return next((name for m, p, name in rules if re.fullmatch(m, method) and re.fullmatch(p, path)), None)


def response_schema(method: str, path: str, status: int) -> str:
    if path == "/services/oauth2/token":
        return "tokenResponse" if status == 200 else "tokenError"
    if status >= 400:
        return "errorArray"
    rules = [
        ("GET", rf"{V}/(query|queryAll)(/[\w-]+)?", "queryResponse"),
        ("GET", rf"{V}/sobjects/\w+/describe", "describeResponse"),
        ("POST|PATCH|DELETE", rf"{V}/composite/sobjects(/\w+/\w+)?", "collectionsResponse"),
        ("POST", rf"{V}/composite", "compositeResponse"),
        ("POST", rf"{V}/sobjects/\w+", "createResponse"),
        ("GET", rf"{V}/limits", "limitsResponse"),
    ]
    for m, p, name in rules:
        if re.fullmatch(m, method) and re.fullmatch(p, path):
            return name
    raise AssertionError(f"no schema for {method} {path}: extend schemas/salesforce-rest.json")


def test_a_whole_session_matches_the_schema(
    schema: dict[str, Any], connection: Connection, sandbox: SalesforceSandbox
) -> None:
    sandbox.seed_demo()
    sandbox.page_size = 2
    connection.options = {**connection.options, "objects": ["Lead", "Contact", "Account"]}
    db.session.commit()
    default_mappings(connection)
    db.session.commit()
    assert run_sync(connection.id).status == "succeeded"
    for i in range(3):
        person = HubContact(
            first_name="New",
            last_name=f"Person{i}",
            company_name="Hub Oy" if i else None,
            consent="none",
            unsubscribed=False,
            custom={},
            field_changed_at={},
        )
        person.set_email(f"new{i}@hub.example")
        db.session.add(person)
    db.session.commit()
    assert run_sync(connection.id).status in ("succeeded", "partial")
    campaign = next(iter(sandbox.store.records["Campaign"]))
    hub_list = ContactList(name="Webinar")
    db.session.add(hub_list)
    db.session.commit()
    imported = import_campaign(connection.id, list_id=hub_list.id, campaign_id=campaign, status="registered")
    assert imported.status == "succeeded", imported.error
    members = db.session.execute(
        select(ListMembership).where(ListMembership.list_id == hub_list.id)
    ).scalars()
    assert {m.status for m in members} == {"registered"} and len(
        list(
            db.session.execute(select(ListMembership.contact_id).where(ListMembership.list_id == hub_list.id))
        )
    ) == 2
    harness = ConnectorHarness(connection, sandbox)
    lead = next(iter(sandbox.store.records["Lead"]))
    harness.call(
        "create_action", action=Action(title="Visited pricing", contact=Contact(email=None, remote_id=lead))
    )
    harness.login()
    harness.client.get("services/data/v66.0/limits")
    sandbox.expire_tokens()
    harness.fields("Lead")  # a 401 INVALID_SESSION_ID, a new login

    checked_requests = 0
    for seen in sandbox.requests_seen:
        name = request_schema(seen["method"], seen["path"])
        if name and seen["json"] is not None:
            _check(schema, name, seen["json"])
            checked_requests += 1
    assert checked_requests >= 4
    kinds = set()
    for seen in sandbox.responses_seen:
        name = response_schema(seen["method"], seen["path"], seen["status"])
        _check(schema, name, seen["json"])
        kinds.add(name)
        if name == "compositeResponse":
            for sub in seen["json"]["compositeResponse"]:
                _check(schema, "queryResponse" if sub["httpStatusCode"] == 200 else "errorArray", sub["body"])
    assert {
        "tokenResponse",
        "queryResponse",
        "describeResponse",
        "collectionsResponse",
        "compositeResponse",
        "createResponse",
        "errorArray",
        "limitsResponse",
    } <= kinds
    assert db.session.execute(
        select(HubContact).where(HubContact.email_key == "new1@hub.example")
    ).scalar_one()


def test_the_schema_rejects_what_salesforce_would(schema: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        _check(
            schema,
            "collectionsRequest",
            {"allOrNone": False, "records": [{"attributes": {"type": "Lead"}}] * 201},
        )
    with pytest.raises(jsonschema.ValidationError):
        _check(
            schema,
            "tokenResponse",
            {
                "access_token": "x" * 20,
                "instance_url": "https://a",
                "id": "x",
                "token_type": "Bearer",
                "issued_at": "1",
                "signature": "",
                "expires_in": 1,
            },
        )
    with pytest.raises(jsonschema.ValidationError):  # collections items use statusCode, never errorCode
        _check(schema, "saveResult", {"success": False, "errors": [{"errorCode": "X", "message": "m"}]})
