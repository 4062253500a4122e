"""Benchmark: the PlanMill connector pushing 10,000 new contacts (1 % share a company each), then a
no-change re-sync (pull + push), which must cost zero writes.

    .venv/bin/python bench/planmill.py [--count 10000] [--paced]

Runs the real engine against the PlanMill sandbox on loopback with a throw-away SQLite database.
API calls are counted exactly (sandbox call log); times are reported as ratios. By default the
client-side pacer is switched off to time the connector and engine themselves; with PlanMill's
declared 5 requests/second the real wall time is simply ``calls / 5`` seconds (``--paced`` keeps it).

PlanMill's ``/batch`` endpoint is not used: its answer shape is undocumented and one failure fails
every later request of the batch (see docs/connectors/planmill.md), so each record costs its own calls.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter

from _harness import connector_bench, push_then_resync
from flask import current_app
from leadbridge.connections import PACERS_KEY
from leadbridge.db import db
from leadbridge.http import Pacer
from leadbridge.models import Company, Contact
from leadbridge.sync import default_mappings

WRITES = ("POST", "PATCH", "DELETE", "PUT")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--paced", action="store_true", help="keep the declared 5 req/s pacing")
    args = parser.parse_args()
    with connector_bench("planmill", options={"objects": ["contact"]}) as bench:
        companies = [
            Company(name=f"Bench {i} Oy", name_key=f"bench {i} oy") for i in range(args.count // 100)
        ]
        db.session.add_all(companies)
        db.session.flush()
        for i in range(args.count):
            company = companies[i % len(companies)]
            c = Contact(
                first_name="Bench",
                last_name=f"Person{i}",
                company_id=company.id,
                company_name=company.name,
            )
            c.set_email(f"bench{i}@example.fi")
            db.session.add(c)
        db.session.commit()
        default_mappings(bench.conn)
        db.session.commit()
        if not args.paced:
            current_app.extensions.setdefault(PACERS_KEY, {})[bench.conn.id] = Pacer()
        report(args.count, *push_then_resync(bench))


def report(n, push, push_calls, push_time, resync, resync_calls, resync_time):  # type: ignore[no-untyped-def]
    def summary(calls):  # type: ignore[no-untyped-def]
        return Counter(f"{c.method} {re.sub(r'/[0-9]+(?=/|$)', '/{id}', c.path)}" for c in calls)

    print(
        f"push of {n} new contacts ({n // 100} companies): status={push.status} counts={push.counts['crm']}"
    )
    print(f"  API calls: {len(push_calls)} ({len(push_calls) / n:.4f} per record)")
    for key, value in sorted(summary(push_calls).items()):
        print(f"    {value:6d}  {key}")
    print(f"no-change re-sync (pull + push): status={resync.status} counts={resync.counts}")
    writes = sum(1 for c in resync_calls if c.method in WRITES and "/oauth2/" not in c.path)
    print(f"  API calls: {len(resync_calls)}, writes: {writes}")
    for key, value in sorted(summary(resync_calls).items()):
        print(f"    {value:6d}  {key}")
    print(
        f"time: re-sync / push = {resync_time / push_time:.3f}; push per record = "
        f"{push_time / n * 1000:.2f} ms on this machine (ratio-only comparisons are meaningful); "
        f"at PlanMill's 5 req/s the push needs about {len(push_calls) / 5 / 60:.0f} min"
    )


if __name__ == "__main__":
    main()
