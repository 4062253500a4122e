"""Constant Contact's error shapes mapped onto the leadbridge taxonomy.

Most errors are a JSON *array* of ``{"error_key", "error_message"}``; 401 and 429 answer with a
single object. 429 carries no headers: ``throttled`` is the 4-per-second limit (wait a second),
``quota_exceeded`` the 10,000-per-day allowance (pause until 00:00 UTC).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlsplit

import requests
from leadbridge import clock as clocks
from leadbridge.errors import (
    AuthError,
    LeadbridgeError,
    QuotaExhausted,
    RateLimited,
    RecordError,
    TokenExpired,
    TransientError,
)
from leadbridge.toolkit.answers import error_parts


def error_detail(response: requests.Response) -> tuple[str | None, str]:
    """``(error_key, error_message)`` of an error body: an object, or a list of them."""
    message, key = error_parts(
        response,
        message=[[0, "error_message"], ["error_message"], ["error_description"]],
        code=[[0, "error_key"], ["error_key"], ["error"]],
    )
    return key, message


def next_midnight_utc(now: datetime | None = None) -> datetime:
    now = now or clocks.utcnow()
    return (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)


def classify(response: requests.Response) -> LeadbridgeError | None:
    status = response.status_code
    path = urlsplit(response.url).path
    key, message = error_detail(response)
    if status == 429:
        if key == "quota_exceeded":
            return QuotaExhausted(
                f"Constant Contact's daily allowance of 10,000 requests is used up ({message})",
                code=key,
                resets_at=next_midnight_utc(),
            )
        if key == "throttled":
            return RateLimited(
                "Constant Contact throttled the request (4 per second)", code=key, retry_after=1.0
            )
        # The bulk activity queue is full (more than 1,000 queued activities).
        return RateLimited(f"{path}: {message or 'too many requests'}", code=key or "429", retry_after=30.0)
    if status == 401:
        return TokenExpired(f"{path}: access token rejected", code=key or "unauthorized")
    if status == 403:
        return AuthError(
            f"{path}: forbidden — the grant lacks the contact_data scope, the user lacks the privilege, "
            "or the app was deactivated",
            code=key or "403",
        )
    if status == 409 and path.endswith("/contacts/sign_up_form"):
        # Two simultaneous writes to one contact: safe to send again.
        return TransientError(f"{path}: concurrent update ({message})", code=key or "409")
    if 400 <= status < 500:
        return RecordError(f"{message or status}", code=key or str(status))
    return None
