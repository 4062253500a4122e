""" "0 writes on a no-op": a full sync right after a pull, with nothing changed on either side, writes
nothing to the CRM — for every shipped connector (it used to re-send every contact with a company)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from leadbridge.models import Connection
from leadbridge.sync import run_sync

CONNECTORS = ["example", "planmill", "salesforce", "constantcontact"]
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@pytest.fixture(params=CONNECTORS)
def leadbridge_connector(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _vendor_writes(sandbox: Any) -> list[str]:
    """Write requests the sandbox answered. Left out: token and login endpoints, and Salesforce's
    ``POST /composite``, which the connector only sends with GET sub-requests (batched lookups)."""
    exempt = tuple(getattr(sandbox, "exempt_prefixes", ()) or ())
    return [
        f"{c.method} {c.path}"
        for c in list(sandbox.calls)
        if c.method in WRITE_METHODS
        and not (exempt and c.path.startswith(exempt))
        and "token" not in c.path
        and not c.path.endswith("/composite")
    ]


def test_a_full_sync_right_after_a_pull_writes_nothing(
    app_ctx: Flask, connection: Connection, sandbox: Any
) -> None:
    sandbox.seed_demo()
    pulled = run_sync(connection.id, direction="from_crm")
    assert pulled.status == "succeeded", pulled.error
    assert pulled.counts["hub"]["created"] > 0
    sandbox.reset_calls()
    full = run_sync(connection.id, full=True)  # the connection's own direction: both ways
    assert full.status == "succeeded", full.error
    assert full.direction == "both"
    crm = full.counts["crm"]
    assert (crm["created"], crm["updated"], crm["deleted"], crm["failed"]) == (0, 0, 0, 0), crm
    assert _vendor_writes(sandbox) == []
