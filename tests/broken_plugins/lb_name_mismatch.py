"""A connector whose metadata names it differently from its entry point."""

from __future__ import annotations

from lb_plugin_common import make_info
from leadbridge import hookimpl
from leadbridge.metadata import ConnectorInfo


@hookimpl
def connector_info() -> ConnectorInfo:
    return make_info("some_other_name")
