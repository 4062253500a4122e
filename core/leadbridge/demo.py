"""``leadbridge demo``: demo data, every installed connector's sandbox on loopback, ready connections."""

from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass, field

from flask import Flask
from sqlalchemy import func, select

from .connections import create_connection, test_connection, update_settings
from .db import db
from .metadata import TEST_ONLY, ConnectorInfo
from .models import Company, Connection, Contact, ContactList, ListMembership
from .sandbox import Sandbox, SandboxServer
from .state import get_plugins
from .users import create_user, generate_password, user_count

log = logging.getLogger(__name__)

FIRST = ["Aino", "Mikko", "Laura", "Jussi", "Emma", "Olli", "Sofia", "Ville", "Helmi", "Eero", "Noah", "Ada"]
LAST = ["Virtanen", "Korhonen", "Nieminen", "Mäkinen", "Hämäläinen", "Laine", "Smith", "Dubois", "Rossi"]
COMPANIES = [
    "Acme Oy",
    "Northwind Ltd",
    "Globex SA",
    "Initech GmbH",
    "Umbrella AB",
    "Hooli Inc",
    "Vandelay Oy",
]
STATUSES = ["subscriber", "lead", "marketing_qualified", "sales_qualified", "customer"]


@dataclass
class DemoSummary:
    lines: list[str] = field(default_factory=list)
    servers: list[SandboxServer] = field(default_factory=list)
    sandboxes: dict[str, Sandbox] = field(default_factory=dict)
    #: connector name -> id of its ready demo connection
    connections: dict[str, int] = field(default_factory=dict)

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


def prepare_demo(app: Flask, *, seed: int = 7) -> DemoSummary:
    """Create the admin (password printed once), demo records, sandboxes and their connections."""
    summary = DemoSummary()
    _write_operator_config(app)
    if user_count() == 0:
        password = generate_password()
        create_user("admin", password)
        db.session.commit()
        summary.lines.append(f"Admin login: admin / {password}   (shown once; keep it)")
    else:
        summary.lines.append("Admin user exists (its password was printed when the demo first started).")
    _seed_hub(seed)
    plugins = get_plugins()
    for name, info in plugins.loaded().items():
        if TEST_ONLY in info.features and not app.config.get("DEMO_TEST_CONNECTORS"):
            continue  # e.g. the test kit's example connector, installed during test sessions
        try:
            _start_connector(summary, name, info)
        except Exception as exc:  # one connector's broken sandbox must not stop the others
            db.session.rollback()
            log.exception("demo: %s sandbox failed", name)
            summary.lines.append(
                f"{info.display_name}: sandbox failed to start ({type(exc).__name__}: {exc}); skipped"
            )
    for record in plugins.records.values():
        if record.state.value != "loaded":
            summary.lines.append(f"{record.name}: {record.state.value} ({record.error})")
    return summary


def _start_connector(summary: DemoSummary, name: str, info: ConnectorInfo) -> None:
    """Serve one connector's sandbox on loopback and create (or refresh) its ready demo connection."""
    plugins = get_plugins()
    if not plugins.implements(name, "connector_sandbox"):
        summary.lines.append(f"{info.display_name}: no sandbox shipped; skipped")
        return
    sandbox: Sandbox | None = plugins.call_plugin(name, "connector_sandbox")
    if sandbox is None:
        summary.lines.append(f"{info.display_name}: no sandbox shipped; skipped")
        return
    sandbox.seed_demo()
    server = SandboxServer(sandbox).start()
    try:
        settings, secrets = sandbox.connection_settings(server.url)
        conn_name = f"{info.display_name} (demo)"
        conn = db.session.execute(select(Connection).where(Connection.name == conn_name)).scalar_one_or_none()
        if conn is None:
            conn = create_connection(name, conn_name, {**settings, **secrets}, enabled=True)
        else:
            update_settings(conn, {**settings, **secrets})
            conn.credentials_encrypted = None  # the old sandbox's tokens mean nothing to the new one
            conn.enabled = True
        conn.options = {**(conn.options or {}), "base_url": server.url}
        db.session.commit()
    except Exception:
        server.stop()
        raise
    summary.servers.append(server)
    summary.sandboxes[name] = sandbox
    summary.connections[name] = conn.id
    ok, message = test_connection(conn)
    db.session.commit()
    summary.lines.append(
        f"{info.display_name} sandbox on {server.url}  → connection #{conn.id} {conn_name!r}: "
        + ("ready" if ok else f"test failed: {message}")
    )


def _write_operator_config(app: Flask) -> None:
    path = os.path.join(app.instance_path, "leadbridge.cfg")
    if not os.path.exists(path):
        with open(path, "w") as fh:
            fh.write("# Written by `leadbridge demo`: connections may point at loopback sandboxes.\n")
            fh.write("ALLOW_BASE_URL_OVERRIDE = True\n")


def _seed_hub(seed: int) -> None:
    if db.session.execute(select(func.count(Contact.id))).scalar_one():
        return
    rng = random.Random(seed)
    companies = [
        Company(name=n, name_key=n.lower(), domain=n.split()[0].lower() + ".example") for n in COMPANIES
    ]
    db.session.add_all(companies)
    newsletter = ContactList(name="Newsletter", description="Everyone who asked for the monthly newsletter")
    webinar = ContactList(name="Webinar 2026", description="Registrations for the spring webinar")
    db.session.add_all([newsletter, webinar])
    db.session.flush()
    for i in range(60):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        company = rng.choice(companies)
        contact = Contact(
            first_name=first,
            last_name=last,
            phone=f"+358 40 {rng.randint(1000000, 9999999)}",
            title=rng.choice(["CMO", "Marketing Manager", "CEO", "Sales Director", "Analyst"]),
            company_name=company.name,
            company_id=company.id,
            status=rng.choice(STATUSES),
            score=rng.randint(0, 50),
            consent=rng.choice(["none", "single_opt_in", "double_opt_in"]),
        )
        contact.set_email(f"{first}.{last}.{i}@{company.domain}".lower())
        db.session.add(contact)
        db.session.flush()
        if i % 2 == 0:
            db.session.add(ListMembership(list_id=newsletter.id, contact_id=contact.id, status="subscribed"))
        if i % 5 == 0:
            db.session.add(ListMembership(list_id=webinar.id, contact_id=contact.id, status="registered"))
    db.session.commit()
