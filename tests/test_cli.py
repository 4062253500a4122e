"""The ``leadbridge`` command: clear errors and exit codes, no secrets printed, users, migrations."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from leadbridge.app import get_plugins
from leadbridge.cli import main
from leadbridge.connections import create_connection, store_credentials
from leadbridge.db import db
from leadbridge.models import User
from leadbridge.sandbox import SandboxServer
from leadbridge.types import Credentials
from leadbridge.users import verify
from sqlalchemy import select

SECRET = "cli-plain-secret-2f9a"
ACCESS_TOKEN = "cli-plain-access-token-8d0c"


@pytest.fixture
def example_server(app: Flask) -> Iterator[SandboxServer]:
    sandbox = get_plugins(app).call_plugin("example", "connector_sandbox")
    with SandboxServer(sandbox) as server:
        yield server


def _example_connection(app: Flask, server: SandboxServer, *, good: bool = True) -> int:
    sandbox = server.sandbox
    settings, secrets = (sandbox.connection_settings if good else sandbox.bad_connection_settings)(server.url)
    with app.app_context():
        conn = create_connection(
            "example",
            "Example" if good else "Bad example",
            {**settings, **secrets},
            enabled=True,
            options={"base_url": server.url},
        )
        db.session.commit()
        return conn.id


def _leadbridge() -> str:
    return str(Path(sys.executable).with_name("leadbridge"))


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize("ref", ["nope", "999"])
def test_unknown_connection_is_a_clear_error(cli_runner: FlaskCliRunner, ref: str) -> None:
    result = cli_runner.invoke(main, ["connections", "test", ref])
    assert result.exit_code == 2
    assert f"Error: no connection {ref!r}" in result.output


def test_unknown_connection_in_sync(cli_runner: FlaskCliRunner) -> None:
    result = cli_runner.invoke(main, ["sync", "nope"])
    assert result.exit_code != 0
    assert "no connection 'nope'" in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["plugins", "--bogus"], "No such option '--bogus'"),
        (["connections", "--yaml"], "No such option '--yaml'"),
        (["nosuchcommand"], "No such command 'nosuchcommand'"),
        (["serve", "--port", "eighty"], "'eighty' is not a valid integer"),
        (["users", "create"], "Missing argument 'USERNAME'"),
    ],
)
def test_bad_options_exit_2_with_a_message(cli_runner: FlaskCliRunner, args: list[str], message: str) -> None:
    result = cli_runner.invoke(main, args)
    assert result.exit_code == 2
    assert message in result.output


def test_fresh_database_says_to_upgrade(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADBRIDGE_")}
    env["LEADBRIDGE_INSTANCE_PATH"] = str(tmp_path)
    done = subprocess.run([_leadbridge(), "connections"], env=env, capture_output=True, text=True)
    assert done.returncode == 2
    assert "run `leadbridge db upgrade`" in done.stderr
    assert "Traceback" not in done.stderr


def test_malformed_key_is_one_clear_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADBRIDGE_")}
    env.update(LEADBRIDGE_INSTANCE_PATH=str(tmp_path), LEADBRIDGE_SECRET_KEYS="not-a-fernet-key")
    done = subprocess.run([_leadbridge(), "plugins"], env=env, capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().endswith("Error: an encryption key is not a valid Fernet key")
    assert "Traceback" not in done.stderr


# -- connections ----------------------------------------------------------------------------------


def test_connections_json_never_prints_secrets(app: Flask, example_server: SandboxServer) -> None:
    with app.app_context():
        conn = create_connection(
            "example",
            "Secretive",
            {"client_id": "visible-id", "client_secret": SECRET, "webhook_secret": SECRET + "-hook"},
        )
        store_credentials(
            conn, Credentials(headers={"Authorization": f"Bearer {ACCESS_TOKEN}"}, access_token=ACCESS_TOKEN)
        )
        db.session.commit()
    runner = app.test_cli_runner()
    as_json = runner.invoke(main, ["connections", "--json"])
    plain = runner.invoke(main, ["connections"])
    assert as_json.exit_code == plain.exit_code == 0
    rows = json.loads(as_json.output)
    assert [(r["name"], r["plugin"], r["plugin_state"], r["enabled"]) for r in rows] == [
        ("Secretive", "example", "loaded", False)
    ]
    for output in (as_json.output, plain.output):
        assert "Secretive" in output
        for value in (SECRET, ACCESS_TOKEN, "gAAAAA"):
            assert value not in output


def test_connections_test_succeeds_and_fails_with_the_reason(
    app: Flask, example_server: SandboxServer
) -> None:
    good = _example_connection(app, example_server)
    _example_connection(app, example_server, good=False)
    runner = app.test_cli_runner()

    ok = runner.invoke(main, ["connections", "test", str(good)])
    assert ok.exit_code == 0, ok.output
    assert ok.output.startswith("Connected to ")

    refused = runner.invoke(main, ["connections", "test", "Bad example"])  # by name
    assert refused.exit_code == 1
    assert refused.output.strip()
    assert "not-the-secret" not in refused.output


# -- users ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "username, password, message",
    [
        ("admin", "short", "password: at least 10 characters"),
        ("admin", "aaaaaaaaaaaaaaaa", "password: too repetitive"),
        ("no spaces allowed", "long-enough-password", "username: 2-150 letters"),
        ("x", "long-enough-password", "username: 2-150 letters"),
    ],
)
def test_users_create_refuses_bad_input(
    app: Flask, cli_runner: FlaskCliRunner, username: str, password: str, message: str
) -> None:
    result = cli_runner.invoke(main, ["users", "create", username, "--password", password])
    assert result.exit_code == 2
    assert message in result.output
    with app.app_context():
        assert db.session.execute(select(User)).first() is None


def test_users_create_hashes_with_argon2id_and_refuses_duplicates(
    app: Flask, cli_runner: FlaskCliRunner
) -> None:
    password = "correct horse battery"
    result = cli_runner.invoke(main, ["users", "create", "marketer"], input=f"{password}\n{password}\n")
    assert result.exit_code == 0, result.output
    assert "Created admin user marketer." in result.output
    with app.app_context():
        user = db.session.execute(select(User)).scalar_one()
        assert user.password_hash.startswith("$argon2id$")
        assert password not in user.password_hash
        assert verify(user, password) and not verify(user, password + "!")

    again = cli_runner.invoke(main, ["users", "create", "marketer", "--password", "another-long-one"])
    assert again.exit_code == 2
    assert "user 'marketer' already exists" in again.output


def test_users_create_prompt_must_match(cli_runner: FlaskCliRunner) -> None:
    typed = "one-password-1\nanother-pass-2\n"
    result = cli_runner.invoke(main, ["users", "create", "marketer"], input=typed)
    assert result.exit_code != 0
    assert "do not match" in result.output


# -- database -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_db_upgrade_on_a_fresh_instance(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADBRIDGE_")}
    env["LEADBRIDGE_INSTANCE_PATH"] = str(tmp_path)
    heads = list((Path(__file__).parents[1] / "core/leadbridge/migrations/versions").glob("*.py"))
    for _ in range(2):  # a second upgrade is a no-op
        done = subprocess.run([_leadbridge(), "db", "upgrade"], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    with sqlite3.connect(tmp_path / "leadbridge.sqlite") as raw:
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        version = raw.execute("SELECT version_num FROM alembic_version").fetchall()
    assert {"contact", "connection", "link", "sync_run", "user", "alembic_version"} <= tables
    # the database stands at the single head: the revision no other revision names as its parent
    parents = {
        m.group(1) for h in heads if (m := re.search(r"^down_revision = '(\w+)'", h.read_text(), re.M))
    }
    head = [h.name.split("_", 1)[0] for h in heads if h.name.split("_", 1)[0] not in parents]
    assert len(head) == 1 and [v for (v,) in version] == head
    assert (tmp_path / "secret.keys").stat().st_mode & 0o777 == 0o600

    listed = subprocess.run([_leadbridge(), "connections", "--json"], env=env, capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []


def test_plugins_listing_is_readable(cli_runner: FlaskCliRunner) -> None:
    result = cli_runner.invoke(main, ["plugins", "--check"])
    assert result.exit_code == 0, result.output  # every installed connector loads
    line = next(line for line in result.output.splitlines() if line.startswith("example "))
    assert "leadbridge-example" in line and "loaded" in line
    assert "hooks: " in result.output


@pytest.mark.slow
def test_upgrading_an_instance_with_a_hub_record_linked_twice_keeps_the_oldest_link(tmp_path: Path) -> None:
    """Before links were unique per hub record, a race could link one contact to two vendor records."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADBRIDGE_")}
    env["LEADBRIDGE_INSTANCE_PATH"] = str(tmp_path)
    before = subprocess.run(
        [_leadbridge(), "db", "upgrade", "b41f0c2d9e11"], env=env, capture_output=True, text=True
    )
    assert before.returncode == 0, before.stderr
    with sqlite3.connect(tmp_path / "leadbridge.sqlite") as raw:
        raw.execute(
            "INSERT INTO connection (id, plugin, name, enabled, direction, options, settings, state,"
            " schedule_interval_minutes, created_at, updated_at)"
            " VALUES (1, 'example', 'CRM', 0, 'both', '{}', '{}', 'ok', 120,"
            " '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
        )
        for link_id, remote in ((10, "r-old"), (11, "r-new"), (12, "r-other")):
            raw.execute(
                "INSERT INTO link (id, connection_id, object_type, hub_kind, hub_id, remote_id, last_values,"
                " synced_at) VALUES (?, 1, 'contact', 'contact', ?, ?, '{}', '2026-01-01 00:00:00')",
                (link_id, 7 if remote != "r-other" else 8, remote),
            )
    after = subprocess.run([_leadbridge(), "db", "upgrade"], env=env, capture_output=True, text=True)
    assert after.returncode == 0, after.stderr
    with sqlite3.connect(tmp_path / "leadbridge.sqlite") as raw:
        kept = raw.execute("SELECT id, remote_id FROM link ORDER BY id").fetchall()
        assert kept == [(10, "r-old"), (12, "r-other")]
        with pytest.raises(sqlite3.IntegrityError):
            raw.execute(
                "INSERT INTO link (id, connection_id, object_type, hub_kind, hub_id, remote_id, last_values,"
                " synced_at) VALUES (13, 1, 'contact', 'contact', 7, 'r-race', '{}', '2026-01-01 00:00:00')"
            )
