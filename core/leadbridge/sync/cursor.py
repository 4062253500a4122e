"""Incremental read state, safe at the boundary.

The checkpoint of a pull stream is ``{"at": ISO UTC, "id": remote id}``: the ``(modified time,
id)`` of the newest record stored. The next read starts a small look-back before ``at`` (clocks
and equal timestamps), the overlap is de-duplicated by the links' remote modification times, and
the saved position never passes the run's start (the signpost): records changed during the run are
read again next time instead of being skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

LOOKBACK = timedelta(minutes=5)


def parse_at(value: Any) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def position(cursor: Mapping[str, Any] | None) -> tuple[datetime, str] | None:
    """The ``(at, id)`` a saved cursor points at, or ``None`` for a first run."""
    at = parse_at((cursor or {}).get("at"))
    return (at, str((cursor or {}).get("id") or "")) if at else None


def read_since(
    cursor: Mapping[str, Any] | None,
    *,
    sync_from: datetime | None,
    full: bool = False,
    lookback: timedelta = LOOKBACK,
) -> datetime | None:
    """Where the next read starts: the look-back before the checkpoint, else "sync records from"."""
    pos = None if full else position(cursor)
    if pos is None:
        return sync_from.astimezone(UTC) if sync_from else None
    since = pos[0] - lookback
    if sync_from is not None and since < sync_from:
        since = sync_from.astimezone(UTC)
    return since


def advance(
    cursor: Mapping[str, Any] | None,
    seen: Iterable[tuple[datetime | None, str]],
    *,
    ceiling: datetime,
) -> dict[str, Any]:
    """The checkpoint after storing records ``seen`` (their ``(modified_at, id)``).

    Never moves backwards and never passes ``ceiling`` (the run's start): a record stamped later is
    capped there, so it is read again by the next run.
    """
    best = position(cursor)
    for at, rid in seen:
        if at is None:
            continue
        at = at.astimezone(UTC)
        candidate = (ceiling, "") if at > ceiling else (at, rid)
        if best is None or candidate > best:
            best = candidate
    if best is None:
        return dict(cursor or {})
    return {"at": best[0].isoformat(), "id": best[1]}


def already_stored(link_modified_at: datetime | None, modified_at: datetime | None) -> bool:
    """True when a record read again in the look-back overlap was already stored (skip it)."""
    return link_modified_at is not None and modified_at is not None and modified_at <= link_modified_at
