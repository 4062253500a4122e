"""The core's connector conformance suite, run against PlanMill's sandbox."""

from __future__ import annotations

from leadbridge.testing import ConnectorConformance


class TestConformance(ConnectorConformance):
    connector = "planmill"
