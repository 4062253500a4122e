"""A throw-away database per test: a SQLite file by default, a fresh PostgreSQL database on request.

``LEADBRIDGE_TEST_DATABASE_URL`` (e.g. ``postgresql+psycopg://postgres@127.0.0.1/test``) names the
server; each test gets its own uniquely named database there, created through the server's
``postgres`` maintenance database and dropped afterwards, so parallel runs never collide.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, make_url, text
from sqlalchemy.pool import NullPool

ENV_VAR = "LEADBRIDGE_TEST_DATABASE_URL"


@contextmanager
def temporary_database(tmp_path: Path, *, server_url: str | None = None) -> Iterator[str]:
    """Yield the URL of an empty database that exists for the duration of the ``with`` block.

    :param tmp_path: folder for the SQLite file.
    :param server_url: a PostgreSQL URL; defaults to ``$LEADBRIDGE_TEST_DATABASE_URL``; when neither
        is set the database is SQLite.
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
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                # FORCE (PostgreSQL 13+) ends sessions a test left open (threads, leaked pools).
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
