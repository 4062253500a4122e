"""Integrations: one card per installed connector, its connections, settings, test, enable, OAuth connect."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from ..connections import (
    client_for,
    create_connection,
    decrypt_secrets,
    load_credentials,
    revoke,
    store_credentials,
    test_connection,
    update_settings,
)
from ..db import db
from ..errors import ConfigError, LeadbridgeError
from ..http import oauth
from ..metadata import AuthKind, ConnectorInfo, Setting, SettingType
from ..models import Connection
from ..plugins import PluginState
from ..state import get_plugins
from ..sync import fieldcache, subscriptions
from .util import connection_info, get_or_404

bp = Blueprint("integrations", __name__)

OAUTH_SESSION_KEY = "oauth_pending"
#: Settings an authorization-code connector provides for "Connect".
OAUTH_SETTING_NAMES = ("auth_url", "token_url", "client_id", "client_secret", "scopes")


def _form_values(info: ConnectorInfo) -> dict[str, Any]:
    """The submitted settings; an unchecked checkbox arrives as its hidden ``false`` only."""
    values: dict[str, Any] = {}
    for s in info.settings:
        got = request.form.getlist(s.name)
        if s.type is SettingType.BOOLEAN:
            values[s.name] = bool(got) and got[-1] == "true"
        elif got:
            values[s.name] = got[-1]
    return values


def _apply_base_url(conn: Connection) -> None:
    """The sandbox/test address override, offered only when the operator allows it."""
    if not current_app.config.get("ALLOW_BASE_URL_OVERRIDE"):
        return
    value = request.form.get("base_url", "").strip()
    options = dict(conn.options or {})
    if value and not re.match(r"^https?://[^\s/]+(/\S*)?$", value):
        raise ConfigError("API address override: must be an http(s) URL")
    if value:
        options["base_url"] = value
    else:
        options.pop("base_url", None)
    conn.options = options


def _problems(exc: ConfigError) -> list[str]:
    return [p.strip() for p in exc.message.split(";") if p.strip()]


def _settings_rows(
    info: ConnectorInfo, conn: Connection | None, submitted: dict[str, Any] | None
) -> list[dict[str, Any]]:
    stored_secrets = decrypt_secrets(conn) if conn else {}
    rows = []
    for s in info.settings:
        if s.secret:
            value = ""  # write-only: never sent back to the browser
        elif submitted is not None:
            value = submitted.get(s.name, "")
        elif conn is not None:
            value = (conn.settings or {}).get(s.name, s.default)
        else:
            value = s.default
        rows.append(
            {"s": s, "value": "" if value is None else value, "stored": bool(stored_secrets.get(s.name))}
        )
    return rows


@bp.get("/integrations")
def index() -> ResponseReturnValue:
    plugins = get_plugins()
    by_plugin: dict[str, list[Connection]] = {}
    for conn in db.session.execute(select(Connection).order_by(Connection.name)).scalars():
        by_plugin.setdefault(conn.plugin, []).append(conn)
    cards = []
    for name, record in sorted(plugins.records.items()):
        cards.append({"record": record, "info": record.info, "connections": by_plugin.pop(name, [])})
    orphans = [c for conns in by_plugin.values() for c in conns]  # connections whose plugin was uninstalled
    return render_template("integrations/index.html", cards=cards, orphans=orphans, AuthKind=AuthKind)


@bp.route("/integrations/<plugin>/new", methods=["GET", "POST"])
def new_connection(plugin: str) -> ResponseReturnValue:
    record = get_plugins().records.get(plugin)
    if record is None or record.state is not PluginState.LOADED or record.info is None:
        abort(404)
    info = record.info
    problems: list[str] = []
    submitted: dict[str, Any] | None = None
    name = request.form.get("name", info.display_name)
    if request.method == "POST":
        submitted = _form_values(info)
        try:
            conn = create_connection(plugin, name, submitted, enabled=request.form.get("enabled") == "on")
            _apply_base_url(conn)
        except ConfigError as exc:
            db.session.rollback()
            problems = _problems(exc)
        else:
            db.session.commit()
            flash(f"Connection {conn.name} saved.", "success")
            reconcile_webhooks(conn)
            return redirect(url_for("integrations.settings", conn_id=conn.id))
    return render_template(
        "integrations/settings.html",
        info=info,
        conn=None,
        name=name,
        problems=problems,
        rows=_settings_rows(info, None, submitted),
        AuthKind=AuthKind,
    ), (400 if problems else 200)


@bp.route("/connections/<int:conn_id>/settings", methods=["GET", "POST"])
def settings(conn_id: int) -> ResponseReturnValue:
    conn = get_or_404(Connection, conn_id)
    info = connection_info(conn)
    if info is None:
        abort(404)
    problems: list[str] = []
    submitted: dict[str, Any] | None = None
    name = request.form.get("name", conn.name)
    if request.method == "POST":
        submitted = _form_values(info)
        try:
            name = name.strip()
            if not name:
                raise ConfigError("Name: required")
            clash = db.session.execute(
                select(Connection.id).where(Connection.name == name, Connection.id != conn.id)
            ).first()
            if clash:
                raise ConfigError(f"Name: a connection named {name!r} already exists")
            update_settings(conn, submitted)
            _apply_base_url(conn)
            conn.name = name
        except ConfigError as exc:
            db.session.rollback()
            problems = _problems(exc)
        else:
            fieldcache.invalidate(conn.id)  # new settings may mean another account or schema
            db.session.commit()
            flash("Settings saved. Run a sync to apply them.", "success")
            reconcile_webhooks(conn)
            return redirect(url_for("integrations.settings", conn_id=conn.id))
    return render_template(
        "integrations/settings.html",
        info=info,
        conn=conn,
        name=name,
        problems=problems,
        rows=_settings_rows(info, conn, submitted),
        AuthKind=AuthKind,
        connected=load_credentials(conn) is not None,
        webhook_url=(
            subscriptions.webhook_url(conn.id)
            if get_plugins().implements(conn.plugin, "handle_webhook")
            else None
        ),
        webhooks=subscriptions.status(conn),
    ), (400 if problems else 200)


@bp.post("/connections/<int:conn_id>/test")
def test(conn_id: int) -> ResponseReturnValue:
    conn = get_or_404(Connection, conn_id)
    if connection_info(conn) is None:
        abort(404)
    if not conn.enabled:
        flash("Enable the connection before testing it: nothing is sent to a disabled connection.", "warning")
        return redirect(request.form.get("back") or url_for("integrations.index"))
    db.session.commit()  # no open write transaction while the vendor is called
    ok, message = test_connection(conn)
    db.session.commit()
    flash(("Connection works. " if ok else "Connection failed: ") + message, "success" if ok else "error")
    return redirect(_back(conn))


def _back(conn: Connection) -> str:
    target = request.form.get("back", "")
    return target if target.startswith("/") and not target.startswith("//") else url_for("integrations.index")


@bp.post("/connections/<int:conn_id>/enabled")
def set_enabled(conn_id: int) -> ResponseReturnValue:
    conn = get_or_404(Connection, conn_id)
    enable = request.form.get("enabled") == "1"
    if conn.enabled and not enable:
        # Webhooks go first, while the connection may still call the vendor (a disabled one may not).
        subscriptions.remove(conn)
        found = subscriptions.status(conn)
        if found.status is subscriptions.SubscriptionStatus.FAILED:
            flash(f"Webhooks: {found.error}", "error")
    conn.enabled = enable
    db.session.commit()
    flash(
        f"{conn.name} is {'enabled' if conn.enabled else 'disabled'}.", "success" if conn.enabled else "info"
    )
    if enable:
        reconcile_webhooks(conn)
    return redirect(_back(conn))


def reconcile_webhooks(conn: Connection) -> None:
    """Register or remove the connection's vendor webhooks after a change; a failure is flashed,
    never lost (the settings page shows it until the next attempt succeeds)."""
    if not subscriptions.supported(conn):
        return
    found = subscriptions.reconcile(conn)
    if found.status is subscriptions.SubscriptionStatus.FAILED or found.error:
        flash(f"Webhooks: {found.error}", "error")
    elif found.status is subscriptions.SubscriptionStatus.REGISTERED and found.wanted:
        flash(f"Webhooks registered at the vendor ({len(found.remote_ids)}).", "info")


@bp.post("/connections/<int:conn_id>/delete")
def delete(conn_id: int) -> ResponseReturnValue:
    conn = get_or_404(Connection, conn_id)
    if request.form.get("confirm") != conn.name:
        flash("Type the connection's name to delete it.", "error")
        return redirect(url_for("integrations.settings", conn_id=conn.id))
    subscriptions.remove(conn)  # while the credentials still exist
    found = subscriptions.status(conn)
    if found.status is subscriptions.SubscriptionStatus.FAILED:
        flash(f"{found.error}; remove them at the vendor: {', '.join(found.remote_ids)}", "warning")
    db.session.delete(conn)
    db.session.commit()
    flash(f"Connection {conn.name} deleted.", "info")
    return redirect(url_for("integrations.index"))


# -- OAuth2 authorization code ("Connect" / "Revoke access") ------------------------------------


def _oauth_settings(conn: Connection) -> dict[str, str]:
    values = {**(conn.settings or {}), **decrypt_secrets(conn)}
    return {k: str(values.get(k) or "") for k in OAUTH_SETTING_NAMES}


def _redirect_uri() -> str:
    return str(current_app.config["HUB_URL"]).rstrip("/") + url_for("integrations.oauth_callback")


@bp.post("/connections/<int:conn_id>/connect")
def connect(conn_id: int) -> ResponseReturnValue:
    conn = get_or_404(Connection, conn_id)
    info = connection_info(conn)
    if info is None or info.auth_kind is not AuthKind.OAUTH2_AUTHORIZATION_CODE:
        abort(404)
    cfg = _oauth_settings(conn)
    missing = [k for k in ("auth_url", "token_url", "client_id") if not cfg[k]]
    if missing:
        flash(f"Fill in {', '.join(missing)} in the settings before connecting.", "error")
        return redirect(url_for("integrations.settings", conn_id=conn.id))
    scopes = [s for s in cfg["scopes"].replace(",", " ").split() if s]
    url, state, verifier = oauth.authorization_url(cfg["auth_url"], cfg["client_id"], _redirect_uri(), scopes)
    session[OAUTH_SESSION_KEY] = {"state": state, "verifier": verifier, "conn_id": conn.id}
    return redirect(url)


@bp.get("/oauth/callback")
def oauth_callback() -> ResponseReturnValue:
    """The vendor sends the browser back here; the state must match what "Connect" stored in the
    session, else nothing is exchanged (the token endpoint is never called)."""
    pending = session.pop(OAUTH_SESSION_KEY, None)
    state = request.args.get("state", "")
    if not pending or not state or state != pending.get("state"):
        return render_template(
            "error.html",
            title="Connection refused",
            message="This authorization does not match a Connect started from this browser. Start again "
            "from Integrations.",
        ), 400
    conn = db.session.get(Connection, pending.get("conn_id"))
    if conn is None:
        abort(404)
    if request.args.get("error"):
        flash(
            f"The vendor refused access: {request.args.get('error_description') or request.args['error']}",
            "error",
        )
        return redirect(url_for("integrations.settings", conn_id=conn.id))
    code = request.args.get("code", "")
    if not code:
        abort(400)
    cfg = _oauth_settings(conn)
    db.session.commit()
    try:
        client = client_for(conn).unauthenticated()
        creds = oauth.exchange_code(
            client,
            cfg["token_url"],
            client_id=cfg["client_id"],
            client_secret=cfg["client_secret"] or None,
            redirect_uri=_redirect_uri(),
            code=code,
            code_verifier=pending["verifier"],
        )
    except LeadbridgeError as exc:
        flash(f"Connecting failed: {exc}", "error")
        return redirect(url_for("integrations.settings", conn_id=conn.id))
    store_credentials(conn, creds)
    conn.state, conn.state_message = "ok", None
    db.session.commit()
    flash(f"{conn.name} is connected.", "success")
    reconcile_webhooks(conn)
    return redirect(url_for("integrations.settings", conn_id=conn.id))


@bp.post("/connections/<int:conn_id>/revoke")
def revoke_access(conn_id: int) -> ResponseReturnValue:
    conn = get_or_404(Connection, conn_id)
    if connection_info(conn) is None:
        abort(404)
    subscriptions.remove(conn)  # before the tokens go
    revoke(conn)
    db.session.commit()
    flash("Access revoked. Syncing stops until you connect again.", "info")
    return redirect(url_for("integrations.settings", conn_id=conn.id))


def setting_input_type(s: Setting) -> str:
    return {
        SettingType.SECRET: "password",
        SettingType.INTEGER: "number",
        SettingType.URL: "url",
    }.get(s.type, "password" if s.secret else "text")


bp.add_app_template_global(setting_input_type)
