"""The toolkit's pagers against a loopback vendor that pages each way vendors do (and misbehave)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import jsonify, request
from leadbridge.errors import ConfigError, TransientError
from leadbridge.http import VendorClient
from leadbridge.sandbox import Sandbox, SandboxServer
from leadbridge.toolkit.paging import (
    CursorParam,
    Keyset,
    NextUrl,
    Offset,
    Pager,
    decode_cursor,
    encode_cursor,
    read_all,
    read_page,
    records_at,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S")


class PagingVendor(Sandbox):
    """One collection of rows ``{"id", "modified"}`` served four ways."""

    name = "paging"

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.cap = 1000  # the vendor's silent row cap
        super().__init__()

    def fill(self, count: int, *, same_time: int = 0) -> None:
        """``count`` rows; the first ``same_time`` share one modification time."""
        self.rows = [
            {"id": i, "modified": stamp(T0 + timedelta(seconds=0 if i <= same_time else i))}
            for i in range(1, count + 1)
        ]

    def setup_routes(self) -> None:
        app = self.app

        @app.get("/api/linked")
        def linked() -> Any:
            at = int(request.args.get("at", 0))
            page = self.rows[at : at + 10]
            following = f"/api/linked?at={at + 10}" if at + 10 < len(self.rows) else None
            return jsonify({"items": page, "links": {"next": following}})

        @app.get("/api/tokens")
        def tokens() -> Any:
            at = int(request.args.get("cursor") or 0)
            limit = int(request.args["limit"])
            page = self.rows[at : at + limit]
            following = str(at + limit) if at + limit < len(self.rows) else None
            return jsonify({"data": page, "meta": {"next_cursor": following}})

        @app.get("/api/wrapping")
        def wrapping() -> Any:
            # PlanMill: 1-based ``nextrows``; past the end the collection starts again.
            size = min(int(request.args["rowcount"]), self.cap)
            start = int(request.args["nextrows"]) - 1
            if start >= len(self.rows):
                start = 0
            return jsonify(self.rows[start : start + size])

        @app.get("/api/changed")
        def changed() -> Any:
            start, finish = request.args["from"], request.args["to"]
            size = min(int(request.args["rowcount"]), self.cap)
            offset = int(request.args.get("offset", 0))
            hits = sorted(
                (r for r in self.rows if start <= r["modified"] <= finish),
                key=lambda r: (r["modified"], r["id"]),
            )
            return jsonify(hits[offset : offset + size])


@pytest.fixture()
def vendor() -> Iterator[tuple[PagingVendor, VendorClient]]:
    sandbox = PagingVendor()
    with SandboxServer(sandbox) as server:
        yield sandbox, VendorClient("https://vendor.example.com/", override=server.url)


def every_page(client: VendorClient, pager: Pager, path: str, params: dict[str, Any], **kw: Any) -> list[Any]:
    seen, cursor = [], None
    for _ in range(500):
        page = read_page(client, pager, path, params, cursor, **kw)
        seen.extend(r["id"] for r in page.rows)
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor
    raise AssertionError("paging never ended")


def test_next_url_follows_host_relative_links_to_the_end(vendor: Any) -> None:
    sandbox, client = vendor
    sandbox.fill(25)
    pager = NextUrl(records_at("items"), lambda body: body["links"]["next"])
    assert every_page(client, pager, "api/linked", {}) == list(range(1, 26))
    assert sandbox.count_calls("GET", "/api/linked") == 3


def test_a_link_relative_to_the_request_resolves_against_it(vendor: Any) -> None:
    sandbox, client = vendor
    sandbox.fill(25)
    pager = NextUrl(
        records_at("items"), lambda body: (body["links"]["next"] or "").replace("/api/", "") or None
    )
    assert every_page(client, pager, "api/linked", {}) == list(range(1, 26))  # "linked?at=10" from /api/


def test_peek_needs_row_offsets() -> None:
    with pytest.raises(ValueError, match="row offsets"):
        Offset(records_at(), unit="page", peek=True)


def test_a_next_link_to_another_host_is_refused(vendor: Any) -> None:
    sandbox, client = vendor
    sandbox.fill(25)
    pager = NextUrl(records_at("items"), lambda body: "https://evil.example.net/steal")
    page = read_page(client, pager, "api/linked", {}, None)
    with pytest.raises(ConfigError, match=r"evil\.example\.net"):
        read_page(client, pager, "api/linked", {}, page.next_cursor)


def test_cursor_param_sends_the_token_back(vendor: Any) -> None:
    sandbox, client = vendor
    sandbox.fill(7)
    pager = CursorParam(records_at("data"), lambda body: body["meta"]["next_cursor"])
    assert every_page(client, pager, "api/tokens", {"limit": 3}) == list(range(1, 8))
    assert sandbox.count_calls("GET", "/api/tokens") == 3


@pytest.mark.parametrize("cap", [1000, 7, 3])
def test_offset_with_the_wrap_around_guard_ends_under_any_row_cap(vendor: Any, cap: int) -> None:
    sandbox, client = vendor
    sandbox.fill(20)
    sandbox.cap = cap
    pager = Offset(
        records_at(), offset_param="nextrows", size_param="rowcount", size=10, first=1,
        short_page_ends=False, row_key=lambda r: r["id"],
    )  # fmt: skip
    assert every_page(client, pager, "api/wrapping", {}) == list(range(1, 21))


def test_offset_without_the_guard_would_loop_on_a_wrapping_vendor(vendor: Any) -> None:
    sandbox, client = vendor
    sandbox.fill(5)
    pager = Offset(
        records_at(), offset_param="nextrows", size_param="rowcount", size=5, first=1, short_page_ends=False
    )
    with pytest.raises(TransientError, match="more than 4 pages"):
        list(read_all(client, pager, "api/wrapping", max_pages=4))


def test_offset_peek_proves_the_end_without_an_empty_request(vendor: Any) -> None:
    sandbox, client = vendor
    sandbox.fill(12)
    pager = Offset(
        records_at(), offset_param="nextrows", size_param="rowcount", size=5, first=1, peek=True,
        row_key=lambda r: r["id"],
    )  # fmt: skip
    assert [r["id"] for r in read_all(client, pager, "api/wrapping")] == list(range(1, 13))
    assert sandbox.count_calls("GET", "/api/wrapping") == 3


def keyset(size: int) -> Keyset:
    return Keyset(
        records_at(),
        window=lambda start, finish: {"from": start, "to": finish},
        modified=lambda r: r["modified"],
        row_id=lambda r: r["id"],
        format_time=stamp,
        size_param="rowcount",
        size=size,
        offset_param="offset",
        short_page_ends=False,
    )


def test_keyset_reads_each_row_once_across_a_group_of_equal_timestamps_larger_than_the_cap(
    vendor: Any,
) -> None:
    sandbox, client = vendor
    sandbox.fill(40, same_time=15)
    sandbox.cap = 6
    ids = every_page(client, keyset(5), "api/changed", {}, since=T0)
    assert sorted(ids) == list(range(1, 41)) and len(ids) == 40


def test_keyset_leaves_rows_changed_during_the_read_for_the_next_run(vendor: Any) -> None:
    sandbox, client = vendor
    sandbox.fill(30)
    first = read_page(client, keyset(10), "api/changed", {}, None, since=T0)
    # Changed after the read began (one row already read, one not): both leave the window, so no
    # page shifts, nothing repeats, and row 25's change is the next run's to read.
    for row in (sandbox.rows[0], sandbox.rows[24]):
        row["modified"] = stamp(datetime.now(UTC) + timedelta(days=1))
    ids, cursor = [r["id"] for r in first.rows], first.next_cursor
    while cursor:
        page = read_page(client, keyset(10), "api/changed", {}, cursor)
        ids += [r["id"] for r in page.rows]
        cursor = page.next_cursor
    assert ids == [i for i in range(1, 31) if i != 25]


def test_cursors_round_trip_and_foreign_ones_are_refused() -> None:
    state = {"pager": {"path": "x", "params": {"a": 1}}, "extra": {"since": None}}
    assert decode_cursor(encode_cursor(state)) == state
    with pytest.raises(ConfigError, match="cursor"):
        decode_cursor('{"next": 3}')
    with pytest.raises(ConfigError, match="damaged"):
        decode_cursor("lb1.%%%")
