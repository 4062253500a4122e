"""What the panel and the engine learn from the connector's metadata."""

from __future__ import annotations

import pytest
from flask import Flask
from leadbridge.app import get_plugins
from leadbridge.errors import ConfigError
from leadbridge.metadata import validate_settings
from leadbridge.types import Direction, HubKind


def test_objects_directions_and_schedule(app_ctx: Flask) -> None:
    info = get_plugins().info("salesforce")
    objects = {o.name: o for o in info.objects}
    assert Direction.TO_CRM in objects["Lead"].directions and Direction.FROM_CRM in objects["Lead"].directions
    assert objects["Contact"].directions == {Direction.FROM_CRM}  # never written, as the brief says
    assert objects["Account"].directions == {Direction.FROM_CRM}
    assert objects["Task"].hub_kind is HubKind.ACTION and objects["Campaign"].hub_kind is HubKind.CAMPAIGN
    assert info.default_interval_minutes == 120  # every two hours
    assert {
        "consumer_key",
        "consumer_secret",
        "password",
        "security_token",
        "private_key",
    } <= info.secret_names
    assert info.logo_svg and info.logo_svg.startswith("<svg")


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"my_domain": "evil.example.com/x"}, "My Domain"),
        ({"contact_flag_field": "Flag__c FROM Lead"}, "Contact import flag field"),
        ({"contact_flag_values": "Yes') OR (Id != '"}, "Flag values"),
        ({"api_version": "66"}, "API version"),
    ],
)
def test_settings_that_could_aim_or_inject_are_refused(
    app_ctx: Flask, values: dict[str, str], problem: str
) -> None:
    info = get_plugins().info("salesforce")
    with pytest.raises(ConfigError, match=problem):
        validate_settings(info, {"consumer_key": "k", **values})
