"""Salesforce's error answers in leadbridge's taxonomy, and the ``Sforce-Limit-Info`` header."""

from __future__ import annotations

import re
from typing import Any

import requests
from leadbridge.errors import (
    AuthError,
    ConfigError,
    LeadbridgeError,
    QuotaExhausted,
    RateLimited,
    RecordError,
    TokenExpired,
    TransientError,
)
from leadbridge.toolkit.answers import error_body
from leadbridge.types import RateUsage

_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")
# Row locks and locator expiry clear up on their own; the core retries idempotent calls.
TRANSIENT_CODES = frozenset({"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "QUERY_TIMEOUT"})


class LocatorExpired(TransientError):
    """A query cursor expired: asking again cannot help; the engine restarts from its checkpoint."""


def first_error(body: Any) -> dict[str, Any]:
    """The first ``{"message", "errorCode"}`` of an error answer (array, object or OAuth form)."""
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return body[0]
    if isinstance(body, dict):
        if "errorCode" in body or "message" in body:
            return body
        if "error" in body:
            return {"errorCode": body["error"], "message": body.get("error_description", "")}
    return {}


def classify(response: requests.Response) -> LeadbridgeError | None:
    return from_answer(response.status_code, error_body(response))


# A query the connector built that Salesforce cannot run: a human must fix the org or settings.
QUERY_CONFIG_CODES = frozenset(
    {"INVALID_FIELD", "MALFORMED_QUERY", "INVALID_TYPE", "INVALID_QUERY_FILTER_OPERATOR"}
)


def from_answer(status: int, body: Any) -> LeadbridgeError | None:
    """The error an answer with ``status`` and JSON ``body`` means (also for Composite sub-answers)."""
    error = first_error(body)
    code = str(error.get("errorCode") or error.get("statusCode") or "") or None
    message = str(error.get("message") or f"HTTP {status}")[:300]
    if status == 401:
        return TokenExpired(message, code=code or "INVALID_SESSION_ID")
    if code == "REQUEST_LIMIT_EXCEEDED":
        if "ConcurrentPerOrgLongTxn" in message:
            return RateLimited(message, code=code)
        # Salesforce's quota answer is 403, never 429: stop until the rolling 24 h window frees.
        return QuotaExhausted(message, code=code)
    if status == 403:
        return AuthError(message, code=code or "403")
    if code in QUERY_CONFIG_CODES:
        return ConfigError(f"Salesforce refused a query: {message}", code=code)
    if code == "INVALID_QUERY_LOCATOR":
        return LocatorExpired(message, code=code)
    if code in TRANSIENT_CODES or status >= 500:
        return TransientError(message, code=code or str(status))
    if status == 300:
        return RecordError("the external id matches several records", code="MULTIPLE_CHOICES")
    if code == "DUPLICATES_DETECTED" and duplicate_ids(error):
        message = f"{message} (duplicate rule matched {', '.join(duplicate_ids(error))})"
    if status >= 400:
        fields = error.get("fields") or []
        return RecordError(message, code=code or str(status), field=fields[0] if fields else None)
    return None


def rate_usage(response: requests.Response) -> RateUsage | None:
    match = _USAGE.search(response.headers.get("Sforce-Limit-Info", ""))
    if match is None:
        return None
    return RateUsage(daily_used=int(match[1]), daily_limit=int(match[2]))


def duplicate_ids(error: dict[str, Any]) -> list[str]:
    """Ids named by a duplicate rule answer (``duplicateResut`` as Salesforce spells it, or fixed)."""
    result = error.get("duplicateResut") or error.get("duplicateResult") or {}
    ids = []
    for match in result.get("matchResults", []):
        for record in match.get("matchRecords", []):
            rid = (record.get("record") or {}).get("Id")
            if rid:
                ids.append(str(rid))
    return ids
