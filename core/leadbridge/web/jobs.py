"""Panel jobs ("Send to", "Import from"): a queued run handed to the app's executor, shown from its row.

A job is nothing but its :class:`~leadbridge.models.SyncRun`: the page polls the row, so any web
process shows the progress, and the work runs wherever the executor runs it (a thread of this
process, or a Celery worker). A run that failed, was cancelled or partly failed looks so.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..models import Connection, SyncRun
from ..types import LogSide, RunStatus


@dataclass(frozen=True)
class Job:
    run: SyncRun
    label: str
    done_url: str

    @property
    def id(self) -> int:
        return self.run.id

    @property
    def status(self) -> RunStatus:
        return RunStatus(self.run.status)

    @property
    def finished(self) -> bool:
        return not self.status.active

    @property
    def failed(self) -> bool:
        return self.status in (RunStatus.FAILED, RunStatus.CANCELLED)

    @property
    def paused(self) -> bool:
        """Stopped by the vendor's quota or rate limit: not failed, it resumes after the reset."""
        return self.status is RunStatus.PAUSED

    @property
    def partial(self) -> bool:
        return self.status is RunStatus.PARTIAL

    @property
    def error(self) -> str | None:
        if self.failed:
            return self.run.error or self.run.status
        return None

    @property
    def summary(self) -> str:
        return summarize(self.run.counts or {})


def label_for(run: SyncRun, conn: Connection | None, list_name: str | None = None) -> str:
    """What the job page calls the run: "Sending 3 contacts to X", "Importing into L from X"."""
    details = run.details or {}
    target = conn.name if conn is not None else f"connection #{run.connection_id}"
    if details.get("mode") == "import":
        return f"Importing into {list_name or 'a list'} from {target}"
    if details.get("mode") == "send":
        n = len(details.get("contact_ids") or [])
        return f"Sending {n} contact{'s' if n != 1 else ''} to {target}"
    return f"Syncing {target}"


def summarize(counts: dict[str, dict[str, int]]) -> str:
    parts = []
    for side, label in ((LogSide.CRM, "CRM"), (LogSide.HUB, "leadbridge")):
        c = counts.get(side) or {}
        nums = ", ".join(f"{v} {k}" for k, v in c.items() if v)
        if nums:
            parts.append(f"{label}: {nums}")
    return "; ".join(parts) or "nothing to do"
