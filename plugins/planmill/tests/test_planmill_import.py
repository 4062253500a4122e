"""'Import from PlanMill': campaigns, every member of one, paging that survives the wrap-around."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from leadbridge.types import Contact
from leadbridge_planmill.sandbox import PlanMillSandbox
from planmill_testkit import Hooks


def campaign_of(pm: PlanMillSandbox, size: int, *, without_email: int = 0, name: str = "Big campaign") -> int:
    account = pm.add_account("Campaign Members Oy")
    ids = [
        pm.add_contact(
            None if i < without_email else f"member{i}@members.example", account=account, lastName=f"M{i}"
        )
        for i in range(size)
    ]
    # Non-members that must not leak into the import.
    pm.add_contact("outsider@members.example", account=account, lastName="Outsider")
    return pm.add_campaign(name, ids)


def import_all(hooks: Hooks, campaign_id: int) -> tuple[list[Contact], int]:
    items: list[Contact] = []
    cursor = None
    pages = 0
    while True:
        page = hooks("fetch_campaign_members", campaign_id=str(campaign_id), cursor=cursor)
        pages += 1
        items.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            return items, pages
        assert pages < 100, "paging never ended"


def test_campaigns_are_listed_with_member_counts(hooks: Hooks, pm: PlanMillSandbox) -> None:
    cid = campaign_of(pm, 4)
    campaigns = {c.remote_id: c for c in hooks("list_campaigns")}
    assert campaigns[str(cid)].name == "Big campaign"
    assert campaigns[str(cid)].member_count == 4
    assert {"2001", "2002"} <= set(campaigns)  # the vendor's sample campaigns


def test_every_member_of_a_250_contact_campaign_arrives_once(hooks: Hooks, pm: PlanMillSandbox) -> None:
    cid = campaign_of(pm, 250, without_email=7)
    pm.reset_calls()
    items, pages = import_all(hooks, cid)
    assert len(items) == 250
    assert len({c.remote_id for c in items}) == 250
    assert sum(1 for c in items if c.email is None) == 7  # returned; the core skips and counts them
    # 200 + 50 rows, then one request that wraps around to the start and proves the end
    assert pm.count_calls("GET", "/acme/api/1.5/contacts") == pages == 3


@pytest.mark.parametrize("cap", [7, 59])
def test_paging_is_correct_under_an_unknown_rowcount_cap(hooks: Hooks, pm: PlanMillSandbox, cap: int) -> None:
    cid = campaign_of(pm, 60)
    pm.page_size = cap  # PlanMill's largest rowcount is undocumented
    items, _ = import_all(hooks, cid)
    assert sorted(int(c.remote_id or 0) for c in items) == sorted(pm.members[cid])


def test_without_the_wrap_around_an_empty_page_ends_too(hooks: Hooks, pm: PlanMillSandbox) -> None:
    cid = campaign_of(pm, 30)
    pm.wrap_around = False
    items, pages = import_all(hooks, cid)
    assert len(items) == 30 and pages == 2


def test_members_carry_their_account_and_fields(hooks: Hooks, pm: PlanMillSandbox) -> None:
    cid = campaign_of(pm, 1)
    pm.set_modified("contacts", next(iter(pm.members[cid])), datetime(2026, 3, 1, 8, 0, tzinfo=UTC))
    (member,), _ = import_all(hooks, cid)
    assert member.email == "member0@members.example"
    assert member.company is not None and member.company.name == "Campaign Members Oy"
    assert member.fields["lastName"] == "M0"
    assert member.modified_at == datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    assert member.modified_at.utcoffset() == timedelta(0)
