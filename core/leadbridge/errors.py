"""The one error taxonomy every connector and the core speak.

Three families, because the engine treats them differently:

* :class:`ConfigError` (and :class:`AuthError`): a human must act (wrong credentials, bad settings,
  revoked grant). Never retried; the run stops and the connection shows what to fix.
* :class:`TransientError` (and :class:`RateLimited`, :class:`QuotaExhausted`): the vendor or the
  network hiccuped. Retried with backoff on idempotent calls; a rate limit is waited out; an exhausted
  daily quota pauses the run until the reset.
* :class:`RecordError`: one record was refused (validation, duplicate, missing field). Becomes a
  per-record outcome; the batch and the run go on.

Messages must never contain secrets: they end up in the run log and the panel.
"""

from __future__ import annotations

from datetime import datetime


class LeadbridgeError(Exception):
    """Base class of every error leadbridge raises on purpose."""

    #: A short machine-readable code (the vendor's error code when there is one).
    code: str | None = None

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.message} [{self.code}]" if self.code else self.message


class ConfigError(LeadbridgeError):
    """Settings are invalid or incomplete; retrying cannot help."""


class AuthError(ConfigError):
    """Credentials were refused by the vendor (bad secret, unknown client, locked user)."""


class NeedsReconnect(AuthError):
    """A stored grant is no longer usable (revoked/reused refresh token, expired password).

    The connection is marked "needs reconnect" with :attr:`advice` shown to the admin.
    """

    def __init__(self, message: str, *, code: str | None = None, advice: str | None = None) -> None:
        super().__init__(message, code=code)
        self.advice = advice


class TokenExpired(LeadbridgeError):
    """The access token was rejected as expired or invalid; the core re-authenticates once and retries."""


class TransientError(LeadbridgeError):
    """A failure that may succeed later (5xx, timeout, connection reset)."""


class RateLimited(TransientError):
    """The vendor asked us to slow down; wait :attr:`retry_after` seconds (or back off when unknown)."""

    def __init__(self, message: str, *, code: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class QuotaExhausted(TransientError):
    """A daily (or longer) allowance is used up; the run pauses until :attr:`resets_at`."""

    def __init__(self, message: str, *, code: str | None = None, resets_at: datetime | None = None) -> None:
        super().__init__(message, code=code)
        self.resets_at = resets_at


class RecordError(LeadbridgeError):
    """The vendor refused one record; recorded as that record's outcome, the run continues."""

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message, code=code)
        self.field = field


class SchemaChanged(RecordError):
    """The vendor refused a write because a field it names no longer exists or changed type.

    Raise it (or return a failed result with ``code=SCHEMA_CHANGED``) and the core drops the
    connection's cached fields of that object, so the next run maps against the vendor's new schema.
    """

    code = "schema_changed"


#: The result code of a write the vendor refused because its schema changed (see :class:`SchemaChanged`).
SCHEMA_CHANGED = SchemaChanged.code


def worth_resending(exc: LeadbridgeError) -> bool:
    """The one retry rule of the engine: a plain :class:`TransientError` (a reset connection, a
    5xx) may be re-sent once; a rate limit or a quota may not, since the client has already waited
    out what it could and re-sending only spends the allowance (the run pauses instead)."""
    return type(exc) is TransientError


class PluginError(LeadbridgeError):
    """A plugin could not be loaded, is incompatible, or broke the contract."""


class NotSupported(ConfigError):
    """The owning connector does not implement the hook the core needed."""


class ConnectionDisabled(ConfigError):
    """The connection (or its plugin) is disabled; nothing was sent."""
