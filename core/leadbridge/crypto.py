"""Encryption of secrets at rest (connection secrets, OAuth tokens) with rotatable keys.

Keys live outside the database: ``LEADBRIDGE_SECRET_KEYS`` (comma-separated Fernet keys, newest
first) or, when unset, ``secret.keys`` in the instance folder, generated on first start with owner-only
permissions. :class:`cryptography.fernet.MultiFernet` decrypts with any listed key and encrypts with
the first, so a key is rotated by putting a new one in front and calling :meth:`Vault.rotate`
(``leadbridge secrets rotate`` does it for every stored value: see :func:`rotate_stored_secrets`).

Every model column whose name ends in ``_encrypted`` holds a Fernet token from :class:`Vault`;
that naming convention is how rotation finds them all.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from .errors import ConfigError

log = logging.getLogger(__name__)

KEY_FILE = "secret.keys"
ENCRYPTED_SUFFIX = "_encrypted"


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
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            log.warning("%s is readable by other users (mode %o): chmod 600 it", path, mode)
        keys = [line.strip() for line in path.read_bytes().splitlines() if line.strip()]
    if not keys:
        raise ConfigError("no encryption key configured (LEADBRIDGE_SECRET_KEYS or instance/secret.keys)")
    for key in keys:
        try:
            Fernet(key)
        except ValueError:
            raise ConfigError("an encryption key is not a valid Fernet key") from None
    return keys


_WRONG_KEY = (
    "stored secrets cannot be decrypted with the configured keys "
    "(LEADBRIDGE_SECRET_KEYS or instance/secret.keys changed? keep old keys after the new one)"
)


def add_key_to_file(instance_path: str | Path) -> None:
    """Put a newly generated key in front of the instance key file, keeping the old ones after it.

    The file is replaced atomically and stays owner-only, so a crash never leaves it half-written.
    """
    path = Path(instance_path) / KEY_FILE
    old = path.read_bytes() if path.exists() else b""
    tmp = path.with_name(f".{KEY_FILE}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(Fernet.generate_key() + b"\n" + old)
    os.replace(tmp, path)


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
            raise ConfigError(_WRONG_KEY) from None

    def rotate(self, token: str) -> str:
        """Re-encrypt ``token`` with the newest key (it may have been encrypted with any listed key)."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except InvalidToken:
            raise ConfigError(_WRONG_KEY) from None

    def __repr__(self) -> str:
        return "Vault(<keys redacted>)"


def rotate_stored_secrets(vault: Vault) -> int:
    """Re-encrypt every ``*_encrypted`` value in the database with ``vault``'s newest key.

    Runs in the caller's transaction (commit afterwards): either every value is rotated or, when one
    cannot be decrypted, :class:`ConfigError` is raised and nothing should be committed.

    :returns: how many values were re-encrypted.
    """
    from sqlalchemy import select, update

    from .db import db

    rotated = 0
    for table in db.metadata.sorted_tables:
        columns = [c for c in table.columns if c.name.endswith(ENCRYPTED_SUFFIX)]
        if not columns:
            continue
        pk = list(table.primary_key.columns)
        for column in columns:
            rows = db.session.execute(select(*pk, column).where(column.is_not(None))).all()
            for row in rows:
                *keys, token = row
                if not token:
                    continue
                where = [c == k for c, k in zip(pk, keys, strict=True)]
                db.session.execute(update(table).where(*where).values({column.name: vault.rotate(token)}))
                rotated += 1
    return rotated
