"""The sandbox imitates Constant Contact's traps (raw HTTP, no connector code involved)."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from leadbridge.sandbox import SandboxServer
from leadbridge_constantcontact.sandbox import ConstantContactSandbox
from leadbridge_constantcontact.sandbox.server import CLIENT_ID, CLIENT_SECRET


@pytest.fixture
def cc() -> Any:
    sandbox = ConstantContactSandbox(rate_limit=None)
    with SandboxServer(sandbox) as server:
        token = sandbox.auth.issue_grant(CLIENT_ID)["access_token"]
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        session.base = f"{server.url}/v3"  # type: ignore[attr-defined]
        session.sandbox = sandbox  # type: ignore[attr-defined]
        session.server = server  # type: ignore[attr-defined]
        yield session


def api(cc: Any, method: str, path: str, **kw: Any) -> requests.Response:
    return cc.request(method, f"{cc.base}/{path}", timeout=10, **kw)


def test_a_deleted_contact_still_owns_its_email(cc: Any) -> None:
    [cid] = cc.sandbox.add_contacts(1)
    email = cc.sandbox.contacts[cid]["email_address"]["address"]
    assert api(cc, "DELETE", f"contacts/{cid}").status_code == 204
    listed = api(cc, "GET", "contacts").json()["contacts"]
    assert listed == []  # the default status excludes deleted contacts
    clash = api(
        cc, "POST", "contacts", json={"email_address": {"address": email}, "create_source": "Account"}
    )
    assert clash.status_code == 409
    [error] = clash.json()
    assert error["error_key"] == "contacts.api.conflict" and cid in error["error_message"]


def test_writes_need_json(cc: Any) -> None:
    response = api(cc, "POST", "contact_lists", data="name=x", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415 and isinstance(response.json(), list)


def test_sign_up_form_upserts_and_changes_permission(cc: Any) -> None:
    lst = api(cc, "POST", "contact_lists", json={"name": "A"}).json()["list_id"]
    other = api(cc, "POST", "contact_lists", json={"name": "B"}).json()["list_id"]
    assert api(cc, "POST", "contact_lists", json={"name": "A"}).status_code == 409
    no_list = api(cc, "POST", "contacts/sign_up_form", json={"email_address": "s@example.com"})
    assert no_list.status_code == 400
    first = api(
        cc,
        "POST",
        "contacts/sign_up_form",
        json={"email_address": "s@example.com", "list_memberships": [lst]},
    )
    assert first.status_code == 201 and first.json()["action"] == "created"
    cid = first.json()["contact_id"]
    cc.sandbox.contacts[cid]["email_address"]["permission_to_send"] = "implicit"
    second = api(
        cc,
        "POST",
        "contacts/sign_up_form",
        json={"email_address": "S@example.com", "list_memberships": [other], "first_name": "Sam"},
    )
    assert second.status_code == 200 and second.json() == {"contact_id": cid, "action": "updated"}
    stored = cc.sandbox.contacts[cid]
    assert stored["list_memberships"] == [lst, other]  # appended, never replaced
    assert stored["email_address"]["permission_to_send"] == "explicit"  # the silent upgrade


def test_put_replaces_top_level_fields(cc: Any) -> None:
    [cid] = cc.sandbox.add_contacts(1)
    cc.sandbox.edit_contact(cid, job_title="Musician")
    email = cc.sandbox.contacts[cid]["email_address"]["address"]
    response = api(
        cc,
        "PUT",
        f"contacts/{cid}",
        json={"email_address": {"address": email}, "first_name": "Only", "update_source": "Account"},
    )
    assert response.status_code == 200
    assert "job_title" not in response.json() and "last_name" not in response.json()
    read_only = api(
        cc,
        "PUT",
        f"contacts/{cid}",
        json={"email_address": {"address": email, "opt_in_source": "x"}, "update_source": "Account"},
    )
    assert read_only.status_code == 400


def test_paging_links_keep_the_query_and_see_updates_made_meanwhile(cc: Any) -> None:
    ids = cc.sandbox.add_contacts(6)
    first = api(cc, "GET", "contacts", params={"limit": 3, "status": "all"}).json()
    assert len(first["contacts"]) == 3
    href = first["_links"]["next"]["href"]
    assert href.startswith("/v3/contacts?cursor=")
    moved = first["contacts"][0]["contact_id"]
    cc.sandbox.clock_offset = 1
    cc.sandbox.edit_contact(moved, job_title="moved")  # now sorts last: it comes round again
    second = requests.get(f"{cc.server.url}{href}", headers=cc.headers, timeout=10).json()
    seen = [c["contact_id"] for c in first["contacts"] + second["contacts"]]
    assert seen.count(moved) == 2
    assert set(seen) < set(ids)  # ...and the contact that slid onto page one was never seen
    assert "next" not in second["_links"]
    tampered = requests.get(f"{cc.server.url}{href[:-3]}abc", headers=cc.headers, timeout=10)
    assert tampered.status_code == 400


def test_custom_fields_are_capped_and_unique(cc: Any) -> None:
    assert (
        api(cc, "POST", "contact_custom_fields", json={"label": "Fav Fruit", "type": "string"}).json()["name"]
        == "Fav_Fruit"
    )
    assert (
        api(cc, "POST", "contact_custom_fields", json={"label": "fav fruit", "type": "string"}).status_code
        == 409
    )
    for i in range(99):
        cc.sandbox._create_custom_field(f"F{i}", "string")
    assert (
        api(cc, "POST", "contact_custom_fields", json={"label": "One more", "type": "string"}).status_code
        == 400
    )


def test_limits_answer_429_without_headers(cc: Any) -> None:
    cc.sandbox.daily_used = cc.sandbox.daily_limit
    response = api(cc, "GET", "contacts")
    assert response.status_code == 429
    assert response.json() == {"error_key": "quota_exceeded", "error_message": "Limit Exceeded"}
    assert "Retry-After" not in response.headers
    cc.sandbox.fail_next(429, mode="rate_limit")  # the 4-per-second limiter's own answer
    throttled = api(cc, "GET", "contacts")
    assert throttled.status_code == 429 and throttled.json()["error_key"] == "throttled"
    assert "Retry-After" not in throttled.headers


def test_too_many_queued_activities_answer_429(cc: Any) -> None:
    lst = api(cc, "POST", "contact_lists", json={"name": "L"}).json()["list_id"]
    cc.sandbox.max_queued_activities = 2
    body = {"import_data": [{"email": "q@example.com"}], "list_ids": [lst]}
    assert [api(cc, "POST", "activities/contacts_json_import", json=body).status_code for _ in range(3)] == [
        201,
        201,
        429,
    ]
    cc.sandbox.complete_activities()
    assert api(cc, "POST", "activities/contacts_json_import", json=body).status_code == 201


def test_refresh_tokens_expire_after_180_idle_days(cc: Any) -> None:
    grant = cc.sandbox.auth.issue_grant(CLIENT_ID)
    cc.sandbox.clock_offset = 181 * 86400
    response = requests.post(
        f"{cc.server.url}/oauth2/default/v1/token",
        auth=(CLIENT_ID, CLIENT_SECRET),
        data={"grant_type": "refresh_token", "refresh_token": grant["refresh_token"]},
        timeout=10,
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_the_daily_allowance_is_per_application(cc: Any) -> None:
    cc.sandbox.daily_used = cc.sandbox.daily_limit
    assert api(cc, "GET", "contacts").status_code == 429
    cc.sandbox.auth.register_app("another-app-0002", "another-secret")
    other = cc.sandbox.auth.issue_grant("another-app-0002")["access_token"]
    response = requests.get(f"{cc.base}/contacts", headers={"Authorization": f"Bearer {other}"}, timeout=10)
    assert response.status_code == 200


def test_deleting_a_list_answers_202_with_an_activity(cc: Any) -> None:
    from .openapi_check import check_exchange

    lst = api(cc, "POST", "contact_lists", json={"name": "Old"}).json()["list_id"]
    cc.sandbox.record_exchanges = True
    response = api(cc, "DELETE", f"contact_lists/{lst}")
    assert response.status_code == 202 and response.json()["activity_id"]
    assert api(cc, "DELETE", f"contact_lists/{lst}").status_code == 404
    assert not [p for ex in cc.sandbox.exchanges for p in check_exchange(ex)]
