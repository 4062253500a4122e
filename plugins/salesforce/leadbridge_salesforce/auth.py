"""Logging in: client credentials (My Domain), JWT bearer and the legacy username-password flow.

Salesforce's token answer has no ``expires_in`` (sessions time out after inactivity), so the core
renews only when a call answers 401 ``INVALID_SESSION_ID``. The answer's ``instance_url`` becomes
the data host once it passed :func:`~.hosts.checked_instance_url`; the API version is negotiated
here, once per login, and kept with the grant.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from leadbridge import clock as clocks
from leadbridge.connection_view import ConnectionView
from leadbridge.errors import AuthError, ConfigError, NeedsReconnect
from leadbridge.http import VendorClient
from leadbridge.http.oauth import token_request
from leadbridge.types import Credentials

from .hosts import LOGIN_HOSTS, checked_instance_url, login_url
from .info import DEFAULT_API_VERSION

TOKEN_PATH = "services/oauth2/token"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"

PASSWORD_ADVICE = (
    "Salesforce refused the username, password or security token. Salesforce makes users reset "
    "their password regularly (often every 90 days) and a reset invalidates the security token: "
    "reset the API user's password, then use 'Reset My Security Token' in the user's settings and "
    "enter both here."
)
JWT_ADVICE = "Pre-authorise the API user for the app (Manage → Edit Policies → Admin approved users)."
DOMAIN_ADVICE = "Client credentials only work on your My Domain host: choose 'My Domain' and enter it."


def authenticate(connection: ConnectionView, client: VendorClient) -> Credentials:
    flow = connection.setting("auth_flow", "client_credentials")
    base = login_url(connection)
    login = client.unauthenticated(base)
    key = _required(connection, "consumer_key")
    try:
        if flow == "client_credentials":
            creds = token_request(
                login,
                TOKEN_PATH,
                {"grant_type": "client_credentials"},
                basic_auth=(key, _required(connection, "consumer_secret")),
            )
        elif flow == "password":
            password = _required(connection, "password") + str(connection.setting("security_token", ""))
            data = {
                "grant_type": "password",
                "client_id": key,
                "client_secret": _required(connection, "consumer_secret"),
                "username": _required(connection, "username"),
                "password": password,
            }
            creds = token_request(login, TOKEN_PATH, data)
        elif flow == "jwt_bearer":
            audience = _jwt_audience(connection, base)
            assertion = jwt_assertion(
                key, _required(connection, "username"), audience, _required(connection, "private_key")
            )
            creds = token_request(login, TOKEN_PATH, {"grant_type": JWT_GRANT, "assertion": assertion})
        else:
            raise ConfigError(f"unknown login flow {flow!r}")
    except NeedsReconnect:
        raise
    except AuthError as exc:
        raise _explain(flow, exc) from None
    instance = checked_instance_url(connection, creds.extra.get("instance_url"))
    creds.extra["instance_url"] = instance
    creds.extra["api_version"] = negotiate_version(connection, client.unauthenticated(instance))
    return creds


def negotiate_version(connection: ConnectionView, client: VendorClient) -> str:
    """``min(configured, newest the org lists)`` from ``GET /services/data/`` (no auth needed)."""
    wanted = str(connection.setting("api_version", DEFAULT_API_VERSION))
    listed = client.get("services/data/").json()
    versions = [str(v.get("version")) for v in listed if isinstance(v, dict) and v.get("version")]
    if not versions:
        return wanted
    newest = max(versions, key=float)
    return wanted if float(wanted) <= float(newest) else newest


def _explain(flow: str, exc: AuthError) -> AuthError:
    """Turn the token endpoint's terse errors into what the admin has to do."""
    text = exc.message
    if "not supported on this domain" in text:
        return AuthError(f"{text}. {DOMAIN_ADVICE}", code=exc.code)
    if "approved this consumer" in text:
        return AuthError(f"{text}. {JWT_ADVICE}", code=exc.code)
    if flow == "password" and exc.code == "invalid_grant":
        # Expired passwords and stale security tokens answer exactly like a wrong password.
        return NeedsReconnect(text, code=exc.code, advice=PASSWORD_ADVICE)
    return exc


def _required(connection: ConnectionView, name: str) -> str:
    value = connection.setting(name)
    if not value:
        raise ConfigError(f"the {name.replace('_', ' ')} is required for this login flow")
    return str(value)


def _jwt_audience(connection: ConnectionView, base: str) -> str:
    # The audience is the login server, never the My Domain or instance host.
    return (
        LOGIN_HOSTS["sandbox"] if connection.setting("login_host") == "sandbox" else LOGIN_HOSTS["production"]
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_assertion(
    consumer_key: str, username: str, audience: str, private_key_pem: str, *, now: float | None = None
) -> str:
    """An RS256-signed JWT with Salesforce's claims (exp three minutes ahead, as Salesforce allows)."""
    try:
        key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    except (ValueError, TypeError):
        raise ConfigError("the private key is not an unencrypted PEM key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError("the private key must be an RSA key (RS256)")
    issued = int(now if now is not None else clocks.wall_time())
    claims: dict[str, Any] = {"iss": consumer_key, "sub": username, "aud": audience, "exp": issued + 180}
    header = _b64(json.dumps({"alg": "RS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode()
    signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return f"{header}.{payload}.{_b64(signature)}"
