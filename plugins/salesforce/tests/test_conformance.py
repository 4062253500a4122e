"""The core's contract checks, run against the Salesforce connector and its sandbox."""

from __future__ import annotations

from leadbridge.testing import ConnectorConformance, ConnectorHarness
from leadbridge_salesforce.sandbox import SalesforceSandbox


class TestConformance(ConnectorConformance):
    connector = "salesforce"

    def test_rate_limit_answer_is_waited_out_not_hammered(  # type: ignore[override]
        self, harness: ConnectorHarness, sandbox: SalesforceSandbox
    ) -> None:
        """Salesforce's variant: it never answers 429; its throttle is 403 ``REQUEST_LIMIT_EXCEEDED``
        (``ConcurrentPerOrgLongTxn``) without ``Retry-After``. It must be retried once, not hammered
        and not mistaken for a permission error."""
        harness.login()
        before = sandbox.count_calls()
        harness.fields("Lead")
        normal_calls = sandbox.count_calls() - before
        sandbox.fail_next(429, mode="rate_limit", retry_after=1)
        before = len(sandbox.calls)
        assert harness.fields("Lead")
        calls = sandbox.calls[before:]
        assert [c.status for c in calls] == [403] + [200] * normal_calls
        assert harness.stats.rate_limited == 1
        assert harness.stats.retries == 1
