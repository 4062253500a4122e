"""A throw-away database per test: a SQLite file by default, a fresh PostgreSQL database on request.

``LEADBRIDGE_TEST_DATABASE_URL`` (e.g. ``postgresql+psycopg://postgres@127.0.0.1/test``) names the
server; each test gets its own uniquely named database there, created through the server's
``postgres`` maintenance database and dropped afterwards, so parallel runs never collide.

Migrating a PostgreSQL database costs over a second of DDL; :func:`migrated_template` migrates one
database per test process once, and :func:`temporary_database` copies it (``CREATE DATABASE ...
TEMPLATE``) for each test instead, which leaves ``upgrade()`` nothing to do.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, make_url, text
from sqlalchemy.pool import NullPool

ENV_VAR = "LEADBRIDGE_TEST_DATABASE_URL"


@contextmanager
def temporary_database(
    tmp_path: Path, *, server_url: str | None = None, template: str | None = None
) -> Iterator[str]:
    """Yield the URL of a new database that exists for the duration of the ``with`` block.

    :param tmp_path: folder for the SQLite file.
    :param server_url: a PostgreSQL URL; defaults to ``$LEADBRIDGE_TEST_DATABASE_URL``; when neither
        is set the database is SQLite (an empty file).
    :param template: PostgreSQL only: the name of a database to copy (see :func:`migrated_template`);
        without it the database is empty.
    """
    server_url = server_url if server_url is not None else os.environ.get(ENV_VAR)
    if not server_url:
        yield f"sqlite:///{tmp_path / 'leadbridge-test.sqlite'}"
        return
    url = make_url(server_url)
    if not url.drivername.startswith("postgresql"):
        raise ValueError(f"{ENV_VAR} must be a PostgreSQL URL, got {url.drivername}")
    name = f"lb_test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            copy = f' TEMPLATE "{template}"' if template else ""
            conn.execute(text(f'CREATE DATABASE "{name}"{copy}'))
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                # FORCE (PostgreSQL 13+) ends sessions a test left open (threads, leaked pools).
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def server_url_from_env() -> str | None:
    """The PostgreSQL server tests run on (``$LEADBRIDGE_TEST_DATABASE_URL``), or ``None`` for SQLite."""
    return os.environ.get(ENV_VAR) or None


@contextmanager
def migrated_template(server_url: str) -> Iterator[str]:
    """Yield the name of a PostgreSQL database migrated to head, dropped at the end of the block.

    Nothing stays connected to it, so ``CREATE DATABASE ... TEMPLATE`` may copy it.
    """
    from cryptography.fernet import Fernet
    from flask_migrate import upgrade

    from ..app import create_app
    from ..db import db

    with temporary_database(Path("."), server_url=server_url) as url:
        with tempfile.TemporaryDirectory(prefix="leadbridge-template-") as instance:
            app = create_app(
                {
                    "TESTING": True,
                    "INSTANCE_PATH": instance,
                    "SQLALCHEMY_DATABASE_URI": url,
                    "SECRET_KEYS": Fernet.generate_key().decode(),
                }
            )
            with app.app_context():
                upgrade()
                db.session.remove()
                for engine in db.engines.values():
                    engine.dispose()
        yield make_url(url).database or ""
