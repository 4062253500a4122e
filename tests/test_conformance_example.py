"""The conformance suite against the example connector (the reference every connector copies)."""

from __future__ import annotations

from leadbridge.testing import ConnectorConformance


class TestExampleConformance(ConnectorConformance):
    connector = "example"
