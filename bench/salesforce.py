"""Benchmark: the Salesforce connector pushing 10,000 new leads, then a no-change re-sync.

    .venv/bin/python bench/salesforce.py [--count 10000]

Runs the real engine against the Salesforce sandbox on loopback with a throw-away SQLite database.
API calls are counted exactly (sandbox call log); times are reported as ratios (per record, and
re-sync vs push), since absolute times depend on the machine.
"""

from __future__ import annotations

import argparse
from collections import Counter

from _harness import connector_bench, push_then_resync
from leadbridge.db import db
from leadbridge.models import Contact
from leadbridge.sync import default_mappings

WRITES = ("POST", "PATCH", "DELETE", "PUT")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=10_000)
    args = parser.parse_args()
    with connector_bench("salesforce", options={"objects": ["Lead"]}) as bench:
        for i in range(args.count):
            c = Contact(
                first_name="Bench",
                last_name=f"Person{i}",
                company_name="Bench Oy",
                consent="none",
                unsubscribed=False,
                custom={},
                field_changed_at={},
            )
            c.set_email(f"bench{i}@example.fi")
            db.session.add(c)
        db.session.commit()  # the enabled check reads the connection in its own session
        default_mappings(bench.conn)
        db.session.commit()
        report(args.count, *push_then_resync(bench))


def report(n, push, push_calls, push_time, resync, resync_calls, resync_time):  # type: ignore[no-untyped-def]
    def summary(calls):  # type: ignore[no-untyped-def]
        return Counter(f"{c.method} {c.path.replace('/services/data/v66.0', '')}" for c in calls)

    print(f"push of {n} new leads: status={push.status} counts={push.counts['crm']}")
    print(f"  API calls: {len(push_calls)} ({len(push_calls) / n:.4f} per record)")
    for key, value in sorted(summary(push_calls).items()):
        print(f"    {value:6d}  {key}")
    print(f"no-change re-sync (pull + push): status={resync.status} counts={resync.counts}")
    writes = sum(1 for c in resync_calls if c.method in WRITES and "/composite" not in c.path[-10:])
    print(f"  API calls: {len(resync_calls)}, writes: {writes}")
    for key, value in sorted(summary(resync_calls).items()):
        print(f"    {value:6d}  {key}")
    print(
        f"time: re-sync / push = {resync_time / push_time:.2f}; push per record = "
        f"{push_time / n * 1000:.2f} ms on this machine (ratio-only comparisons are meaningful)"
    )


if __name__ == "__main__":
    main()
