"""pytest fixtures for leadbridge and its connectors (loaded through the ``pytest11`` entry point).

Every suite that has leadbridge installed gets them, third-party connectors included:

* ``leadbridge_connector`` — the connector under test (default ``None``: every installed one is
  loaded). Override it in a conftest or test module to load only yours and to aim ``sandbox`` and
  ``connection`` at it.
* ``connection_plugin`` — the connector ``sandbox`` and ``connection`` use; defaults to
  ``leadbridge_connector``. Override it instead to keep every installed connector loaded.
* ``leadbridge_database_url`` — a fresh SQLite file, or a fresh PostgreSQL database per test when
  ``LEADBRIDGE_TEST_DATABASE_URL`` is set (a copy of one migrated per test process).
* ``app`` (migrated with Alembic), ``app_ctx``, ``client``, ``cli_runner``.
* ``sandbox``, ``sandbox_server`` (on 127.0.0.1, stopped at teardown), ``connection`` (enabled,
  aimed at the sandbox) and ``make_connection`` (a factory for more, e.g. with bad credentials).
* ``leadbridge_clock`` (autouse) — every test runs on a :class:`~leadbridge.clock.VirtualClock`:
  pacing, back-off, ``Retry-After`` and the sandboxes' limiters skip their waits while agreeing on
  how much time passed. A test that must prove real-time behaviour (or shares a database with a
  subprocess, which keeps real time) says so with ``@pytest.mark.real_clock("why")``.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from cryptography.fernet import Fernet
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from ..clock import Clock, SystemClock, VirtualClock, using
from ..sandbox import Sandbox, SandboxServer
from .database import migrated_template, server_url_from_env, temporary_database

if TYPE_CHECKING:
    from ..models import Connection

MakeConnection = Callable[..., Any]


def pytest_configure(config: pytest.Config) -> None:
    """Declare the kit's marker, so suites running with ``--strict-markers`` may use it."""
    config.addinivalue_line("markers", "postgres: needs PostgreSQL (LEADBRIDGE_TEST_DATABASE_URL)")
    config.addinivalue_line(
        "markers", "real_clock(reason): run on the system clock instead of the kit's virtual clock"
    )


@pytest.fixture(autouse=True)
def leadbridge_clock(request: pytest.FixtureRequest) -> Iterator[Clock]:
    """The clock this test runs on: a fresh :class:`VirtualClock`, or the system clock under
    ``@pytest.mark.real_clock``. Installed process-wide for the test (sandbox threads included)."""
    marker = request.node.get_closest_marker("real_clock")
    if marker is not None and not (marker.args or marker.kwargs.get("reason")):
        raise pytest.UsageError(f"{request.node.nodeid}: real_clock needs a reason")
    with using(SystemClock() if marker is not None else VirtualClock()) as clock:
        yield clock


#: Host names a test may resolve: loopback only (IP literals need no lookup).
LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


@pytest.fixture(autouse=True)
def leadbridge_no_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may contact a real vendor host, not even by a DNS lookup: resolving any name but
    loopback raises at once, saying which host a code path tried to reach."""
    real = socket.getaddrinfo

    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host or "")
        if name and name.lower() not in LOCAL_NAMES and not _is_ip_literal(name):
            raise OSError(
                f"leadbridge test kit: refused a DNS lookup of {name!r} (no test may reach a real host)"
            )
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)


def _is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True


@pytest.fixture
def leadbridge_connector() -> str | None:
    """The connector under test; ``None`` loads every installed connector. Override to choose one."""
    return None


@pytest.fixture(scope="session")
def leadbridge_database_template() -> Iterator[str | None]:
    """PostgreSQL: one database per test process migrated to head, copied for each test (``None`` on
    SQLite, where a fresh file is cheap)."""
    server = server_url_from_env()
    if server is None:
        yield None
        return
    with migrated_template(server) as name:
        yield name


@pytest.fixture
def leadbridge_database_url(tmp_path: Path, leadbridge_database_template: str | None) -> Iterator[str]:
    """The URL of a new database for this test: an empty SQLite file, or on PostgreSQL a fresh copy
    of a database already migrated to head (``upgrade()`` then has nothing to do)."""
    with temporary_database(tmp_path, template=leadbridge_database_template) as url:
        yield url


@pytest.fixture
def leadbridge_app_config() -> dict[str, Any]:
    """Extra config for the ``app`` fixture (applied last). Override it to build the app otherwise,
    e.g. ``{"EXECUTOR": "inline"}`` or a Celery broker: what ``create_app`` composes is fixed then."""
    return {}


@pytest.fixture
def app(
    tmp_path: Path,
    leadbridge_database_url: str,
    leadbridge_connector: str | None,
    leadbridge_app_config: dict[str, Any],
) -> Iterator[Flask]:
    """A fresh leadbridge app: its own instance folder, database (migrated), keys and plugin set."""
    from flask_migrate import upgrade

    from ..app import create_app
    from ..db import db

    instance = tmp_path / "instance"
    flask_app = create_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": str(instance),
            "SQLALCHEMY_DATABASE_URI": leadbridge_database_url,
            "SECRET_KEYS": Fernet.generate_key().decode(),
            "ALLOW_BASE_URL_OVERRIDE": True,
            "PLUGINS_ALLOW": [leadbridge_connector] if leadbridge_connector else None,
            "WTF_CSRF_ENABLED": True,
            **leadbridge_app_config,
        }
    )
    with flask_app.app_context():
        upgrade()
    yield flask_app
    with flask_app.app_context():
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose()  # close SQLite files and PostgreSQL sessions before the database goes


@pytest.fixture
def app_ctx(app: Flask) -> Iterator[Flask]:
    """``app`` with an application context pushed for the whole test."""
    with app.app_context():
        yield app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """Flask's test client for ``app``."""
    return app.test_client()


