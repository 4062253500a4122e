"""The Maileon half of the sandbox over real HTTP: auth, contacts (XML and JSON), custom fields,
mailings, transaction types and transactions, unsubscriptions and their report, webhooks.

JSON bodies (sent and received) are checked against the hand-written schema in
``vendor/maileon-api.json``.
"""

from __future__ import annotations

import base64
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests
from flask import Response
from leadbridge import clock as clocks
from leadbridge.sandbox import Sandbox, SandboxServer
from leadbridge_pipedrive_maileon.sandbox.maileon import MaileonAPI

SCHEMA = json.loads((Path(__file__).parent / "vendor" / "maileon-api.json").read_text())
XML = "application/vnd.maileon.api+xml"
JSON_CONTACT = "application/vnd.maileon.api+json"
JANE = "jane%40example.com"


class _Only(Sandbox):
    name = "maileon_only"

    def setup_routes(self) -> None:
        self.maileon = MaileonAPI(self)

    def error_response(self, status: int, code: str, message: str) -> Response:
        return self.maileon.error_response(status, message)


def conforms(call: str, part: str, body: Any) -> Any:
    """Validate ``body`` against ``calls[call][part]`` of the schema file; returns the body."""
    schema = {"$defs": SCHEMA["$defs"], **SCHEMA["calls"][call][part]}
    jsonschema.Draft202012Validator(schema).validate(body)
    return body


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(key.encode()).decode()}


class Client:
    """A tiny Maileon client: base64 key auth, JSON or XML."""

    def __init__(self, url: str, key: str) -> None:
        self.url = url + "/1.0"
        self.session = requests.Session()
        self.session.headers.update(basic(key))

    def call(
        self, method: str, path: str, *, json_body: Any = None, xml: str | None = None, **kw: Any
    ) -> Any:
        headers = kw.pop("headers", {})
        if json_body is not None:
            kw["data"] = json.dumps(json_body)
            headers.setdefault("Content-Type", "application/json" if "transactions" in path else JSON_CONTACT)
        if xml is not None:
            kw["data"] = xml.encode()
            headers.setdefault("Content-Type", XML)
        headers.setdefault("Accept", "application/json" if json_body is not None or xml is None else XML)
        return self.session.request(method, self.url + path, headers=headers, timeout=10, **kw)

    def xml(self, method: str, path: str, **kw: Any) -> requests.Response:
        return self.call(method, path, headers={"Accept": XML}, **kw)


@pytest.fixture
def sandbox() -> _Only:
    return _Only()


@pytest.fixture
def api(sandbox: _Only) -> MaileonAPI:
    return sandbox.maileon


@pytest.fixture
def server(sandbox: _Only) -> Iterator[SandboxServer]:
    with SandboxServer(sandbox) as running:
        yield running


@pytest.fixture
def mc(server: SandboxServer, api: MaileonAPI) -> Client:
    return Client(server.url, api.api_key)


def create(mc: Client, email: str = JANE, body: Any = None, **params: Any) -> requests.Response:
    body = {"standard_fields": {"FIRSTNAME": "Jane"}} if body is None else body
    conforms("POST /1.0/contacts/email/{email}", "request", body)
    return mc.call("POST", f"/contacts/email/{email}", json_body=body, params=params)


def get_contact(mc: Client, email: str = JANE, **params: Any) -> dict[str, Any]:
    resp = mc.call("GET", f"/contacts/email/{email}", params=params)
    assert resp.status_code == 200, resp.text
    return conforms("GET /1.0/contacts/email/{email}", "response", resp.json())


def error_of(resp: requests.Response) -> str:
    """The message of a Maileon error, XML or JSON."""
    if "json" in resp.headers["Content-Type"]:
        return conforms("error", "response", resp.json())["error"]["message"]
    root = ET.fromstring(resp.content)
    assert root.tag == "error"
    return root.findtext("message") or ""


# -- auth -----------------------------------------------------------------------------------------


