"""Fixtures for the Constant Contact connector's tests (the shared ones come from leadbridge.testing)."""

from __future__ import annotations

import pytest


@pytest.fixture
def leadbridge_connector() -> str:
    return "constantcontact"
