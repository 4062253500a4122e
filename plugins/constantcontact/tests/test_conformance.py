"""The core's contract checks, run against the Constant Contact connector and its sandbox."""

from __future__ import annotations

from leadbridge.testing import ConnectorConformance


class TestConformance(ConnectorConformance):
    connector = "constantcontact"