def test_ping_and_auth_failures(server: SandboxServer, api: MaileonAPI, mc: Client) -> None:
    assert mc.call("GET", "/ping").status_code == 200
    url = server.url + "/1.0/ping"
    assert requests.get(url, timeout=10).status_code == 401
    wrong = requests.get(url, headers=basic("00000000-0000-0000-0000-000000000000"), timeout=10)
    assert wrong.status_code == 401 and error_of(wrong) == "invalid API key"
    assert wrong.headers["Content-Type"].startswith(XML)
    # The key alone is encoded: "key:" (what HTTP clients build for user:password) is refused.
    assert requests.get(url, headers=basic(api.api_key + ":"), timeout=10).status_code == 401


def test_raw_key_only_with_the_switch(server: SandboxServer, api: MaileonAPI) -> None:
    raw = {"Authorization": f"Basic {api.api_key}"}
    assert requests.get(server.url + "/1.0/ping", headers=raw, timeout=10).status_code == 401
    api.accept_raw_key = True
    assert requests.get(server.url + "/1.0/ping", headers=raw, timeout=10).status_code == 200


def test_expired_key_and_method_privileges(
    server: SandboxServer, api: MaileonAPI, leadbridge_clock: Any
) -> None:
    api.add_key("aaaaaaaa-0000-0000-0000-000000000001", expires=clocks.utcnow() + timedelta(hours=1))
    api.add_key("aaaaaaaa-0000-0000-0000-000000000002", methods={"GET"})
    soon = Client(server.url, "aaaaaaaa-0000-0000-0000-000000000001")
    reader = Client(server.url, "aaaaaaaa-0000-0000-0000-000000000002")
    assert soon.call("GET", "/ping").status_code == 200
    leadbridge_clock.advance(3601)
    expired = soon.call("GET", "/ping")
    assert expired.status_code == 401 and error_of(expired) == "API key expired"
    assert reader.call("GET", "/ping").status_code == 200
    denied = reader.call("POST", "/ping")
    assert denied.status_code == 403 and "POST" in error_of(denied)


def test_unknown_route_answers_maileon_error(mc: Client) -> None:
    resp = mc.xml("GET", "/nothing/here")
    assert resp.status_code == 404 and error_of(resp).startswith("no resource")
    assert mc.call("PATCH", "/ping").status_code == 405


# -- contacts -------------------------------------------------------------------------------------


def test_create_then_sync_modes(mc: Client, api: MaileonAPI) -> None:
    created = create(
        mc, body={"external_id": "179", "standard_fields": {"FIRSTNAME": "Jane"}}, src="pipedrive"
    )
    assert created.status_code == 201 and created.content == b""
    contact = api.contact_by_email("JANE@example.com")
    assert contact is not None and contact.external_id == "179" and contact.permission == 1
    # sync_mode defaults to 2 (ignore existing): 2xx and nothing changes.
    ignored = create(mc, body={"standard_fields": {"FIRSTNAME": "Janet"}}, permission=2)
    assert ignored.status_code == 200 and contact.standard["FIRSTNAME"] == "Jane" and contact.permission == 1
    updated = create(mc, body={"standard_fields": {"FIRSTNAME": "Janet", "LASTNAME": "Doe"}}, sync_mode=1)
    assert updated.status_code == 200
    assert contact.standard == {"FIRSTNAME": "Janet", "LASTNAME": "Doe"} and len(api.contacts) == 1


def test_permission_raised_from_none_never_downgraded(mc: Client, api: MaileonAPI) -> None:
    create(mc)
    create(mc, sync_mode=1, permission=4)
    contact = api.contact_by_email("jane@example.com")
    assert contact is not None and contact.permission == 4
    create(mc, sync_mode=1, permission=1)
    create(mc, sync_mode=1, permission=2)
    assert contact.permission == 4


