"""Sync-engine benchmark against the example connector's loopback sandbox (not a test).

    .venv/bin/python bench/engine.py                 # default sizes, well under two minutes
    .venv/bin/python bench/engine.py --records 10000 --memory-records 100000 --write-docs

Reports, as a table:

* engine overhead: a push of N contacts through ``run_sync`` versus the same batches POSTed raw
  with ``requests`` (same sandbox, zero latency) — the ratio and the extra milliseconds per record;
* API calls per record for that push, and for a no-change re-sync (must be zero writes);
* peak Python memory (tracemalloc) of a dry-run push planning ``--memory-records`` contacts;
* pacing efficiency under a 4 requests/second limiter: achieved rate / allowed rate, and the
  number of 429s the sandbox's matching token bucket had to send (should be 0).

Times are ratios or per-record figures measured on this machine; call counts are exact.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "tests" / "example_connector"


def _install_example(tmp: Path) -> None:
    from leadbridge.testing import install_entry_point

    dist = tmp / "dist"
    dist.mkdir()
    install_entry_point(dist, dist_name="leadbridge-example", name="example", module="leadbridge_example")
    sys.path[:0] = [str(dist), str(EXAMPLE)]
    importlib.invalidate_caches()


def _app(tmp: Path, name: str) -> Any:
    from cryptography.fernet import Fernet
    from flask_migrate import upgrade
    from leadbridge.app import create_app

    folder = tmp / name
    app = create_app(
        {
            "INSTANCE_PATH": str(folder),
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'bench.sqlite'}",
            "SECRET_KEYS": Fernet.generate_key().decode(),
            "ALLOW_BASE_URL_OVERRIDE": True,
            "PLUGINS_ALLOW": ["example"],
        }
    )
    with app.app_context():
        upgrade()
    return app


def _connection(sandbox: Any, url: str) -> Any:
    from leadbridge.connections import create_connection
    from leadbridge.db import db
    from leadbridge.sync import default_mappings

    settings, secrets = sandbox.connection_settings(url)
    conn = create_connection(
        "example", "bench", {**settings, **secrets}, enabled=True, options={"base_url": url}
    )
    db.session.commit()
    default_mappings(conn)
    db.session.commit()
    return conn


def _contacts(n: int) -> None:
    from leadbridge.db import db
    from leadbridge.models import Contact

    rows = []
    for i in range(n):
        c = Contact(
            first_name="Bench",
            last_name=f"Person {i}",
            title="Analyst",
            phone="+358 40 123 4567",
            score=i % 100,
            status="lead",
            consent="none",
            unsubscribed=False,
            custom={},
            field_changed_at={},
        )
        c.set_email(f"bench{i}@example.org")
        rows.append(c)
        if len(rows) == 5000:
            db.session.add_all(rows)
            db.session.commit()
            rows = []
    db.session.add_all(rows)
    db.session.commit()


def bench_overhead(tmp: Path, n: int) -> dict[str, Any]:
    import requests
    from leadbridge.sandbox import SandboxServer
    from leadbridge.sync import run_sync
    from leadbridge_example.sandbox import ExampleSandbox

    app = _app(tmp, "overhead")
    with app.app_context():
        engine_box = ExampleSandbox()
        with SandboxServer(engine_box) as server:
            conn = _connection(engine_box, server.url)
            _contacts(n)
            started = time.perf_counter()
            run = run_sync(conn.id, direction="to_crm")
            engine_s = time.perf_counter() - started
            assert run.status == "succeeded", run.error
            push_calls = run.api_calls
            engine_box.reset_calls()
            again = run_sync(conn.id, direction="to_crm")
            resync_writes = engine_box.count_calls("POST", "/api/contacts/batch")
            resync_calls = again.api_calls
    # The same batches, raw: one token, then POSTs of prepared JSON (what any client must send).
    raw_box = ExampleSandbox()
    with SandboxServer(raw_box) as server:
        session = requests.Session()
        token = session.post(
            f"{server.url}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(raw_box.client_id, raw_box.client_secret),
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        records = [
            {
                "email": f"bench{i}@example.org",
                "first_name": "Bench",
                "last_name": f"Person {i}",
                "job_title": "Analyst",
                "phone": "+358 40 123 4567",
                "score": i % 100,
                "lifecycle_stage": "lead",
            }
            for i in range(n)
        ]
        started = time.perf_counter()
        for i in range(0, n, 100):
            session.post(
                f"{server.url}/api/contacts/batch", json={"records": records[i : i + 100]}, headers=headers
            ).raise_for_status()
        raw_s = time.perf_counter() - started
    return {
        "records": n,
        "engine_s": engine_s,
        "raw_s": raw_s,
        "ratio": engine_s / raw_s,
        "overhead_ms": (engine_s - raw_s) * 1000 / n,
        "calls_per_record": push_calls / n,
        "resync_calls": resync_calls,
        "resync_writes": resync_writes,
    }


def bench_memory(tmp: Path, n: int) -> dict[str, Any]:
    from leadbridge.sandbox import SandboxServer
    from leadbridge.sync import run_sync
    from leadbridge_example.sandbox import ExampleSandbox

    app = _app(tmp, "memory")
    with app.app_context():
        box = ExampleSandbox()
        with SandboxServer(box) as server:
            conn = _connection(box, server.url)
            _contacts(n)
            tracemalloc.start()
            started = time.perf_counter()
            run = run_sync(conn.id, direction="to_crm", dry_run=True)
            elapsed = time.perf_counter() - started
            _current, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            assert run.status == "succeeded", run.error
    return {
        "records": n,
        "peak_mib": peak / 2**20,
        "seconds": elapsed,
        "planned": run.counts["crm"]["created"],
    }


def bench_pacing(tmp: Path, n: int, rate: int = 4) -> dict[str, Any]:
    from leadbridge.connections import PACERS_KEY
    from leadbridge.http import Pacer
    from leadbridge.metadata import RateLimit
    from leadbridge.sandbox import SandboxServer
    from leadbridge.sync import run_sync
    from leadbridge_example.sandbox import ExampleSandbox

    app = _app(tmp, "pacing")
    with app.app_context():
        box = ExampleSandbox(rate_limit=(rate, 1.0))  # the vendor enforces 4/s with a token bucket
        with SandboxServer(box) as server:
            conn = _connection(box, server.url)
            _contacts(n)
            # The connection's pacer is told the same limit (as a connector would declare it).
            app.extensions.setdefault(PACERS_KEY, {})[conn.id] = Pacer([RateLimit(rate, 1.0)])
            time.sleep(1.5)  # let the bucket refill after the set-up calls
            box.reset_calls()
            started = time.perf_counter()
            run = run_sync(conn.id, direction="to_crm")
            elapsed = time.perf_counter() - started
            assert run.status == "succeeded", run.error
            calls = box.count_calls()
            limited = box.rate_limited_count
    # Achieved call rate over the allowed one (the first call goes out at once).
    achieved = (calls - 1) / elapsed if elapsed > 0 else 0.0
    return {"calls": calls, "seconds": elapsed, "efficiency": min(achieved / rate, 1.0), "http_429": limited}


NOTES = """How to read it:

