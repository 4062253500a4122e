"""Exact matching on our side of PlanMill's fuzzy searchkey; duplicates chosen deterministically."""

from __future__ import annotations

import pytest
from leadbridge.errors import TransientError
from leadbridge.types import Company, Contact, Outcome
from leadbridge_planmill.sandbox import PlanMillSandbox
from planmill_testkit import Hooks, validate_request_bodies


def test_a_fuzzy_hit_is_not_taken_for_the_company(hooks: Hooks, pm: PlanMillSandbox) -> None:
    pm.add_account("Acme Holding Oy")
    pm.add_account("Acme Oy Services")
    (result,) = hooks("upsert_company", companies=[Company(name="Acme Oy")])
    assert result.outcome is Outcome.CREATED
    assert pm.records["accounts"][int(result.remote_id or 0)]["name"] == "Acme Oy"


def test_names_match_ignoring_case_and_spacing_lowest_id_first(hooks: Hooks, pm: PlanMillSandbox) -> None:
    first = pm.add_account("Globex Oy ")
    pm.add_account("GLOBEX OY")  # PlanMill allows duplicate names
    before = pm.company_count()
    (result,) = hooks("upsert_company", companies=[Company(name=" globex   oy")])
    assert result.outcome is Outcome.UNCHANGED and result.remote_id == str(first)
    assert pm.company_count() == before


def test_email_duplicates_prefer_the_same_account_then_the_lowest_id(
    hooks: Hooks, pm: PlanMillSandbox
) -> None:
    north = pm.add_account("North Oy")
    south = pm.add_account("South Oy")
    low = pm.add_contact("Twin@Example.com", account=north, lastName="Twin")
    high = pm.add_contact("twin@example.com", account=south, lastName="Twin")
    pm.add_contact("twin@example.com.au", account=south, lastName="Other")  # a searchkey hit only
    same_account = Contact(email="twin@example.com", company=Company(name="South Oy", remote_id=str(south)))
    other_account = Contact(email="twin@example.com", company=Company(name="West Oy"))
    results = hooks("upsert_contact", object_type="contact", contacts=[same_account, other_account])
    assert [r.remote_id for r in results] == [str(high), str(low)]
    assert [r.outcome for r in results] == [Outcome.UNCHANGED, Outcome.UNCHANGED]


def test_a_linked_contact_deleted_in_planmill_is_found_again_by_email(
    hooks: Hooks, pm: PlanMillSandbox
) -> None:
    account = pm.add_account("Relink Oy")
    current = pm.add_contact("relink@example.com", account=account, lastName="Relink")
    stale = Contact(email="relink@example.com", remote_id="999999", fields={"title": "CEO"})
    (result,) = hooks("upsert_contact", object_type="contact", contacts=[stale])
    assert result.outcome is Outcome.UPDATED and result.remote_id == str(current)
    assert pm.records["contacts"][current]["title"] == "CEO"


def test_only_changed_fields_are_written(hooks: Hooks, pm: PlanMillSandbox) -> None:
    account = pm.add_account("Partial Oy")
    rid = pm.add_contact("partial@example.com", account=account, lastName="Partial", title="CTO")
    contact = Contact(
        email="partial@example.com", remote_id=str(rid), fields={"lastName": "Partial", "title": "CEO"}
    )
    (result,) = hooks("upsert_contact", object_type="contact", contacts=[contact])
    assert result.outcome is Outcome.UPDATED and result.extra["changed"] == ["title"]
    posted = [body for method, path, _, body in pm.requests if method == "POST" and path.endswith(f"/{rid}")]
    assert posted == [{"title": "CEO"}]
    validate_request_bodies(pm)


def test_a_contact_without_company_goes_under_the_fallback_account(hooks: Hooks, pm: PlanMillSandbox) -> None:
    (result,) = hooks(
        "upsert_contact", object_type="contact", contacts=[Contact(email="solo@example.com", ref="7")]
    )
    assert result.outcome is Outcome.CREATED and result.ref == "7"
    row = pm.records["contacts"][int(result.remote_id or 0)]
    assert row["accountName"] == "Contacts without company (leadbridge)"
    assert row["lastName"] == "solo"  # PlanMill requires one; the email's local part stands in


def test_an_account_refused_with_location_fields_is_created_bare_then_completed(
    hooks: Hooks, pm: PlanMillSandbox
) -> None:
    pm.reject_account_location = True  # the 400 PlanMill's own Zapier app ran into
    company = Company(name="Located Oy", fields={"billingCity": "Tampere", "phone": "040-123"})
    (result,) = hooks("upsert_company", companies=[company])
    assert result.outcome is Outcome.CREATED
    row = pm.records["accounts"][int(result.remote_id or 0)]
    assert (row["billingCity"], row["phone"]) == ("Tampere", "040-123")
    assert validate_request_bodies(pm) == 3  # the refused create, the bare one, the completion


def test_deleting_a_contact_twice_is_fine(hooks: Hooks, pm: PlanMillSandbox) -> None:
    rid = pm.add_contact("gone@example.com", account=pm.add_account("Gone Oy"), lastName="Gone")
    for _ in range(2):
        (result,) = hooks("delete_contacts", object_type="contact", remote_ids=[str(rid)])
        assert result.outcome is Outcome.DELETED
    assert rid not in pm.records["contacts"]


def test_an_account_whose_extra_fields_are_refused_is_still_reported_created(
    hooks: Hooks, pm: PlanMillSandbox
) -> None:
    pm.reject_account_location = True
    company = Company(name="Half Oy", fields={"billingCity": "Oulu", "email": "not-an-email"})
    (result,) = hooks("upsert_company", companies=[company])
    assert result.outcome is Outcome.CREATED and result.remote_id
    assert "email" in (result.reason or "")
    assert pm.find("accounts", name="Half Oy")


def test_an_answer_that_is_not_a_list_is_an_error_not_a_miss(hooks: Hooks, pm: PlanMillSandbox) -> None:
    """Read as "no match", a malformed search answer would create a duplicate account."""
    pm.add_account("Initech Oy")
    before = pm.company_count()
    pm.fail_next(200, body={"message": "maintenance"}, times=10, path_prefix="/acme/api/1.5/accounts")
    with pytest.raises(TransientError, match="expected a list"):  # the run stops and resumes later
        hooks("upsert_company", companies=[Company(name="Initech Oy")])
    assert pm.company_count() == before
