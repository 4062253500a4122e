"""Secrets at rest: never in plaintext in the database, reprs or logs; keys owner-only and rotatable."""

from __future__ import annotations

import io
import logging
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from flask import Flask
from flask_migrate import upgrade
from leadbridge import connections
from leadbridge.app import create_app, get_plugins, get_vault
from leadbridge.cli import main
from leadbridge.connection_view import SecretMap
from leadbridge.connections import (
    client_for,
    create_connection,
    decrypt_secrets,
    load_credentials,
    store_credentials,
    view,
)
from leadbridge.crypto import KEY_FILE, Vault, load_keys
from leadbridge.db import db
from leadbridge.errors import ConfigError
from leadbridge.models import Connection
from leadbridge.sandbox import SandboxServer
from leadbridge.types import Contact, Credentials
from sqlalchemy import inspect, make_url, select
from sqlalchemy.types import String, Text

SECRET = "plain-client-secret-7c1f0e"
WEBHOOK_SECRET = "plain-webhook-secret-51aa9d"
ACCESS_TOKEN = "plain-access-token-0b3e77"
REFRESH_TOKEN = "plain-refresh-token-94c2d1"
PLAINTEXTS = (SECRET, WEBHOOK_SECRET, ACCESS_TOKEN, REFRESH_TOKEN)


def _store_example_connection() -> Connection:
    conn = create_connection(
        "example",
        "Example CRM",
        {"client_id": "visible-client-id", "client_secret": SECRET, "webhook_secret": WEBHOOK_SECRET},
        enabled=True,
    )
    store_credentials(
        conn,
        Credentials(
            headers={"Authorization": f"Bearer {ACCESS_TOKEN}"},
            access_token=ACCESS_TOKEN,
            refresh_token=REFRESH_TOKEN,
        ),
    )
    db.session.commit()
    return conn


# -- the database never holds plaintext ------------------------------------------------------------


def _database_dump(url: str) -> str:
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite"):
        with sqlite3.connect(str(parsed.database)) as raw:
            return "\n".join(raw.iterdump())
    if shutil.which("pg_dump"):
        libpq = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        done = subprocess.run(["pg_dump", "--no-owner", libpq], capture_output=True, text=True)
        if done.returncode == 0:
            return done.stdout
    # No usable pg_dump (absent or a different major version): every text column of every table.
    lines = []
    for table in db.metadata.sorted_tables:
        for column in table.columns:
            if isinstance(column.type, String | Text) or column.type.__class__.__name__ == "JSON":
                values = db.session.execute(select(table.c[column.name])).scalars().all()
                lines.extend(f"{table.name}.{column.name}={v}" for v in values)
    return "\n".join(lines)


def test_database_dump_holds_no_plaintext_secret(app_ctx: Flask, leadbridge_database_url: str) -> None:
    _store_example_connection()
    db.session.remove()
    dump = _database_dump(leadbridge_database_url)
    assert "visible-client-id" in dump  # the dump really covers the connection row
    assert "gAAAAA" in dump  # Fernet tokens are there instead
    for plaintext in PLAINTEXTS:
        assert plaintext not in dump


def test_secrets_decrypt_back(app_ctx: Flask) -> None:
    conn = _store_example_connection()
    assert decrypt_secrets(conn) == {"client_secret": SECRET, "webhook_secret": WEBHOOK_SECRET}
    creds = load_credentials(conn)
    assert creds is not None and (creds.access_token, creds.refresh_token) == (ACCESS_TOKEN, REFRESH_TOKEN)
    assert "client_secret" not in conn.settings


# -- reprs -----------------------------------------------------------------------------------------


def test_reprs_never_show_secret_values(app_ctx: Flask) -> None:
    conn = _store_example_connection()
    cv = view(conn)
    assert cv.secrets["client_secret"] == SECRET  # the hook does get the value...
    shown = [
        repr(conn),
        str(conn),
        repr(cv),
        str(cv),
        f"{cv}",
        repr(cv.secrets),
        str(cv.secrets),
        repr(cv.credentials),
        repr(get_vault()),
        repr(SecretMap({"api_key": SECRET})),
    ]
    for text_ in shown:  # ...but nothing that prints it shows one
        for plaintext in PLAINTEXTS:
            assert plaintext not in text_, text_
    assert "client_secret=***" in repr(cv.secrets)
    assert repr(get_vault()) == "Vault(<keys redacted>)"


