"""A loadable connector whose demo sandbox fails while starting (``leadbridge demo`` must go on)."""

from __future__ import annotations

from lb_plugin_common import make_info
from leadbridge import hookimpl
from leadbridge.metadata import ConnectorInfo
from leadbridge.sandbox import Sandbox


class FailingSandbox(Sandbox):
    name = "bad_sandbox"

    def seed_demo(self) -> None:
        raise RuntimeError("demo data file missing")


@hookimpl
def connector_info() -> ConnectorInfo:
    return make_info("bad_sandbox")


@hookimpl
def connector_sandbox() -> Sandbox:
    return FailingSandbox()
