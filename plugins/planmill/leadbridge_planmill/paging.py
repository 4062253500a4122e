"""PlanMill paging, declared on the core's pagers: ``rowcount`` + 1-based ``nextrows``, and its trap.

Asked past the end, PlanMill answers with the collection **from the start** instead of an empty
array, so "loop until empty" never ends. Its largest ``rowcount`` is undocumented too, so a short
page does not prove the end either. Reads by id therefore sort by id and use the wrap-around guard
(one final request proves the end under any silent row cap); small lookups ask for one row more
than they keep (a short answer is the end), safe because they stay far below any real cap.
Incremental reads page by keyset on the modification time (``nextrows`` only crosses a group of
equal timestamps).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from leadbridge.toolkit.paging import Keyset, Offset, records_at

from .dates import format_dt, parse_dt

PAGE_SIZE = 200
SEARCH_SIZE = 50
ROWS = records_at(strict=True)  # PlanMill answers a bare JSON array; anything else is an error
BY_ID = {"sort": "id", "order": 0}


def row_id(row: Mapping[str, Any]) -> int:
    try:
        return int(row.get("id") or 0)
    except (TypeError, ValueError):
        return 0


def by_id(size: int = PAGE_SIZE) -> Offset:
    """Every row of a collection, sorted by id (``BY_ID`` in the params), ended by the wrap-around."""
    return Offset(
        ROWS,
        offset_param="nextrows",
        size_param="rowcount",
        size=size,
        first=1,
        short_page_ends=False,
        row_key=row_id,
    )


#: Small filtered lookups (search results): one row more than kept, so a short answer is the end.
LOOKUP = Offset(
    ROWS, offset_param="nextrows", size_param="rowcount", size=SEARCH_SIZE, first=1, peek=True, row_key=row_id
)


def _modified(row: Mapping[str, Any]) -> str | None:
    when = parse_dt(row.get("modified"))
    return format_dt(when) if when is not None else None


def changed(interval: str, size: int = PAGE_SIZE) -> Keyset:
    """Rows modified in a window, by the resource's modification interval (``Person.Modified``)."""
    return Keyset(
        ROWS,
        window=lambda start, finish: {
            "interval": interval,
            "intervalstart": start,
            "intervalfinish": finish,
            "sort": "modified",
            "order": 0,
        },
        modified=_modified,
        row_id=row_id,
        format_time=format_dt,
        size_param="rowcount",
        size=size,
        offset_param="nextrows",
        first=1,
        short_page_ends=False,
    )
