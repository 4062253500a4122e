"""Scheduled pull: PlanMill's modification-interval filter, safe at the boundary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from leadbridge import clock as clocks
from leadbridge.types import Contact
from leadbridge_planmill.sandbox import PlanMillSandbox
from planmill_testkit import Hooks

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


def pull(hooks: Hooks, since: datetime | None) -> list[Contact]:
    items: list[Contact] = []
    cursor = None
    for _ in range(100):
        page = hooks("fetch_contacts", object_type="contact", since=since, cursor=cursor)
        items.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            return items
    raise AssertionError("paging never ended")


def _people(pm: PlanMillSandbox, stamps: list[datetime]) -> list[int]:
    account = pm.add_account("Pull Oy")
    ids = []
    for i, stamp in enumerate(stamps):
        rid = pm.add_contact(f"pull{i}@pull.example", account=account, lastName=f"P{i}")
        pm.set_modified("contacts", rid, stamp)
        ids.append(rid)
    return ids


def test_only_contacts_changed_since_are_pulled_oldest_first(hooks: Hooks, pm: PlanMillSandbox) -> None:
    old = _people(pm, [T0 - timedelta(days=1)])
    new = _people(pm, [T0 + timedelta(minutes=m) for m in (5, 1, 3)])
    items = pull(hooks, T0)
    assert [int(c.remote_id or 0) for c in items] == [new[1], new[2], new[0]]
    assert old[0] not in {int(c.remote_id or 0) for c in items}
    assert items[0].modified_at == T0 + timedelta(minutes=1)
    query = next(q for _, path, q, _ in pm.requests if path.endswith("/contacts"))
    assert query["interval"] == "Person.Modified"
    assert query["intervalstart"] == "2026-05-04T09:00:00.000+0000"  # colon-less offset, sent as %2B


def test_a_change_exactly_at_since_is_included(hooks: Hooks, pm: PlanMillSandbox) -> None:
    (rid,) = _people(pm, [T0])
    assert [int(c.remote_id or 0) for c in pull(hooks, T0)] == [rid]


def test_equal_timestamps_across_page_boundaries_are_neither_lost_nor_repeated(
    app_ctx, make_hooks, pm: PlanMillSandbox
) -> None:
    hooks = make_hooks(options={"page_size": 3})
    stamps = [T0] * 2 + [T0 + timedelta(seconds=1)] * 7 + [T0 + timedelta(seconds=2)] * 2
    ids = _people(pm, stamps)
    items = pull(hooks, T0)
    assert sorted(int(c.remote_id or 0) for c in items) == sorted(ids)
    assert len(items) == len(ids)


def test_records_changed_during_the_pull_wait_for_the_next_run(
    app_ctx, make_hooks, pm: PlanMillSandbox
) -> None:
    hooks = make_hooks(options={"page_size": 2})
    ids = _people(pm, [T0 + timedelta(seconds=s) for s in range(6)])
    first = hooks("fetch_contacts", object_type="contact", since=T0, cursor=None)
    pm.set_modified("contacts", ids[0], clocks.utcnow() + timedelta(seconds=5))  # edited mid-run
    seen = [c.remote_id for c in first.items]
    cursor = first.next_cursor
    while cursor:
        page = hooks("fetch_contacts", object_type="contact", since=T0, cursor=cursor)
        seen += [c.remote_id for c in page.items]
        cursor = page.next_cursor
    assert sorted(int(s or 0) for s in seen) == sorted(ids)  # nothing skipped by the shift


def test_no_change_costs_one_request(hooks: Hooks, pm: PlanMillSandbox) -> None:
    _people(pm, [T0 - timedelta(days=3)])
    pm.reset_calls()
    assert pull(hooks, T0) == []
    assert pm.count_calls("GET", "/acme/api/1.5/contacts") == 1


def test_accounts_without_an_interval_filter_are_read_on_full_syncs_only(
    hooks: Hooks, pm: PlanMillSandbox
) -> None:
    assert hooks("fetch_companies", since=T0, cursor=None).items == []
    assert [p for _, p, _, _ in pm.requests if "/accounts" in p] == ["/acme/api/1.5/accounts/meta"]
    companies = []
    cursor = None
    while True:
        page = hooks("fetch_companies", since=None, cursor=cursor)
        companies += page.items
        cursor = page.next_cursor
        if cursor is None:
            break
    assert {c.name for c in companies} >= {"Inventory Department", "Finance Department"}
    assert not any("interval" in q for m, p, q, _ in pm.requests if p.endswith("/accounts"))


def test_accounts_use_the_interval_meta_declares(hooks: Hooks, pm: PlanMillSandbox) -> None:
    pm.accounts_interval = "Account.Modified"
    for existing in list(pm.records["accounts"]):
        pm.set_modified("accounts", existing, T0 - timedelta(days=1))
    rid = pm.add_account("Fresh Account Oy")
    pm.set_modified("accounts", rid, T0 + timedelta(hours=1))
    page = hooks("fetch_companies", since=T0, cursor=None)
    assert [c.name for c in page.items] == ["Fresh Account Oy"]
    assert pm.requests[-1][2]["interval"] == "Account.Modified"


def test_a_group_of_equal_timestamps_larger_than_planmills_row_cap_is_crossed(
    app_ctx, make_hooks, pm: PlanMillSandbox
) -> None:
    hooks = make_hooks(options={"page_size": 4})
    pm.page_size = 3  # PlanMill silently returns at most 3 rows per request
    ids = _people(pm, [T0 - timedelta(seconds=1)] + [T0] * 9 + [T0 + timedelta(seconds=1)] * 2)
    items = pull(hooks, T0)
    assert sorted(int(c.remote_id or 0) for c in items) == sorted(ids[1:])
    assert len(items) == len(ids) - 1
