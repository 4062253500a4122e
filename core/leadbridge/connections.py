"""Connection services: create and update connections (secrets encrypted), build the
:class:`~leadbridge.connection_view.ConnectionView` hooks receive, and the
:class:`~leadbridge.http.VendorClient` bound to a connection (auth, pacing, debug log).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any

import requests
from flask import current_app
from sqlalchemy import select, text

from . import clock as clocks
from .apikeys import StaticAuth
from .connection_view import ConnectionView, SecretMap
from .db import db
from .errors import ConfigError, LeadbridgeError, NeedsReconnect
from .http import AuthManager, CallStats, Exchange, Pacer, VendorClient
from .http.auth import StaticCredentials
from .http.redact import known_secrets
from .metadata import AuthKind, ConnectorInfo, Endpoint, validate_settings
from .models import Connection, DebugEntry, WebhookSubscription
from .state import get_plugins, get_vault
from .types import Credentials, Direction

log = logging.getLogger(__name__)

PACERS_KEY = "leadbridge.pacers"
#: PostgreSQL advisory-lock key space of token renewals (plus the connection id)
RENEW_LOCK_BASE = 0x1EADB000
_pacers_lock = threading.Lock()


# -- settings and secrets -----------------------------------------------------------------------


def create_connection(
    plugin: str,
    name: str,
    values: Mapping[str, Any],
    *,
    enabled: bool = False,
    direction: str = "both",
    options: Mapping[str, Any] | None = None,
) -> Connection:
    """Validate ``values`` against the connector's schema and store a new connection."""
    info = get_plugins().info(plugin)
    name = name.strip()
    if not name:
        raise ConfigError("a connection needs a name")
    if db.session.execute(select(Connection.id).where(Connection.name == name)).first():
        raise ConfigError(f"a connection named {name!r} already exists")
    Direction(direction)
    conn = Connection(
        plugin=plugin,
        name=name,
        enabled=enabled,
        direction=direction,
        options=dict(options or {}),
        schedule_interval_minutes=info.default_interval_minutes,
    )
    _apply_settings(conn, info, values, keep_secrets={})
    db.session.add(conn)
    db.session.flush()
    return conn


def update_settings(conn: Connection, values: Mapping[str, Any]) -> None:
    """Save new settings; an empty secret keeps the stored one (secrets are write-only)."""
    info = get_plugins().info(conn.plugin)
    _apply_settings(conn, info, values, keep_secrets=decrypt_secrets(conn))


def _apply_settings(
    conn: Connection, info: ConnectorInfo, values: Mapping[str, Any], *, keep_secrets: Mapping[str, str]
) -> None:
    merged = dict(values)
    for secret in info.secret_names:
        if merged.get(secret) in (None, "") and keep_secrets.get(secret):
            merged[secret] = keep_secrets[secret]
    cleaned = validate_settings(info, merged)
    secrets = {k: str(v) for k, v in cleaned.items() if k in info.secret_names and v not in (None, "")}
    conn.settings = {k: v for k, v in cleaned.items() if k not in info.secret_names}
    conn.secrets_encrypted = get_vault().encrypt(secrets) if secrets else None
    if _grant_secrets(info, keep_secrets) != _grant_secrets(info, secrets):
        conn.credentials_encrypted = None  # new credentials invalidate the stored grant
    if keep_secrets != secrets and conn.state == "needs_reconnect" and _static_keys(info):
        # A refused static key is fixed by pasting a new one: nothing to reconnect, try again.
        conn.state, conn.state_message = "ok", None


def _grant_secrets(info: ConnectorInfo, secrets: Mapping[str, str]) -> dict[str, str]:
    """The secrets the main API's grant depends on: all but the keys of named endpoints (a new
    Maileon key must not drop the Pipedrive grant)."""
    endpoint_keys = {name for ep in info.endpoints if ep.auth for name in ep.auth.settings}
    return {k: v for k, v in secrets.items() if k not in endpoint_keys}


