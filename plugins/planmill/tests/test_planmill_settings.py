"""Settings and URLs: a strict instance name, a fixed URL template, public https servers only."""

from __future__ import annotations

import socket

import pytest
from leadbridge.connection_view import ConnectionView
from leadbridge.errors import ConfigError
from leadbridge.http import VendorClient
from leadbridge.metadata import validate_settings
from leadbridge_planmill import info as planmill_info
from leadbridge_planmill.urls import api_base, check_server, token_url

INFO = planmill_info.connector_info()
GOOD = {"instance": "acme", "client_id": "PlanMill.client.1.AbCd", "client_secret": "s3cr3t"}


def _view(**settings: object) -> ConnectionView:
    return ConnectionView(id=1, name="t", plugin="planmill", settings={**GOOD, **settings})


def test_settings_schema_flags_the_secret_and_documents_placeholders() -> None:
    assert INFO.secret_names == {"client_secret"}
    names = [s.name for s in INFO.settings]
    assert names[:4] == ["instance", "client_id", "client_secret", "action_title"]
    title = next(s for s in INFO.settings if s.name == "action_title")
    assert "{company}" in title.help and "{first_name}" in title.help


@pytest.mark.parametrize(
    "instance", ["../evil", "acme/api", "a b", "acme.example.com", "acme?x=1", "", "-acme"]
)
def test_instance_names_outside_the_pattern_are_refused(instance: str) -> None:
    with pytest.raises(ConfigError):
        validate_settings(INFO, {**GOOD, "instance": instance})
    with pytest.raises(ConfigError):
        api_base(_view(instance=instance))


def test_cloud_urls_come_from_the_fixed_template() -> None:
    validate_settings(INFO, GOOD)
    assert api_base(_view()) == "https://online.planmill.com/acme/api/1.5/"
    assert token_url(_view()) == "https://online.planmill.com/acme/api/oauth2/token"


@pytest.mark.parametrize(
    "server",
    [
        "http://planmill.example.com",  # not https
        "https://planmill.example.com/path",  # a path could re-aim the instance
        "https://user@planmill.example.com",
        "https://127.0.0.1",
        "https://10.1.2.3",
        "https://192.168.0.10:8443",
        "https://169.254.169.254",  # cloud metadata
        "https://[::1]",
        "https://localhost",  # resolves to loopback
    ],
)
def test_self_hosted_servers_must_be_public_https(server: str) -> None:
    with pytest.raises(ConfigError):
        check_server(server)
    with pytest.raises(ConfigError):
        api_base(_view(server=server))


def test_a_public_self_hosted_server_is_used_with_the_same_template() -> None:
    assert check_server("https://93.184.216.34/") == "https://93.184.216.34"
    assert api_base(_view(server="https://93.184.216.34")) == "https://93.184.216.34/acme/api/1.5/"


def test_a_host_name_is_checked_on_every_address_it_resolves_to() -> None:
    def resolve(host: str, port: int, **_: object) -> list[tuple[object, ...]]:
        assert (host, port) == ("pm.example.com", 443)
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 443)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", 443)),
        ]

    with pytest.raises(ConfigError, match="non-public"):
        check_server("https://pm.example.com", resolve=resolve)


def test_the_override_is_the_cores_business_not_the_connectors() -> None:
    view = ConnectionView(
        id=1, name="t", plugin="planmill", settings=GOOD, base_url_override="http://127.0.0.1:5001"
    )
    assert api_base(view) == "https://online.planmill.com/acme/api/1.5/"
    client = VendorClient(api_base(view), override=view.base_url_override)
    assert client.destination(client.url("contacts")) == "http://127.0.0.1:5001/acme/api/1.5/contacts"
