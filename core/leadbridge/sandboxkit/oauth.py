"""An OAuth 2.0 authorization server for sandboxes (RFC 6749, 7636, 7009), configurable per vendor.

* authorization code with exact (or loopback) redirect URIs, ``state`` echo and PKCE S256, an
  approval page or auto-approval;
* client credentials (for apps registered with ``client_credentials=True``);
* refresh tokens: only with a scope (``refresh_scope``, e.g. ``offline_access``) or always,
  rotating (every refresh invalidates all earlier tokens of the grant) or long-lived, expiring
  after :data:`REFRESH_IDLE_LIMIT` idle seconds;
* revocation (a refresh token ends its grant; an access token only itself; unknown tokens are fine);
* client authentication by HTTP Basic, body credentials when :attr:`OAuthServer.accept_body_credentials`.

Access tokens die with the sandbox's token generation (``Sandbox.expire_tokens``). The clock is
injectable (seconds), so tests drive expiry with the virtual clock.
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from flask import Flask, Response, jsonify, request

CODE_LIFETIME = 300.0
REFRESH_IDLE_LIMIT = 180 * 86400.0


@dataclass(slots=True)
class App:
    """A developer-portal application."""

    client_id: str
    client_secret: str
    redirect_uris: set[str] = field(default_factory=set)  # empty: any loopback URI (sandbox convenience)
    refresh_mode: str = "rotating"  # rotating | long_lived
    client_credentials: bool = False  # may use the client-credentials grant


@dataclass(slots=True)
class Grant:
    """One user authorization; its tokens live and die together."""

    id: str
    client_id: str
    scopes: tuple[str, ...]
    pkce: bool
    revoked: bool = False
    current_refresh: str | None = None


@dataclass(slots=True)
class Code:
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    challenge: str | None
    issued_at: float
    used: bool = False


@dataclass(slots=True)
class AccessToken:
    grant_id: str
    client_id: str
    scopes: tuple[str, ...]
    expires_at: float
    generation: int


class OAuthServer:
    """The vendor's authorization server; :meth:`install` adds its routes under ``prefix``.

    :param clock: the vendor clock in seconds.
    :param generation: the sandbox's token generation; access tokens of older generations are dead.
    :param prefix: where ``/authorize``, ``/token`` and ``/revoke`` live (``/oauth2/default/v1``).
    :param vendor: the name on the approval page.
    :param refresh_scope: the scope a grant needs to get refresh tokens (``None``: every grant).
    :param token_prefixes: how the vendor's access and refresh tokens begin (realism, redaction tests).
    """

    def __init__(
        self,
        clock: Callable[[], float],
        generation: Callable[[], int],
        *,
        prefix: str = "/oauth",
        vendor: str = "Sandbox",
        refresh_scope: str | None = "offline_access",
        token_prefixes: tuple[str, str] = ("eyJ", "Aq1"),
    ) -> None:
        self.clock = clock
        self._generation = generation
        self.prefix = prefix.rstrip("/")
        self.vendor = vendor
        self.refresh_scope = refresh_scope
        self.token_prefixes = token_prefixes
        self.lock = threading.RLock()
        self.apps: dict[str, App] = {}
        self.grants: dict[str, Grant] = {}
        self.codes: dict[str, Code] = {}
        self.access: dict[str, AccessToken] = {}
        self.refresh: dict[str, tuple[str, float]] = {}  # token -> (grant id, last used)
        self.access_lifetime = 86400
        self.issue_id_token = True
        self.accept_body_credentials = False
        self.auto_approve = True
        self.token_requests = 0
        #: every token ever issued (tests check that none reaches a log)
        self.issued: list[str] = []

    # -- control -----------------------------------------------------------------------------

    def register_app(
        self,
        client_id: str,
        client_secret: str,
        *,
        redirect_uris: set[str] | None = None,
        refresh_mode: str = "rotating",
        client_credentials: bool = False,
    ) -> App:
        app = App(client_id, client_secret, set(redirect_uris or ()), refresh_mode, client_credentials)
        self.apps[client_id] = app
        return app

    def issue_grant(
        self,
        client_id: str,
        scopes: tuple[str, ...] = ("contact_data", "offline_access"),
        *,
        pkce: bool = False,
    ) -> dict[str, Any]:
        """Authorize without a browser (demo and tests): returns a token response."""
        with self.lock:
            grant = Grant(secrets.token_hex(8), client_id, scopes, pkce)
            self.grants[grant.id] = grant
            return self._tokens(grant)

    def check_access(self, token: str) -> AccessToken | None:
        with self.lock:
            at = self.access.get(token)
            if at is None or at.expires_at <= self.clock() or at.generation != self._generation():
                return None
            grant = self.grants.get(at.grant_id)
            if grant is None or grant.revoked:
                return None
            return at

    def revoke_all(self) -> None:
        """Every grant is revoked (the app was removed at the vendor): tokens stop working and
        refreshes get ``invalid_grant``."""
        with self.lock:
            for grant in self.grants.values():
                grant.revoked = True
            self.refresh.clear()

    def forget_refresh_tokens(self) -> None:
        """Every refresh token stops working; access tokens live until they expire."""
        with self.lock:
            self.refresh.clear()

    def live_access_tokens(self) -> dict[str, AccessToken]:
        """The access tokens that still work."""
        with self.lock:
            return {t: at for t, at in self.access.items() if self.check_access(t) is not None}

    # -- helpers -----------------------------------------------------------------------------

    def _tokens(self, grant: Grant, *, refresh_token: str | None = None) -> dict[str, Any]:
        access = self.token_prefixes[0] + secrets.token_urlsafe(32)
        self.access[access] = AccessToken(
            grant.id, grant.client_id, grant.scopes, self.clock() + self.access_lifetime, self._generation()
        )
        self.issued.append(access)
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "expires_in": self.access_lifetime,
            "access_token": access,
            "scope": " ".join(grant.scopes),
        }
        if self.refresh_scope is None or self.refresh_scope in grant.scopes:
            app = self.apps[grant.client_id]
            if refresh_token is None or app.refresh_mode == "rotating":
                refresh_token = self.token_prefixes[1] + secrets.token_urlsafe(24)
                # Rotation: every earlier refresh token of this grant dies now.
                for old in [t for t, (gid, _) in self.refresh.items() if gid == grant.id]:
                    del self.refresh[old]
            self.refresh[refresh_token] = (grant.id, self.clock())
            self.issued.append(refresh_token)
            grant.current_refresh = refresh_token
            body["refresh_token"] = refresh_token
        if self.issue_id_token and "openid" in grant.scopes:
            body["id_token"] = "eyJ" + secrets.token_urlsafe(16)
        return body

    def _client(self) -> tuple[App | None, bool]:
        """The calling app and whether it proved its secret."""
        auth = request.authorization
        if auth is not None and auth.type == "basic":
            app = self.apps.get(auth.username or "")
            return (
                (app, True)
                if app and secrets.compare_digest(app.client_secret, auth.password or "")
                else (None, False)
            )
        cid = request.form.get("client_id", "")
        app = self.apps.get(cid)
        if app is None:
            return None, False
        secret = request.form.get("client_secret")
        if secret is not None:
            if not self.accept_body_credentials or not secrets.compare_digest(app.client_secret, secret):
                return None, False
            return app, True
        return app, False  # a public (PKCE) client: only its client_id

    # -- routes ------------------------------------------------------------------------------

    def install(self, flask_app: Flask) -> None:
        at = self.prefix
        flask_app.add_url_rule(f"{at}/authorize", "oauth_authorize", self.authorize, methods=["GET"])
        flask_app.add_url_rule(f"{at}/authorize", "oauth_decide", self.decide, methods=["POST"])
        flask_app.add_url_rule(f"{at}/token", "oauth_token", self.token, methods=["POST"])
        flask_app.add_url_rule(f"{at}/revoke", "oauth_revoke", self.revoke, methods=["POST"])

    def authorize(self) -> Response:
        args = request.args
        app = self.apps.get(args.get("client_id", ""))
        redirect_uri = args.get("redirect_uri", "")
        if app is None:
            return _page("Unknown client_id", 400)
        if not self._redirect_ok(app, redirect_uri):
            return _page("redirect_uri does not match the application's registered redirect URI", 400)
        if args.get("response_type") != "code":
            return self._error_redirect(redirect_uri, "unsupported_response_type", args.get("state"))
        method = args.get("code_challenge_method")
        if args.get("code_challenge") and method != "S256":
            return self._error_redirect(redirect_uri, "invalid_request", args.get("state"))
        if self.auto_approve:
            return self._approve(dict(args))
        fields = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in args.items()
        )
        return _page(
            f"<h1>{html.escape(self.vendor)} (sandbox)</h1>"
            f"<p>Allow <b>{html.escape(app.client_id)}</b> to access your contacts?</p>"
            f'<form method="post">{fields}'
            '<button name="decision" value="allow">Allow Access</button>'
            f'<button name="decision" value="deny">Deny</button></form>',
            200,
        )

    def decide(self) -> Response:
        form = request.form.to_dict()
        decision = form.pop("decision", "deny")
        app = self.apps.get(form.get("client_id", ""))
        if app is None or not self._redirect_ok(app, form.get("redirect_uri", "")):
            return _page("invalid request", 400)
        if decision != "allow":
            return self._error_redirect(form["redirect_uri"], "access_denied", form.get("state"))
        return self._approve(form)

    def _approve(self, args: dict[str, str]) -> Response:
        code = secrets.token_urlsafe(24)
        with self.lock:
            self.codes[code] = Code(
                args["client_id"],
                args["redirect_uri"],
                tuple((args.get("scope") or "").split()),
                args.get("code_challenge"),
                self.clock(),
            )
        query = {"code": code}
        if args.get("state") is not None:
            query["state"] = args["state"]
        return _redirect(_add_query(args["redirect_uri"], query))

    def _redirect_ok(self, app: App, uri: str) -> bool:
        if app.redirect_uris:
            return uri in app.redirect_uris
        return uri.startswith(("http://127.0.0.1", "http://localhost", "https://"))

    def _error_redirect(self, uri: str, error: str, state: str | None) -> Response:
        query = {"error": error}
        if state:
            query["state"] = state
        return _redirect(_add_query(uri, query))

    def token(self) -> Response:
        with self.lock:
            self.token_requests += 1
            app, authenticated = self._client()
            if app is None:
                return _oauth_error("invalid_client", "Client authentication failed.", 401)
            grant_type = request.form.get("grant_type")
            if grant_type == "authorization_code":
                return self._code_grant(app, authenticated)
            if grant_type == "refresh_token":
                return self._refresh_grant(app, authenticated)
            if grant_type == "client_credentials" and app.client_credentials:
                if not authenticated:
                    return _oauth_error("invalid_client", "Client authentication failed.", 401)
                grant = Grant(
                    secrets.token_hex(8), app.client_id, tuple(request.form.get("scope", "").split()), False
                )
                self.grants[grant.id] = grant
                return jsonify(self._tokens(grant))
            return _oauth_error("unsupported_grant_type", f"{grant_type} is not supported", 400)

    def _code_grant(self, app: App, authenticated: bool) -> Response:
        code = self.codes.get(request.form.get("code", ""))
        if code is None or code.used or code.client_id != app.client_id:
            return _oauth_error("invalid_grant", "The authorization code is invalid or has expired.", 400)
        if self.clock() - code.issued_at > CODE_LIFETIME:
            return _oauth_error("invalid_grant", "The authorization code is invalid or has expired.", 400)
        if request.form.get("redirect_uri") != code.redirect_uri:
            return _oauth_error(
                "invalid_grant", "The redirect_uri does not match the authorization request.", 400
            )
        verifier = request.form.get("code_verifier")
        if code.challenge is not None:
            if not verifier or _s256(verifier) != code.challenge:
                return _oauth_error("invalid_grant", "PKCE verification failed.", 400)
        elif not authenticated:
            return _oauth_error("invalid_client", "Client authentication failed.", 401)
        code.used = True
        grant = Grant(secrets.token_hex(8), app.client_id, code.scopes, pkce=code.challenge is not None)
        self.grants[grant.id] = grant
        return jsonify(self._tokens(grant))

    def _refresh_grant(self, app: App, authenticated: bool) -> Response:
        token = request.form.get("refresh_token", "")
        entry = self.refresh.get(token)
        grant = self.grants.get(entry[0]) if entry else None
        if entry is None or grant is None or grant.revoked or grant.client_id != app.client_id:
            return _oauth_error("invalid_grant", "unknown, invalid, or expired refresh token", 400)
        if not authenticated and not grant.pkce:
            return _oauth_error("invalid_client", "Client authentication failed.", 401)
        if self.clock() - entry[1] > REFRESH_IDLE_LIMIT:
            del self.refresh[token]
            return _oauth_error("invalid_grant", "unknown, invalid, or expired refresh token", 400)
        return jsonify(self._tokens(grant, refresh_token=token))

    def revoke(self) -> Response:
        with self.lock:
            app, authenticated = self._client()
            if app is None or not authenticated:
                return _oauth_error("invalid_client", "Client authentication failed.", 401)
            token = request.form.get("token", "")
            grant_id = (self.refresh.get(token) or (None, 0.0))[0]
            if grant_id is None and token in self.access:
                grant_id = self.access[token].grant_id
            grant = self.grants.get(grant_id or "")
            if grant is not None and grant.client_id == app.client_id:
                if token in self.access:
                    del self.access[token]
                else:
                    grant.revoked = True
                    for old in [t for t, (gid, _) in self.refresh.items() if gid == grant.id]:
                        del self.refresh[old]
            return Response(status=200)  # RFC 7009: unknown tokens are not an error


def _redirect(location: str) -> Response:
    response = Response(status=302)
    response.headers["Location"] = location
    return response


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _add_query(uri: str, query: dict[str, str]) -> str:
    return uri + ("&" if "?" in uri else "?") + urlencode(query)


def _oauth_error(error: str, description: str, status: int) -> Response:
    response = jsonify({"error": error, "error_description": description})
    response.status_code = status
    return response


def _page(body: str, status: int) -> Response:
    return Response(f"<!doctype html><html><body>{body}</body></html>", status=status, mimetype="text/html")