def _static_keys(info: ConnectorInfo) -> bool:
    """The connection authenticates only with pasted keys (no OAuth grant to reconnect)."""
    keyed = info.auth is not None or any(e.auth for e in info.endpoints)
    # (with an authorization-code grant, the new secret dropped the grant: that still needs Connect)
    return keyed and info.auth_kind is not AuthKind.OAUTH2_AUTHORIZATION_CODE


def decrypt_secrets(conn: Connection) -> dict[str, str]:
    return dict(get_vault().decrypt(conn.secrets_encrypted) or {})


def load_credentials(conn: Connection) -> Credentials | None:
    raw = get_vault().decrypt(conn.credentials_encrypted)
    if not raw:
        return None
    expires = raw.get("expires_at")
    return Credentials(
        headers=dict(raw.get("headers") or {}),
        access_token=raw.get("access_token"),
        expires_at=datetime.fromisoformat(expires) if expires else None,
        refresh_token=raw.get("refresh_token"),
        extra=dict(raw.get("extra") or {}),
    )


def store_credentials(conn: Connection, creds: Credentials | None) -> None:
    if creds is None:
        conn.credentials_encrypted = None
        return
    conn.credentials_encrypted = get_vault().encrypt(
        {
            "headers": creds.headers,
            "access_token": creds.access_token,
            "expires_at": creds.expires_at.isoformat() if creds.expires_at else None,
            "refresh_token": creds.refresh_token,
            "extra": creds.extra,
        }
    )


def revoke(conn: Connection) -> None:
    """Forget the stored grant ("Revoke access"); syncing stops until the admin connects again.

    A connector implementing ``revoke_credentials`` revokes the grant at the vendor first (best
    effort: the grant is forgotten here whatever the vendor answers).
    """
    plugins = get_plugins()
    if conn.credentials_encrypted and plugins.implements(conn.plugin, "revoke_credentials"):
        try:
            cv = view(conn)
            pacer = pacer_for(conn, plugins.info(conn.plugin))
            hooks = plugins.connector(cv)
            bare = VendorClient(hooks.api_base_url(), pacer=pacer, override=cv.base_url_override)
            hooks.revoke_credentials(bare)
        except LeadbridgeError as exc:
            log.warning("connection %s: revoking at the vendor failed: %s", conn.id, exc)
    conn.credentials_encrypted = None
    info = plugins.info(conn.plugin)
    if info.auth_kind is AuthKind.OAUTH2_AUTHORIZATION_CODE:
        conn.state, conn.state_message = "needs_reconnect", "Access revoked; connect again to sync."


# -- views and clients ---------------------------------------------------------------------------


def view(conn: Connection) -> ConnectionView:
    """The read-only view a hook receives, secrets decrypted for the duration of the call."""
    secrets = decrypt_secrets(conn)
    if not secrets.get("webhook_secret") and not (conn.settings or {}).get("webhook_secret"):
        generated = generated_webhook_secret(conn.id)
        if generated:
            secrets["webhook_secret"] = generated
    known_secrets.add(*secrets.values())
    override = conn.options.get("base_url") if current_app.config.get("ALLOW_BASE_URL_OVERRIDE") else None
    return ConnectionView(
        id=conn.id,
        name=conn.name,
        plugin=conn.plugin,
        settings=dict(conn.settings or {}),
        secrets=SecretMap(secrets),
        credentials=load_credentials(conn),
        direction=Direction(conn.direction),
        options=dict(conn.options or {}),
        hub_url=current_app.config["HUB_URL"],
        sync_from=conn.sync_from,
        base_url_override=override,
    )


def generated_webhook_secret(conn_id: int) -> str | None:
    """The secret the core generated when it registered this connection's webhooks, if any."""
    sub = db.session.get(WebhookSubscription, conn_id)
    if sub is None or not sub.secret_encrypted:
        return None
    return str(get_vault().decrypt(sub.secret_encrypted)["secret"])


