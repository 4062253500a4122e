"""Per-run memory: one VendorClient serves one run, so lookups are cached against it and vanish with it."""

from __future__ import annotations

from typing import Any
from weakref import WeakKeyDictionary

from leadbridge.http import VendorClient

_caches: WeakKeyDictionary[VendorClient, dict[str, Any]] = WeakKeyDictionary()


def run_cache(client: VendorClient, name: str) -> dict[str, Any]:
    """A dict named ``name`` that lives as long as ``client`` (reuse account lookups within a run)."""
    per_client = _caches.setdefault(client, {})
    cache: dict[str, Any] = per_client.setdefault(name, {})
    return cache
