"""Which hosts the connector may talk to: login hosts from validated settings, and the
``instance_url`` a token answer names, accepted only when it is an https Salesforce host (no SSRF)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from leadbridge.connection_view import ConnectionView
from leadbridge.errors import AuthError, ConfigError

from .info import MY_DOMAIN

LOGIN_HOSTS = {"production": "https://login.salesforce.com", "sandbox": "https://test.salesforce.com"}

# Data hosts Salesforce hands out: My Domain, instance (na1, eu11...) and government/China clouds.
_SALESFORCE_HOST = re.compile(
    r"^([a-z0-9-]+\.)+(my\.salesforce\.com|salesforce\.com|force\.com|cloudforce\.com|"
    r"salesforce\.mil|sfcrmproducts\.cn)$"
)
_DOMAIN_PARTS = re.compile(
    r"^(?:https://)?(?P<name>[A-Za-z0-9][A-Za-z0-9-]*)(?:\.(?P<kind>sandbox|develop|scratch|demo|patch|trailblaze))?"
    r"(?:\.my\.salesforce\.com|\.lightning\.force\.com)?/?$"
)


def my_domain_url(value: str) -> str:
    """``https://<name>[.<kind>].my.salesforce.com`` from what an admin typed (the UI host included)."""
    if not re.fullmatch(MY_DOMAIN, value):
        raise ConfigError(f"{value!r} is not a My Domain name such as acme or acme.my.salesforce.com")
    match = _DOMAIN_PARTS.match(value.strip())
    assert match is not None
    kind = f".{match['kind']}" if match["kind"] else ""
    return f"https://{match['name'].lower()}{kind}.my.salesforce.com"


def login_url(connection: ConnectionView) -> str:
    """The token host chosen in the settings."""
    choice = connection.setting("login_host", "production")
    if choice == "my_domain" or (connection.setting("auth_flow") == "client_credentials"):
        domain = connection.setting("my_domain")
        if not domain:
            raise ConfigError("client credentials and the My Domain login host need your My Domain name")
        return my_domain_url(str(domain))
    if choice not in LOGIN_HOSTS:
        raise ConfigError(f"unknown login host {choice!r}")
    return LOGIN_HOSTS[choice]


def checked_instance_url(connection: ConnectionView, value: object) -> str:
    """Accept a token answer's ``instance_url`` only when it is an https Salesforce data host."""
    url = str(value or "").rstrip("/")
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if (
        parts.scheme != "https"
        or parts.port not in (None, 443)
        or parts.username
        or parts.path not in ("", "/")
        or not _SALESFORCE_HOST.match(host)
        or host.endswith(".lightning.force.com")  # the UI host rejects /services/data
    ):
        raise AuthError(f"the login answer named an instance URL that is not a Salesforce host: {url[:80]!r}")
    return f"https://{host}"
