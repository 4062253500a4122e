"""PlanMill's datetime format: ``yyyy-MM-dd'T'HH:mm:ss.SSSZ`` with a colon-less offset (``+0200``)."""

from __future__ import annotations

from datetime import UTC, datetime


def format_dt(value: datetime) -> str:
    """Render an aware datetime the way PlanMill reads it (UTC, ``+0000``, milliseconds)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def parse_dt(value: object) -> datetime | None:
    """Parse a PlanMill datetime into aware UTC; ``None`` for empty or unparsable values."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    for pattern in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            return datetime.strptime(text, pattern).astimezone(UTC)
        except ValueError:
            continue
    return None
