"""Contact reads and writes through the connector's hooks and the core's client, on loopback HTTP."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from leadbridge.errors import ConfigError, QuotaExhausted
from leadbridge.types import Contact, FieldType, Outcome
from leadbridge_constantcontact import bulk


def upsert(harness, *contacts: Contact):  # type: ignore[no-untyped-def]
    return harness.call("upsert_contact", object_type="contact", contacts=list(contacts))


def person(email: str | None, ref: str = "1", **fields) -> Contact:  # type: ignore[no-untyped-def]
    return Contact(email=email, ref=ref, fields={"email": email, **fields})


def test_hook_field_types_cover_the_standard_ones_and_custom_fields_discovered_live(harness, sandbox) -> None:
    names = {f.name: f for f in harness.fields("contact")}
    for name in (
        "email",
        "first_name",
        "last_name",
        "job_title",
        "company_name",
        "work_phone",
        "mobile_phone",
        "street",
        "city",
        "zip",
        "country",
        "birthday_month",
        "birthday_day",
        "anniversary",
    ):
        assert name in names
    assert names["email"].required and names["email"].hub_field == "email"
    assert names["job_title"].hub_field == "title"
    assert names["anniversary"].type is FieldType.DATE
    sandbox._create_custom_field("Membership level", "single_select", ["Bronze", "Gold"])
    fresh = {f.name: f for f in harness.fields("contact")}
    level = fresh["cf:Membership_level"]
    assert level.custom and level.type is FieldType.SELECT
    assert [c.label for c in level.choices] == ["Bronze", "Gold"]


def test_hook_fetch_contacts_follows_cursor_links_and_sees_deletions(harness, sandbox) -> None:
    sandbox.page_size = 3
    ids = sandbox.add_contacts(7)
    sandbox.delete_contact(ids[0])
    records, pages = harness.fetch_all("contact")
    assert pages == 3
    by_id = {r.remote_id: r for r in records}
    assert set(by_id) == set(ids)
    assert by_id[ids[0]].deleted and not by_id[ids[1]].deleted
    assert all(r.modified_at and r.modified_at.tzinfo is UTC for r in records)


def test_a_202_processing_page_is_read_like_a_200(harness, sandbox) -> None:
    sandbox.add_contacts(2)
    sandbox.accepted_pages = 1
    records, _ = harness.fetch_all("contact")
    assert len(records) == 2


def test_incremental_reads_use_updated_after(harness, sandbox) -> None:
    sandbox.clock_offset = -5  # created a few seconds ago
    old = sandbox.add_contacts(3)
    since = datetime.fromisoformat(sandbox.contacts[old[-1]]["updated_at"].replace("Z", "+00:00"))
    sandbox.clock_offset = 0
    sandbox.edit_contact(old[1], job_title="Conductor")
    records, _ = harness.fetch_all("contact", since=since)
    assert [r.remote_id for r in records] == [old[1]]
    assert records[0].fields["job_title"] == "Conductor"


def test_a_tampered_cursor_is_refused_before_any_call(harness, sandbox, sandbox_server) -> None:
    with pytest.raises(ConfigError, match="cursor"):
        harness.call(
            "fetch_contacts",
            object_type="contact",
            since=None,
            cursor="https://api.cc.email/v3/contacts?cursor=bGltaXQ9MSZuZXh0PTI.0000",
        )
    assert sandbox.count_calls("GET", "/v3/contacts") == 0


def test_hook_upsert_contact_creates_then_updates_by_email_leaving_one_contact(harness, sandbox) -> None:
    [created] = upsert(harness, person("Jane@Example.com", first_name="Jane", company_name="Acme"))
    assert created.outcome is Outcome.CREATED and created.remote_id
    [again] = upsert(harness, person("jane@example.com", first_name="Janet"))
    assert again.outcome is Outcome.UPDATED and again.remote_id == created.remote_id
    assert sandbox.contact_count() == 1
    stored = sandbox.contacts[created.remote_id]
    assert stored["first_name"] == "Janet" and stored["company_name"] == "Acme"
    assert sandbox.count_calls("POST", "/v3/contacts/sign_up_form") == 2
    assert sandbox.count_calls("POST", "/v3/contacts") == 2  # never the plain create (409 trap)


def test_a_contact_deleted_in_constant_contact_is_revived_not_duplicated(harness, sandbox) -> None:
    [cid] = sandbox.add_contacts(1)
    email = sandbox.contacts[cid]["email_address"]["address"]
    sandbox.delete_contact(cid)
    [result] = upsert(harness, person(email, first_name="Back"))
    assert result.ok and result.remote_id == cid
    assert not sandbox.contacts[cid].get("deleted_at")
    assert len(sandbox.contacts) == 1


def test_a_linked_contact_is_merged_and_unchanged_costs_no_write(harness, sandbox) -> None:
    [cid] = sandbox.add_contacts(1)
    sandbox.edit_contact(cid, job_title="Musician")
    email = sandbox.contacts[cid]["email_address"]["address"]
    contact = Contact(email=email, remote_id=cid, ref="9", fields={"email": email, "first_name": "Person"})
    [same] = upsert(harness, contact)
    assert same.outcome is Outcome.UNCHANGED
    assert sandbox.count_calls("PUT") == 0
    contact.fields["first_name"] = "Debora"
    [changed] = upsert(harness, contact)
    assert changed.outcome is Outcome.UPDATED and sandbox.count_calls("PUT") == 1
    stored = sandbox.contacts[cid]
    # PUT nulls omitted fields: the connector merged the fresh GET, so job_title survived.
    assert stored["first_name"] == "Debora" and stored["job_title"] == "Musician"


def test_a_record_without_the_mandatory_email_is_skipped_with_the_field_named(harness, sandbox) -> None:
    before = sandbox.count_calls()
    [result] = upsert(harness, person(None, first_name="Nomail"))
    assert result.outcome is Outcome.SKIPPED
    assert result.extra["field"] == "email" and "mandatory" in (result.reason or "")
    assert sandbox.count_calls() == before  # nothing was sent


def test_phones_addresses_dates_and_select_fields_are_written(harness, sandbox) -> None:
    sandbox._create_custom_field("Membership level", "single_select", ["Bronze", "Gold"])
    sandbox._create_custom_field("Vehicle make", "string")
    [result] = upsert(
        harness,
        person(
            "multi@example.com",
            work_phone="+1 555 0100",
            mobile_phone="+1 555 0199",
            city="Chicago",
            zip="60609",
            anniversary="2006-11-15",
            birthday_month=11,
            birthday_day=24,
            **{"cf:Membership_level": "Gold", "cf:Vehicle_make": "Tesla"},
        ),
    )
    assert result.outcome is Outcome.CREATED
    records, _ = harness.fetch_all("contact")
    [back] = records
    assert back.fields["work_phone"] == "+1 555 0100" and back.fields["mobile_phone"] == "+1 555 0199"
    assert back.fields["city"] == "Chicago" and back.fields["zip"] == "60609"
    assert back.fields["anniversary"] == "2006-11-15" and back.fields["birthday_month"] == 11
    assert back.fields["cf:Membership_level"] == "Gold" and back.fields["cf:Vehicle_make"] == "Tesla"


def test_a_vendor_refusal_fails_only_that_record(harness, sandbox) -> None:
    sandbox.blocked_emails.add("blocked@example.com")
    results = upsert(harness, person("ok@example.com", "1"), person("blocked@example.com", "2"))
    assert [r.outcome for r in results] == [Outcome.CREATED, Outcome.FAILED]
    assert "do-not-mail" in (results[1].reason or "") and results[1].ref == "2"


def test_large_batches_go_through_one_bulk_import(harness, sandbox) -> None:
    sandbox.blocked_emails.add("bulk.7@example.com")
    [existing] = sandbox.add_contacts(1)
    old_email = sandbox.contacts[existing]["email_address"]["address"]
    batch = [person(f"bulk.{i}@example.com", str(i), first_name=f"B{i}") for i in range(60)]
    batch.append(person(old_email, "old", first_name="Renamed"))
    results = upsert(harness, *batch)
    assert sandbox.count_calls("POST", "/v3/activities/contacts_json_import") == 1
    assert sandbox.count_calls("POST", "/v3/contacts/sign_up_form") == 0
    assert [r.ref for r in results] == [c.ref for c in batch]
    outcomes = {r.ref: r.outcome for r in results}
    assert outcomes["7"] is Outcome.FAILED and "do-not-mail" in (results[7].reason or "")
    assert outcomes["old"] is Outcome.UPDATED and results[-1].remote_id == existing
    assert sum(o is Outcome.CREATED for o in outcomes.values()) == 59
    assert all(r.remote_id for r in results if r.ok)
    assert sandbox.contact_count() == 60
    # Sent again (a retried batch): nothing new is created.
    again = upsert(harness, *batch)
    assert sandbox.contact_count() == 60
    assert sum(r.outcome is Outcome.CREATED for r in again) == 0


def test_rows_the_vendor_silently_drops_are_reported_failed(harness, sandbox) -> None:
    sandbox.import_body_limit = 1500  # the real cap is 4 MB; anything past it vanishes without an error
    results = upsert(harness, *[person(f"drop.{i}@example.com", str(i)) for i in range(80)])
    kept = [r for r in results if r.ok]
    dropped = [r for r in results if not r.ok]
    assert kept and dropped
    assert len(kept) == sandbox.contact_count()
    assert all(r.reason == "not imported by Constant Contact" for r in dropped)


def test_imports_are_split_by_count_and_by_size() -> None:
    rows = [{"email": f"r{i}@example.com", "first_name": "x" * 40} for i in range(100)]
    assert [len(c) for c in bulk.split_rows(rows, max_rows=40)] == [40, 40, 20]
    by_size = bulk.split_rows(rows, budget=1200)
    assert sum(len(c) for c in by_size) == 100 and len(by_size) > 3
    assert [i for c in by_size for i in c] == list(range(100))


def test_hook_delete_contacts_is_idempotent_and_bulk_for_many(harness, sandbox) -> None:
    ids = sandbox.add_contacts(25)
    [one] = harness.call("delete_contacts", object_type="contact", remote_ids=[ids[0]])
    [twice] = harness.call("delete_contacts", object_type="contact", remote_ids=[ids[0]])
    assert one.outcome is Outcome.DELETED and twice.outcome is Outcome.DELETED
    results = harness.call("delete_contacts", object_type="contact", remote_ids=ids[1:])
    assert all(r.outcome is Outcome.DELETED for r in results)
    assert sandbox.count_calls("POST", "/v3/activities/contact_delete") == 1
    assert sandbox.contact_count() == 0


def test_hook_classify_error_throttling_is_waited_out_and_the_daily_quota_pauses(harness, sandbox) -> None:
    harness.login()
    sandbox.fail_next(429, mode="rate_limit", path_prefix="/v3/contact_custom_fields")
    harness.fields("contact")
    assert harness.stats.rate_limited == 1 and harness.stats.retries == 1
    sandbox.daily_used = sandbox.daily_limit
    with pytest.raises(QuotaExhausted) as caught:
        harness.fields("contact")
    assert caught.value.code == "quota_exceeded"
    assert caught.value.resets_at is not None and caught.value.resets_at.hour == 0


def test_hook_list_campaigns_lists_are_campaigns_whose_members_can_be_read(harness, sandbox) -> None:
    sandbox.seed_demo()
    campaigns = harness.call("list_campaigns")
    newsletter = next(c for c in campaigns if c.name == "Monthly newsletter")
    assert newsletter.member_count == 21
    page = harness.call("fetch_campaign_members", campaign_id=newsletter.remote_id, cursor=None)
    assert len(page.items) == 21 and all(c.email for c in page.items)


def test_hook_fetch_campaign_members_reads_one_list(harness, sandbox) -> None:
    sandbox.seed_demo()
    webinar = next(c for c in harness.call("list_campaigns") if c.name == "Spring webinar")
    assert harness.call("fetch_campaign_members", campaign_id=webinar.remote_id, cursor=None).items == []


def test_hook_api_base_url_is_fixed(harness, sandbox_server) -> None:
    """The real vendor URL, override or not: the core's client sends it to the sandbox."""
    assert harness.plugins.connector(harness.view()).api_base_url() == "https://api.cc.email/v3"
    sent = harness.client.destination("https://api.cc.email/v3/contacts")
    assert sent == f"{sandbox_server.url}/v3/contacts"


