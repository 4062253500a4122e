"""Pagers: how a vendor's collection pages, declared once; the toolkit walks it and keeps the state.

A connector's read hooks get a ``cursor`` (``None`` for the first page) and return the next one in
their :class:`~leadbridge.types.Page`. With a pager they never build that cursor themselves::

    PERSONS = Offset(records=lambda body: body["data"], offset_param="start", size=500,
                     more=lambda body: body["additional_data"]["pagination"]["more_items_in_collection"])

    def fetch_contacts(connection, client, object_type, since, cursor):
        page = read_page(client, PERSONS, "persons", {"sort": "update_time ASC"}, cursor)
        return Page([to_contact(row) for row in page.rows], page.next_cursor)

The cursor is the pager's state (and whatever the connector keeps beside it, ``extra``) as
versioned JSON, so an engine checkpoint taken mid-stream resumes exactly there, and a cursor from
elsewhere is refused with a clear error instead of being sent to the vendor.

The shapes vendors use:

* :class:`NextUrl`: the answer names the next page (``nextRecordsUrl``, ``_links.next.href``);
* :class:`CursorParam`: the answer holds an opaque token sent back as a query parameter;
* :class:`Offset`: a row offset or a page index with a size, ended by a flag, a short page, or,
  for vendors that answer past the end with the collection from the start, the wrap-around guard;
* :class:`Keyset`: rows modified since the last time seen, for incremental reads whose offsets
  would shift while records change.
"""

from __future__ import annotations

import base64
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

from .. import clock as clocks
from ..errors import ConfigError, TransientError
from ..http import VendorClient
from .answers import json_body

Records = Callable[[Any], list[dict[str, Any]]]
State = dict[str, Any]

CURSOR_PREFIX = "lb1."


def encode_cursor(state: Mapping[str, Any]) -> str:
    """``state`` (JSON-able) as an opaque, URL-safe cursor string."""
    raw = json.dumps(dict(state), separators=(",", ":"), sort_keys=True, default=str)
    return CURSOR_PREFIX + base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> State:
    """The state :func:`encode_cursor` wrote.

    :raises ConfigError: for anything else (a cursor of another connector or version, a damaged
        checkpoint): resuming from a guess could skip records silently.
    """
    if not cursor.startswith(CURSOR_PREFIX):
        raise ConfigError(f"not a paging cursor of this version: {cursor[:24]!r}", code="bad_cursor")
    body = cursor[len(CURSOR_PREFIX) :]
    try:
        state = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError("damaged paging cursor", code="bad_cursor") from exc
    if not isinstance(state, dict):
        raise ConfigError("damaged paging cursor", code="bad_cursor")
    return state


def records_at(*keys: str, strict: bool = False) -> Records:
    """A ``records`` reader for the list under ``keys`` (missing or ``null`` reads as empty).

    :param strict: anything but a list there is a :class:`TransientError` (the vendor did not say
        "no rows"; reading it as empty would make a lookup miss and a write create a duplicate).
    """

    def read(body: Any) -> list[dict[str, Any]]:
        for key in keys:
            body = body.get(key) if isinstance(body, Mapping) else None
        if not isinstance(body, list):
            if strict:
                raise TransientError(f"expected a list of records, got {type(body).__name__}")
            return []
        return [row for row in body if isinstance(row, dict)]

    return read


@dataclass(slots=True)
class PageRead:
    """One page as read: its rows, the whole answer, the cursor of the next page (``None`` at the
    end) and the connector's ``extra`` state (as stored in the cursor)."""

    rows: list[dict[str, Any]]
    body: Any
    next_cursor: str | None
    extra: dict[str, Any] = field(default_factory=dict)


