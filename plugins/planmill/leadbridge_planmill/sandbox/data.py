"""The vendor files the sandbox serves and validates with (PlanMill's own JSON schemas and samples,
from planmill/api ``api_docs/`` at commit 9981676a; see the team's shared/vendor-specs/planmill/SOURCE.md)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any


def load(name: str) -> Any:
    """A JSON file from ``data/``; some vendor meta samples are Latin-1, so fall back to it."""
    raw = resources.files(__package__).joinpath("data", name).read_bytes()
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return json.loads(raw.decode("latin-1"))


@cache
def schema(name: str) -> dict[str, Any]:
    result: dict[str, Any] = load(name)
    return result


def item_properties(schema_name: str) -> frozenset[str]:
    """The keys a row may carry according to a ``*_getAll``/``*_getId`` schema."""
    doc = schema(schema_name)
    node: dict[str, Any] = doc
    ref = doc.get("$ref")
    if isinstance(ref, str):
        node = doc["definitions"][ref.rsplit("/", 1)[-1]]
    if node.get("type") == "array":
        node = node["items"]
    return frozenset(node.get("properties", {}))
