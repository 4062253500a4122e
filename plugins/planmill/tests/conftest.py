"""Fixtures for the PlanMill connector tests: the shared leadbridge fixtures aimed at PlanMill, plus
a small handle that calls this connector's hooks the way the core does (Plugins.call + VendorClient)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from leadbridge.connections import client_for
from leadbridge.http import CallStats
from leadbridge.models import Connection
from leadbridge_planmill.sandbox import PlanMillSandbox
from planmill_testkit import Hooks


@pytest.fixture
def leadbridge_connector() -> str:
    return "planmill"


@pytest.fixture
def hooks(app_ctx: Flask, connection: Connection) -> Hooks:
    stats = CallStats()
    return Hooks(connection, client_for(connection, stats=stats), stats)


@pytest.fixture
def pm(sandbox: PlanMillSandbox) -> PlanMillSandbox:
    """The sandbox, typed as PlanMill's."""
    return sandbox


MakeHooks = Callable[..., Hooks]


@pytest.fixture
def make_hooks(app_ctx: Flask, make_connection: Callable[..., Connection]) -> MakeHooks:
    def make(**kw: Any) -> Hooks:
        conn = make_connection(**kw)
        stats = CallStats()
        return Hooks(conn, client_for(conn, stats=stats), stats)

    return make