def test_doi_pending_until_confirmed(mc: Client, api: MaileonAPI) -> None:
    resp = create(mc, permission=1, doi="true", doiplus="true", doimailing="doi-1001")
    assert resp.status_code == 201
    contact = api.contact_by_email("jane@example.com")
    assert contact is not None and contact.doi_pending and contact.doi_mailing == "doi-1001"
    assert contact.permission == 1
    api.confirm_doi("jane@example.com")
    assert contact.permission == 5 and not contact.doi_pending
    create(mc, "joe%40example.com", doi="true")
    api.confirm_doi("joe@example.com")
    joe = api.contact_by_email("joe@example.com")
    assert joe is not None and joe.permission == 4 and joe.doi_mailing == "doi-1001"  # the account default


def test_doi_with_unknown_mailing_is_refused(mc: Client, api: MaileonAPI) -> None:
    for mailing in ("doi-9999", "news-2001"):  # unknown, and a regular (not DOI) mailing
        resp = create(mc, doi="true", doimailing=mailing)
        assert resp.status_code == 400 and mailing in error_of(resp)
    assert api.contacts == {}


def test_xml_body_and_answer(mc: Client, api: MaileonAPI) -> None:
    assert mc.call("POST", "/contacts/fields/custom/createdByPipedrive", params={"type": "boolean"}).ok
    body = """<?xml version="1.0" encoding="UTF-8"?>
<contact><external_id>179</external_id>
  <standard_fields><field><name>FIRSTNAME</name><value><![CDATA[Jane & Co]]></value></field></standard_fields>
  <custom_fields><field><name>createdByPipedrive</name><value>true</value></field></custom_fields>
</contact>"""
    assert mc.xml("POST", f"/contacts/email/{JANE}", xml=body).status_code == 201
    resp = mc.xml(
        "GET",
        f"/contacts/email/{JANE}?standard_field=FIRSTNAME&standard_field=LASTNAME"
        "&custom_field=createdByPipedrive&custom_field=other",
    )
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith(XML)
    root = ET.fromstring(resp.content)
    assert root.tag == "contact" and root.findtext("email") == "jane@example.com"
    assert root.findtext("external_id") == "179" and root.findtext("permission") == "1"
    assert root.findtext("created", "").endswith(".0")
    fields = {f.findtext("name"): f.find("value") for f in root.findall("standard_fields/field")}
    assert fields["FIRSTNAME"] is not None and fields["FIRSTNAME"].text == "Jane & Co"
    assert fields["LASTNAME"] is not None and fields["LASTNAME"].get("nil") == "true"
    custom = [f.findtext("name") for f in root.findall("custom_fields/field")]
    assert custom == ["createdByPipedrive"]  # "other" is empty: omitted


def test_xml_without_external_id_and_refused_dtd(mc: Client) -> None:
    assert mc.xml("POST", f"/contacts/email/{JANE}", xml="<contact/>").status_code == 201
    root = ET.fromstring(mc.xml("GET", f"/contacts/email/{JANE}").content)
    external = root.find("external_id")
    assert external is not None and external.get("nil") == "true"
    bomb = '<!DOCTYPE c [<!ENTITY a "aaaa">]><contact><external_id>&a;</external_id></contact>'
    resp = mc.xml("POST", f"/contacts/email/{JANE}", xml=bomb, params={"sync_mode": 1})
    assert resp.status_code == 400 and "DTD" in error_of(resp)
    assert mc.xml("POST", f"/contacts/email/{JANE}", xml="<contact>").status_code == 400


def test_json_answer_only_requested_fields(mc: Client) -> None:
    mc.call("POST", "/contacts/fields/custom/score", params={"type": "integer"})
    create(mc, body={"standard_fields": {"FIRSTNAME": "Jane", "CITY": "Köln"}, "custom_fields": {"score": 7}})
    contact = get_contact(mc, standard_field=["FIRSTNAME", "LASTNAME"], custom_field="score")
    assert contact["standard_fields"] == {"FIRSTNAME": "Jane", "LASTNAME": None}
    assert contact["custom_fields"] == {"score": "7"} and contact["external_id"] is None
    assert get_contact(mc)["standard_fields"] == {}
    missing = mc.call("GET", "/contacts/email/nobody%40example.com")
    assert missing.status_code == 404 and "nobody@example.com" in error_of(missing)


