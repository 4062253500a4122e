"""Every request the connector sends and every answer the sandbox gives, checked against Constant
Contact's OpenAPI document (tests/vendor/openapi.yaml, copied from the vendor; see its SOURCE.md)."""

from __future__ import annotations

from leadbridge.types import Contact

from .openapi_check import check_exchange


def test_the_validator_catches_departures() -> None:
    bad = {
        "method": "POST",
        "path": "/v3/contacts/sign_up_form",
        "query": {"bogus": "1"},
        "content_type": "application/json",
        "body": {"email_address": {"address": "x@example.com"}},
        "status": 201,
        "response": {"contact_id": "not-a-uuid"},
    }
    problems = "\n".join(check_exchange(bad))
    assert "bogus" in problems
    assert "list_memberships" in problems  # required
    assert "is not of type 'string'" in problems  # the object shape belongs to POST /contacts
    assert "uuid" in problems


def test_a_full_session_matches_the_document(harness, sandbox) -> None:
    sandbox.seed_demo()
    sandbox.record_exchanges = True
    sandbox.page_size = 20
    harness.fields("contact")
    records, _ = harness.fetch_all("contact")
    harness.call("list_campaigns")
    harness.call(
        "fetch_campaign_members", campaign_id=harness.call("list_campaigns")[0].remote_id, cursor=None
    )
    linked = records[0]
    linked.fields["first_name"] = "Changed"
    linked.ref = "r0"
    one = [
        Contact(
            email="new.person@example.com",
            ref="n1",
            fields={
                "email": "new.person@example.com",
                "first_name": "New",
                "work_phone": "+1 555 0101",
                "mobile_phone": "+1 555 0102",
                "city": "Oslo",
                "cf:Membership_level": "Gold",
            },
        ),
        linked,
    ]
    one.append(
        Contact(
            email="leaver@example.com",
            ref="u1",
            fields={"email": "leaver@example.com", "unsubscribed": True, "last_name": "Left"},
        )
    )
    one.append(
        Contact(email=records[3].email, ref="u2", fields={"email": records[3].email, "unsubscribed": True})
    )
    harness.call("upsert_contact", object_type="contact", contacts=one)
    many = [
        Contact(
            email=f"bulk{i}@example.com",
            ref=str(i),
            fields={"email": f"bulk{i}@example.com", "cf:Vehicle_make": "Volvo"},
        )
        for i in range(60)
    ]
    harness.call("upsert_contact", object_type="contact", contacts=many)
    harness.call("delete_contacts", object_type="contact", remote_ids=[records[1].remote_id])
    harness.call("delete_contacts", object_type="contact", remote_ids=[r.remote_id for r in records[2:30]])
    seen = {(ex["method"], ex["path"].split("/")[2]) for ex in sandbox.exchanges}
    assert {
        ("GET", "contacts"),
        ("PUT", "contacts"),
        ("POST", "contacts"),
        ("DELETE", "contacts"),
        ("GET", "contact_lists"),
        ("POST", "contact_lists"),
        ("GET", "contact_custom_fields"),
        ("POST", "activities"),
        ("GET", "activities"),
    } <= seen
    problems = sorted({p for ex in sandbox.exchanges for p in check_exchange(ex)})
    assert not problems, "\n".join(problems[:20])
