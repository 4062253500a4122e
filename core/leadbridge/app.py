"""The application factory (flaskr style): the only composition root, no work at import time.

Per-app state lives in ``app.extensions`` behind the typed accessors of :mod:`leadbridge.state`
(re-exported here for connectors written against ``leadbridge.app.get_plugins``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flask import Flask, current_app, has_app_context
from flask_migrate import Migrate

from . import sync, web
from .crypto import Vault, load_keys
from .db import db
from .http.redact import install_log_redaction
from .plugins import Plugins
from .state import PLUGINS_KEY, VAULT_KEY, get_plugins, get_vault

__all__ = ["create_app", "get_plugins", "get_vault"]

migrate = Migrate()


def _split(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return list(value)


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build a leadbridge app.

    The instance folder (SQLite file, generated keys) is ``INSTANCE_PATH`` from ``test_config``,
    else ``LEADBRIDGE_INSTANCE_PATH``, else ``./instance``. Config comes from defaults, then
    ``instance/leadbridge.cfg``, then ``LEADBRIDGE_*`` environment variables, then ``test_config``.
    Keys: ``SQLALCHEMY_DATABASE_URI`` (default SQLite in the instance folder), ``SECRET_KEYS``
    (Fernet keys for secrets at rest), ``PLUGINS_ALLOW``/``PLUGINS_BLOCK`` (comma-separated connector
    names), ``HUB_URL`` (public base URL), ``REDIS_URL`` (Celery mode with PostgreSQL).
    """
    instance_path = os.path.abspath(
        (test_config or {}).get("INSTANCE_PATH")
        or os.environ.get("LEADBRIDGE_INSTANCE_PATH")
        or os.path.join(os.getcwd(), "instance")
    )
    os.makedirs(instance_path, exist_ok=True)
    app = Flask("leadbridge", instance_path=instance_path, instance_relative_config=True)
    app.config.from_mapping(
        SECRET_KEY=None,
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{os.path.join(app.instance_path, 'leadbridge.sqlite')}",
        ALLOW_BASE_URL_OVERRIDE=False,
        SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True},
        SECRET_KEYS=None,
        PLUGINS_ALLOW=None,
        PLUGINS_BLOCK=None,
        HUB_URL="http://127.0.0.1:5000",
        REDIS_URL=None,
        SCHEDULER_ENABLED=False,
        DAILY_QUOTA_STOP_SHARE=0.9,
    )
    # Operator settings kept in the instance folder (``leadbridge demo`` writes one), then the environment.
    app.config.from_pyfile("leadbridge.cfg", silent=True)
    app.config.from_prefixed_env("LEADBRIDGE")
    if test_config is not None:
        app.config.from_mapping(test_config)

    install_log_redaction()
    app.extensions[VAULT_KEY] = Vault(load_keys(app.config["SECRET_KEYS"], app.instance_path))
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = _session_key(app.instance_path)

    db.init_app(app)
    migrate.init_app(
        app, db, directory=os.path.join(os.path.dirname(__file__), "migrations"), render_as_batch=True
    )

    plugins = Plugins(
        allow=_split(app.config["PLUGINS_ALLOW"]),
        block=_split(app.config["PLUGINS_BLOCK"]) or (),
        enabled_check=_enabled_check(app),
    )
    plugins.load_entry_points()
    app.extensions[PLUGINS_KEY] = plugins

    sync.init_app(app)
    web.init_app(app)
    return app


def _session_key(instance_path: str) -> str:
    """A random Flask session key kept in the instance folder (owner-only), created once."""
    import secrets

    path = os.path.join(instance_path, "session.key")
    if not os.path.exists(path):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(48))
    with open(path) as fh:
        return fh.read().strip()


def _enabled_check(app: Flask) -> Any:
    def check(connection_id: int) -> bool:
        from .models import Connection

        query = db.select(Connection.enabled).where(Connection.id == connection_id)
        if has_app_context() and current_app._get_current_object() is app:  # type: ignore[attr-defined]
            # The caller's session: a second pooled connection per hook call exhausted the pool
            # under concurrent webhook deliveries (each request waited for a connection it held).
            return bool(db.session.execute(query).scalar_one_or_none())
        with app.app_context():
            return bool(db.session.execute(query).scalar_one_or_none())

    return check
