"""Admin users: argon2id password hashes, no default password."""

from __future__ import annotations

import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select

from .db import db, utcnow
from .errors import ConfigError
from .models import User

# argon2-cffi's defaults are argon2id with RFC 9106's low-memory profile.
_hasher = PasswordHasher()

MIN_PASSWORD_LENGTH = 10


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(password: str) -> None:
    """Refuse passwords that are too short or trivially guessable; :class:`ConfigError` says why."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ConfigError(f"password: at least {MIN_PASSWORD_LENGTH} characters")
    if len(set(password)) < 4:
        raise ConfigError("password: too repetitive (use at least 4 different characters)")


def create_user(username: str, password: str, *, is_admin: bool = True) -> User:
    username = username.strip()
    if not re.fullmatch(r"[A-Za-z0-9_.@+-]{2,150}", username):
        raise ConfigError("username: 2-150 letters, digits or _ . @ + -")
    check_password(password)
    if db.session.execute(select(User.id).where(User.username == username)).first():
        raise ConfigError(f"user {username!r} already exists")
    user = User(username=username, password_hash=hash_password(password), is_admin=is_admin)
    db.session.add(user)
    db.session.flush()
    return user


def verify(user: User, password: str) -> bool:
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    return True


def user_count() -> int:
    return int(db.session.execute(select(func.count(User.id))).scalar_one())


def generate_password() -> str:
    return secrets.token_urlsafe(15)
