"""First-run setup, login and logout."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from ..db import db
from ..errors import ConfigError
from ..models import User
from ..users import MIN_PASSWORD_LENGTH, create_user, user_count, verify
from . import security
from .util import safe_next

bp = Blueprint("auth", __name__)


@bp.route("/setup", methods=["GET", "POST"])
def setup() -> ResponseReturnValue:
    """Create the first admin account; gone for good once any user exists (no default password)."""
    if user_count() > 0:
        return redirect(url_for("auth.login"))
    error = None
    username = request.form.get("username", "admin")
    if request.method == "POST":
        password = request.form.get("password", "")
        if password != request.form.get("password2", ""):
            error = "The two passwords differ."
        else:
            try:
                user = create_user(username, password)
            except ConfigError as exc:
                error = str(exc)
            else:
                db.session.commit()
                security.login(user)
                flash("Welcome to leadbridge. Start by enabling a connector.", "success")
                return redirect(url_for("integrations.index"))
    return render_template(
        "auth/setup.html", error=error, username=username, min_length=MIN_PASSWORD_LENGTH
    ), (400 if error else 200)


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    if user_count() == 0:
        return redirect(url_for("auth.setup"))
    if security.current_user() is not None and request.method == "GET":
        return redirect(url_for("dashboard.index"))
    error = None
    status = 200
    username = request.form.get("username", "").strip()
    if request.method == "POST":
        addr = request.remote_addr or "?"
        throttle = security.throttle()
        if throttle.blocked(addr, username):
            error, status = "Too many failed attempts. Try again in a few minutes.", 429
        else:
            user = db.session.execute(select(User).where(User.username == username)).scalar_one_or_none()
            if user is not None and verify(user, request.form.get("password", "")):
                db.session.commit()
                throttle.succeeded(addr, username)
                security.login(user)
                return redirect(safe_next(request.args.get("next")) or url_for("dashboard.index"))
            throttle.failed(addr, username)
            error, status = "Wrong username or password.", 401
    return render_template("auth/login.html", error=error, username=username), status


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    if security.current_user() is None:
        abort(401)
    security.logout()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))
