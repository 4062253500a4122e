"""Static credentials a connector declares: API keys and tokens an admin pastes into the settings.

Declarations only (what the vendor expects and which secret settings hold it); the core's client
sends them (:class:`leadbridge.http.auth.StaticCredentials`), never in a URL, and redacts them.
"""

from __future__ import annotations

import base64


class StaticAuth:
    """How a vendor takes a key that never renews (declared in :class:`~leadbridge.metadata.ConnectorInfo`
    or on an :class:`~leadbridge.metadata.Endpoint`, read from the connection's secret settings).

    Subclasses turn the setting values into headers; the key never goes into a URL.
    """

    settings: tuple[str, ...] = ()

    def header_values(self, values: tuple[str, ...]) -> dict[str, str]:
        raise NotImplementedError


class ApiKeyHeader(StaticAuth):
    """``<header>: <prefix><key>`` (Pipedrive: ``x-api-token``)."""

    def __init__(self, setting: str, *, header: str, prefix: str = "") -> None:
        self.settings, self.header, self.prefix = (setting,), header, prefix

    def header_values(self, values: tuple[str, ...]) -> dict[str, str]:
        return {self.header: self.prefix + values[0]}


class BearerToken(ApiKeyHeader):
    """``Authorization: Bearer <token>`` (a personal access token)."""

    def __init__(self, setting: str) -> None:
        super().__init__(setting, header="Authorization", prefix="Bearer ")


class BasicAuth(StaticAuth):
    """HTTP Basic from a user and a password setting, or from the key alone (``password=None`` and
    ``key_only=True``: Maileon's ``base64(<API key>)`` without the colon)."""

    def __init__(self, user: str, password: str | None = None, *, key_only: bool = False) -> None:
        self.settings = (user,) if password is None else (user, password)
        self.key_only = key_only

    def header_values(self, values: tuple[str, ...]) -> dict[str, str]:
        raw = values[0] if self.key_only else ":".join((*values, "")[:2])
        return {"Authorization": "Basic " + base64.b64encode(raw.encode()).decode()}
