"""``leadbridge tokens``: API tokens for scripts (the panel has the same under Settings → API tokens)."""

from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from ..db import db
from ..models import ApiToken, User
from .tokens import new_token


def register(main: click.Group) -> None:
    """Add the ``tokens`` command group to the ``leadbridge`` CLI."""

    @main.group("tokens")
    def tokens_group() -> None:
        """Manage API tokens for /api/v1."""

    @tokens_group.command("create")
    @click.argument("name")
    @click.option("--user", "username", default=None, help="Owner (default: the first admin).")
    @with_appcontext
    def tokens_create(name: str, username: str | None) -> None:
        """Create a token and print it once (only its sha256 is stored)."""
        query = select(User).order_by(User.id)
        if username:
            query = query.where(User.username == username)
        user = db.session.execute(query.limit(1)).scalar_one_or_none()
        if user is None:
            click.echo("Error: no such user (create one with `leadbridge users create`).", err=True)
            sys.exit(2)
        token, digest = new_token("lb")
        db.session.add(ApiToken(user_id=user.id, name=name.strip()[:128] or "cli", token_hash=digest))
        db.session.commit()
        click.echo(token)

    @tokens_group.command("list")
    @with_appcontext
    def tokens_list() -> None:
        """List tokens (names and dates, never the tokens)."""
        for row in db.session.execute(select(ApiToken).order_by(ApiToken.id)).scalars():
            used = row.last_used_at.isoformat(timespec="seconds") if row.last_used_at else "never"
            click.echo(f"{row.id:>4}  {row.name:<32} created {row.created_at:%Y-%m-%d}  last used {used}")

    @tokens_group.command("revoke")
    @click.argument("token_id", type=int)
    @with_appcontext
    def tokens_revoke(token_id: int) -> None:
        """Revoke a token by its id (see ``leadbridge tokens list``)."""
        row = db.session.get(ApiToken, token_id)
        if row is None:
            click.echo(f"Error: no token {token_id}", err=True)
            sys.exit(2)
        db.session.delete(row)
        db.session.commit()
        click.echo(f"Revoked token {token_id} ({row.name}).")
