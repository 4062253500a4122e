"""Redaction of secrets in headers, bodies and every log record (ours, requests-oauthlib's, urllib3's)."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Mapping

REDACTED = "***"

SENSITIVE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-token", "x-api-key", "api-key", "cookie", "set-cookie"}
)
_KEY_WORDS = r"(?:access_token|refresh_token|id_token|client_secret|password|api_token|api_key|apikey|secret|token|assertion|code_verifier|security_token)"
# key=value (form bodies, query strings) and "key": "value" (JSON)
_PAIR = re.compile(rf"(?i)(\b{_KEY_WORDS}\b\s*[=:]\s*)(\"?)([^\s&\",}}]+)")
_JSON_PAIR = re.compile(rf"(?i)(\"{_KEY_WORDS}\"\s*:\s*\")([^\"]*)(\")")
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
    """Secret values currently in use, so log records can be scrubbed of them exactly."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()

    def add(self, *values: str | None) -> None:
        with self._lock:
            self._values.update(v for v in values if v and len(v) >= 4)

    def snapshot(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(sorted(self._values, key=len, reverse=True))


known_secrets = _KnownSecrets()


class RedactingFilter(logging.Filter):
    """Rewrites each record's message with secrets masked (attached to handlers, so every logger is covered)."""

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


def install_log_redaction() -> None:
    """Attach the redacting filter to every root handler and to the chatty HTTP/OAuth loggers."""
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
