"""Shared metadata for the test-only plugins in this folder."""

from __future__ import annotations

from typing import Any

from leadbridge.metadata import AuthKind, ConnectorInfo, ObjectSpec
from leadbridge.types import Direction, HubKind

CONTACT = ObjectSpec(
    name="contact",
    label="Contacts",
    hub_kind=HubKind.CONTACT,
    directions=frozenset({Direction.TO_CRM, Direction.FROM_CRM, Direction.BOTH}),
)


def make_info(name: str, **overrides: Any) -> ConnectorInfo:
    """A valid ConnectorInfo called ``name``; ``overrides`` break it on purpose."""
    values: dict[str, Any] = {
        "name": name,
        "display_name": name.replace("_", " ").title(),
        "description": "A test-only connector.",
        "version": "1.0.0",
        "auth_kind": AuthKind.NONE,
        "settings": (),
        "objects": (CONTACT,),
    }
    values.update(overrides)
    return ConnectorInfo(**values)
