"""A connector whose metadata is invalid: it declares no objects."""

from __future__ import annotations

from lb_plugin_common import make_info
from leadbridge import hookimpl
from leadbridge.metadata import ConnectorInfo


@hookimpl
def connector_info() -> ConnectorInfo:
    return make_info("bad_metadata", objects=())
