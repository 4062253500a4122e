"""Helpers for the PlanMill tests (imported by name: test modules of plugins share no package)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
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


#: PlanMill's published API documents, copied into this checkout (origin and licence: vendor/SOURCE.md).
VENDOR_DOCS = Path(__file__).resolve().parent / "vendor" / "api_docs"
SPEC_DIRS = (VENDOR_DOCS, Path(__file__).resolve().parents[1] / "leadbridge_planmill" / "sandbox" / "data")
REQUEST_SCHEMAS = [
    (re.compile(r"/api/1\.5/accounts/?$"), "account_post.schema"),
    (re.compile(r"/api/1\.5/accounts/\d+$"), "account_postId.schema"),
    (re.compile(r"/api/1\.5/contacts/?$"), "contact_post.schema"),
    (re.compile(r"/api/1\.5/contacts/\d+$"), "contact_postId.schema"),
    (re.compile(r"/api/1\.5/actions/?$"), "action1_5.schema"),
]


def spec_file(name: str) -> dict[str, Any]:
    for folder in SPEC_DIRS:
        path = folder / name
        if path.exists():
            raw = path.read_bytes()
            try:
                return json.loads(raw.decode("utf-8"))  # type: ignore[no-any-return]
            except UnicodeDecodeError:
                return json.loads(raw.decode("latin-1"))  # type: ignore[no-any-return]
    raise FileNotFoundError(name)


def schema_errors(schema_name: str, body: Any) -> list[str]:
    doc = spec_file(schema_name)
    validator = jsonschema.validators.validator_for(doc)(doc)
    return [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(body)]


def validate_request_bodies(pm: Any) -> int:
    """Check every JSON body the connector POSTed against PlanMill's schema for that endpoint."""
    checked = 0
    for method, path, _query, body in pm.requests:
        if method != "POST":
            continue
        for pattern, schema_name in REQUEST_SCHEMAS:
            if pattern.search(path):
                errors = schema_errors(schema_name, body)
                assert not errors, f"{path} {body}: {errors}"
                checked += 1
    assert checked, "no request was checked"
    return checked