- *Engine vs raw HTTP*: the same batches POSTed with bare `requests` against the same sandbox. The
  engine's extra time is SQLite work per record (link with agreed values, run-log row, fingerprint)
  and type conversion; the vendor side of a real CRM (tens to hundreds of ms per call) dwarfs it.
- *API calls per record*: one batch call per 100 contacts plus one token and one field-list call
  per run. A re-sync with nothing changed sends no write at all.
- *Peak memory* is flat: the engine reads, plans and logs one batch at a time (the same figure was
  measured for 10,000 contacts), so it does not grow with the number of contacts.
- *Pacing*: the pacer spaces calls to the declared 4 requests/second; the vendor's token bucket
  never had to answer 429. Efficiency below 100 % is time spent between calls on the engine's own work.
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=2000, help="contacts pushed for overhead/calls")
    parser.add_argument("--memory-records", type=int, default=20_000, help="contacts planned for peak memory")
    parser.add_argument("--pacing-records", type=int, default=1500, help="contacts pushed under 4 req/s")
    parser.add_argument("--write-docs", action="store_true", help="write the table to docs/benchmarks.md")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="leadbridge-bench-") as tmp_name:
        tmp = Path(tmp_name)
        _install_example(tmp)
        overhead = bench_overhead(tmp, args.records)
        memory = bench_memory(tmp, args.memory_records)
        pacing = bench_pacing(tmp, args.pacing_records)
    rows = [
        ("Push, records", f"{overhead['records']}"),
        ("Engine vs raw HTTP time (ratio)", f"{overhead['ratio']:.2f}x"),
        ("Engine overhead per record", f"{overhead['overhead_ms']:.3f} ms"),
        ("API calls per record (push)", f"{overhead['calls_per_record']:.4f}"),
        (
            "No-change re-sync: API calls / writes",
            f"{overhead['resync_calls']} / {overhead['resync_writes']}",
        ),
        (f"Peak memory, dry-run push of {memory['records']} contacts", f"{memory['peak_mib']:.1f} MiB"),
        (f"  (planned {memory['planned']} in)", f"{memory['seconds']:.1f} s"),
        ("Pacing at 4 req/s: efficiency", f"{pacing['efficiency'] * 100:.0f} %"),
        ("Pacing at 4 req/s: calls / 429 answers", f"{pacing['calls']} / {pacing['http_429']}"),
    ]
    width = max(len(r[0]) for r in rows)
    table = "\n".join(
        [f"| {'Measure':<{width}} | Result |", f"|{'-' * (width + 2)}|--------|"]
        + [f"| {a:<{width}} | {b} |" for a, b in rows]
    )
    print(table)
    if args.write_docs:
        path = ROOT / "docs" / "benchmarks.md"
        section = (
            "## Sync engine (`bench/engine.py`)\n\n"
            f"Run: `python bench/engine.py --records {args.records} --memory-records {args.memory_records} "
            f"--pacing-records {args.pacing_records} --write-docs` on {time.strftime('%Y-%m-%d')}, SQLite, "
            "example connector sandbox on loopback (zero latency). Ratios and per-record figures depend on "
            "the machine (and on what else runs on it); call counts are exact.\n\n" + table + "\n\n" + NOTES
        )
        text = path.read_text() if path.exists() else "# Benchmarks\n\n"
        marker = "## Sync engine (`bench/engine.py`)"
        if marker in text:
            head, _, tail = text.partition(marker)
            rest = tail.split("\n## ", 1)
            text = head + section + ("\n## " + rest[1] if len(rest) > 1 else "")
        else:
            text = text.rstrip("\n") + "\n\n" + section
        path.write_text(text)
        print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
