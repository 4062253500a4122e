"""Redaction of secrets in headers, bodies and every log record (ours, requests-oauthlib's, urllib3's)."""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

REDACTED = "***"

SENSITIVE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-token", "x-api-key", "api-key", "cookie", "set-cookie"}
)
_KEY_WORDS = (
    r"(?:access_token|refresh_token|id_token|client_secret|password|api_token|api_key|apikey|secret|token"
    r"|assertion|code_verifier|security_token)"
)
# key=value (form bodies, query strings) and "key": "value" (JSON); prefixed keys count too
# (webhook_secret, x_api_token), since vendors name their secrets freely.
_PAIR = re.compile(rf"(?i)(\b[\w-]*{_KEY_WORDS}\b\s*[=:]\s*)(\"?)([^\s&\",}}]+)")
_JSON_PAIR = re.compile(rf"(?i)(\"[\w-]*{_KEY_WORDS}\"\s*:\s*\")([^\"]*)(\")")
_BEARER = re.compile(r"(?i)\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+")


def redact_text(text: str, extra_secrets: Iterable[str] = ()) -> str:
    """Mask known secret shapes and every exact secret value given."""
    text = _JSON_PAIR.sub(rf"\g<1>{REDACTED}\g<3>", text)
    text = _PAIR.sub(rf"\g<1>\g<2>{REDACTED}", text)
    text = _BEARER.sub(rf"\g<1> {REDACTED}", text)
    for secret in extra_secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    return text


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: (REDACTED if k.lower() in SENSITIVE_HEADERS else v) for k, v in headers.items()}


class _KnownSecrets:
    """Secret values currently in use, so log records can be scrubbed of them exactly.

    Bounded: a long-running server renews tokens forever, and every log record is checked against
    every value kept. The most recently added (or re-added) ``limit`` values are kept; connection
    secrets are re-added whenever a connection is used, so only long-expired tokens fall out.
    """

    def __init__(self, limit: int = 2000) -> None:
        self._lock = threading.Lock()
        self._values: OrderedDict[str, None] = OrderedDict()
        self._limit = limit
        self._snapshot: tuple[str, ...] | None = ()

    def add(self, *values: str | None) -> None:
        """Remember ``values`` (shorter than 4 characters: ignored, they would mask ordinary text)."""
        with self._lock:
            for value in values:
                if not value or len(value) < 4:
                    continue
                if value in self._values:
                    self._values.move_to_end(value)
                    continue
                self._values[value] = None
                self._snapshot = None
                if len(self._values) > self._limit:
                    self._values.popitem(last=False)

    def snapshot(self) -> tuple[str, ...]:
        """The values, longest first (so a secret containing another is masked whole)."""
        with self._lock:
            if self._snapshot is None:
                self._snapshot = tuple(sorted(self._values, key=len, reverse=True))
            return self._snapshot


known_secrets = _KnownSecrets()


class RedactingFilter(logging.Filter):
    """Rewrites a record's message with secrets masked (used by the record factory and on handlers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is not ours to fix
            return True
        cleaned = redact_text(message, known_secrets.snapshot())
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_FILTER = RedactingFilter()
_factory_lock = threading.Lock()


class _RedactingRecordFactory:
    """Wraps the log record factory so every record is scrubbed when it is created.

    Handler filters only see records that reach those handlers, in handler order; a handler an
    operator attaches to a library logger (``urllib3``) runs first and would see raw secrets. The
    factory runs before any handler, for every logger, so no handler ever sees one.
    """

    def __init__(self, wrapped: Callable[..., logging.LogRecord]) -> None:
        self.wrapped = wrapped

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.wrapped(*args, **kwargs)
        _FILTER.filter(record)
        return record


def install_log_redaction() -> None:
    """Scrub secrets from every log record: at creation (record factory), and as a second line of
    defence on every root handler and the chatty HTTP/OAuth loggers."""
    with _factory_lock:
        factory = logging.getLogRecordFactory()
        if not isinstance(factory, _RedactingRecordFactory):
            logging.setLogRecordFactory(_RedactingRecordFactory(factory))
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO)
    for handler in root.handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
    for name in ("requests_oauthlib", "oauthlib", "urllib3", "leadbridge"):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
