"""What every connector benchmark shares: a throw-away app and SQLite database, the connector's
sandbox served on loopback, one enabled connection aimed at it, and timed runs whose vendor calls
are read from the sandbox's call log (so calls are counted exactly).

Used by ``bench/<connector>.py`` (run as ``.venv/bin/python bench/<connector>.py``).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import Fernet
from flask_migrate import upgrade
from leadbridge.app import create_app, get_plugins
from leadbridge.connections import create_connection, store_credentials
from leadbridge.models import Connection, SyncRun
from leadbridge.sandbox import CallRecord, Sandbox, SandboxServer
from leadbridge.sync import run_sync

Timed = tuple[SyncRun, list[CallRecord], float]


@dataclass
class Bench:
    sandbox: Any  # the connector's Sandbox subclass, with its own knobs
    server: SandboxServer
    conn: Connection


@contextmanager
def connector_bench(
    connector: str,
    *,
    settings: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    with_credentials: bool = False,
) -> Iterator[Bench]:
    """An app context with ``connector`` alone loaded, its sandbox served and a connection to it.

    :param settings: overrides of the sandbox's working connection settings.
    :param with_credentials: store the sandbox's starting grant (authorization-code connectors).
    """
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(
            {
                "INSTANCE_PATH": tmp,
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/bench.sqlite",
                "SECRET_KEYS": Fernet.generate_key().decode(),
                "ALLOW_BASE_URL_OVERRIDE": True,
                "PLUGINS_ALLOW": [connector],
            }
        )
        with app.app_context():
            upgrade()
            sandbox: Sandbox = get_plugins().call_plugin(connector, "connector_sandbox")
            with SandboxServer(sandbox) as server:
                base, secrets = sandbox.connection_settings(server.url)
                conn = create_connection(
                    connector,
                    "bench",
                    {**base, **secrets, **(settings or {})},
                    enabled=True,
                    options={"base_url": server.url, **(options or {})},
                )
                if with_credentials:
                    store_credentials(conn, sandbox.connection_credentials(server.url))
                yield Bench(sandbox, server, conn)


def timed(sandbox: Sandbox, run: Callable[[], SyncRun]) -> Timed:
    """Run ``run`` and return its result, the vendor calls it made and its wall time in seconds."""
    sandbox.reset_calls()
    started = time.perf_counter()
    result = run()
    elapsed = time.perf_counter() - started
    return result, list(sandbox.calls), elapsed


def push_then_resync(bench: Bench) -> tuple[Any, ...]:
    """A timed push of everything, then a timed no-change re-sync (both directions): the push's run,
    calls and seconds, then the re-sync's."""
    push = timed(bench.sandbox, lambda: run_sync(bench.conn.id, direction="to_crm"))
    resync = timed(bench.sandbox, lambda: run_sync(bench.conn.id))
    return (*push, *resync)
