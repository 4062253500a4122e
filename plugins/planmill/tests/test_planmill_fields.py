"""Field types from PlanMill's metadata, presets, and value conversion."""

from __future__ import annotations

from datetime import UTC, datetime

from leadbridge.types import Choice, Direction, FieldType
from leadbridge_planmill.fields import parse_choices, to_planmill, writable_body
from leadbridge_planmill.sandbox import PlanMillSandbox
from planmill_testkit import Hooks


def test_contact_fields_are_typed_from_meta_with_presets(hooks: Hooks, pm: PlanMillSandbox) -> None:
    fields = {f.name: f for f in hooks("field_types", object_type="contact")}
    assert pm.count_calls("GET", "/acme/api/1.5/contacts/meta") == 1
    assert fields["email"].type is FieldType.EMAIL and fields["email"].hub_field == "email"
    assert fields["lastName"].required and fields["lastName"].hub_field == "last_name"
    assert fields["firstName"].hub_field == "first_name"
    assert fields["mobilePhone"].type is FieldType.PHONE and fields["mobilePhone"].hub_field == "phone"
    assert fields["website"].type is FieldType.URL
    assert fields["modified"].type is FieldType.DATETIME and not fields["modified"].writable
    assert fields["modified"].directions == frozenset({Direction.FROM_CRM})
    language = fields["languageCode"]
    assert language.type is FieldType.SELECT
    assert Choice("fi", "Finnish") in language.choices  # contact meta maps value -> label
    assert Choice("1", "Inactive") in fields["passive"].choices
    assert "secondaryEmail" in fields  # writable though the list meta leaves it out
    assert "account" not in fields and "id" not in fields  # managed by the connector


def test_account_fields_parse_label_to_value_meta(hooks: Hooks) -> None:
    fields = {f.name: f for f in hooks("field_types", object_type="account")}
    assert fields["name"].required and fields["name"].hub_field == "name"
    assert fields["type"].type is FieldType.NUMBER  # an enumeration id
    assert fields["email"].type is FieldType.EMAIL


def test_meta_value_maps_are_read_in_either_orientation() -> None:
    assert parse_choices({"Prospect": "8", "Customer": "3"}, label_first=False) == (
        Choice("8", "Prospect"),
        Choice("3", "Customer"),
    )
    assert parse_choices({"8": "Prospect", "-1": "All"}, label_first=True) == (Choice("8", "Prospect"),)


def test_values_are_sent_as_planmill_types() -> None:
    assert to_planmill("contact", "passive", "1") == 1
    assert to_planmill("contact", "primaryCountry", 73.0) == 73
    when = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    assert to_planmill("action", "start", when) == "2026-03-01T08:00:00.000+0000"
    body = writable_body("contact", {"firstName": None, "lastName": None, "accountName": "x", "title": "CTO"})
    assert body == {"firstName": "", "title": "CTO"}  # never null a string-only field, never blank lastName
