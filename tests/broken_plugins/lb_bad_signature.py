"""A connector whose hook asks for an argument the contract does not offer (pluggy refuses it)."""

from __future__ import annotations

from typing import Any

from lb_plugin_common import make_info
from leadbridge import hookimpl
from leadbridge.metadata import ConnectorInfo


@hookimpl
def connector_info() -> ConnectorInfo:
    return make_info("bad_signature")


@hookimpl
def upsert_contact(connection: Any, contacts: Any, dry_run: bool) -> list[Any]:
    return []
