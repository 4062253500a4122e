"""Secret tokens (API tokens and form tokens): shown once, stored as sha256."""

from __future__ import annotations

import hashlib
import secrets


def new_token(prefix: str) -> tuple[str, str]:
    """A fresh token and the hash to store."""
    token = f"{prefix}_{secrets.token_urlsafe(32)}"
    return token, hash_token(token)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
