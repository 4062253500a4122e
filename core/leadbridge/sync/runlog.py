"""The run log: counts per side, one :class:`~leadbridge.models.SyncRecord` per record, progress.

Records are buffered in memory and written by :meth:`RunLog.checkpoint` in the same transaction
as the batch's links and cursor, so the log never claims work that a crash rolled back (and a dry
run can roll its hub writes back but keep its log).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert

from ..db import db, utcnow
from ..models import SyncRecord, SyncRun
from ..types import LogSide, Outcome

SIDES = tuple(LogSide)
COUNTED = ("created", "updated", "skipped", "deleted", "failed")
Progress = Callable[[int, int | None], None]


def empty_counts() -> dict[str, dict[str, int]]:
    return {side: dict.fromkeys(COUNTED, 0) for side in SIDES}


@dataclass(slots=True)
class PendingRecord:
    side: str
    object_type: str
    outcome: str
    hub_id: int | None = None
    remote_id: str | None = None
    label: str | None = None
    reason: str | None = None
    code: str | None = None
    diff: dict[str, Any] = field(default_factory=dict)


class RunLog:
    """Accumulates one run's outcomes; :meth:`checkpoint` persists them with the batch."""

    def __init__(self, run: SyncRun, *, progress: Progress | None = None) -> None:
        self.run_id = run.id
        self.counts = empty_counts()
        self.unchanged = dict.fromkeys(SIDES, 0)
        self.conflicts = 0
        self.done = 0
        self.total: int | None = None
        self.notes: list[str] = []
        self._pending: list[PendingRecord] = []
        self._progress = progress

    # -- outcomes -----------------------------------------------------------------------------

    def add(
        self,
        side: LogSide,
        object_type: str,
        outcome: Outcome | str,
        *,
        hub_id: int | None = None,
        remote_id: str | None = None,
        label: str | None = None,
        reason: str | None = None,
        code: str | None = None,
        diff: dict[str, Any] | None = None,
    ) -> None:
        outcome = Outcome(outcome)
        if outcome is Outcome.UNCHANGED:
            self.unchanged[side] += 1
            return
        if outcome is Outcome.CONFLICT:
            self.conflicts += 1
        elif outcome.value in COUNTED:
            self.counts[side][outcome.value] += 1
        self._pending.append(
            PendingRecord(
                side=side,
                object_type=object_type,
                outcome=outcome.value,
                hub_id=hub_id,
                remote_id=remote_id,
                label=(label or "")[:512] or None,
                reason=reason,
                code=(code or "")[:128] or None,
                diff=dict(diff or {}),
            )
        )

    def note(self, message: str) -> None:
        if message not in self.notes:
            self.notes.append(message)

    def advance(self, n: int = 1) -> None:
        self.done += n

    # -- persistence --------------------------------------------------------------------------

    def checkpoint(self) -> None:
        """Add buffered records and the run's counts/progress to the session, then commit."""
        self.stage()
        db.session.commit()
        if self._progress is not None:
            self._progress(self.done, self.total)

    def stage(self) -> None:
        """Add buffered records and run totals to the session without committing."""
        now = utcnow()
        if self._pending:
            # One multi-row INSERT per batch: the per-record log must not dominate the run's cost.
            db.session.execute(
                insert(SyncRecord),
                [
                    {
                        "run_id": self.run_id,
                        "side": p.side,
                        "object_type": p.object_type,
                        "outcome": p.outcome,
                        "hub_id": p.hub_id,
                        "remote_id": p.remote_id,
                        "label": p.label,
                        "reason": p.reason,
                        "code": p.code,
                        "diff": p.diff,
                        "at": now,
                    }
                    for p in self._pending
                ],
            )
        self._pending.clear()
        run = db.session.get(SyncRun, self.run_id)
        assert run is not None
        run.counts = {side: dict(values) for side, values in self.counts.items()}
        run.progress_done = self.done
        run.progress_total = self.total
        details = dict(run.details or {})
        details.update(unchanged=dict(self.unchanged), conflicts=self.conflicts)
        if self.notes:
            details["notes"] = list(self.notes)
        run.details = details

    def discard_pending(self) -> None:
        self._pending.clear()

    @property
    def failed(self) -> int:
        return sum(self.counts[side]["failed"] for side in SIDES)
