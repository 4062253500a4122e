"""Field-type compatibility and value conversion between the hub and a CRM.

Every field on both sides has one of the 12 :class:`~leadbridge.types.FieldType` values. Values
travel in one canonical, JSON-friendly form per type, so fingerprints and stored ``last_values``
compare exactly:

* text, textarea, email, url, phone, select: ``str``
* number: ``int`` when integral, else ``float``
* multiselect: ``list[str]`` (order kept, duplicates dropped)
* date: ``"YYYY-MM-DD"``; datetime: ISO 8601 in UTC (``"2026-01-31T08:00:00+00:00"``); time: ``"HH:MM:SS"``
* boolean: ``bool``

The compatibility table says, for each pair of types, whether a mapping converts *always*, only
when each value qualifies (*checked*: text → number only for numeric text), or is *refused* (a
mapping editor refuses it when saved, with :func:`compatibility_reason`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from .errors import ConfigError, RecordError
from .types import FieldType

Compatibility = Literal["always", "checked", "refused"]

F = FieldType
TEXTUAL = frozenset({F.TEXT, F.TEXTAREA})
STRINGS = frozenset({F.TEXT, F.TEXTAREA, F.EMAIL, F.URL, F.PHONE, F.SELECT})

_ALWAYS: set[tuple[FieldType, FieldType]] = {
    (F.SELECT, F.MULTISELECT),
    (F.BOOLEAN, F.NUMBER),
    (F.DATE, F.DATETIME),
    (F.DATETIME, F.DATE),
}
_CHECKED: set[tuple[FieldType, FieldType]] = {
    (F.MULTISELECT, F.SELECT),  # only when at most one option is chosen
    (F.NUMBER, F.SELECT),
    (F.SELECT, F.NUMBER),
    (F.NUMBER, F.BOOLEAN),
    (F.SELECT, F.BOOLEAN),
    (F.BOOLEAN, F.SELECT),
    (F.PHONE, F.NUMBER),
}
for _t in TEXTUAL:
    for _target in F:
        _CHECKED.add((_t, _target))  # text → anything if the value parses as that type
for _source in F:
    for _t in TEXTUAL:
        _ALWAYS.add((_source, _t))  # anything → text (multiselect by joining)

_WHY_REFUSED: dict[tuple[FieldType, FieldType], str] = {
    (F.MULTISELECT, F.NUMBER): "several options cannot become one number",
    (F.DATE, F.NUMBER): "a date is not a number",
    (F.EMAIL, F.PHONE): "an email address is not a phone number",
}

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# A bare domain ("acme.example") is accepted too: CRMs store websites both ways.
_URL = re.compile(r"^(https?://)?[^\s/$.?#@][^\s@]*\.[^\s@]+$", re.IGNORECASE)
_PHONE = re.compile(r"^\+?[0-9 ()./-]{3,40}$")
_TRUE = {"1", "true", "yes", "y", "on", "x"}
_FALSE = {"0", "false", "no", "n", "off", ""}


class ConversionError(RecordError):
    """A value cannot be converted to the target field's type (one record is skipped, not the run)."""


def compatibility(source: FieldType, target: FieldType) -> Compatibility:
    """Whether values of ``source`` type convert to ``target``: always, checked per value, or refused."""
    if source is target or (source, target) in _ALWAYS:
        return "always"
    if (source, target) in _CHECKED:
        return "checked"
    return "refused"


def compatibility_reason(source: FieldType, target: FieldType) -> str | None:
    """``None`` when a mapping ``source`` → ``target`` is allowed, else a sentence saying why not."""
    if compatibility(source, target) != "refused":
        return None
    why = _WHY_REFUSED.get((source, target), f"{source.value} values cannot become {target.value} values")
    return f"cannot map a {source.value} field to a {target.value} field: {why}"


def check_compatible(source: FieldType, target: FieldType) -> None:
    """Raise :class:`ConfigError` with the reason when ``source`` → ``target`` is refused."""
    reason = compatibility_reason(source, target)
    if reason:
        raise ConfigError(reason, code="incompatible_types")


def is_empty(value: Any) -> bool:
    """``None``, blank text and empty lists count as empty (for write policy "only if empty")."""
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def validate(value: Any, type_: FieldType) -> Any:
    """Return ``value`` in the canonical form of ``type_``; :class:`ConversionError` when it is not one.

    ``None`` (and blank text for non-text types) stays ``None``.
    """
    if value is None:
        return None
    return _to(type_, value, source=_guess(value))


def convert(value: Any, source: FieldType, target: FieldType) -> Any:
    """Convert a ``source``-typed value to ``target``; :class:`ConversionError` when it cannot be.

    A refused pair raises :class:`ConversionError` for every non-empty value.
    """
    if value is None:
        return None
    if source is target and _canonical(value, target):
        return value  # the common case (text to text, int to number): nothing to do
    if compatibility(source, target) == "refused":
        raise ConversionError(compatibility_reason(source, target) or "refused", code="type_mismatch")
    value = validate(value, source)
    if value is None:
        return None
    return _to(target, value, source=source)


