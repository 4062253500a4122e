"""PlanMill paging: ``rowcount`` + 1-based ``nextrows``, and its trap.

Asked past the end, PlanMill answers with the collection **from the start** instead of an empty
array, so "loop until empty" never ends. Its largest ``rowcount`` is undocumented too, so a short
page does not prove the end either. Engine-driven paging therefore sorts by id and goes on until an
answer is empty or starts at or below the last id already returned (the wrap-around): correct under
any silent row cap, for the price of one final request. Small lookups ask for one row more than they
keep instead (a short answer is the end), which is safe because they stay far below any real cap.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from leadbridge.errors import TransientError
from leadbridge.http import VendorClient

PAGE_SIZE = 200


@dataclass(slots=True)
class RowPage:
    rows: list[dict[str, Any]]
    next_row: int | None  # the nextrows value of the following page, None at the end


def get_rows(client: VendorClient, path: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    body = client.get(path, params=dict(params)).json()
    if not isinstance(body, list):
        raise TransientError(f"PlanMill {path}: expected a list, got {type(body).__name__}")
    return [row for row in body if isinstance(row, dict)]


def row_id(row: Mapping[str, Any]) -> int:
    try:
        return int(row.get("id") or 0)
    except (TypeError, ValueError):
        return 0


def page_by_id(
    client: VendorClient,
    path: str,
    params: Mapping[str, Any],
    *,
    next_row: int = 1,
    after_id: int | None = None,
    size: int = PAGE_SIZE,
) -> RowPage:
    """One page of ``path`` sorted by id; ``next_row`` is ``None`` once the end is proven."""
    query = {**params, "sort": "id", "order": 0, "rowcount": size, "nextrows": next_row}
    rows = get_rows(client, path, query)
    if not rows or (after_id is not None and row_id(rows[0]) <= after_id):
        return RowPage([], None)  # empty, or wrapped around to the start: the end
    return RowPage(rows, next_row + len(rows))


def lookup(
    client: VendorClient, path: str, params: Mapping[str, Any], *, size: int = 50
) -> list[dict[str, Any]]:
    """Every row of a small filtered lookup (search results), asking one row more than kept."""
    rows: list[dict[str, Any]] = []
    next_row = 1
    while True:
        query = {**params, "sort": "id", "order": 0, "rowcount": size + 1, "nextrows": next_row}
        page = get_rows(client, path, query)
        if rows and page and row_id(page[0]) <= row_id(rows[-1]):
            return rows  # wrapped around
        rows.extend(page[:size])
        if len(page) <= size:
            return rows
        next_row += size
