"""A 50,000-contact push through the engine: bulk imports, under 4 requests per second, zero 429s."""

from __future__ import annotations

from typing import Any

import pytest
from leadbridge.db import db
from leadbridge.models import Connection, Contact
from leadbridge.sync import default_mappings, run_sync
from sqlalchemy import insert

pytestmark = pytest.mark.slow


def seed_hub(count: int) -> None:
    rows = [
        {
            "email": f"vol.{i}@example.com",
            "email_key": f"vol.{i}@example.com",
            "first_name": f"First{i}",
            "last_name": f"Last{i}",
            "title": "Buyer",
            "company_name": f"Company {i % 500}",
            "custom": {},
            "field_changed_at": {},
            "consent": "none",
            "unsubscribed": False,
        }
        for i in range(count)
    ]
    db.session.execute(insert(Contact), rows)
    db.session.commit()


def test_fifty_thousand_contacts_go_through_bulk_imports_without_a_429(
    connection: Connection, sandbox: Any
) -> None:
    default_mappings(connection)
    db.session.commit()
    seed_hub(50_000)
    run = run_sync(connection.id, direction="to_crm")
    assert run.status == "succeeded", run.error
    assert run.counts["crm"]["created"] == 50_000
    assert sandbox.contact_count() == 50_000
    imports = sandbox.count_calls("POST", "/v3/activities/contacts_json_import")
    assert 2 <= imports <= 4  # 40,000 per request at most, and under 4 MB each
    assert sandbox.count_calls("POST", "/v3/contacts/sign_up_form") == 0
    # The sandbox enforces Constant Contact's 4 requests per second (token bucket): it never fired.
    assert sandbox.rate_limit == (4, 1.0)
    assert sandbox.rate_limited_count == 0
    # Every API call of the push, per record: far below one.
    assert sandbox.count_calls(prefix="/v3/") / 50_000 < 0.01
