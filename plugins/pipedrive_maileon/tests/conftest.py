"""Fixtures for the Pipedrive → Maileon connector's tests (the shared ones come from leadbridge.testing)."""

from __future__ import annotations

import pytest


@pytest.fixture
def leadbridge_connector() -> str:
    return "pipedrive_maileon"


@pytest.fixture
def harness(connection, sandbox):  # type: ignore[no-untyped-def]
    """Calls the connection's hooks the way the core does (leadbridge.testing.ConnectorHarness)."""
    from leadbridge.testing import ConnectorHarness

    return ConnectorHarness(connection, sandbox)
