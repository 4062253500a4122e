"""OAuth2 helpers connectors call from their ``authenticate`` hook, and the authorization-code
flow the panel runs for "Connect" (with ``state`` and PKCE S256).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import requests

from .. import clock as clocks
from ..errors import AuthError, ConfigError, NeedsReconnect, TransientError
from ..types import Credentials
from .client import VendorClient

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def credentials_from_token(token: Mapping[str, Any], *, previous: Credentials | None = None) -> Credentials:
    """Build :class:`Credentials` from a token endpoint's JSON answer.

    A response without ``refresh_token`` keeps the previous one (non-rotating grants).
    """
    access = str(token["access_token"])
    expires_in = token.get("expires_in")
    expires_at = (
        clocks.utcnow() + timedelta(seconds=float(expires_in)) if expires_in not in (None, "") else None
    )
    refresh = token.get("refresh_token") or (previous.refresh_token if previous else None)
    token_type = str(token.get("token_type") or "Bearer")
    if token_type.lower() == "bearer":
        token_type = "Bearer"
    extra = {
        k: v
        for k, v in token.items()
        if k not in {"access_token", "refresh_token", "expires_in", "token_type", "id_token"}
    }
    return Credentials(
        headers={"Authorization": f"{token_type} {access}"},
        access_token=access,
        expires_at=expires_at,
        refresh_token=refresh,
        extra=extra,
    )


def token_request(
    client: VendorClient,
    token_url: str,
    data: Mapping[str, str],
    *,
    basic_auth: tuple[str, str] | None = None,
    previous: Credentials | None = None,
) -> Credentials:
    """POST a form to a token endpoint and return the credentials.

    ``invalid_grant`` on a refresh becomes :class:`NeedsReconnect` (revoked or reused refresh
    token); ``invalid_client`` and other 4xx become :class:`AuthError`.
    """
    headers = {"Accept": "application/json"}
    if basic_auth is not None:
        headers["Authorization"] = requests.auth._basic_auth_str(*basic_auth)
    # The token endpoint may live on another host than the API (Constant Contact, Salesforce):
    # aim the unauthenticated client at it; token_url comes from validated settings.
    parts = urlsplit(token_url)
    host = f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None
    response = client.unauthenticated(host).request(
        "POST", token_url, data=dict(data), headers=headers, ok_statuses=frozenset({400, 401, 403})
    )
    if response.status_code >= 400:
        try:
            body = response.json()
        except ValueError:
            body = {}
        error = str(body.get("error") or response.status_code)
        description = str(body.get("error_description") or "")
        if error == "invalid_grant" and data.get("grant_type") == "refresh_token":
            raise NeedsReconnect(
                f"the refresh token was refused ({description or error}); reconnect the account",
                code=error,
            )
        raise AuthError(f"the token endpoint refused the credentials: {description or error}", code=error)
    try:
        token = response.json()
        return credentials_from_token(token, previous=previous)
    except (ValueError, KeyError):
        raise TransientError("the token endpoint answered without an access token") from None


def client_credentials(
    client: VendorClient,
    token_url: str,
    client_id: str,
    client_secret: str,
    *,
    scope: str | None = None,
    in_body: bool = False,
) -> Credentials:
    """The client-credentials grant (secret sent as HTTP Basic, or in the form body when ``in_body``)."""
    data = {"grant_type": "client_credentials"}
    if scope:
        data["scope"] = scope
    if in_body:
        data |= {"client_id": client_id, "client_secret": client_secret}
        return token_request(client, token_url, data)
    return token_request(client, token_url, data, basic_auth=(client_id, client_secret))


def refresh(
    client: VendorClient,
    token_url: str,
    previous: Credentials,
    client_id: str,
    client_secret: str | None,
    *,
    in_body: bool = True,
) -> Credentials:
    """The refresh-token grant; the answer's new refresh token (rotation) replaces the old one."""
    if not previous.refresh_token:
        raise NeedsReconnect("no refresh token stored; reconnect the account", code="no_refresh_token")
    data = {"grant_type": "refresh_token", "refresh_token": previous.refresh_token}
    if in_body or client_secret is None:
        data["client_id"] = client_id
        if client_secret:
            data["client_secret"] = client_secret
        return token_request(client, token_url, data, previous=previous)
    return token_request(client, token_url, data, basic_auth=(client_id, client_secret), previous=previous)


# -- authorization code + PKCE (the panel's "Connect" button) --------------------------------


def authorization_url(
    auth_url: str, client_id: str, redirect_uri: str, scopes: Sequence[str]
) -> tuple[str, str, str]:
    """Start the flow: return ``(url, state, code_verifier)``; keep the last two in the session.

    The URL asks for an authorization code with PKCE (S256). Plain ``http`` is accepted only for
    loopback hosts (sandboxes, tests, the demo); oauthlib would refuse those outright.
    """
    parts = urlsplit(auth_url)
    if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in _LOOPBACK):
        raise ConfigError("the authorization URL must use https")
    state = secrets.token_urlsafe(30)
    verifier = secrets.token_urlsafe(64)  # 86 characters: inside RFC 7636's 43..128
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(scopes),
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
        quote_via=quote,
    )
    return f"{auth_url}{'&' if parts.query else '?'}{query}", state, verifier


def exchange_code(
    client: VendorClient,
    token_url: str,
    *,
    client_id: str,
    client_secret: str | None,
    redirect_uri: str,
    code: str,
    code_verifier: str,
) -> Credentials:
    """Finish the flow: trade the code (with the PKCE verifier) for tokens through ``client``."""
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": code_verifier,
    }
    if client_secret:
        return token_request(client, token_url, data, basic_auth=(client_id, client_secret))
    data["client_id"] = client_id
    return token_request(client, token_url, data)
