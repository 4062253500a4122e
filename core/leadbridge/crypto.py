"""Encryption of secrets at rest (connection secrets, OAuth tokens) with rotatable keys.

Keys live outside the database: ``LEADBRIDGE_SECRET_KEYS`` (comma-separated Fernet keys, newest
first) or, when unset, ``secret.keys`` in the instance folder, generated on first start with owner-only
permissions. :class:`cryptography.fernet.MultiFernet` decrypts with any listed key and encrypts with
the first, so a key is rotated by putting a new one in front and calling :meth:`Vault.rotate`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from .errors import ConfigError

KEY_FILE = "secret.keys"


def load_keys(env_value: str | None, instance_path: str | Path) -> list[bytes]:
    """Keys from the environment value, else from (or newly into) the instance folder."""
    if env_value:
        keys = [k.strip().encode() for k in env_value.split(",") if k.strip()]
    else:
        path = Path(instance_path) / KEY_FILE
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            # O_EXCL: two processes starting at once never write two different keys.
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(Fernet.generate_key() + b"\n")
        keys = [line.strip() for line in path.read_bytes().splitlines() if line.strip()]
    if not keys:
        raise ConfigError("no encryption key configured (LEADBRIDGE_SECRET_KEYS or instance/secret.keys)")
    for key in keys:
        try:
            Fernet(key)
        except ValueError:
            raise ConfigError("an encryption key is not a valid Fernet key") from None
    return keys


class Vault:
    """Encrypts and decrypts JSON-serialisable values; kept per app in ``app.extensions``."""

    def __init__(self, keys: list[bytes]) -> None:
        self._fernet = MultiFernet([Fernet(k) for k in keys])

    def encrypt(self, value: Any) -> str:
        return self._fernet.encrypt(json.dumps(value, separators=(",", ":")).encode()).decode("ascii")

    def decrypt(self, token: str | None) -> Any:
        if not token:
            return None
        try:
            return json.loads(self._fernet.decrypt(token.encode("ascii")))
        except InvalidToken:
            raise ConfigError("stored secrets cannot be decrypted with the configured keys") from None

    def rotate(self, token: str) -> str:
        """Re-encrypt ``token`` with the newest key."""
        return self._fernet.rotate(token.encode("ascii")).decode("ascii")

    def __repr__(self) -> str:
        return "Vault(<keys redacted>)"
