"""Fixtures for the Salesforce connector's tests (the shared ones come from leadbridge.testing)."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def leadbridge_connector() -> str:
    return "salesforce"


@pytest.fixture
def harness(connection: Any, sandbox: Any) -> Any:
    """Calls the connection's hooks the way the core does (leadbridge.testing.ConnectorHarness)."""
    from leadbridge.testing import ConnectorHarness

    return ConnectorHarness(connection, sandbox)