def test_contact_validation(mc: Client) -> None:
    mc.call("POST", "/contacts/fields/custom/createdByPipedrive", params={"type": "boolean"})
    cases = [
        ({"standard_fields": {"NICKNAME": "J"}}, "unknown standard field"),
        ({"standard_fields": {"CHECKSUM": "x"}}, "read-only"),
        ({"standard_fields": {"BIRTHDAY": "12.03.1990"}}, "YYYY-MM-DD"),
        ({"custom_fields": {"notCreated": "x"}}, "create it first"),
        ({"custom_fields": {"createdByPipedrive": None}}, "null"),
        ({"custom_fields": {"createdByPipedrive": "maybe"}}, "boolean"),
    ]
    for body, message in cases:
        resp = mc.call("POST", f"/contacts/email/{JANE}", json_body=body)
        assert resp.status_code == 400 and message in error_of(resp), body
    empty = mc.call("POST", f"/contacts/email/{JANE}", data=b"", headers={"Content-Type": JSON_CONTACT})
    assert empty.status_code == 400
    assert create(mc, "not-an-email").status_code == 400
    assert create(mc, permission=7).status_code == 400


def test_custom_field_definitions_and_typed_values(mc: Client, api: MaileonAPI) -> None:
    for name, kind in [("score", "integer"), ("ratio", "float"), ("since", "date"), ("note", None)]:
        params = {"type": kind} if kind else {}
        assert mc.call("POST", f"/contacts/fields/custom/{name}", params=params).status_code == 201
    again = mc.call("POST", "/contacts/fields/custom/score", params={"type": "integer"})
    assert again.status_code == 400 and "already exists" in error_of(again)
    assert mc.call("POST", "/contacts/fields/custom/x", params={"type": "list"}).status_code == 400
    listed = conforms(
        "GET /1.0/contacts/fields/custom", "response", mc.call("GET", "/contacts/fields/custom").json()
    )
    assert {"name": "note", "type": "string"} in listed
    root = ET.fromstring(mc.xml("GET", "/contacts/fields/custom").content)
    assert [c.findtext("type") for c in root.findall("custom_field")] == [
        "integer",
        "float",
        "date",
        "string",
    ]
    for field, bad in [("score", "1.5"), ("ratio", "abc"), ("since", "2024-02-30")]:
        assert create(mc, body={"custom_fields": {field: bad}}).status_code == 400, field
    good = {"score": "12", "ratio": 0.5, "since": "2024-02-29", "note": ""}
    assert create(mc, body={"custom_fields": good}).status_code == 201
    contact = api.contact_by_email("jane@example.com")
    assert contact is not None and contact.custom == {"score": "12", "ratio": "0.5", "since": "2024-02-29"}
    assert mc.call("PUT", "/contacts/fields/custom/ratio/share").status_code == 200
    assert api.custom_fields["share"] == "float" and contact.custom["share"] == "0.5"
    assert mc.call("PUT", "/contacts/fields/custom/share/score").status_code == 400  # taken
    assert mc.call("DELETE", "/contacts/fields/custom/score").status_code == 200
    assert "score" not in contact.custom and "score" not in api.custom_fields
    assert mc.call("DELETE", "/contacts/fields/custom/score").status_code == 404


