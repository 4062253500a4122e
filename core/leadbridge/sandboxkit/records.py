"""An in-memory record store for sandboxes: ids, creation and modification stamps from the vendor
clock, soft deletes, lookups, and keyset pages in ``(updated_at, id)`` order with opaque cursors.

A store is a ``dict`` of id → :class:`Record`, so tests can reach in (``sandbox.contacts[id]``)
to imitate what a salesperson does in the vendor's UI.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


class Ids:
    """A vendor's id sequence (several stores may share one, as one database would)."""

    def __init__(self, start: int = 1000) -> None:
        self._last = start
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            self._last += 1
            return self._last


@dataclass
class Record:
    """One vendor-side record."""

    id: int
    values: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    deleted: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            **self.values,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "deleted": self.deleted,
        }


class RecordStore(dict[int, Record]):
    """One vendor object's records.

    :param clock: the vendor clock (stamps ``created_at``/``updated_at``).
    :param ids: the id sequence (shared between stores for vendor-wide ids).
    """

    def __init__(self, clock: Callable[[], datetime], ids: Ids | None = None) -> None:
        super().__init__()
        self.clock = clock
        self.ids = ids or Ids()

    def add(self, values: dict[str, Any]) -> Record:
        now = self.clock()
        rec = Record(self.ids.next(), dict(values), created_at=now, updated_at=now)
        self[rec.id] = rec
        return rec

    def live(self, record_id: int | str) -> Record | None:
        """The record with this id unless it is deleted (or the id is not a number)."""
        try:
            rec = self.get(int(record_id))
        except (TypeError, ValueError):
            return None
        return rec if rec is not None and not rec.deleted else None

    def change(self, rec: Record, values: dict[str, Any]) -> bool:
        """Apply ``values``; stamp the record only when something changed. Returns whether it did."""
        if all(rec.values.get(k) == v for k, v in values.items()):
            return False
        rec.values.update(values)
        rec.updated_at = self.clock()
        return True

    def delete(self, rec: Record) -> None:
        """Soft delete (the record keeps showing in change feeds as deleted)."""
        rec.deleted = True
        rec.updated_at = self.clock()

    def find(self, field: str, value: Any, *, casefold: bool = False) -> Record | None:
        """The live record whose ``field`` equals ``value`` (lowest id first)."""
        if casefold:
            wanted = str(value).strip().casefold()
            match: Callable[[Any], bool] = lambda v: isinstance(v, str) and v.strip().casefold() == wanted  # noqa: E731
        else:
            match = lambda v: v == value  # noqa: E731
        return next(
            (
                r
                for r in sorted(self.values(), key=lambda r: r.id)
                if not r.deleted and match(r.values.get(field))
            ),
            None,
        )

    def count(self) -> int:
        """Live records."""
        return sum(1 for r in self.values() if not r.deleted)

    def page(
        self,
        *,
        since: datetime | None = None,
        cursor: str | None = None,
        limit: int = 100,
        among: Iterable[int] | None = None,
    ) -> tuple[list[Record], str | None]:
        """Records changed at or after ``since`` (deleted ones included), oldest change first, after
        the position ``cursor`` names; the next cursor is ``None`` on the last page.

        :raises ValueError: for a cursor this store did not issue (the vendor answers 400).
        """
        after = decode_position(cursor)
        pool = self.values() if among is None else [self[i] for i in among if i in self]
        rows = sorted(pool, key=lambda r: (r.updated_at, r.id))
        if since is not None:
            rows = [r for r in rows if r.updated_at >= since]
        if after is not None:
            rows = [r for r in rows if (r.updated_at, r.id) > after]
        page = rows[: max(limit, 1)]
        more = len(rows) > len(page)
        return page, encode_position(page[-1].updated_at, page[-1].id) if more else None


def iso(when: datetime) -> str:
    """A vendor timestamp: UTC, microseconds, ``Z``."""
    return when.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_iso(value: str | None) -> datetime | None:
    """An ISO 8601 timestamp with a time zone (``ValueError`` without one)."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("timestamps need a time zone")
    return parsed


def encode_position(updated_at: datetime, record_id: int) -> str:
    raw = json.dumps([iso(updated_at), record_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_position(value: str | None) -> tuple[datetime, int] | None:
    if not value:
        return None
    try:
        stamp, record_id = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
        parsed = parse_iso(stamp)
    except (ValueError, TypeError) as exc:
        raise ValueError("invalid cursor") from exc
    assert parsed is not None
    return parsed, int(record_id)
