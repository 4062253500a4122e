"""OAuth2 client credentials against the instance's token endpoint, and PlanMill's error quirks."""

from __future__ import annotations

import re
from datetime import timedelta

import requests
from leadbridge import clock as clocks
from leadbridge.connection_view import ConnectionView
from leadbridge.errors import ConfigError, LeadbridgeError, QuotaExhausted, RecordError, TokenExpired
from leadbridge.http import VendorClient
from leadbridge.http.oauth import client_credentials
from leadbridge.toolkit.answers import dig, error_body, error_parts
from leadbridge.types import Credentials

from .urls import token_url

VALIDATION_CODE = "00018"
# PlanMill's own Zapier app refreshed on any 400; we only do so when the body speaks of the token,
# so a malformed request is reported as such instead of aborting the run after a useless renewal.
_TOKEN_WORDS = re.compile(r"token|expired|nonce|unauthori[sz]ed|authenticat", re.IGNORECASE)


def authenticate(connection: ConnectionView, client: VendorClient) -> Credentials:
    client_id = str(connection.setting("client_id", "") or "")
    secret = str(connection.setting("client_secret", "") or "")
    if not client_id or not secret:
        raise ConfigError("PlanMill client ID and client secret are required", code="missing_credentials")
    # PlanMill's own client sends id and secret in the form body; expires_in drives renewal.
    return client_credentials(client, token_url(connection), client_id, secret, in_body=True)


def _quota(response: requests.Response) -> LeadbridgeError | None:
    """A 429 asking to wait an hour or more (or saying "quota") is a spent allowance: pause the run."""
    message = str(dig(error_body(response), ["message"]) or "")
    try:
        wait = float(response.headers.get("Retry-After") or 0)
    except ValueError:
        wait = 0.0
    if wait < 3600 and "quota" not in message.lower():
        return None  # an ordinary rate limit: the core waits it out
    resets_at = clocks.utcnow() + timedelta(seconds=wait or 3600)
    return QuotaExhausted(
        f"PlanMill: {message or 'request quota exhausted'}", code="429", resets_at=resets_at
    )


def classify_error(response: requests.Response) -> LeadbridgeError | None:
    """PlanMill specifics; ``None`` leaves 401/403/404/429/5xx to the core's default rules."""
    if response.status_code == 429:
        return _quota(response)
    if response.status_code != 400:
        return None
    message, found = error_parts(response, code=[["code"]])
    code = found or "400"
    fields = dig(error_body(response), ["fields"])
    if code == VALIDATION_CODE or isinstance(fields, dict):
        detail = "; ".join(f"{k}: {v}" for k, v in fields.items()) if isinstance(fields, dict) else ""
        first = next(iter(fields), None) if isinstance(fields, dict) else None
        return RecordError(f"{message}{': ' + detail if detail else ''}", code=code, field=first)
    if _TOKEN_WORDS.search(message) and "Authorization" in response.request.headers:
        return TokenExpired(f"PlanMill refused the access token: {message}", code=code)
    return RecordError(message, code=code)
