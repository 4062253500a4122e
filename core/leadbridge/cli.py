"""The ``leadbridge`` command (Flask/click): demo, serve, db, plugins, connections, secrets, users."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext
from sqlalchemy import select
from sqlalchemy.exc import OperationalError, ProgrammingError

from .app import create_app
from .db import db
from .errors import LeadbridgeError
from .models import Connection
from .state import get_plugins


def _create_app() -> Flask:
    return create_app()


class LeadbridgeGroup(FlaskGroup):
    """Turns the errors an operator can fix into one clear line and exit code 2, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LeadbridgeError as exc:  # bad keys, bad settings, a connector that is not loaded...
            _fail(str(exc))
        except (OperationalError, ProgrammingError) as exc:
            if not _missing_table(exc):
                raise
            _fail("the database has no leadbridge tables yet; run `leadbridge db upgrade`.")


def _missing_table(exc: Exception) -> bool:
    text = str(exc).lower()
    return "no such table" in text or "undefinedtable" in type(getattr(exc, "orig", None)).__name__.lower()


@click.group(
    cls=LeadbridgeGroup, create_app=_create_app, add_default_commands=False, add_version_option=False
)
@click.version_option(package_name="leadbridge")
def main() -> None:
    """leadbridge: keep marketing contacts in sync with your CRMs."""


def _fail(message: str, code: int = 2) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def upgrade_database() -> None:
    """Apply every Alembic migration (``leadbridge db upgrade``)."""
    from flask_migrate import upgrade

    upgrade()


@main.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--check", is_flag=True, help="Exit with status 1 when an installed connector is broken.")
@with_appcontext
def plugins_command(as_json: bool, check: bool) -> None:
    """List installed connectors: distribution, version, state (loaded/broken/blocked), hooks, error."""
    plugins = get_plugins()
    rows = [r.as_dict() for r in sorted(plugins.records.values(), key=lambda r: r.name)]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    elif not rows:
        click.echo("No connectors installed. pip install leadbridge-<name> to add one.")
    for row in [] if as_json else rows:
        dist, version = row["distribution"] or "-", row["version"] or "-"
        click.echo(f"{row['name']:<20} {dist:<28} {version:<10} {row['state']}")
        if row["error"]:
            click.echo(f"{'':<20} error: {row['error']}")
        elif row["hooks"]:
            click.echo(f"{'':<20} hooks: {', '.join(row['hooks'])}")
    if check and any(row["state"] == "broken" for row in rows):
        sys.exit(1)


