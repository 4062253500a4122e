"""The web layer: panel, JSON API, OAuth callbacks and webhooks (blueprints registered in init_app)."""

from __future__ import annotations

from flask import Blueprint, Flask, jsonify
from flask.typing import ResponseReturnValue

health = Blueprint("health", __name__)


@health.get("/health")
def health_check() -> ResponseReturnValue:
    from ..state import get_plugins

    plugins = get_plugins()
    return jsonify(status="ok", plugins={n: r.state.value for n, r in plugins.records.items()})


def init_app(app: Flask) -> None:
    from . import (
        api,
        auth,
        contacts,
        dashboard,
        forms,
        integrations,
        mapping,
        runs,
        security,
        settings_pages,
        syncsettings,
        util,
        webhooks,
    )

    security.init_app(app)
    util.register_filters(app)
    app.register_blueprint(health)
    for module in (
        auth,
        dashboard,
        integrations,
        syncsettings,
        runs,
        mapping,
        contacts,
        forms,
        settings_pages,
    ):
        app.register_blueprint(module.bp)
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(api.bp)
    # Not browser forms: each authenticates its own way (bearer token, form token, vendor signature).
    security.csrf.exempt(api.bp)
    security.csrf.exempt(forms.submit)
    security.csrf.exempt(webhooks.receive)