@pytest.fixture
def cli_runner(app: Flask) -> FlaskCliRunner:
    """Flask's CLI runner for ``app``: ``cli_runner.invoke(leadbridge.cli.main, ["plugins"])``."""
    return app.test_cli_runner()


@pytest.fixture
def connection_plugin(leadbridge_connector: str | None) -> str | None:
    """The connector ``sandbox`` and ``connection`` belong to (default: ``leadbridge_connector``)."""
    return leadbridge_connector


def _connector_name(connection_plugin: str | None) -> str:
    if connection_plugin is None:
        raise pytest.UsageError(
            "this fixture needs a connector: override `leadbridge_connector` (or `connection_plugin`)"
            " to return its name"
        )
    return connection_plugin


@pytest.fixture
def sandbox(app: Flask, connection_plugin: str | None) -> Sandbox:
    """A new sandbox of the connector under test (its ``connector_sandbox`` hook), not yet served."""
    from ..state import get_plugins

    name = _connector_name(connection_plugin)
    result: Sandbox | None = get_plugins(app).call_plugin(name, "connector_sandbox")
    if result is None:
        pytest.skip(f"{name} ships no sandbox")
    return result


@pytest.fixture
def sandbox_server(sandbox: Sandbox) -> Iterator[SandboxServer]:
    """``sandbox`` served on 127.0.0.1 (random port) in a thread; stopped at teardown."""
    server = SandboxServer(sandbox).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def make_connection(
    app_ctx: Flask, sandbox: Sandbox, sandbox_server: SandboxServer, connection_plugin: str | None
) -> MakeConnection:
    """A factory creating committed connections aimed at the sandbox.

    ``make_connection(values=None, *, name=None, enabled=True, options=None, bad=False)``:
    ``values`` default to the sandbox's working settings (``bad=True``: its refused ones).
    """
    from ..connections import create_connection, store_credentials
    from ..db import db
    from ..state import get_plugins

    connector = _connector_name(connection_plugin)
    info = get_plugins().info(connector)
    created: list[int] = []

    def make(
        values: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        enabled: bool = True,
        options: Mapping[str, Any] | None = None,
        bad: bool = False,
    ) -> Connection:
        if values is None:
            pick = sandbox.bad_connection_settings if bad else sandbox.connection_settings
            settings, secrets = pick(sandbox_server.url)
            values = {**settings, **secrets}
        conn = create_connection(
            connector,
            name or f"{info.display_name} test {len(created) + 1}",
            values,
            enabled=enabled,
            options={"base_url": sandbox_server.url, **(options or {})},
        )
        if not bad:
            store_credentials(conn, sandbox.connection_credentials(sandbox_server.url))
        db.session.commit()  # never hold a write transaction open across the vendor calls that follow
        created.append(conn.id)
        return conn

    return make


@pytest.fixture
def connection(make_connection: MakeConnection) -> Connection:
    """An enabled connection of the connector under test, aimed at ``sandbox_server`` (committed)."""
    conn: Connection = make_connection()
    return conn
