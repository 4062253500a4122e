"""Panel benchmark: the contacts list at 100,000 contacts (not a test).

    .venv/bin/python bench/panel.py                        # 100,000 contacts, 200 requests per case
    .venv/bin/python bench/panel.py --contacts 20000 --requests 50
    .venv/bin/python bench/panel.py --write-docs           # append the table to docs/benchmarks.md

Seeds the store with bulk inserts (contacts, 1,000 companies, two lists holding a quarter of the
contacts), signs in through the real login form, then times N requests per case through Flask's test
client (full stack: routing, session, SQL, template) and prints p50/p95/max in milliseconds.
``LEADBRIDGE_BENCH_DATABASE_URL`` runs it on another database (e.g. PostgreSQL).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "benchmark password 1"
STATUSES = ["subscriber", "lead", "marketing_qualified", "sales_qualified", "customer"]
FIRST = ["Aino", "Mikko", "Laura", "Jussi", "Emma", "Olli", "Sofia", "Ville", "Helmi", "Eero", "Noah", "Ada"]
LAST = ["Virtanen", "Korhonen", "Nieminen", "Mäkinen", "Laine", "Smith", "Dubois", "Rossi", "Heikkinen"]


def build_app(folder: Path) -> Any:
    from cryptography.fernet import Fernet
    from flask_migrate import upgrade
    from leadbridge.app import create_app

    url = os.environ.get("LEADBRIDGE_BENCH_DATABASE_URL") or f"sqlite:///{folder / 'bench.sqlite'}"
    app = create_app(
        {
            "INSTANCE_PATH": str(folder),
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEYS": Fernet.generate_key().decode(),
            "TESTING": True,
        }
    )
    with app.app_context():
        upgrade()
    return app


def seed(app: Any, contacts: int) -> dict[str, int]:
    """Bulk-insert the data set; returns ids the cases filter on."""
    from leadbridge.db import db
    from leadbridge.models import Company, Contact, ContactList, ListMembership
    from leadbridge.users import create_user
    from sqlalchemy import insert, select

    now = datetime.now(UTC)
    with app.app_context():
        create_user("admin", PASSWORD)
        db.session.commit()
        db.session.execute(
            insert(Company),
            [
                {
                    "name": f"Company {i:04d} Oy",
                    "name_key": f"company {i:04d} oy",
                    "custom": {},
                    "field_changed_at": {},
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(1000)
            ],
        )
        companies = list(db.session.execute(select(Company.id).order_by(Company.id)).scalars())
        lists = [ContactList(name="Newsletter"), ContactList(name="Webinar")]
        db.session.add_all(lists)
        db.session.commit()
        chunk = 10_000
        for start in range(0, contacts, chunk):
            rows = []
            for i in range(start, min(contacts, start + chunk)):
                first, last = FIRST[i % len(FIRST)], LAST[(i // 7) % len(LAST)]
                email = f"{first}.{last}.{i}@example{i % 97}.com".lower()
                rows.append(
                    {
                        "email": email,
                        "email_key": email,
                        "first_name": first,
                        "last_name": f"{last}{i % 1000}",
                        "status": STATUSES[i % len(STATUSES)],
                        "company_id": companies[i % len(companies)],
                        "company_name": f"Company {i % 1000:04d} Oy",
                        "consent": "none",
                        "unsubscribed": False,
                        "custom": {},
                        "field_changed_at": {},
                        "created_at": now,
                        "updated_at": now,
                    }
                )
            db.session.execute(insert(Contact), rows)
            db.session.commit()
        ids = list(db.session.execute(select(Contact.id).order_by(Contact.id)).scalars())
        db.session.execute(
            insert(ListMembership),
            [
                {"list_id": lists[i % 2].id, "contact_id": cid, "status": "subscribed", "added_at": now}
                for i, cid in enumerate(ids)
                if i % 4 == 0
            ],
        )
        db.session.commit()
        return {"list": lists[0].id, "company": companies[500], "middle": ids[len(ids) // 2]}


def login(app: Any) -> Any:
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    assert (
        client.post(
            "/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token}
        ).status_code
        == 302
    )
    return client


def measure(client: Any, path: str, n: int) -> tuple[float, float, float, int]:
    client.get(path)  # warm caches once
    times = []
    rows = 0
    for _ in range(n):
        start = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, path
        rows = response.get_data(as_text=True).count('name="contact_ids"')
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * len(times)) - 1)]
    return statistics.median(times), p95, times[-1], rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="leadbridge-bench-") as tmp:
        app = build_app(Path(tmp))
        t0 = time.perf_counter()
        ids = seed(app, args.contacts)
        seeded = time.perf_counter() - t0
        client = login(app)
        cases = [
            ("first page (newest 50)", "/contacts"),
            ("keyset page in the middle", f"/contacts?before={ids['middle']}"),
            ("email prefix search", "/contacts?q=aino.virtanen"),
            ("name prefix search", "/contacts?q=Korhonen5"),
            ("status filter", "/contacts?status=customer"),
            ("list filter", f"/contacts?list={ids['list']}"),
            ("company filter", f"/contacts?company={ids['company']}"),
            ("search + status + list", f"/contacts?q=emma&status=lead&list={ids['list']}"),
            ("rare prefix (few matches)", "/contacts?q=nobody-has-this"),
        ]
        results = [(name, *measure(client, path, args.requests)) for name, path in cases]
        with app.app_context():
            from leadbridge.db import db

            dialect = db.engine.dialect.name
    lines = [
        f"Contacts list at {args.contacts:,} contacts ({dialect}, {args.requests} requests per case, "
        f"full stack through Flask's test client; seeded in {seeded:.1f} s)",
        "",
        "| case | p50 ms | p95 ms | max ms | rows |",
        "|---|---:|---:|---:|---:|",
        *[f"| {n} | {p50:.1f} | {p95:.1f} | {mx:.1f} | {rows} |" for n, p50, p95, mx, rows in results],
    ]
    print("\n".join(lines))
    if args.write_docs:
        path = ROOT / "docs" / "benchmarks.md"
        existing = path.read_text() if path.exists() else "# Benchmarks\n"
        section = (
            "\n## Panel: contacts list (bench/panel.py)\n\n"
            + "\n".join(lines)
            + (
                f"\n\nMeasured {datetime.now(UTC):%Y-%m-%d} with `python bench/panel.py --write-docs` on the "
                f"development machine (2 shared cores); Python {sys.version.split()[0]}.\n"
            )
        )
        marker = "\n## Panel: contacts list (bench/panel.py)\n"
        if marker in existing:  # replace our previous section, keep everyone else's
            before, _, after = existing.partition(marker)
            rest = after.split("\n## ", 1)
            existing = before + ("\n## " + rest[1] if len(rest) > 1 else "")
        path.write_text(existing.rstrip("\n") + "\n" + section)


if __name__ == "__main__":
    main()