def test_hook_connector_info_declares_oauth_and_secrets(harness) -> None:
    info = harness.plugins.call_plugin("constantcontact", "connector_info")
    assert info.auth_kind.value == "oauth2_authorization_code"
    assert {s.name for s in info.settings if s.secret} == {"client_secret", "refresh_token"}
    assert harness.plugins.call_plugin("constantcontact", "connector_sandbox") is not harness.sandbox


def test_hook_connector_sandbox_returns_a_new_sandbox_each_time(harness) -> None:
    first = harness.plugins.call_plugin("constantcontact", "connector_sandbox")
    assert first is not harness.plugins.call_plugin("constantcontact", "connector_sandbox")
    assert first.contact_count() == 0


def test_unsubscribes_travel_both_ways_and_never_opt_anyone_in(harness, sandbox) -> None:
    # A person unsubscribed in leadbridge and unknown to Constant Contact is created unsubscribed.
    [new] = upsert(harness, person("gone@example.com", unsubscribed=True))
    assert new.outcome is Outcome.CREATED
    assert sandbox.contacts[new.remote_id]["email_address"]["permission_to_send"] == "unsubscribed"
    assert sandbox.count_calls("POST", "/v3/contacts/sign_up_form") == 0
    # Known there (found through the 409 of a create): unsubscribed in place, other fields kept.
    [cid] = sandbox.add_contacts(1)
    email = sandbox.contacts[cid]["email_address"]["address"]
    [known] = upsert(harness, person(email, "2", unsubscribed=True))
    assert known.remote_id == cid and known.outcome is Outcome.UPDATED
    stored = sandbox.contacts[cid]
    assert stored["email_address"]["permission_to_send"] == "unsubscribed" and stored["last_name"]
    # Read back as unsubscribed; a later "subscribed" value does not re-subscribe (only the person can).
    records, _ = harness.fetch_all("contact")
    assert all(r.fields["unsubscribed"] for r in records)
    [again] = upsert(
        harness, Contact(email=email, remote_id=cid, ref="2", fields={"email": email, "unsubscribed": False})
    )
    assert again.ok and sandbox.contacts[cid]["email_address"]["permission_to_send"] == "unsubscribed"


