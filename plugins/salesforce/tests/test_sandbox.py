"""The sandbox itself: SOQL subset, paging traps, upsert statuses, collections, Bulk 2.0, ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from leadbridge import clock as clocks
from leadbridge_salesforce import soql as connector_soql
from leadbridge_salesforce.sandbox import SalesforceSandbox
from leadbridge_salesforce.sandbox.ids import checksum, make_id
from leadbridge_salesforce.sandbox.soql import SoqlError, parse

B = "/services/data/v66.0"


@pytest.fixture
def sf() -> SalesforceSandbox:
    return SalesforceSandbox()


@pytest.fixture
def api(sf: SalesforceSandbox) -> FlaskClient:
    client = sf.app.test_client()
    token = client.post(
        "/services/oauth2/token",
        data={
            "grant_type": "password",
            "client_id": sf.consumer_key,
            "client_secret": sf.consumer_secret,
            "username": sf.username,
            "password": sf.password + sf.security_token,
        },
    ).get_json()["access_token"]
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client


def q(api: FlaskClient, text: str, resource: str = "query") -> Any:
    return api.get(f"{B}/{resource}", query_string={"q": text})


def test_ids_are_18_characters_with_the_case_checksum() -> None:
    assert checksum("001A0000006Vm9r") == "IAC"  # Salesforce's documented example
    assert make_id("Lead", 5).startswith("00Q") and len(make_id("Lead", 5)) == 18


def test_soql_subset(sf: SalesforceSandbox, api: FlaskClient) -> None:
    s = sf.store
    s.save("Lead", {"LastName": "O'Brien", "Company": "Acme", "Email": "ob@x.fi", "NumberOfEmployees": 5})
    s.save("Lead", {"LastName": "Smith", "Company": "Globex", "Email": "SMITH@x.fi", "NumberOfEmployees": 50})
    s.save("Lead", {"LastName": "Young", "Company": "50%_off", "Email": None})
    names = lambda r: [x["LastName"] for x in r.get_json()["records"]]  # noqa: E731
    assert names(q(api, "SELECT LastName FROM Lead WHERE Email = 'smith@X.fi'")) == [
        "Smith"
    ]  # = ignores case
    assert names(q(api, "SELECT LastName FROM Lead WHERE LastName = 'O\\'Brien'")) == ["O'Brien"]
    assert names(
        q(
            api,
            "SELECT LastName FROM Lead WHERE NumberOfEmployees > 10 OR Company LIKE 'ac%'"
            " ORDER BY LastName DESC",
        )
    ) == ["Smith", "O'Brien"]
    assert names(
        q(
            api,
            "SELECT LastName FROM Lead WHERE Email IN ('ob@x.fi','smith@x.fi') AND "
            "(NOT Company = 'Acme') LIMIT 5",
        )
    ) == ["Smith"]
    assert names(q(api, "SELECT LastName FROM Lead WHERE Email = null")) == ["Young"]
    assert names(q(api, "SELECT LastName FROM Lead WHERE Company LIKE '50\\%\\_%'")) == ["Young"]
    stamp = (clocks.utcnow() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert len(names(q(api, f"SELECT LastName FROM Lead WHERE SystemModstamp >= {stamp}"))) == 3
    bad = q(api, "SELECT Nope__c FROM Lead")
    assert bad.status_code == 400 and bad.get_json()[0]["errorCode"] == "INVALID_FIELD"
    assert q(api, "SELECT FROM Lead").get_json()[0]["errorCode"] == "MALFORMED_QUERY"
    assert (
        q(api, "SELECT Id FROM Lead WHERE SystemModstamp > '2025-01-01'").status_code == 400
    )  # quoted datetime


def test_connector_quoting_round_trips_through_the_sandbox_parser() -> None:
    nasty = "a'b\\c\nd%_"
    query = parse(f"SELECT Id FROM Lead WHERE Email = {connector_soql.quote(nasty)}")
    assert query.where[3].value == nasty
    with pytest.raises(ValueError):
        connector_soql.name("Email FROM Lead--")
    assert connector_soql.quote(datetime(2025, 1, 1, tzinfo=UTC)) == "2025-01-01T00:00:00Z"


def test_paging_locators_expire_and_old_cursors_are_closed(sf: SalesforceSandbox, api: FlaskClient) -> None:
    for i in range(5):
        sf.store.save("Account", {"Name": f"A{i}"})
    sf.page_size, sf.max_cursors = 2, 2
    first = q(api, "SELECT Id FROM Account ORDER BY Name").get_json()
    assert first["totalSize"] == 5 and not first["done"] and len(first["records"]) == 2
    page2 = api.get(first["nextRecordsUrl"]).get_json()
    assert [len(page2["records"]), page2["done"]] == [2, False]
    q(api, "SELECT Id FROM Account")
    q(api, "SELECT Id FROM Account")  # a third open cursor closes the oldest
    gone = api.get(page2["nextRecordsUrl"])
    assert gone.status_code == 400 and gone.get_json()[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_query_all_sees_deleted_rows(sf: SalesforceSandbox, api: FlaskClient) -> None:
    rid, _ = sf.store.save("Lead", {"LastName": "X", "Company": "Y"})
    assert api.delete(f"{B}/sobjects/Lead/{rid}").status_code == 204
    assert q(api, "SELECT Id FROM Lead").get_json()["totalSize"] == 0
    rows = q(api, "SELECT Id, IsDeleted FROM Lead WHERE IsDeleted = true", "queryAll").get_json()["records"]
    assert [r["Id"] for r in rows] == [rid]
    start = (clocks.utcnow() - timedelta(minutes=5)).isoformat()
    end = (clocks.utcnow() + timedelta(minutes=5)).isoformat()
    deleted = api.get(f"{B}/sobjects/Lead/deleted/", query_string={"start": start, "end": end}).get_json()
    assert [d["id"] for d in deleted["deletedRecords"]] == [rid]


def test_upsert_by_external_id_statuses(sf: SalesforceSandbox, api: FlaskClient) -> None:
    url = f"{B}/sobjects/Lead/Leadbridge_Id__c/abc-1"
    created = api.patch(url, json={"LastName": "T", "Company": "C"})
    assert created.status_code == 201 and created.get_json()["created"] is True
    again = api.patch(url, json={"Title": "CTO"})
    assert again.status_code == 200 and again.get_json()["created"] is False
    sf.upsert_update_status = 204
    assert api.patch(url, json={"Title": "CEO"}).status_code == 204
    assert api.patch(url, json={"Leadbridge_Id__c": "abc-1"}).status_code == 400
    assert api.patch(f"{B}/sobjects/Lead/Nope__c/1", json={}).status_code == 404
    sf.store.save("Lead", {"LastName": "U", "Company": "C", "Leadbridge_Id__c": "dup"})
    sf.store.records["Lead"][make_id("Lead", 99)] = {  # a second holder (data loaded around the unique check)
        **next(iter(sf.store.records["Lead"].values())),
        "Id": make_id("Lead", 99),
        "Leadbridge_Id__c": "dup",
    }
    assert api.patch(f"{B}/sobjects/Lead/Leadbridge_Id__c/dup", json={}).status_code == 300


def test_collections_limits_and_all_or_none(sf: SalesforceSandbox, api: FlaskClient) -> None:
    too_many = {"allOrNone": False, "records": [{"attributes": {"type": "Account"}, "Name": "x"}] * 201}
    assert (
        api.post(f"{B}/composite/sobjects", json=too_many).get_json()[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    )
    batch = {
        "allOrNone": True,
        "records": [{"attributes": {"type": "Account"}, "Name": "ok"}, {"attributes": {"type": "Account"}}],
    }
    results = api.post(f"{B}/composite/sobjects", json=batch).get_json()
    assert [r["errors"][0]["statusCode"] for r in results] == [
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "REQUIRED_FIELD_MISSING",
    ]
    assert sf.company_count() == 0
    results = api.post(f"{B}/composite/sobjects", json={**batch, "allOrNone": False}).get_json()
    assert [r["success"] for r in results] == [True, False] and sf.company_count() == 1


def test_converted_leads_are_read_only_and_campaign_members_unique(
    sf: SalesforceSandbox, api: FlaskClient
) -> None:
    lead, _ = sf.store.save("Lead", {"LastName": "L", "Company": "C", "Email": "l@x.fi"})
    contact, _ = sf.store.convert_lead(lead)
    answer = api.patch(f"{B}/sobjects/Lead/{lead}", json={"Title": "x"})
    assert answer.get_json()[0]["errorCode"] == "CANNOT_UPDATE_CONVERTED_LEAD"
    campaign, _ = sf.store.save("Campaign", {"Name": "C"})
    body = {"CampaignId": campaign, "ContactId": contact, "Status": "Sent"}
    assert api.post(f"{B}/sobjects/CampaignMember", json=body).status_code == 201
    dup = api.post(f"{B}/sobjects/CampaignMember", json=body)
    assert dup.get_json() == [
        {"message": "Already a campaign member.", "errorCode": "DUPLICATE_VALUE", "fields": []}
    ]


def test_hidden_fields_vanish_from_describe_and_soql(sf: SalesforceSandbox, api: FlaskClient) -> None:
    sf.store.hidden["Lead"] = {"Score__c"}
    names = {f["name"] for f in api.get(f"{B}/sobjects/Lead/describe").get_json()["fields"]}
    assert "Score__c" not in names and "Email" in names
    assert q(api, "SELECT Score__c FROM Lead").get_json()[0]["errorCode"] == "INVALID_FIELD"


def test_bulk_2_ingest(sf: SalesforceSandbox, api: FlaskClient) -> None:
    job = api.post(
        f"{B}/jobs/ingest",
        json={
            "object": "Lead",
            "operation": "upsert",
            "externalIdFieldName": "Leadbridge_Id__c",
            "contentType": "CSV",
            "lineEnding": "LF",
        },
    ).get_json()
    csv_body = "Leadbridge_Id__c,LastName,Company\nh1,One,C\nh2,Two,\n"
    assert (
        api.put(f"{B}/jobs/ingest/{job['id']}/batches", data=csv_body, content_type="text/csv").status_code
        == 201
    )
    assert api.patch(f"{B}/jobs/ingest/{job['id']}", json={"state": "UploadComplete"}).status_code == 200
    state = api.get(f"{B}/jobs/ingest/{job['id']}").get_json()
    assert state["state"] == "JobComplete" and state["numberRecordsFailed"] == 1
    ok = api.get(f"{B}/jobs/ingest/{job['id']}/successfulResults/").get_data(as_text=True)
    failed = api.get(f"{B}/jobs/ingest/{job['id']}/failedResults/").get_data(as_text=True)
    assert ok.startswith("sf__Id,sf__Created") and "h1" in ok
    assert "REQUIRED_FIELD_MISSING" in failed and "h2" in failed


def test_limit_header_and_quota_wall(sf: SalesforceSandbox, api: FlaskClient) -> None:
    sf.daily_limit, sf.api_usage = 10, 8
    first = api.get(f"{B}/limits")
    assert first.headers["Sforce-Limit-Info"] == "api-usage=9/10"
    api.get(f"{B}/limits")
    wall = api.get(f"{B}/limits")
    assert wall.status_code == 403 and wall.get_json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"


def test_expired_session_answer(sf: SalesforceSandbox, api: FlaskClient) -> None:
    sf.expire_tokens()
    answer = api.get(f"{B}/limits")
    assert answer.status_code == 401
    assert answer.get_json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


def test_parser_errors() -> None:
    with pytest.raises(SoqlError):
        parse("SELECT Id FROM Lead WHERE")
    with pytest.raises(SoqlError):
        parse("SELECT Id FROM Lead OFFSET 2001")