@main.group("connections", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@with_appcontext
@click.pass_context
def connections_command(ctx: click.Context, as_json: bool) -> None:
    """List configured connections with their plugin, state and schedule (never their secrets)."""
    if ctx.invoked_subcommand is not None:
        return
    plugins = get_plugins()
    rows: list[dict[str, Any]] = []
    for conn in db.session.execute(select(Connection).order_by(Connection.id)).scalars():
        record = plugins.records.get(conn.plugin)
        rows.append(
            {
                "id": conn.id,
                "name": conn.name,
                "plugin": conn.plugin,
                "plugin_state": record.state.value if record else "not installed",
                "enabled": conn.enabled,
                "state": conn.state,
                "state_message": conn.state_message,
                "direction": conn.direction,
                "interval_minutes": conn.schedule_interval_minutes,
                "cron": conn.schedule_cron,
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("No connections yet.")
        return
    for r in rows:
        flag = "enabled" if r["enabled"] else "disabled"
        click.echo(
            f"{r['id']:>4}  {r['name']:<24} {r['plugin']:<18} {flag:<9} {r['state']:<16} {r['direction']}"
        )


def find_connection(ref: str) -> Connection:
    """The connection whose id or exact name is ``ref``; exits with a clear message when there is none."""
    conn = db.session.get(Connection, int(ref)) if ref.isdigit() else None
    if conn is None:
        conn = db.session.execute(select(Connection).where(Connection.name == ref)).scalar_one_or_none()
    if conn is None:
        _fail(f"no connection {ref!r} (by id or name); `leadbridge connections` lists them")
    return conn


@connections_command.command("test")
@click.argument("connection")
@with_appcontext
def connections_test(connection: str) -> None:
    """Test a connection (by id or name): authenticate and read the fields of its first object."""
    from .connections import test_connection

    conn = find_connection(connection)
    try:
        ok, message = test_connection(conn)
    except LeadbridgeError as exc:  # e.g. the connector is not loaded
        ok, message = False, str(exc)
    db.session.commit()
    click.echo(message)
    if not ok:
        sys.exit(1)


@main.group("secrets")
def secrets_group() -> None:
    """Encryption keys of stored secrets (connection secrets, OAuth tokens)."""


@secrets_group.command("rotate")
@click.option(
    "--new-key", is_flag=True, help="First put a newly generated key in front of instance/secret.keys."
)
@with_appcontext
def secrets_rotate(new_key: bool) -> None:
    """Re-encrypt every stored secret with the newest key.

    Put a new key first in LEADBRIDGE_SECRET_KEYS (old keys after it) or pass --new-key when keys
    live in instance/secret.keys; run this; then the old keys can be removed.
    """
    from .crypto import Vault, add_key_to_file, load_keys, rotate_stored_secrets
    from .state import VAULT_KEY

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if new_key:
        if app.config["SECRET_KEYS"]:
            _fail("keys come from LEADBRIDGE_SECRET_KEYS: put a new key first there instead of --new-key")
        add_key_to_file(app.instance_path)
        app.extensions[VAULT_KEY] = Vault(load_keys(None, app.instance_path))
    try:
        count = rotate_stored_secrets(app.extensions[VAULT_KEY])
    except LeadbridgeError as exc:
        db.session.rollback()
        _fail(str(exc))
    db.session.commit()
    click.echo(f"Re-encrypted {count} stored secret value(s) with the newest key.")


@secrets_group.command("generate-key")
def secrets_generate_key() -> None:
    """Print a new Fernet key (to put first in LEADBRIDGE_SECRET_KEYS)."""
    from cryptography.fernet import Fernet

    click.echo(Fernet.generate_key().decode("ascii"))


@main.group("users")
def users_group() -> None:
    """Manage admin users."""


@users_group.command("create")
@click.argument("username")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@with_appcontext
def users_create(username: str, password: str) -> None:
    """Create an admin user (for scripts; the panel asks on first run)."""
    from .users import create_user

    try:
        create_user(username, password)
    except LeadbridgeError as exc:
        _fail(str(exc))
    db.session.commit()
    click.echo(f"Created admin user {username}.")


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--no-scheduler", is_flag=True, help="Do not embed the scheduler (run `leadbridge scheduler`).")
@with_appcontext
def serve_command(host: str, port: int, no_scheduler: bool) -> None:
    """Run the web app (single process: the scheduler is embedded unless --no-scheduler)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    upgrade_database()
    _serve(app, host, port, scheduler=not no_scheduler)


def _serve(app: Flask, host: str, port: int, *, scheduler: bool) -> None:
    from werkzeug.serving import run_simple

    if scheduler:
        try:
            from .scheduling import start_embedded_scheduler
        except ImportError:  # scheduling arrives with the sync engine
            pass
        else:
            start_embedded_scheduler(app)
    run_simple(host, port, app, threaded=True, use_reloader=False)


@main.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--no-serve", is_flag=True, help="Prepare the demo and exit (used by tests).")
@with_appcontext
def demo_command(host: str, port: int, no_serve: bool) -> None:
    """Start the app with demo data and every installed connector's sandbox on loopback."""
    from .demo import prepare_demo

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    app.config["ALLOW_BASE_URL_OVERRIDE"] = True
    app.config["HUB_URL"] = f"http://{host}:{port}"
    upgrade_database()
    summary = prepare_demo(app)
    for line in summary.lines:
        click.echo(line)
    if no_serve:
        summary.stop()
        return
    click.echo(f"\nleadbridge is running at http://{host}:{port}/  (Ctrl+C to stop)")
    _serve(app, host, port, scheduler=True)


def _register_engine_commands() -> None:
    # `leadbridge sync`, `scheduler` and `worker` live with the engine (leadbridge.sync.commands).
    from .sync.commands import register

    register(main)


_register_engine_commands()


def _register_web_commands() -> None:
    # `leadbridge tokens` lives with the JSON API (leadbridge.web.commands).
    from .web.commands import register

    register(main)


_register_web_commands()