def test_unsubscribed_people_are_kept_out_of_bulk_imports(harness, sandbox) -> None:
    batch = [person(f"b{i}@example.com", str(i)) for i in range(55)]
    batch.append(person("optout@example.com", "x", unsubscribed=True))
    results = upsert(harness, *batch)
    assert all(r.ok for r in results)
    assert sandbox.count_calls("POST", "/v3/activities/contacts_json_import") == 1
    assert (
        sandbox.contact_by_email("optout@example.com")["email_address"]["permission_to_send"]
        == "unsubscribed"
    )
    assert sandbox.contact_by_email("b1@example.com")["email_address"]["permission_to_send"] == "implicit"


def test_a_failed_import_activity_fails_its_records(harness, sandbox) -> None:
    sandbox.fail_activities = 1
    results = upsert(harness, *[person(f"f{i}@example.com", str(i)) for i in range(50)])
    assert all(r.outcome is Outcome.FAILED and r.code == "import_failed" for r in results)
    assert "failed to process" in (results[0].reason or "")
    assert sandbox.contact_count() == 0
    # The engine sends the batch again later: this time it goes through, creating each person once.
    again = upsert(harness, *[person(f"f{i}@example.com", str(i)) for i in range(50)])
    assert all(r.outcome is Outcome.CREATED for r in again) and sandbox.contact_count() == 50