def test_put_delete_and_unsubscribe_by_email(mc: Client, api: MaileonAPI) -> None:
    create(mc, body={"standard_fields": {"FIRSTNAME": "Jane", "LASTNAME": "Doe"}})
    put = mc.call("PUT", f"/contacts/email/{JANE}", json_body={"standard_fields": {"LASTNAME": "Roe"}})
    assert put.status_code == 200
    contact = api.contact_by_email("jane@example.com")
    assert contact is not None and contact.standard == {"FIRSTNAME": "Jane", "LASTNAME": "Roe"}
    assert mc.call("PUT", "/contacts/email/x%40example.com", json_body={}).status_code == 404
    resp = mc.call("DELETE", f"/contacts/email/{JANE}/unsubscribe", params={"reason": "too many mails"})
    assert resp.status_code == 200 and contact.unsubscribed and contact.permission == 1
    assert [(r["source"], r["reason"]) for r in api.unsubscriptions] == [("api", "too many mails")]
    # A plain POST does not re-subscribe an unsubscribed contact.
    create(mc, sync_mode=1, permission=2)
    assert contact.unsubscribed
    assert mc.call("DELETE", "/contacts/email/x%40example.com/unsubscribe").status_code == 404
    assert mc.call("DELETE", f"/contacts/email/{JANE}").status_code == 200 and api.contacts == {}
    assert mc.call("DELETE", f"/contacts/email/{JANE}").status_code == 404


def test_put_permission_and_unsubscribe_by_external_id(mc: Client, api: MaileonAPI) -> None:
    create(mc, body={"external_id": "179"})
    put = mc.call("PUT", "/contacts/externalid/179", json_body={}, params={"permission": 4})
    assert put.status_code == 200
    mc.call("PUT", f"/contacts/email/{JANE}", json_body={}, params={"permission": 2})
    contact = api.contact_by_email("jane@example.com")
    assert contact is not None and contact.permission == 4  # DOI is never downgraded
    assert mc.call("DELETE", "/contacts/externalid/179/unsubscribe").status_code == 200
    assert contact.unsubscribed and api.unsubscriptions[0]["contact"]["external_id"] == "179"
    mc.call("DELETE", "/contacts/externalid/179/unsubscribe")
    assert len(api.unsubscriptions) == 1  # already unsubscribed: no second row
    assert mc.call("DELETE", "/contacts/externalid/180/unsubscribe").status_code == 404


def test_external_id_routes_and_409(mc: Client, api: MaileonAPI) -> None:
    body = {"email": "jane@example.com", "standard_fields": {"FIRSTNAME": "Jane"}}
    conforms("POST /1.0/contacts/externalid/{external_id}", "request", body)
    assert mc.call("POST", "/contacts/externalid/179", json_body=body).status_code == 201
    assert mc.call("POST", "/contacts/externalid/180", json_body={}).status_code == 400  # no e-mail
    create(mc, "jane.work%40example.com", body={"external_id": "179"})
    listed = mc.call("GET", "/contacts/externalid/179", params={"standard_field": "FIRSTNAME"})
    contacts = conforms("GET /1.0/contacts/externalid/{external_id}", "response", listed.json())
    assert sorted(c["email"] for c in contacts) == ["jane.work@example.com", "jane@example.com"]
    root = ET.fromstring(mc.xml("GET", "/contacts/externalid/179").content)
    assert root.tag == "contacts" and len(root.findall("contact")) == 2
    for method in ("POST", "PUT"):
        clash = mc.call(method, "/contacts/externalid/179", json_body=body, params={"sync_mode": 1})
        assert clash.status_code == 409 and "2 contacts" in error_of(clash)
    assert mc.call("GET", "/contacts/externalid/999").status_code == 404
    assert mc.call("DELETE", "/contacts/externalid/179").status_code == 200 and api.contacts == {}


