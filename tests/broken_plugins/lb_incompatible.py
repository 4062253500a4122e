"""A connector written for a future leadbridge."""

from __future__ import annotations

from lb_plugin_common import make_info
from leadbridge import hookimpl
from leadbridge.metadata import ConnectorInfo


@hookimpl
def connector_info() -> ConnectorInfo:
    return make_info("incompatible", requires_core=">=99")