def test_an_ambiguous_upsert_is_sent_again_without_a_duplicate(harness, sandbox) -> None:
    harness.login()
    # Applied by Constant Contact, then the connection drops before the answer arrives.
    sandbox.fail_next(0, mode="reset", path_prefix="/v3/contacts/sign_up_form")
    sandbox.fail_next(503, path_prefix="/v3/contacts/sign_up_form")
    [result] = upsert(harness, person("twice@example.com", first_name="Once"))
    assert result.ok and result.remote_id
    assert sandbox.count_calls("POST", "/v3/contacts/sign_up_form") == 3
    assert sandbox.contact_count() == 1


def test_records_an_import_left_untouched_are_found_not_reported_lost(harness, sandbox) -> None:
    batch = [person(f"n{i}@example.com", str(i), first_name="Same") for i in range(53)]
    first = upsert(harness, *batch)
    assert all(r.outcome is Outcome.CREATED for r in first)
    # Sent again unchanged, to an account whose imports leave unchanged contacts untouched.
    sandbox.import_touches_unchanged = False
    sandbox.clock_offset = 10  # a later sync, not the same second
    sandbox.record_exchanges = True
    for contact, result in list(zip(batch, first, strict=True))[3:]:
        contact.remote_id = result.remote_id  # linked ones; the first three are not
    again = upsert(harness, *batch)
    assert [r.outcome for r in again] == [Outcome.UNCHANGED] * 53, [(r.outcome, r.reason) for r in again][:5]
    assert [r.remote_id for r in again] == [r.remote_id for r in first]
    lookups = [ex for ex in sandbox.exchanges if ex["path"] == "/v3/contacts" and "email" in ex["query"]]
    assert len(lookups) == 3


def test_a_contact_shifted_past_a_page_boundary_while_paging_is_still_read(harness, sandbox) -> None:
    sandbox.page_size = 3
    ids = sandbox.add_contacts(7)
    seen: list[str] = []
    page = harness.call("fetch_contacts", object_type="contact", since=None, cursor=None)
    seen += [c.remote_id for c in page.items]
    # Someone edits a contact of page one: it moves to the end and the others shift left by one,
    # so the first contact of the next page slips onto page one, unseen.
    sandbox.clock_offset = 1  # a moment later
    sandbox.edit_contact(page.items[0].remote_id, job_title="moved")
    pages = 1
    while page.next_cursor is not None and pages < 20:
        page = harness.call("fetch_contacts", object_type="contact", since=None, cursor=page.next_cursor)
        seen += [c.remote_id for c in page.items]
        pages += 1
    assert set(seen) == set(ids)
    assert pages == 3 + 3  # the listing, then one more reading of it


def test_paging_without_concurrent_changes_reads_once(harness, sandbox) -> None:
    sandbox.page_size = 3
    sandbox.add_contacts(7)
    records, pages = harness.fetch_all("contact")
    assert pages == 3 and len(records) == 7