def test_paging_headers_and_limits(mc: Client, api: MaileonAPI, leadbridge_clock: Any) -> None:
    for i in range(5):
        create(mc, f"p{i}%40example.com")
    page = mc.call("GET", "/contacts", params={"page_index": 2, "page_size": 2})
    assert page.headers["X-Items"] == "5" and page.headers["X-Pages"] == "3"
    assert [c["email"] for c in conforms("GET /1.0/contacts", "response", page.json())] == [
        "p2@example.com",
        "p3@example.com",
    ]
    past = mc.call("GET", "/contacts", params={"page_index": 4, "page_size": 2})
    assert past.status_code == 200 and past.json() == []
    too_big = mc.xml("GET", "/contacts", params={"page_size": 1001})
    assert too_big.status_code == 400 and error_of(too_big) == "page_size must not exceed 1000 but was 1001"
    leadbridge_clock.advance(120)
    since = (clocks.utcnow() - timedelta(seconds=60)).strftime("%Y-%m-%d %H:%M:%S")
    create(mc, "p1%40example.com", body={"standard_fields": {"CITY": "Bonn"}}, sync_mode=1)
    recent = mc.call("GET", "/contacts", params={"updated_after": since})
    assert [c["email"] for c in recent.json()] == ["p1@example.com"]
    count = mc.call("GET", "/contacts/count", params={"updated_after": since})
    assert conforms("GET /1.0/contacts/count", "response", count.json()) == 1
    assert mc.call("GET", "/contacts", params={"updated_after": "2025-01-01"}).status_code == 400


# -- mailings -------------------------------------------------------------------------------------


def test_mailing_type(mc: Client) -> None:
    doi = mc.call("GET", "/mailings/doi-1001/type")
    assert conforms("GET /1.0/mailings/{id}/type", "response", doi.json()) == "doi"
    root = ET.fromstring(mc.xml("GET", "/mailings/news-2001/type").content)
    assert root.tag == "type" and root.text == "regular"
    assert mc.call("GET", "/mailings/nope/type").status_code == 404


# -- transactions ---------------------------------------------------------------------------------

DEAL_TYPE = {
    "name": "pipedrive_deal_updated",
    "description": "Deal events from Pipedrive",
    "archivingDuration": 365,
    "storeOnly": False,
    "attributes": [
        {"name": "deal_id", "type": "integer", "required": True},
        {"name": "title", "type": "string", "required": False},
        {"name": "value", "type": "double", "required": False},
    ],
}


