"""Helpers for the PlanMill tests (imported by name: test modules of plugins share no package)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from leadbridge.app import get_plugins
from leadbridge.connections import client_for, view
from leadbridge.http import CallStats, VendorClient
from leadbridge.models import Connection


@dataclass
class Hooks:
    """Calls hooks on one connection with one VendorClient (what one engine run does)."""

    conn: Connection
    client: VendorClient
    stats: CallStats

    def __call__(self, hook: str, **kw: Any) -> Any:
        return get_plugins().call(view(self.conn), hook, client=self.client, **kw)

    def new_run(self) -> Hooks:
        stats = CallStats()
        return Hooks(self.conn, client_for(self.conn, stats=stats), stats)
