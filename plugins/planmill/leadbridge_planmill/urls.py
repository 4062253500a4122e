"""Where a connection's PlanMill lives: URLs built from a fixed template and validated settings only.

The instance name lands in the URL path, so it is held to a strict pattern. A self-hosted server is
accepted only as a bare ``https://host[:port]`` whose every address is public: a setting must never
aim the connector (and the bearer token it carries) at a private, loopback or link-local host.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from leadbridge.connection_view import ConnectionView
from leadbridge.errors import ConfigError

CLOUD_SERVER = "https://online.planmill.com"
API_VERSION = "1.5"
INSTANCE_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}"
SERVER_PATTERN = r"https://[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(?::[0-9]{1,5})?/?"

Resolver = Callable[..., list[tuple[Any, ...]]]


def instance_name(connection: ConnectionView) -> str:
    """The validated instance name (the path segment after the server)."""
    name = str(connection.setting("instance", "") or "").strip()
    if not re.fullmatch(INSTANCE_PATTERN, name):
        raise ConfigError("PlanMill instance name must be letters, digits, '-' or '_'", code="bad_instance")
    return name


def check_server(url: str, *, resolve: Resolver = socket.getaddrinfo) -> str:
    """Return ``url`` normalised (no trailing slash) when it is a public https server, else raise."""
    url = url.strip()
    if not re.fullmatch(SERVER_PATTERN, url):
        raise ConfigError("PlanMill server must be an https URL with a host name only", code="bad_server")
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        infos = resolve(host, parts.port or 443, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        raise ConfigError(f"PlanMill server {host!r} does not resolve", code="bad_server") from exc
    addresses = {info[4][0] for info in infos}
    if not addresses:
        raise ConfigError(f"PlanMill server {host!r} does not resolve", code="bad_server")
    for address in addresses:
        ip = ipaddress.ip_address(str(address).split("%", 1)[0])
        if not ip.is_global or ip.is_multicast:
            raise ConfigError(
                f"PlanMill server {host!r} resolves to a non-public address; refused", code="bad_server"
            )
    return url.rstrip("/")


def server_root(connection: ConnectionView, *, resolve: Resolver = socket.getaddrinfo) -> str:
    """``https://server/instance/api`` for this connection."""
    instance = instance_name(connection)
    server = str(connection.setting("server", "") or "").strip()
    base = check_server(server, resolve=resolve) if server else CLOUD_SERVER
    return f"{base}/{instance}/api"


def api_base(connection: ConnectionView) -> str:
    return f"{server_root(connection)}/{API_VERSION}/"


def token_url(connection: ConnectionView) -> str:
    return f"{server_root(connection)}/oauth2/token"
