"""A vendor's field types, declared once: the hub type each becomes and how values cross both ways.

Connectors used to keep a type dictionary for the mapping screen and, elsewhere, ``if`` chains that
convert values on reads and writes; the two drifted. A :class:`TypeTable` is both::

    SELLSY = TypeTable(
        VendorType("simple-text", FieldType.TEXT),
        VendorType("numeric", FieldType.NUMBER, read=number, write=numeric_string),
        VendorType("amount", FieldType.NUMBER, read=lambda v: number(v["amount"]), directions=READ_ONLY),
        VendorType("company-individual", None),  # ids of other records: not synced
    )
    SELLSY.hub_type("numeric")               # FieldType.NUMBER
    SELLSY.to_hub("15", "numeric")           # 15
    SELLSY.to_vendor(15, "numeric")          # "15"

The engine converts between hub types (:mod:`leadbridge.fieldtypes`) before a value reaches the
connector; the table only handles the vendor's wire form (``"a;b"`` for a multi-select, a numeric
string, the vendor's date format), and the directions a type allows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from ..types import Direction, FieldType

Convert = Callable[[Any], Any]

BOTH_WAYS = frozenset({Direction.TO_CRM, Direction.FROM_CRM, Direction.BOTH})
READ_ONLY = frozenset({Direction.FROM_CRM})
WRITE_ONLY = frozenset({Direction.TO_CRM})


@dataclass(frozen=True, slots=True)
class VendorType:
    """One vendor field type.

    :param name: the vendor's name for it (``multipicklist``, ``numeric``).
    :param hub: the hub type its values become; ``None`` when fields of this type are not synced
        (compound values, references to other records).
    :param read: vendor value → the hub type's canonical value (``None``: unchanged).
    :param write: canonical hub value → what the vendor accepts (``None``: unchanged).
    :param directions: which way its fields may flow (an amount Sellsy computes: ``READ_ONLY``).
    """

    name: str
    hub: FieldType | None
    read: Convert | None = None
    write: Convert | None = None
    directions: frozenset[Direction] = BOTH_WAYS


class TypeTable:
    """A vendor's :class:`VendorType` s by name.

    :param fallback: the hub type of a type the table does not list (``None``: not synced).
    """

    def __init__(
        self,
        *types: VendorType,
        fallback: FieldType | None = FieldType.TEXT,
        fallback_write: Convert | None = None,
    ) -> None:
        self.types = {t.name: t for t in types}
        if len(self.types) != len(types):
            raise ValueError("vendor type names must be unique")
        self.fallback = fallback
        self.fallback_write = fallback_write

    def __contains__(self, name: object) -> bool:
        return name in self.types

    def get(self, name: str | None) -> VendorType:
        found = self.types.get(str(name))
        return found if found is not None else VendorType(str(name), self.fallback, write=self.fallback_write)

    def hub_type(self, name: str | None) -> FieldType | None:
        """The hub type of vendor type ``name``; ``None`` when its fields are not synced."""
        return self.get(name).hub

    def synced(self, name: str | None) -> bool:
        return self.get(name).hub is not None

    def directions(self, name: str | None, *, writable: bool = True) -> frozenset[Direction]:
        """The directions a field of this type allows (only from the CRM when not ``writable``)."""
        allowed = self.get(name).directions
        return allowed & READ_ONLY if not writable else allowed

    def to_hub(self, value: Any, name: str | None) -> Any:
        """A vendor value in the hub's terms (``None`` stays ``None``).

        A value the reader cannot convert (``"n/a"`` in a number field) is passed on as it is: the
        engine's type check then fails that one record with a clear reason, never the whole page.
        """
        if value is None:
            return None
        convert = self.get(name).read
        if convert is None:
            return value
        try:
            return convert(value)
        except (ValueError, TypeError, KeyError, AttributeError):
            return value

    def to_vendor(self, value: Any, name: str | None) -> Any:
        """A hub value in the vendor's wire form (``None`` stays ``None``)."""
        if value is None:
            return None
        convert = self.get(name).write
        return convert(value) if convert is not None else value


# -- converters vendors share ----------------------------------------------------------------------


def split(separator: str) -> Convert:
    """``"a;b"`` → ``["a", "b"]`` (empty parts dropped; a list passes through)."""

    def read(value: Any) -> list[str]:
        if isinstance(value, list | tuple):
            return [str(v) for v in value]
        return [part for part in str(value).split(separator) if part]

    return read


def join(separator: str) -> Convert:
    """``["a", "b"]`` → ``"a;b"`` (a string passes through)."""

    def write(value: Any) -> str:
        if isinstance(value, list | tuple | set):
            return separator.join(str(v) for v in value)
        return str(value)

    return write


def text(value: Any) -> str:
    """Any value as the vendor's text (numbers, booleans and dates included)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def number(value: Any) -> int | float:
    """A number or a numeric string (``"15"``, ``"15.26"``) as ``int`` when integral, else ``float``."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return value
    parsed = float(str(value).strip().replace(",", "."))
    return int(parsed) if parsed.is_integer() else parsed


def numeric_string(value: Any) -> str:
    """A number as the numeric string some vendors require (``15`` → ``"15"``, ``1.5`` → ``"1.5"``)."""
    n = number(value)
    return str(n)


def boolean(true: Iterable[str] = ("1", "true", "yes", "on", "y")) -> Convert:
    """A boolean, or a vendor's word for one (``"Y"``/``"N"``), as ``bool``."""
    words = {w.lower() for w in true}

    def read(value: Any) -> bool:
        if isinstance(value, bool):
            return value
        return str(value).strip().lower() in words

    return read


def iso(parse: Callable[[str], datetime]) -> Convert:
    """A vendor timestamp (parsed by ``parse``) as the hub's ISO 8601 form."""
    return lambda value: value.isoformat() if isinstance(value, datetime) else parse(str(value)).isoformat()


__all__ = [
    "BOTH_WAYS",
    "READ_ONLY",
    "WRITE_ONLY",
    "TypeTable",
    "VendorType",
    "boolean",
    "iso",
    "join",
    "number",
    "numeric_string",
    "split",
    "text",
]
