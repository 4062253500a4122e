"""Credentials for one connection: obtained through the connector's ``authenticate`` hook, renewed
a little before expiry or once after a "token expired" answer, one renewal at a time, and saved
(encrypted, by the ``save`` callback) before the new token is used.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from datetime import timedelta

from .. import clock as clocks
from ..apikeys import StaticAuth
from ..errors import ConfigError, NeedsReconnect
from ..types import Credentials
from .redact import known_secrets

Authenticate = Callable[[Credentials | None], Credentials | None]
Load = Callable[[], Credentials | None]
Save = Callable[[Credentials | None], None]

EXPIRY_SKEW = timedelta(seconds=60)

_locks: dict[object, threading.Lock] = {}
_locks_guard = threading.Lock()


def connection_lock(key: object) -> threading.Lock:
    """The process-wide lock serialising token renewals of one connection."""
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


class AuthManager:
    """Hands out current auth headers; renews credentials when needed, exactly once per expiry."""

    def __init__(
        self,
        authenticate: Authenticate,
        *,
        load: Load,
        save: Save,
        lock_key: object,
        renew_lock: Callable[[], object] | None = None,
    ) -> None:
        self._authenticate = authenticate
        self._load = load
        self._save = save
        self._lock = connection_lock(lock_key)
        # A cross-process lock for installs with several workers: a callable returning a context
        # manager held for the whole renewal (e.g. a PostgreSQL advisory lock).
        self._renew_lock = renew_lock
        self.credentials: Credentials | None = load()
        self.renewals = 0
        #: called with the new credentials whenever they change (e.g. to re-read the API base URL)
        self.listeners: list[Callable[[Credentials | None], None]] = []
        # authenticate() answered None ("no login needed"): don't ask again before every request.
        self._needs_no_login = False
        if self.credentials is not None:
            known_secrets.add(self.credentials.access_token, self.credentials.refresh_token)

    def headers(self) -> dict[str, str]:
        """Headers for the next request, renewing first when missing or about to expire."""
        creds = self.credentials
        if creds is None and self._needs_no_login:
            return {}
        if creds is None or _expiring(creds):
            creds = self._changed(creds, self._renew(seen=creds, force=False))
        return dict(creds.headers) if creds else {}

    def token_rejected(self, used: dict[str, str]) -> None:
        """The vendor refused the token sent with headers ``used``: renew, unless someone already did."""
        self._changed(self.credentials, self._renew(seen=None, force=True, used=used))

    def _changed(self, before: Credentials | None, after: Credentials | None) -> Credentials | None:
        if after is not before:
            for listener in self.listeners:
                listener(after)
        return after

    def _renew(
        self, *, seen: Credentials | None, force: bool, used: dict[str, str] | None = None
    ) -> Credentials | None:
        with self._lock, self._cross_process_lock():
            # Another thread or process may have renewed while we waited: take theirs.
            stored = self._load()
            if stored is not None:
                self.credentials = stored
            current = self.credentials
            if current is not None:
                if force and used is not None and current.headers != used:
                    return current
                if not force and not _expiring(current) and current is not seen:
                    return current
            fresh = self._authenticate(current)
            if fresh is not None:
                known_secrets.add(fresh.access_token, fresh.refresh_token)
            # Saved before anyone uses it: a rotated refresh token must never be lost.
            self._save(fresh)
            self.credentials = fresh
            self._needs_no_login = fresh is None
            self.renewals += 1
            return fresh

    def _cross_process_lock(self) -> AbstractContextManager[object]:
        held = self._renew_lock() if self._renew_lock is not None else None
        return held if isinstance(held, AbstractContextManager) else nullcontext()


def _expiring(creds: Credentials) -> bool:
    return creds.expires_at is not None and creds.expires_at - EXPIRY_SKEW <= clocks.utcnow()


# -- static credentials: API keys and tokens the admin pastes --------------------------------------


class StaticCredentials:
    """Hands out the headers of a :class:`StaticAuth` key; a rejected key cannot be renewed, so the
    connection needs a new one (:class:`~leadbridge.errors.NeedsReconnect`)."""

    def __init__(
        self,
        scheme: StaticAuth,
        values: Mapping[str, str],
        *,
        vendor: str,
        on_rejected: Callable[[NeedsReconnect], None] | None = None,
    ) -> None:
        missing = [name for name in scheme.settings if not values.get(name)]
        if missing:
            raise ConfigError(f"{vendor}: set {', '.join(missing)} first", code="missing_credentials")
        picked = tuple(values[name] for name in scheme.settings)
        known_secrets.add(*picked)
        self._headers = scheme.header_values(picked)
        self.vendor = vendor
        self._on_rejected = on_rejected
        self.credentials: Credentials | None = None
        self.renewals = 0
        self.listeners: list[Callable[[Credentials | None], None]] = []

    def headers(self) -> dict[str, str]:
        return dict(self._headers)

    def token_rejected(self, used: dict[str, str]) -> None:
        exc = NeedsReconnect(
            f"{self.vendor} refused the key", code="key_rejected", advice="Enter a valid key in the settings."
        )
        if self._on_rejected is not None:
            self._on_rejected(exc)
        raise exc


#: What a :class:`~leadbridge.http.VendorClient` sends credentials with.
Auth = AuthManager | StaticCredentials
