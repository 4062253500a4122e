"""The vendor-type table: one declaration drives field typing, directions and wire conversion."""

from __future__ import annotations

from datetime import datetime

import pytest
from leadbridge.toolkit.vendortypes import (
    READ_ONLY,
    TypeTable,
    VendorType,
    boolean,
    iso,
    join,
    number,
    numeric_string,
    split,
)
from leadbridge.types import Direction, FieldType

#: Sellsy's v2 custom-field types as its brief and API notes describe them.
SELLSY = TypeTable(
    VendorType("simple-text", FieldType.TEXT),
    VendorType("rich-text", FieldType.TEXTAREA),
    VendorType("numeric", FieldType.NUMBER, read=number, write=numeric_string),
    VendorType("amount", FieldType.NUMBER, read=lambda v: number(v["amount"]), directions=READ_ONLY),
    VendorType("checkbox", FieldType.MULTISELECT),
    VendorType("boolean", FieldType.BOOLEAN, read=boolean(("y", "true"))),
    VendorType("company-individual", None),
    fallback=None,
)


def test_types_say_what_a_field_becomes_and_which_way_it_may_flow() -> None:
    assert SELLSY.hub_type("numeric") is FieldType.NUMBER
    assert SELLSY.hub_type("company-individual") is None and not SELLSY.synced("company-individual")
    assert SELLSY.hub_type("something-new") is None  # fallback=None: an unknown type is not synced
    assert SELLSY.directions("amount") == READ_ONLY
    assert Direction.TO_CRM in SELLSY.directions("numeric")
    assert SELLSY.directions("numeric", writable=False) == READ_ONLY


def test_values_cross_both_ways_in_the_vendors_wire_form() -> None:
    assert SELLSY.to_hub("15", "numeric") == 15 and SELLSY.to_hub("15.26", "numeric") == 15.26
    assert SELLSY.to_vendor(15, "numeric") == "15"
    assert SELLSY.to_hub({"amount": "15.26", "currency": "EUR"}, "amount") == 15.26
    assert SELLSY.to_hub("Y", "boolean") is True and SELLSY.to_hub("N", "boolean") is False
    assert SELLSY.to_hub(None, "numeric") is None and SELLSY.to_vendor(None, "numeric") is None
    assert SELLSY.to_hub([1, 2], "checkbox") == [1, 2]  # no converter: unchanged
    assert SELLSY.to_hub("n/a", "numeric") == "n/a"  # unreadable: passed on for the engine to refuse


def test_shared_converters() -> None:
    assert split(";")("a;;b") == ["a", "b"] and join(";")(["a", "b"]) == "a;b"
    parse = iso(lambda v: datetime.fromisoformat(v.replace("Z", "+00:00")))
    assert parse("2026-01-31T08:00:00Z") == "2026-01-31T08:00:00+00:00"
    with pytest.raises(ValueError):
        number("not a number")


def test_type_names_are_unique() -> None:
    with pytest.raises(ValueError, match="unique"):
        TypeTable(VendorType("a", FieldType.TEXT), VendorType("a", FieldType.NUMBER))