def pacer_for(conn: Connection, info: ConnectorInfo, endpoint: Endpoint | None = None) -> Pacer:
    """The one pacer per connection (and named endpoint) in this process, shared by every run and
    thread; a named endpoint is paced by its own declared limits."""
    key = (conn.id, endpoint.name if endpoint else None)
    limits = endpoint.rate_limits if endpoint else info.rate_limits
    with _pacers_lock:
        pacers: dict[tuple[int, str | None], Pacer] = current_app.extensions.setdefault(PACERS_KEY, {})
        pacer = pacers.get(key)
        if pacer is None:
            pacer = Pacer(limits, daily_stop_share=current_app.config["DAILY_QUOTA_STOP_SHARE"])
            pacers[key] = pacer
        return pacer


def client_for(
    conn: Connection,
    *,
    run_id: int | None = None,
    stats: CallStats | None = None,
    debug: bool | None = None,
) -> VendorClient:
    """A :class:`VendorClient` for ``conn``: base URL from the connector, credentials renewed through
    its ``authenticate`` hook and stored encrypted before use, pacing from its declared limits."""
    plugins = get_plugins()
    info = plugins.info(conn.plugin)
    conn_id = conn.id
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def fresh_view() -> ConnectionView:
        row = db.session.get(Connection, conn_id)
        assert row is not None
        return view(row)

    def load() -> Credentials | None:
        with app.app_context():
            row = db.session.get(Connection, conn_id)
            return load_credentials(row) if row else None

    def save(creds: Credentials | None) -> None:
        # A separate app context (own session, own transaction): the new grant is durable at once,
        # whatever the caller's transaction does later.
        with app.app_context():
            row = db.session.get(Connection, conn_id)
            if row is None:
                return
            store_credentials(row, creds)
            if row.state == "needs_reconnect":
                row.state, row.state_message = "ok", None
            db.session.commit()

    def authenticate(previous: Credentials | None) -> Credentials | None:
        cv = fresh_view()
        try:
            return plugins.connector(cv).authenticate(bare, previous)
        except NeedsReconnect as exc:
            mark_needs_reconnect(conn_id, exc)
            raise

    @contextmanager
    def renew_lock() -> Iterator[None]:
        # Across worker processes on PostgreSQL: an advisory lock on a connection of its own, released
        # right after the renewal. Not a row lock in the caller's session: save() updates that row from
        # its own session and would wait for the caller forever.
        if db.engine.dialect.name != "postgresql":
            yield
            return
        key = {"key": RENEW_LOCK_BASE + conn_id}
        with db.engine.connect() as locked:
            locked.execute(text("SELECT pg_advisory_lock(:key)"), key)
            locked.commit()
            try:
                yield
            finally:
                locked.execute(text("SELECT pg_advisory_unlock(:key)"), key)
                locked.commit()

    cv = view(conn)

    hooks = plugins.connector(cv)

    debug_on = bool(conn.options.get("debug")) if debug is None else debug
    on_exchange = _debug_writer(conn_id, run_id) if debug_on else None
    stats = stats or CallStats()
    session = requests.Session()

    def rejected(exc: LeadbridgeError) -> None:
        with app.app_context():
            mark_needs_reconnect(conn_id, exc)

    def endpoint_client(name: str) -> VendorClient:
        declared = info.endpoint(name)
        with app.app_context():
            row = db.session.get(Connection, conn_id)
            assert row is not None
            ep_view = view(row)
            ep_pacer = pacer_for(row, info, declared)
        ep_hooks = plugins.connector(ep_view)
        key = (
            StaticCredentials(
                declared.auth,
                _key_values(ep_view, declared.auth),
                vendor=declared.label,
                on_rejected=rejected,
            )
            if declared.auth
            else None
        )
        base_url = declared.base_url or ep_hooks.api_base_url(endpoint=name)
        if base_url.rstrip("/") == ep_hooks.api_base_url().rstrip("/"):
            # An api_base_url that ignores ``endpoint`` would send this endpoint's key to the main API.
            raise ConfigError(f"{info.display_name}: endpoint {name!r} has no base URL of its own")
        return VendorClient(
            base_url,
            auth=key,
            pacer=ep_pacer,
            classify_error=lambda r: ep_hooks.classify_error(r, endpoint=name),
            read_rate_limits=lambda r: ep_hooks.read_rate_limits(r, endpoint=name),
            on_exchange=on_exchange,
            stats=stats,
            session=session,
            override=ep_view.base_url_override,
            endpoint=name,
        )

    bare = VendorClient(
        hooks.api_base_url(),
        pacer=pacer_for(conn, info),
        classify_error=hooks.classify_error,
        read_rate_limits=hooks.read_rate_limits,
        on_exchange=on_exchange,
        stats=stats,
        session=session,
        override=cv.base_url_override,
        endpoints=endpoint_client if info.endpoints else None,
    )
    auth: AuthManager | StaticCredentials | None = None
    if plugins.implements(conn.plugin, "authenticate"):
        auth = AuthManager(
            authenticate, load=load, save=save, lock_key=(app.name, id(app), conn_id), renew_lock=renew_lock
        )
    elif info.auth is not None:
        auth = StaticCredentials(
            info.auth, _key_values(cv, info.auth), vendor=info.display_name, on_rejected=rejected
        )
    client = bare.with_auth(auth)
    if isinstance(auth, AuthManager):
        # Some vendors name the API host in the token answer (Salesforce's instance_url): ask the
        # connector again whenever the credentials change, as the api_base_url hookspec promises.
        def rebase_on(creds: Credentials | None) -> None:
            client.base_url = (
                plugins.connector(replace(cv, credentials=creds)).api_base_url().rstrip("/") + "/"
            )

        auth.listeners.append(rebase_on)
    return client


