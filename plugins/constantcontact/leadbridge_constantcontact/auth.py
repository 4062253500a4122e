"""Where the connector talks to (API and authorization server) and how it authenticates there."""

from __future__ import annotations

from urllib.parse import urlsplit

import requests
from leadbridge.connection_view import ConnectionView
from leadbridge.errors import ConfigError, NeedsReconnect
from leadbridge.http import VendorClient, oauth
from leadbridge.types import Credentials

from .info import API_URL, REVOKE_PATH, TOKEN_URL

RECONNECT_ADVICE = "Open the connection and press Connect to authorize leadbridge in Constant Contact again."


def api_base(connection: ConnectionView) -> str:
    """The API root: one fixed vendor URL."""
    return API_URL


def token_url(connection: ConnectionView) -> str:
    """The token endpoint: the validated setting (Constant Contact's path on its authorization host)."""
    url = str(connection.setting("token_url", TOKEN_URL))
    if urlsplit(url).path != urlsplit(TOKEN_URL).path:
        raise ConfigError("the Token URL must be Constant Contact's /oauth2/default/v1/token")
    return url


def revoke_url(connection: ConnectionView) -> str:
    parts = urlsplit(token_url(connection))
    return f"{parts.scheme}://{parts.netloc}{REVOKE_PATH}"


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def authenticate(
    connection: ConnectionView, client: VendorClient, previous: Credentials | None
) -> Credentials:
    """Refresh the stored grant (the browser "Connect" flow created it).

    Constant Contact sends client credentials as HTTP Basic. With rotating refresh tokens the answer
    carries a new refresh token that invalidates the old one; the core saves it before use.
    """
    refresh_token = previous.refresh_token if previous and previous.refresh_token else None
    if refresh_token is None:
        refresh_token = connection.setting("refresh_token") or None
    if not refresh_token:
        raise NeedsReconnect(
            "not connected to Constant Contact yet (no refresh token stored)",
            code="not_connected",
            advice=RECONNECT_ADVICE
            + " Make sure the scopes include offline_access, or no refresh token is issued.",
        )
    url = token_url(connection)
    seed = previous if previous is not None else Credentials(headers={}, refresh_token=str(refresh_token))
    if seed.refresh_token != refresh_token:
        seed = Credentials(headers={}, refresh_token=str(refresh_token))
    try:
        return oauth.refresh(
            client.unauthenticated(origin(url)),
            url,
            seed,
            str(connection.setting("client_id")),
            str(connection.setting("client_secret")),
            in_body=False,
        )
    except NeedsReconnect as exc:
        raise NeedsReconnect(exc.message, code=exc.code, advice=RECONNECT_ADVICE) from None


def revoke(connection: ConnectionView, client: VendorClient) -> bool | None:
    """Revoke the stored grant at Constant Contact (RFC 7009: revoking the refresh token ends the
    whole grant, access tokens included)."""
    creds = connection.credentials
    token = creds.refresh_token if creds and creds.refresh_token else None
    if not token:
        return None
    url = revoke_url(connection)
    response = client.unauthenticated(origin(url)).post(
        url,
        data={"token": token, "token_type_hint": "refresh_token"},
        headers={
            "Authorization": requests.auth._basic_auth_str(
                str(connection.setting("client_id")), str(connection.setting("client_secret"))
            )
        },
        ok_statuses=frozenset({400, 401}),
    )
    return response.status_code == 200
