"""Per-app state: the objects :func:`~leadbridge.app.create_app` composes, behind typed accessors.

Every part of leadbridge finds the app's plugins, vault and run executor here, never by importing
:mod:`leadbridge.app` (the composition root imports everything; nothing imports it back). Each
accessor takes an explicit app or uses the current one.
"""

from __future__ import annotations

from typing import Any, Protocol

from flask import Flask, current_app

from .crypto import Vault
from .plugins import Plugins

PLUGINS_KEY = "leadbridge.plugins"
VAULT_KEY = "leadbridge.vault"
EXECUTOR_KEY = "leadbridge.executor"


class Executor(Protocol):
    """Where queued runs execute: inline, in threads of this process, or on Celery workers.

    Chosen once per app by ``create_app`` (``EXECUTOR`` config). A run is a ``queued`` database row
    before it is submitted, so its progress and outcome are read from the database by any process.
    """

    #: ``inline``, ``thread`` or ``celery``
    name: str

    def submit(self, run_id: int) -> None:
        """Execute queued run ``run_id``: now (inline) or in the background (thread, Celery)."""

    def wait(self, timeout: float | None = None) -> None:
        """Block until the runs this process started have finished (tests, shutdown)."""


def the_app(app: Flask | None = None) -> Flask:
    """``app`` itself, or the real object behind ``current_app``."""
    return app if app is not None else current_app._get_current_object()  # type: ignore[attr-defined]


def _get(key: str, app: Flask | None) -> Any:
    found = the_app(app).extensions.get(key)
    if found is None:
        raise RuntimeError(f"{key} is not set up: build the app with leadbridge.app.create_app()")
    return found


def get_plugins(app: Flask | None = None) -> Plugins:
    """The app's plugin manager (loaded connectors, hook calls)."""
    plugins: Plugins = _get(PLUGINS_KEY, app)
    return plugins


def get_vault(app: Flask | None = None) -> Vault:
    """The app's secret vault (encryption at rest)."""
    vault: Vault = _get(VAULT_KEY, app)
    return vault


def get_executor(app: Flask | None = None) -> Executor:
    """The app's run executor."""
    executor: Executor = _get(EXECUTOR_KEY, app)
    return executor