def _canonical(value: Any, type_: FieldType) -> bool:
    kind = type(value)
    if type_ in (F.TEXT, F.TEXTAREA, F.SELECT):
        return kind is str
    if type_ is F.NUMBER:
        return kind is int
    if type_ is F.BOOLEAN:
        return kind is bool
    return False


def _guess(value: Any) -> FieldType:
    if isinstance(value, bool):
        return F.BOOLEAN
    if isinstance(value, int | float | Decimal):
        return F.NUMBER
    if isinstance(value, list | tuple | set | frozenset):
        return F.MULTISELECT
    if isinstance(value, datetime):
        return F.DATETIME
    if isinstance(value, date):
        return F.DATE
    if isinstance(value, time):
        return F.TIME
    return F.TEXT


def _fail(value: Any, target: FieldType, why: str = "") -> ConversionError:
    shown = str(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return ConversionError(
        f"{shown!r} is not a valid {target.value}{': ' + why if why else ''}", code="type_mismatch"
    )


def _to(target: FieldType, value: Any, *, source: FieldType) -> Any:
    if target in TEXTUAL:
        return _as_text(value)
    if isinstance(value, str) and not value.strip() and target is not F.MULTISELECT:
        return None
    if target is F.EMAIL:
        text = _as_text(value).strip()
        if not _EMAIL.match(text):
            raise _fail(value, target)
        return text
    if target is F.URL:
        text = _as_text(value).strip()
        if not _URL.match(text):
            raise _fail(value, target, "expected a web address")
        return text
    if target is F.PHONE:
        text = _as_text(value).strip()
        if not _PHONE.match(text):
            raise _fail(value, target)
        return text
    if target is F.SELECT:
        if isinstance(value, list | tuple):
            if len(value) > 1:
                raise _fail(value, target, "several options chosen")
            return str(value[0]) if value else None
        return _as_text(value)
    if target is F.MULTISELECT:
        if isinstance(value, list | tuple | set | frozenset):
            items = [str(v).strip() for v in value]
        else:
            items = [p.strip() for p in re.split(r"[;,]", _as_text(value))]
        return list(dict.fromkeys(i for i in items if i))
    if target is F.NUMBER:
        return _as_number(value, target)
    if target is F.BOOLEAN:
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float) and value in (0, 1):
            return bool(value)
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise _fail(value, target)
    if target is F.DATE:
        if isinstance(value, datetime):
            return _utc(value).date().isoformat()
        if isinstance(value, date):
            return value.isoformat()
        text = str(value).strip()
        try:
            return date.fromisoformat(text[:10]).isoformat()
        except ValueError:
            raise _fail(value, target, "expected YYYY-MM-DD") from None
    if target is F.DATETIME:
        if isinstance(value, datetime):
            return _utc(value).isoformat()
        if isinstance(value, date):
            return datetime(value.year, value.month, value.day, tzinfo=UTC).isoformat()
        text = str(value).strip().replace("Z", "+00:00")
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise _fail(value, target, "expected ISO 8601") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)  # text without an offset: the contract's times are UTC
        return _utc(parsed).isoformat()
    if target is F.TIME:
        if isinstance(value, time):
            return value.replace(microsecond=0).isoformat()
        try:
            return time.fromisoformat(str(value).strip()).replace(microsecond=0).isoformat()
        except ValueError:
            raise _fail(value, target, "expected HH:MM[:SS]") from None
    raise _fail(value, target)  # pragma: no cover - every type handled above


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(str(v) for v in value)
    if isinstance(value, datetime):
        return _utc(value).isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _as_number(value: Any, target: FieldType) -> int | float:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float | Decimal):
        number = Decimal(str(value))
    else:
        text = str(value).strip().replace(" ", "").replace("\u00a0", "")
        if re.fullmatch(r"-?\d+,\d+", text):
            text = text.replace(",", ".")  # decimal comma
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise _fail(value, target) from None
    if not number.is_finite():
        raise _fail(value, target)
    return int(number) if number == number.to_integral_value() else float(number)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ConversionError(f"{value.isoformat()!r} has no time zone", code="naive_datetime")
    return value.astimezone(UTC)


def map_choice(value: Any, value_map: Mapping[str, str], *, reverse: bool = False) -> Any:
    """Translate select/multiselect option values through a mapping's ``value_map``.

    ``value_map`` is hub value → remote value; ``reverse`` translates remote values back to hub ones.
    Values the map does not mention pass through unchanged.
    """
    if not value_map or value is None:
        return value
    table = {v: k for k, v in value_map.items()} if reverse else dict(value_map)
    if isinstance(value, list | tuple):
        return [table.get(str(v), v) for v in value]
    return table.get(str(value), value)
