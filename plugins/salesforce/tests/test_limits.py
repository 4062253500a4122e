"""The daily allocation (Sforce-Limit-Info, 403 REQUEST_LIMIT_EXCEEDED), row locks and query locators."""

from __future__ import annotations

import pytest
from leadbridge.db import db
from leadbridge.errors import QuotaExhausted, TransientError
from leadbridge.models import Connection
from leadbridge.sync import default_mappings, run_sync
from leadbridge.testing import ConnectorHarness
from leadbridge_salesforce.errors import LocatorExpired
from leadbridge_salesforce.sandbox import SalesforceSandbox


def test_the_run_stops_cleanly_at_the_configured_share_of_the_daily_allocation(
    connection: Connection, sandbox: SalesforceSandbox
) -> None:
    sandbox.add_contacts(40)
    sandbox.page_size = 5
    sandbox.daily_limit, sandbox.api_usage = 100, 80  # other integrations already used 80 %
    connection.options = {**connection.options, "objects": ["Lead"]}
    db.session.commit()
    default_mappings(connection)
    db.session.commit()
    run = run_sync(connection.id)
    assert run.status == "paused", run.error
    assert run.resumes_at is not None
    assert sandbox.api_usage <= 91  # stopped at 90 % (DAILY_QUOTA_STOP_SHARE), one call in flight at most
    assert not [c for c in sandbox.calls if c.status == 403]  # it never ran into Salesforce's wall


def test_request_limit_exceeded_is_a_quota_not_a_permission_error(
    harness: ConnectorHarness, sandbox: SalesforceSandbox
) -> None:
    harness.login()
    sandbox.api_usage = sandbox.daily_limit
    with pytest.raises(QuotaExhausted) as caught:
        harness.fields("Lead")
    assert caught.value.code == "REQUEST_LIMIT_EXCEEDED"
    assert [c.status for c in sandbox.calls][-1:] == [403]
    assert sandbox.count_calls("GET", "/services/data/v66.0/sobjects/Lead/describe") == 1  # not retried


def test_a_row_lock_is_retried(harness: ConnectorHarness, sandbox: SalesforceSandbox) -> None:
    harness.login()
    body = [
        {"message": "unable to obtain exclusive access to this record", "errorCode": "UNABLE_TO_LOCK_ROW"}
    ]
    sandbox.fail_next(400, body=body, path_prefix="/services/data/v66.0/sobjects")
    assert harness.fields("Lead")
    assert harness.stats.retries == 1


def test_an_expired_query_locator_is_not_retried(
    harness: ConnectorHarness, sandbox: SalesforceSandbox
) -> None:
    sandbox.add_contacts(8)
    sandbox.page_size = 5
    first = harness.call("fetch_contacts", object_type="Lead", since=None, cursor=None)
    assert len(first.items) == 5 and first.next_cursor
    sandbox.locator_ttl = -1  # the cursor timed out while nobody read it
    before = len(sandbox.calls)
    with pytest.raises(TransientError) as caught:
        harness.call("fetch_contacts", object_type="Lead", since=None, cursor=first.next_cursor)
    assert isinstance(caught.value, LocatorExpired)
    assert len(sandbox.calls) - before == 1


def test_every_response_reports_usage_to_the_pacer(
    harness: ConnectorHarness, sandbox: SalesforceSandbox
) -> None:
    sandbox.daily_limit, sandbox.api_usage = 5000, 17
    harness.login()
    harness.fields("Lead")
    assert harness.client.pacer.daily_limit == 5000
    assert harness.client.pacer.daily_used >= 18