def make_type(mc: Client, body: dict[str, Any] = DEAL_TYPE) -> int:
    conforms("POST /1.0/transactions/types", "request", body)
    resp = mc.call(
        "POST", "/transactions/types", json_body=body, headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 201, resp.text
    return int(conforms("POST /1.0/transactions/types", "response", resp.text))


def test_transaction_types_json_and_xml(mc: Client, api: MaileonAPI) -> None:
    type_id = make_type(mc)
    dup = mc.call(
        "POST", "/transactions/types", json_body=DEAL_TYPE, headers={"Content-Type": "application/json"}
    )
    assert dup.status_code == 409
    xml = """<transaction_type><name>pipedrive.deal_added</name><storeOnly>true</storeOnly>
      <attributes><attribute><name>deal_id</name><type>integer</type><required>true</required></attribute>
      </attributes></transaction_type>"""
    added = mc.xml("POST", "/transactions/types", xml=xml)
    assert added.status_code == 201 and int(added.text) == type_id + 1
    for bad in ("1deal", "deal-added", "a." + "b" * 33):
        resp = mc.call(
            "POST",
            "/transactions/types",
            json_body={"name": bad},
            headers={"Content-Type": "application/json"},
        )
        assert resp.status_code == 400, bad
    bad_attr = {"name": "x", "attributes": [{"name": "a", "type": "money"}]}
    assert mc.call("POST", "/transactions/types", json_body=bad_attr).status_code == 400
    one = conforms(
        "GET /1.0/transactions/types/{id}",
        "response",
        mc.call("GET", f"/transactions/types/{type_id}").json(),
    )
    assert one["name"] == "pipedrive_deal_updated" and one["attributes"][0]["required"] is True
    by_name = mc.xml("GET", "/transactions/types/pipedrive.deal_added")
    root = ET.fromstring(by_name.content)
    assert root.findtext("storeOnly") == "true" and root.findtext("attributes/attribute/type") == "integer"
    listed = mc.call("GET", "/transactions/types", params={"page_size": 1})
    assert (
        listed.headers["X-Items"] == "2"
        and len(conforms("GET /1.0/transactions/types", "response", listed.json())) == 1
    )
    grow = {
        "name": "pipedrive_deal_updated",
        "attributes": [{"name": "status", "type": "string", "required": False}],
    }
    conforms("PUT /1.0/transactions/types/{id}", "request", grow)
    assert mc.call("PUT", f"/transactions/types/{type_id}", json_body=grow).status_code == 200
    assert [a["name"] for a in api.transaction_types[type_id]["attributes"]][-1] == "status"
    change = {"attributes": [{"name": "deal_id", "type": "string", "required": True}]}
    assert mc.call("PUT", f"/transactions/types/{type_id}", json_body=change).status_code == 400
    assert mc.call("DELETE", "/transactions/types/pipedrive.deal_added").status_code == 200
    assert mc.call("GET", "/transactions/types/pipedrive.deal_added").status_code == 404


def test_transactions_mixed_batch(mc: Client, api: MaileonAPI) -> None:
    type_id = make_type(mc)
    create(mc, body={"external_id": "179"})
    batch = [
        {"typeName": "pipedrive_deal_updated", "contact": {"email": "jane@example.com"},
         "content": {"deal_id": 746, "title": "Biview", "value": 1200.0}},
        {"type": type_id, "import": {"contact": {"email": "new@example.com", "permission": 1}},
         "content": {"deal_id": 747}},
        {"type": type_id, "contact": {"email": "ghost@example.com"}, "content": {"deal_id": 748}},
        {"type": type_id, "contact": {"external_id": "179"}, "content": {"title": "no deal id"}},
        {"type": type_id, "typeName": "does_not_matter", "contact": {"external_id": "179"},
         "content": {"deal_id": "749"}},
        {"type": type_id, "contact": {"email": "jane@example.com"},
         "content": {"deal_id": 1, "value": "lots"}},
        {"type": type_id, "contact": {"id": 15975220}, "content": {"deal_id": 2, "title": "x" * 1001}},
    ]  # fmt: skip
    conforms("POST /1.0/transactions", "request", batch)
    resp = mc.call("POST", "/transactions", json_body=batch, params={"generate_transaction_id": "true"})
    assert resp.status_code == 201
    reports = conforms("POST /1.0/transactions", "response", resp.json())["reports"]
    assert [r["queued"] for r in reports] == [True, True, False, False, True, False, False]
    assert "1000 characters" in reports[6]["message"]
    assert reports[0]["contact"]["external_id"] == "179" and reports[0]["transaction_id"]
    assert "not found" in reports[2]["message"] and reports[2]["contact"] == {"email": "ghost@example.com"}
    assert "deal_id" in reports[3]["message"] and "value" in reports[5]["message"]
    assert [t["content"]["deal_id"] for t in api.transactions] == [746, 747, "749"]
    assert {t["type_name"] for t in api.transactions} == {"pipedrive_deal_updated"}
    assert api.contact_by_email("new@example.com") is not None


def test_transactions_strict_mode_rejects_whole_call(mc: Client, api: MaileonAPI) -> None:
    type_id = make_type(mc)
    batch = [
        {
            "type": type_id,
            "import": {"contact": {"email": "new@example.com", "permission": 2}},
            "content": {"deal_id": 1},
        },
        {"type": type_id, "contact": {"email": "ghost@example.com"}, "content": {"deal_id": 2}},
    ]
    resp = mc.call("POST", "/transactions", json_body=batch, params={"ignore_invalid_transactions": "false"})
    assert resp.status_code == 400 and error_of(resp).startswith("transaction 2:")
    assert api.transactions == [] and api.contacts == {}
    unknown_type = [{"typeName": "nope", "contact": {"email": "x@example.com"}}]
    assert mc.call("POST", "/transactions", json_body=unknown_type).json()["reports"][0]["queued"] is False
    assert mc.call("POST", "/transactions", json_body={"type": type_id}).status_code == 400  # not an array
    huge = b"[" + b" " * 9_000_000 + b"]"
    too_big = mc.call("POST", "/transactions", data=huge, headers={"Content-Type": "application/json"})
    assert too_big.status_code == 413


# -- unsubscriptions and webhooks -----------------------------------------------------------------


def test_unsubscription_report_with_ms_dates(mc: Client, api: MaileonAPI, leadbridge_clock: Any) -> None:
    for name in ("a", "b", "c"):
        create(mc, f"{name}%40example.com", body={"external_id": f"ext-{name}"})
    api.unsubscribe("a@example.com", reason="bored")
    first = api.unsubscriptions[0]["timestamp"]
    leadbridge_clock.advance(10)
    mc.call("DELETE", "/contacts/email/b%40example.com/unsubscribe")
    leadbridge_clock.advance(10)
    api.unsubscribe("c@example.com", mailing_id=None, source="admin")
    start = int(first.timestamp() * 1000)
    third = int(api.unsubscriptions[2]["timestamp"].timestamp() * 1000)
    params = {"from_date": start, "to_date": third, "page_size": 10}
    resp = mc.call("GET", "/reports/unsubscriptions", params=params)
    rows = conforms("GET /1.0/reports/unsubscriptions", "response", resp.json())
    assert [r["contact"]["email"] for r in rows] == ["a@example.com", "b@example.com"]  # to_date exclusive
    assert (
        rows[0]["timestamp"] == start and rows[0]["mailing_id"] == "news-2001" and rows[1]["source"] == "api"
    )
    assert resp.headers["X-Items"] == "2" and resp.headers["X-Pages"] == "1"
    later = mc.call("GET", "/reports/unsubscriptions", params={"from_date": start + 1}).json()
    assert [r["contact"]["external_id"] for r in later] == ["ext-b", "ext-c"]  # from_date inclusive
    filtered = mc.call(
        "GET", "/reports/unsubscriptions", params={"emails": ["c@example.com"], "source": "admin"}
    )
    assert len(filtered.json()) == 1
    root = ET.fromstring(mc.xml("GET", "/reports/unsubscriptions", params={"to_date": start + 1}).content)
    assert root.tag == "unsubscriptions"
    row = root.find("unsubscription")
    assert row is not None and row.findtext("timestamp") == str(start) and row.findtext("contact/id")
    assert row.findtext("contact/email") == "a@example.com" and row.findtext("source") == "link"
    count = mc.call("GET", "/reports/unsubscriptions/count", params={"from_date": start, "to_date": third})
    assert conforms("GET /1.0/reports/unsubscriptions/count", "response", count.json()) == 2
    assert ET.fromstring(mc.xml("GET", "/reports/unsubscriptions/count").content).text == "3"
    assert mc.call("GET", "/reports/unsubscriptions", params={"from_date": "2025-01-01"}).status_code == 400


def test_webhook_registry(mc: Client, api: MaileonAPI) -> None:
    hook = {
        "event": "unsubscription",
        "url": "https://hub.example/hooks/maileon",
        "standardFields": ["email"],
    }
    conforms("POST /1.0/webhooks", "request", hook)
    created = mc.call("POST", "/webhooks", json_body=hook, headers={"Content-Type": "application/json"})
    assert created.status_code == 201 and created.text == "1"
    assert mc.call("POST", "/webhooks", json_body={"event": "open", "url": "https://x"}).status_code == 400
    listed = conforms("GET /1.0/webhooks", "response", mc.call("GET", "/webhooks").json())
    assert listed[0]["id"] == 1 and listed[0]["event"] == "unsubscription"
    assert mc.call("DELETE", "/webhooks/1").status_code == 200 and api.webhooks == {}
    assert mc.call("DELETE", "/webhooks/1").status_code == 404


def test_injected_503_from_the_base(sandbox: _Only, mc: Client) -> None:
    sandbox.fail_next(503, path_prefix="/1.0/contacts")
    assert create(mc).status_code == 503
    assert create(mc).status_code == 201
