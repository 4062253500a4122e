"""Access control for the panel: login sessions, first-run setup, CSRF, login throttling and security headers.

* Every endpoint needs a logged-in user except those in :data:`PUBLIC_ENDPOINTS` (and the JSON API,
  which checks its own bearer tokens).
* A session holds the user id and the user's ``session_version``; logout bumps the version so every
  older cookie stops working.
* The session cookie is HttpOnly, SameSite=Lax, and Secure when the request came over HTTPS (or
  ``SESSION_COOKIE_SECURE`` is set).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Flask, Response, g, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError, CSRFProtect

from ..db import db
from ..models import User
from ..users import user_count

csrf = CSRFProtect()

#: Endpoints reachable without a login (each authenticates its own way, or is harmless).
PUBLIC_ENDPOINTS = frozenset(
    {
        "health.health_check",
        "auth.login",
        "auth.setup",
        "static",
        "integrations.oauth_callback",
        "forms.submit",
        "webhooks.receive",
    }
)

CSP = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'self'; frame-ancestors 'none'"


class PanelSessionInterface(SecureCookieSessionInterface):
    """The signed cookie session, marked Secure per request when it arrived over HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        if app.config.get("SESSION_COOKIE_SECURE"):
            return True
        try:
            return bool(request.is_secure)
        except RuntimeError:  # outside a request
            return False


class LoginThrottle:
    """Failed logins per (client address, username) within a sliding window, kept in memory."""

    def __init__(self, max_failures: int, window_seconds: float, clock: Callable[[], float] = time.monotonic):
        self.max_failures = max_failures
        self.window = window_seconds
        self.clock = clock
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        now = self.clock()
        entries = self._failures.setdefault(key, deque())
        while entries and entries[0] <= now - self.window:
            entries.popleft()
        return entries

    def blocked(self, addr: str, username: str) -> bool:
        with self._lock:
            return len(self._recent((addr, username.lower()))) >= self.max_failures

    def failed(self, addr: str, username: str) -> None:
        with self._lock:
            self._recent((addr, username.lower())).append(self.clock())

    def succeeded(self, addr: str, username: str) -> None:
        with self._lock:
            self._failures.pop((addr, username.lower()), None)


THROTTLE_KEY = "leadbridge.login_throttle"


def throttle() -> LoginThrottle:
    from flask import current_app

    return current_app.extensions[THROTTLE_KEY]  # type: ignore[no-any-return]


def current_user() -> User | None:
    user: User | None = g.get("user")
    return user


def login(user: User) -> None:
    session.clear()  # a new session id for a new login: no fixation
    session["uid"] = user.id
    session["ver"] = user.session_version
    session.permanent = True


def logout() -> None:
    user = current_user()
    if user is not None:
        user.session_version += 1  # every cookie issued before now dies
        db.session.commit()
    session.clear()


def _load_user() -> User | None:
    uid, ver = session.get("uid"), session.get("ver")
    if uid is None:
        return None
    user = db.session.get(User, uid)
    if user is None or user.session_version != ver:
        session.clear()
        return None
    return user


def _require_login() -> ResponseReturnValue | None:
    g.user = None
    endpoint = request.endpoint or ""
    if endpoint.startswith("api."):
        return None  # bearer tokens, checked by the API blueprint
    g.user = _load_user()
    if endpoint in PUBLIC_ENDPOINTS:
        return None
    if g.user is not None:
        return None
    if user_count() == 0:
        return redirect(url_for("auth.setup"))
    if request.headers.get("HX-Request"):
        response = Response(status=401)
        response.headers["HX-Redirect"] = url_for("auth.login")
        return response
    nxt = request.full_path if request.method == "GET" else None
    return redirect(url_for("auth.login", next=nxt.rstrip("?") if nxt else None))


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if request.endpoint != "static":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def _csrf_error(exc: CSRFError) -> ResponseReturnValue:
    from flask import render_template

    return render_template("error.html", title="Form expired", message=exc.description), 400


def init_app(app: Flask) -> None:
    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    if not app.config.get("SESSION_COOKIE_SAMESITE"):
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config.setdefault("PERMANENT_SESSION_LIFETIME", timedelta(hours=12))
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # the token lives as long as the session
    app.config.setdefault("LOGIN_MAX_FAILURES", 5)
    app.config.setdefault("LOGIN_WINDOW_SECONDS", 15 * 60)
    app.session_interface = PanelSessionInterface()
    app.extensions[THROTTLE_KEY] = LoginThrottle(
        int(app.config["LOGIN_MAX_FAILURES"]), float(app.config["LOGIN_WINDOW_SECONDS"])
    )
    csrf.init_app(app)
    app.before_request(_require_login)
    app.after_request(_security_headers)
    app.register_error_handler(CSRFError, _csrf_error)

    @app.context_processor
    def _globals() -> dict[str, Any]:
        return {"current_user": current_user()}