class Pager(ABC):
    """A collection's paging rule. Subclasses say which request comes first and which follows."""

    def __init__(self, records: Records) -> None:
        self.records = records

    def first(self, path: str, params: Mapping[str, Any]) -> State:
        return {"path": path, "params": dict(params)}

    def request(self, state: State) -> tuple[str, dict[str, Any] | None]:
        return state["path"], state["params"]

    @abstractmethod
    def following(self, state: State, body: Any, rows: list[dict[str, Any]]) -> State | None:
        """The state of the page after this one, ``None`` when this one was the last."""

    def keep(self, state: State, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows of this page to hand on (all, unless the pager asks for more than it keeps)."""
        return rows


class NextUrl(Pager):
    """The answer names the next page's URL (absolute, host-relative or relative to the request).

    The URL is resolved against the API base and checked by the client like any other path, so a
    vendor's link can never aim a request at another host.
    """

    def __init__(self, records: Records, next_url: Callable[[Any], str | None]) -> None:
        super().__init__(records)
        self.next_url = next_url

    def request(self, state: State) -> tuple[str, dict[str, Any] | None]:
        if "url" in state:
            return state["url"], None
        return super().request(state)

    def following(self, state: State, body: Any, rows: list[dict[str, Any]]) -> State | None:
        link = self.next_url(body)
        return {"url": link} if link else None


class CursorParam(Pager):
    """The answer carries an opaque token (``next_cursor``) sent back as the ``param`` query parameter."""

    def __init__(
        self, records: Records, next_cursor: Callable[[Any], str | None], param: str = "cursor"
    ) -> None:
        super().__init__(records)
        self.next_cursor = next_cursor
        self.param = param

    def following(self, state: State, body: Any, rows: list[dict[str, Any]]) -> State | None:
        token = self.next_cursor(body)
        if not token:
            return None
        return {"path": state["path"], "params": {**state["params"], self.param: token}}


class Offset(Pager):
    """A row offset (``unit="row"``) or a page number (``unit="page"``) and a page size.

    :param offset_param: the query parameter of the offset or page number; ``first`` its first value.
    :param size_param: the page-size parameter, ``size`` its value.
    :param more: reads the answer's "more items" flag; without it, a short page is the end.
    :param short_page_ends: ``False`` when the vendor may cap pages silently below ``size`` (the
        end is then an empty page or the wrap-around).
    :param row_key: enables the **wrap-around guard** for vendors that answer past the end with the
        collection from the start: with the collection sorted by this key, a page whose first key
        is not above the last one seen is the end (its rows are dropped).
    :param peek: ask for one row more than ``size`` and keep ``size``: a short answer then proves
        the end without a last, empty request (small lookups).
    """

    def __init__(
        self,
        records: Records,
        *,
        offset_param: str = "offset",
        size_param: str = "limit",
        size: int = 100,
        first: int = 0,
        unit: str = "row",
        more: Callable[[Any], bool] | None = None,
        short_page_ends: bool = True,
        row_key: Callable[[Mapping[str, Any]], Any] | None = None,
        peek: bool = False,
    ) -> None:
        super().__init__(records)
        if unit not in ("row", "page"):
            raise ValueError(f"unit must be 'row' or 'page', not {unit!r}")
        if peek and unit == "page":
            raise ValueError(
                "peek asks one row more than a page holds: it needs row offsets, not page numbers"
            )
        self.offset_param, self.size_param, self.size = offset_param, size_param, size
        self.first_offset, self.unit, self.more = first, unit, more
        self.short_page_ends, self.row_key, self.peek = short_page_ends, row_key, peek

    def first(self, path: str, params: Mapping[str, Any]) -> State:
        return {"path": path, "params": dict(params), "at": self.first_offset, "last": None}

    def request(self, state: State) -> tuple[str, dict[str, Any] | None]:
        asked = self.size + 1 if self.peek else self.size
        return state["path"], {**state["params"], self.offset_param: state["at"], self.size_param: asked}

    def keep(self, state: State, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        last = state["last"]
        if self.row_key is not None and rows and last is not None and self.row_key(rows[0]) <= last:
            return []  # wrapped around to the start: these rows were read already
        return rows[: self.size] if self.peek else rows

    def following(self, state: State, body: Any, rows: list[dict[str, Any]]) -> State | None:
        kept = self.keep(state, rows)
        if not kept:
            return None
        if self.more is not None:
            if not self.more(body):
                return None
        elif self.peek:
            if len(rows) <= self.size:
                return None
        elif self.short_page_ends and len(rows) < self.size:
            return None
        step = len(kept) if self.unit == "row" else 1
        last = self.row_key(kept[-1]) if self.row_key is not None else None
        return {**state, "at": state["at"] + step, "last": last}


class Keyset(Pager):
    """Keyset on the modification time, inside a window fixed at the first page.

    Each request asks for rows modified at or after the last time seen (inclusive: equal
    timestamps are never lost) up to the window's end, sorted by that time, and drops the ids
    already returned at that instant. Rows changed during the read fall outside the window instead
    of shifting pages; the next run reads them. A group of equal timestamps larger than a page is
    crossed by offset (overlapping a little), and an offset past the end that wraps around to the
    start (PlanMill) is recognised by its first row.

    :param window: the query for rows modified in ``[start, finish]`` (connector's time format).
    :param modified: a row's modification time in that format (strings that sort correctly).
    :param row_id: a row's id.
    :param format_time: formats ``since`` and the window's end.
    :param offset_param: the offset parameter, ``first`` its first value (``None``: no offsets).
    :param short_page_ends: ``False`` when the vendor caps pages silently below the asked size.
    """

    def __init__(
        self,
        records: Records,
        *,
        window: Callable[[str, str], dict[str, Any]],
        modified: Callable[[Mapping[str, Any]], str | None],
        row_id: Callable[[Mapping[str, Any]], Any],
        format_time: Callable[[datetime], str],
        size_param: str = "limit",
        size: int = 100,
        offset_param: str | None = None,
        first: int = 0,
        short_page_ends: bool = True,
        epoch: datetime = datetime(2000, 1, 1, tzinfo=UTC),
        max_steps: int = 200,
        overlap: int = 2,
    ) -> None:
        super().__init__(records)
        self.window, self.modified, self.row_id, self.format_time = window, modified, row_id, format_time
        self.size_param, self.size, self.offset_param, self.first_offset = (
            size_param,
            size,
            offset_param,
            first,
        )
        self.short_page_ends, self.epoch, self.max_steps, self.overlap = (
            short_page_ends,
            epoch,
            max_steps,
            overlap,
        )

    def start(self, path: str, params: Mapping[str, Any], since: datetime | None) -> State:
        begin = self.format_time((since or self.epoch).astimezone(UTC))
        finish = self.format_time(clocks.utcnow())
        return {
            "path": path,
            "params": dict(params),
            "start": begin,
            "finish": finish,
            "seen": [],
            "skip": 0,
            "first": None,
            "steps": 0,
        }

    def first(self, path: str, params: Mapping[str, Any]) -> State:
        return self.start(path, params, None)

    def request(self, state: State) -> tuple[str, dict[str, Any] | None]:
        query = {**state["params"], **self.window(state["start"], state["finish"])}
        query[self.size_param] = self.size + max(0, len(state["seen"]) - state["skip"])
        if self.offset_param is not None:
            query[self.offset_param] = self.first_offset + state["skip"]
        return state["path"], query

    def _wrapped(self, state: State, rows: list[dict[str, Any]]) -> bool:
        return bool(rows) and state["skip"] > 0 and self.row_id(rows[0]) == state["first"]

    def keep(self, state: State, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if self._wrapped(state, rows):
            return []
        seen = set(state["seen"])
        return [r for r in rows if self.row_id(r) not in seen]

    def following(self, state: State, body: Any, rows: list[dict[str, Any]]) -> State | None:
        if not rows or self._wrapped(state, rows):
            return None
        first = self.row_id(rows[0]) if state["skip"] == 0 else state["first"]
        fresh = self.keep(state, rows)
        if not fresh:
            # Only rows already returned: a group of equal timestamps larger than a page.
            if self.offset_param is None or state["steps"] >= self.max_steps:
                return None
            skip = state["skip"] + max(1, len(rows) - self.overlap)
            return {**state, "skip": skip, "first": first, "steps": state["steps"] + 1}
        asked = self.size + max(0, len(state["seen"]) - state["skip"])
        if self.short_page_ends and len(rows) < asked:
            return None
        last = self.modified(fresh[-1])
        if last is None:
            return None  # nothing to page on; the engine's next run resumes from its checkpoint
        same = {self.row_id(r) for r in fresh if self.modified(r) == last}
        skip = state["skip"]
        if last == state["start"]:
            same |= set(state["seen"])  # still inside one instant: remember everything returned at it
        else:
            skip, first = 0, None
        return {**state, "start": last, "seen": sorted(same), "skip": skip, "first": first, "steps": 0}


def read_page(
    client: VendorClient,
    pager: Pager,
    path: str,
    params: Mapping[str, Any] | None,
    cursor: str | None,
    *,
    since: datetime | None = None,
    extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> PageRead:
    """Read the page ``cursor`` points at (the first page of ``path`` + ``params`` when ``None``).

    :param since: where a :class:`Keyset` read starts (ignored by the other pagers).
    :param extra: connector state carried from page to page beside the pager's (kept from the
        cursor when it has some; the argument is the first page's).
    :param headers: sent with every page request (Maileon answers XML unless asked for JSON).
    """
    if cursor:
        decoded = decode_cursor(cursor)
        state, kept_extra = decoded.get("pager") or {}, decoded.get("extra") or {}
    else:
        first = pager.start(path, params or {}, since) if isinstance(pager, Keyset) else None
        state, kept_extra = first or pager.first(path, params or {}), dict(extra or {})
    where, query = pager.request(state)
    if "url" in state:  # a vendor link, made absolute when it was read
        where = urljoin(client.base_url, where)
    body = json_body(client.get(where, params=query, headers=headers))
    rows = pager.records(body)
    following = pager.following(state, body, rows)
    if following is not None and "url" in following:
        # Relative links resolve against the request they came with (host-relative: its origin).
        following = {**following, "url": urljoin(client.url(where), following["url"])}
    next_cursor = encode_cursor({"pager": following, "extra": kept_extra}) if following is not None else None
    return PageRead(pager.keep(state, rows), body, next_cursor, kept_extra)


def with_extra(page: PageRead, extra: Mapping[str, Any]) -> str | None:
    """``page``'s next cursor carrying ``extra`` instead (the connector changed its own state)."""
    if page.next_cursor is None:
        return None
    state = decode_cursor(page.next_cursor)
    return encode_cursor({"pager": state["pager"], "extra": dict(extra)})


def read_from(
    client: VendorClient, pager: NextUrl, url: str, *, max_pages: int = 10_000
) -> Iterator[dict[str, Any]]:
    """Every row from the page at ``url`` on (a next-page link found elsewhere: a batch answer)."""
    cursor: str | None = encode_cursor({"pager": {"url": url}, "extra": {}})
    for _ in range(max_pages):
        assert cursor is not None
        page = read_page(client, pager, "", None, cursor)
        yield from page.rows
        if page.next_cursor is None:
            return
        cursor = page.next_cursor
    raise TransientError(f"more than {max_pages} pages from {url}; stopped")


def read_all(
    client: VendorClient,
    pager: Pager,
    path: str,
    params: Mapping[str, Any] | None = None,
    *,
    max_pages: int = 10_000,
) -> Iterator[dict[str, Any]]:
    """Every row of a collection, page after page (lookups and small lists; engine reads page by
    page through :func:`read_page` so each page is checkpointed)."""
    cursor: str | None = None
    for _ in range(max_pages):
        page = read_page(client, pager, path, params, cursor)
        yield from page.rows
        if page.next_cursor is None:
            return
        cursor = page.next_cursor
    raise TransientError(f"{path}: more than {max_pages} pages; stopped (is the vendor paging in a loop?)")
