"""The web layer: panel, JSON API, OAuth callbacks and webhooks (blueprints registered in :func:`init_app`)."""

from __future__ import annotations

from flask import Blueprint, Flask, jsonify
from flask.typing import ResponseReturnValue

health = Blueprint("health", __name__)


@health.get("/health")
def health_check() -> ResponseReturnValue:
    from ..app import get_plugins

    plugins = get_plugins()
    return jsonify(status="ok", plugins={n: r.state.value for n, r in plugins.records.items()})


def init_app(app: Flask) -> None:
    app.register_blueprint(health)
