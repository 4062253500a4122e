"""Benchmark: Pipedrive → Maileon webhook acknowledgement latency and vendor calls per person/deal.

    .venv/bin/python bench/pipedrive_maileon.py [--persons 400] [--rate 200] [--workers 16]

Runs the real hub (served by Werkzeug's threaded server on loopback, as ``leadbridge serve`` does
today) against the connector's sandbox, with a throw-away SQLite database:

* **acknowledgement latency**: the Pipedrive sandbox delivers person-created webhooks with
  ``--workers`` parallel senders at ``--rate`` deliveries per second; each latency is the time from
  sending to the hub's answer. Goal (issue #12): p95 ≤ 100 ms at ≥ 200 deliveries/s. The hub
  answers once the events are in its inbox; a background drain (same process) applies them, so
  the table also says how long until every person was in the hub;
* **calls per person**: Pipedrive and Maileon calls of the sync that relays the delivered persons to
  Maileon, divided by the persons (their physical minimum is one Maileon upsert each: Maileon's bulk
  import re-subscribes unsubscribed people by default and is not used);
* **calls per deal**: Maileon calls of the deal webhooks relayed as transactions.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections import Counter

from _harness import connector_bench
from flask import current_app
from leadbridge.db import db
from leadbridge.models import Contact
from leadbridge.state import get_executor
from leadbridge.sync import run_sync, subscriptions
from werkzeug.serving import make_server

DEALS = 50


def _split(calls: list) -> Counter[str]:  # type: ignore[type-arg]
    return Counter("maileon" if c.path.startswith("/1.0") else "pipedrive" for c in calls)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--persons", type=int, default=400)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--workers", type=int, default=16)
    args = parser.parse_args()
    with connector_bench("pipedrive_maileon", settings={"deals_sync": True}) as bench:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        app.config["HUB_URL"] = f"http://127.0.0.1:{server.server_port}"
        bench.conn.direction = "both"
        db.session.commit()
        subscriptions.reconcile(bench.conn)
        assert run_sync(bench.conn.id).status == "succeeded"  # creates the Newsletter field
        pd, sandbox = bench.sandbox.pipedrive, bench.sandbox
        subscribe = {pd.field_key("Newsletter"): pd.option_id("Newsletter", "Subscribe")}
        ids = [
            int(pd.add_person(f"Bench {i}", f"bench{i}@example.com", custom=subscribe).id)
            for i in range(args.persons)
        ]

        sandbox.reset_calls()
        started = time.perf_counter()
        pd.deliver_due(workers=args.workers, rate=args.rate)
        wall = time.perf_counter() - started
        get_executor(app).wait(600)  # the background drains applying what was acknowledged
        applied = time.perf_counter() - started
        webhook_calls = _split(list(sandbox.calls))
        latencies = sorted(d.seconds for d in pd.deliveries if d.seconds is not None)
        ok = sum(1 for d in pd.deliveries if d.status == 200)
        db.session.expire_all()
        stored = db.session.query(Contact).count()

        sandbox.reset_calls()
        relay_status = str(run_sync(bench.conn.id).status)
        relay_calls = _split(list(sandbox.calls))

        sandbox.reset_calls()
        for i, pid in enumerate(ids[:DEALS]):
            pd.add_deal(f"Deal {i}", pid, value=100 + i, currency="EUR")
        pd.deliver_due(workers=args.workers)
        get_executor(app).wait(600)
        deal_calls = _split(list(sandbox.calls))
        transactions = len(sandbox.maileon.transactions)
        server.shutdown()

    def q(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    n = args.persons
    rows = [
        ("deliveries answered 200", "all", f"{ok} / {len(latencies)}"),
        (
            "offered / achieved delivery rate",
            f">= {args.rate:.0f}/s",
            f"{args.rate:.0f} / {len(latencies) / wall:.0f}/s",
        ),
        (
            "ack latency p50 / p95 / p99 (mean)",
            "p95 <= 100 ms",
            f"{q(0.5):.0f} / {q(0.95):.0f} / {q(0.99):.0f} ms ({statistics.mean(latencies) * 1000:.0f})",
        ),
        (
            "persons in the hub / all applied after",
            f"{n}",
            f"{stored} / {applied:.1f} s ({n / applied:.0f}/s)",
        ),
        ("vendor calls while applying the webhooks", "0 per delivery", str(dict(webhook_calls))),
        ("relay sync", "succeeded", relay_status),
        (
            "calls per person (relay sync)",
            "1 Maileon upsert",
            f"pipedrive {relay_calls['pipedrive'] / n:.3f}, maileon {relay_calls['maileon'] / n:.3f}",
        ),
        (
            "calls per deal (webhook -> transaction)",
            "1",
            f"maileon {deal_calls['maileon'] / DEALS:.2f}, pipedrive {deal_calls['pipedrive'] / DEALS:.2f}"
            f" ({transactions} transactions)",
        ),
    ]
    print("| Measure | Goal | Measured |\n|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
