"""The core's contract checks, run against the Pipedrive → Maileon connector and its sandbox."""

from __future__ import annotations

from leadbridge.testing import ConnectorConformance


class TestConformance(ConnectorConformance):
    connector = "pipedrive_maileon"
