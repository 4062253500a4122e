"""Benchmark: the Constant Contact connector pushing 10,000 new contacts, then a no-change re-sync.

    .venv/bin/python bench/constantcontact.py [--count 10000] [--threshold 50]

Runs the real engine against the Constant Contact sandbox on loopback (with its 4 requests/second
limiter on) and a throw-away SQLite database. API calls are counted exactly from the sandbox's
call log; times are ratios (re-sync vs push, time spent waiting for the pacer), since absolute
times depend on the machine. ``--threshold`` is the connector's bulk threshold: a batch at least
this big goes through the JSON import activity, smaller ones through ``sign_up_form`` one by one.
"""

from __future__ import annotations

import argparse
from collections import Counter
from typing import Any

from _harness import connector_bench, push_then_resync
from leadbridge.db import db
from leadbridge.models import Contact
from leadbridge.sync import default_mappings
from sqlalchemy import insert

WRITES = ("POST", "PUT", "DELETE")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--threshold", type=int, default=50)
    args = parser.parse_args()
    with connector_bench(
        "constantcontact", settings={"bulk_threshold": args.threshold}, with_credentials=True
    ) as bench:
        rows = [
            {
                "email": f"bench{i}@example.com",
                "email_key": f"bench{i}@example.com",
                "first_name": "Bench",
                "last_name": f"Person{i}",
                "title": "Buyer",
                "company_name": "Bench Oy",
                "consent": "none",
                "unsubscribed": False,
                "custom": {},
                "field_changed_at": {},
            }
            for i in range(args.count)
        ]
        db.session.execute(insert(Contact), rows)
        db.session.commit()
        default_mappings(bench.conn)
        db.session.commit()
        report(args.count, *push_then_resync(bench), bench.sandbox)


def report(
    n: int,
    push: Any,
    push_calls: list[Any],
    push_time: float,
    resync: Any,
    resync_calls: list[Any],
    resync_time: float,
    sandbox: Any,
) -> None:
    def summary(calls: list[Any]) -> Counter[str]:
        return Counter(f"{c.method} {_shape(c.path)}" for c in calls)

    print(f"push of {n} new contacts: status={push.status} counts={push.counts.get('crm')}")
    print(
        f"  API calls: {len(push_calls)} ({len(push_calls) / n:.4f} per record), "
        f"429s: {sandbox.rate_limited_count}"
    )
    for key, value in sorted(summary(push_calls).items()):
        print(f"    {value:6d}  {key}")
    print(f"no-change re-sync (pull + push): status={resync.status} counts={resync.counts}")
    writes = sum(1 for c in resync_calls if c.method in WRITES and c.path.startswith("/v3/"))
    print(f"  API calls: {len(resync_calls)}, writes: {writes}")
    for key, value in sorted(summary(resync_calls).items()):
        print(f"    {value:6d}  {key}")
    floor = len(push_calls) / 4  # seconds the vendor's 4 requests/second allow at best
    print(
        f"time: re-sync / push = {resync_time / push_time:.2f}; push / (API calls at 4 req/s) = "
        f"{push_time / floor:.2f} (1.00 would be pacing-bound only)"
    )


def _shape(path: str) -> str:
    parts = path.split("/")
    return "/".join("{id}" if len(p) == 36 and p.count("-") == 4 else p for p in parts)


if __name__ == "__main__":
    main()
