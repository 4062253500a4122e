"""Account settings: API tokens (shown once, stored hashed) and the password."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from ..db import db
from ..errors import ConfigError
from ..models import ApiToken
from ..users import MIN_PASSWORD_LENGTH, hash_password, verify
from . import security
from .tokens import new_token
from .util import get_or_404

bp = Blueprint("settings", __name__)


@bp.route("/settings/tokens", methods=["GET", "POST"])
def tokens() -> ResponseReturnValue:
    user = security.current_user()
    assert user is not None
    token = None
    if request.method == "POST":
        name = request.form.get("name", "").strip()[:128]
        if not name:
            flash("Name the token after what uses it.", "error")
        else:
            token, digest = new_token("lb")
            db.session.add(ApiToken(user_id=user.id, name=name, token_hash=digest))
            db.session.commit()
    rows = list(db.session.execute(select(ApiToken).order_by(ApiToken.created_at.desc())).scalars())
    return render_template("settings/tokens.html", tokens=rows, token=token)


@bp.post("/settings/tokens/<int:token_id>/delete")
def delete_token(token_id: int) -> ResponseReturnValue:
    row = get_or_404(ApiToken, token_id)
    db.session.delete(row)
    db.session.commit()
    flash(f"Token {row.name} revoked.", "info")
    return redirect(url_for("settings.tokens"))


@bp.route("/settings/password", methods=["GET", "POST"])
def password() -> ResponseReturnValue:
    user = security.current_user()
    if user is None:
        abort(401)
    error = None
    if request.method == "POST":
        new = request.form.get("new", "")
        try:
            if not verify(user, request.form.get("current", "")):
                raise ConfigError("The current password is wrong.")
            if len(new) < MIN_PASSWORD_LENGTH:
                raise ConfigError(f"The new password needs at least {MIN_PASSWORD_LENGTH} characters.")
            if new != request.form.get("new2", ""):
                raise ConfigError("The two new passwords differ.")
        except ConfigError as exc:
            db.session.rollback()
            error = exc.message
        else:
            user.password_hash = hash_password(new)
            user.session_version += 1  # sign out every other session
            db.session.commit()
            security.login(user)
            flash("Password changed. Other sessions are signed out.", "success")
            return redirect(url_for("settings.password"))
    return render_template("settings/password.html", error=error, min_length=MIN_PASSWORD_LENGTH), (
        400 if error else 200
    )
