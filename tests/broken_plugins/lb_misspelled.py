"""A connector with a typo in a hook name: without check_pending it would silently never be called."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lb_plugin_common import make_info
from leadbridge import hookimpl
from leadbridge.metadata import ConnectorInfo
from leadbridge.types import Contact, Outcome, RecordResult


@hookimpl
def connector_info() -> ConnectorInfo:
    return make_info("misspelled")


@hookimpl
def upsert_contcat(
    connection: Any, client: Any, object_type: str, contacts: Sequence[Contact]
) -> list[RecordResult]:
    return [RecordResult(Outcome.CREATED, ref=c.ref) for c in contacts]