def _key_values(cv: ConnectionView, scheme: StaticAuth) -> dict[str, str]:
    """The settings a static key reads (through :meth:`ConnectionView.setting`: secrets win)."""
    return {name: str(cv.setting(name, "")) for name in scheme.settings}


def rebase(client: VendorClient, conn: Connection) -> None:
    """Ask the connector for the base URL again (after auth, e.g. Salesforce's ``instance_url``)."""
    client.base_url = get_plugins().connector(view(conn)).api_base_url().rstrip("/") + "/"


def mark_needs_reconnect(conn_id: int, exc: LeadbridgeError) -> None:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    with app.app_context():
        row = db.session.get(Connection, conn_id)
        if row is None:
            return
        advice = getattr(exc, "advice", None)
        row.state = "needs_reconnect"
        row.state_message = f"{exc.message}" + (f" — {advice}" if advice else "")
        db.session.commit()


def _debug_writer(conn_id: int, run_id: int | None) -> Any:
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def write(ex: Exchange) -> None:
        with app.app_context():
            db.session.add(
                DebugEntry(
                    connection_id=conn_id,
                    run_id=run_id,
                    at=clocks.utcnow(),
                    method=ex.method,
                    url=ex.url,
                    status=ex.status,
                    duration_ms=ex.duration_ms,
                    request=ex.request,
                    response=ex.response,
                )
            )
            db.session.commit()

    return write


def test_connection(conn: Connection) -> tuple[bool, str]:
    """ "Test connection": authenticate and read the first object's fields; say what went wrong."""
    plugins = get_plugins()
    info = plugins.info(conn.plugin)
    try:
        client = client_for(conn)
        if client.auth is not None:
            client.auth.headers()
            rebase(client, conn)
        fields = plugins.connector(view(conn)).field_types(client, info.objects[0].name)
    except LeadbridgeError as exc:
        return False, str(exc)
    return True, f"Connected to {info.display_name}: {len(fields)} fields on {info.objects[0].label}."
