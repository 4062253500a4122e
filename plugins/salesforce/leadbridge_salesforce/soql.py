"""SOQL literals and the few statements the connector sends (kept to the subset the sandbox parses).

Escaping follows Salesforce's quoting rules (as ``simple_salesforce.format`` does): strings in single
quotes with backslash escapes, datetimes unquoted ISO 8601, booleans ``true``/``false``. Field and
object names are never quoted, so they are checked against a strict pattern instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,79}(\.[A-Za-z][A-Za-z0-9_]{0,79})?$")
_ESCAPES = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}


def name(value: str) -> str:
    """A field or object name, refused unless it is a plain API name (no SOQL can be smuggled in)."""
    if not _NAME.match(value):
        raise ValueError(f"not a Salesforce API name: {value!r}")
    return value


def quote(value: object) -> str:
    """A SOQL literal for ``value``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    text = "".join(_ESCAPES.get(ch, ch) for ch in str(value))
    return f"'{text}'"


def in_list(values: Iterable[object]) -> str:
    """``('a','b')`` for an ``IN`` clause."""
    return "(" + ",".join(quote(v) for v in values) + ")"


def select(
    fields: Sequence[str],
    sobject: str,
    where: str | None = None,
    order_by: Sequence[str] = (),
    limit: int | None = None,
) -> str:
    """Build ``SELECT ... FROM ... [WHERE] [ORDER BY] [LIMIT]`` from checked names."""
    # Names pass name()'s strict pattern and values go through quote(): nothing is interpolated raw.
    parts = [f"SELECT {', '.join(name(f) for f in fields)} FROM {name(sobject)}"]  # noqa: S608
    if where:
        parts.append(f"WHERE {where}")
    if order_by:
        parts.append("ORDER BY " + ", ".join(order_by))
    if limit is not None:
        parts.append(f"LIMIT {int(limit)}")
    return " ".join(parts)