# -- logs ------------------------------------------------------------------------------------------


@pytest.fixture
def debug_log() -> Iterator[io.StringIO]:
    """A DEBUG handler on the root logger installed before the app, as an operator's logging would be."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    loggers = [logging.getLogger(n) for n in ("", "urllib3", "requests_oauthlib", "oauthlib", "leadbridge")]
    levels = [lg.level for lg in loggers]
    root.addHandler(handler)
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def test_secrets_never_appear_in_debug_logs(debug_log: io.StringIO, request: pytest.FixtureRequest) -> None:
    app: Flask = request.getfixturevalue("app")  # created after the handler exists, like in production
    sandbox = get_plugins(app).call_plugin("example", "connector_sandbox")
    with SandboxServer(sandbox) as server, app.app_context():
        settings, secrets = sandbox.connection_settings(server.url)
        conn = create_connection(
            "example", "Example", {**settings, **secrets}, enabled=True, options={"base_url": server.url}
        )
        db.session.commit()
        ok, message = connections.test_connection(conn)
        assert ok, message
        client = client_for(conn)
        logging.getLogger("leadbridge.test").debug("view of the connection: %r / %s", view(conn), secrets)
        get_plugins(app).call(
            view(conn),
            "upsert_contact",
            client=client,
            object_type="contact",
            contacts=[Contact(email="log@example.com", fields={"last_name": "Log"}, ref="1")],
        )
        db.session.expire_all()  # the grant was saved by the core in its own session
        token = load_credentials(conn)
    log = debug_log.getvalue()
    assert "urllib3" in log and "/oauth/token" in log  # DEBUG output was really captured
    assert token is not None and token.access_token
    for value in (*secrets.values(), token.access_token):
        assert value not in log


# -- keys ------------------------------------------------------------------------------------------


def test_key_file_is_created_owner_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEADBRIDGE_SECRET_KEYS", raising=False)
    old_umask = os.umask(0)  # a permissive umask must not widen the file's mode
    try:
        keys = load_keys(None, tmp_path / "instance")
    finally:
        os.umask(old_umask)
    path = tmp_path / "instance" / KEY_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    assert keys == [path.read_bytes().strip()]
    assert load_keys(None, tmp_path / "instance") == keys  # created once, then reused


def test_a_key_file_readable_by_others_is_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / KEY_FILE
    key = Fernet.generate_key()
    path.write_bytes(key + b"\n")
    path.chmod(0o644)  # e.g. copied from a backup
    with caplog.at_level(logging.WARNING, logger="leadbridge.crypto"):
        assert load_keys(None, tmp_path) == [key]
    assert "readable by other users (mode 644): chmod 600 it" in caplog.text
    assert key.decode() not in caplog.text


def test_multifernet_rotation() -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    token = Vault([old]).encrypt({"client_secret": SECRET})
    both = Vault([new, old])
    assert both.decrypt(token) == {"client_secret": SECRET}  # old tokens still decrypt
    rotated = both.rotate(token)
    assert Vault([new]).decrypt(rotated) == {"client_secret": SECRET}
    assert Fernet(new).decrypt(both.encrypt("x").encode())  # new values use the first key
    with pytest.raises(ConfigError, match="cannot be decrypted"):
        Vault([old]).decrypt(rotated)


def test_wrong_key_gives_a_clear_config_error(app_ctx: Flask) -> None:
    conn = _store_example_connection()
    app_ctx.extensions["leadbridge.vault"] = Vault([Fernet.generate_key()])  # the operator lost the key
    with pytest.raises(ConfigError, match="cannot be decrypted with the configured keys") as info:
        decrypt_secrets(conn)
    assert SECRET not in str(info.value)
    with pytest.raises(ConfigError, match="cannot be decrypted"):
        view(conn)


def test_malformed_key_is_refused_at_startup(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a valid Fernet key"):
        create_app({"INSTANCE_PATH": str(tmp_path), "SECRET_KEYS": "not-a-key"})


# -- `leadbridge secrets rotate` -------------------------------------------------------------------


@pytest.fixture
def keyfile_app(
    tmp_path: Path, leadbridge_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Flask]:
    """An app whose keys live in instance/secret.keys (no SECRET_KEYS configured)."""
    monkeypatch.delenv("LEADBRIDGE_SECRET_KEYS", raising=False)
    app = create_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": str(tmp_path / "kf"),
            "SQLALCHEMY_DATABASE_URI": leadbridge_database_url,
        }
    )
    with app.app_context():
        upgrade()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _encrypted_values() -> dict[str, str]:
    values: dict[str, str] = {}
    for table in db.metadata.sorted_tables:
        for column in table.columns:
            if column.name.endswith("_encrypted"):
                for i, v in enumerate(db.session.execute(select(column)).scalars()):
                    if v:
                        values[f"{table.name}.{column.name}.{i}"] = v
    return values


def test_cli_rotate_with_a_new_key_file_key(keyfile_app: Flask) -> None:
    key_file = Path(keyfile_app.instance_path) / KEY_FILE
    old_key = key_file.read_bytes().strip()
    with keyfile_app.app_context():
        _store_example_connection()
        before = _encrypted_values()
    assert len(before) == 2  # secrets and credentials of the connection

    result = keyfile_app.test_cli_runner().invoke(main, ["secrets", "rotate", "--new-key"])
    assert result.exit_code == 0, result.output
    assert "Re-encrypted 2 stored secret value(s)" in result.output

    keys = key_file.read_bytes().split()
    assert len(keys) == 2 and keys[1] == old_key and keys[0] != old_key
    assert key_file.stat().st_mode & 0o777 == 0o600
    with keyfile_app.app_context():
        after = _encrypted_values()
    assert after.keys() == before.keys()
    new_only = Vault([keys[0]])
    for name, token in after.items():
        assert token != before[name]
        assert new_only.decrypt(token)  # the new key alone reads every value
        with pytest.raises(ConfigError):
            Vault([old_key]).decrypt(token)

    # The old key can now go: a fresh app with the new key only still reads the secrets.
    key_file.write_bytes(keys[0] + b"\n")
    fresh = create_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": keyfile_app.instance_path,
            "SQLALCHEMY_DATABASE_URI": keyfile_app.config["SQLALCHEMY_DATABASE_URI"],
        }
    )
    with fresh.app_context():
        conn = db.session.execute(select(Connection)).scalar_one()
        assert decrypt_secrets(conn)["client_secret"] == SECRET
        creds = load_credentials(conn)
        assert creds is not None and creds.refresh_token == REFRESH_TOKEN
        db.session.remove()
        db.engine.dispose()


def test_cli_rotate_with_env_keys(app: Flask) -> None:
    with app.app_context():
        _store_example_connection()
        before = _encrypted_values()
    # The operator puts a new key first in LEADBRIDGE_SECRET_KEYS and restarts.
    new = Fernet.generate_key().decode()
    app.config["SECRET_KEYS"] = f"{new},{app.config['SECRET_KEYS']}"
    app.extensions["leadbridge.vault"] = Vault(load_keys(app.config["SECRET_KEYS"], app.instance_path))

    runner = app.test_cli_runner()
    refused = runner.invoke(main, ["secrets", "rotate", "--new-key"])
    assert refused.exit_code == 2
    assert "LEADBRIDGE_SECRET_KEYS" in refused.output

    result = runner.invoke(main, ["secrets", "rotate"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        after = _encrypted_values()
    for name, token in after.items():
        assert token != before[name]
        assert Vault([new.encode()]).decrypt(token)


def test_cli_rotate_refuses_and_changes_nothing_when_a_value_cannot_be_decrypted(app: Flask) -> None:
    with app.app_context():
        _store_example_connection()
        before = _encrypted_values()
    app.extensions["leadbridge.vault"] = Vault([Fernet.generate_key()])  # the old key is missing
    result = app.test_cli_runner().invoke(main, ["secrets", "rotate"])
    assert result.exit_code == 2
    assert "cannot be decrypted" in result.output
    with app.app_context():
        assert _encrypted_values() == before


def test_every_secret_column_follows_the_naming_convention(app_ctx: Flask) -> None:
    # Rotation finds encrypted values by the ``_encrypted`` suffix; a plain column named like a secret
    # would be missed by it (and be a plaintext leak).
    suspicious = ("secret", "token", "password", "api_key")
    for table_name in inspect(db.engine).get_table_names():
        for column in inspect(db.engine).get_columns(table_name):
            name = column["name"]
            if any(word in name for word in suspicious):
                assert name.endswith("_encrypted") or name in {"password_hash", "token_hash"}, (
                    f"{table_name}.{name}"
                )
