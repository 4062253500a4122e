"""The read-only view of a connection that hooks receive (never the ORM row)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .types import Credentials, Direction


class SecretMap(Mapping[str, str]):
    """Decrypted secrets of one connection; its repr and str never show a value."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self._values = dict(values or {})

    def __getitem__(self, key: str) -> str:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"SecretMap({', '.join(f'{k}=***' for k in self._values)})"

    __str__ = __repr__


@dataclass(slots=True)
class ConnectionView:
    """One configured connection, as a connector sees it during a hook call.

    :param settings: non-secret settings, validated against the connector's schema.
    :param secrets: secret settings, decrypted for this call only.
    :param credentials: the last credentials ``authenticate`` returned, if still stored.
    :param options: sync options the connector may honour (``push_actions_on_schedule``...).
    :param hub_url: the public base URL of this leadbridge, for links back to hub records.
    """

    id: int
    name: str
    plugin: str
    settings: Mapping[str, Any]
    secrets: SecretMap = field(default_factory=SecretMap)
    credentials: Credentials | None = None
    direction: Direction = Direction.BOTH
    options: Mapping[str, Any] = field(default_factory=dict)
    hub_url: str = "http://localhost:5000"
    sync_from: datetime | None = None
    #: the operator's base-URL override (sandboxes, tests), set only when the app allows overrides.
    #: Informational: the core's client already sends every request there; connectors ignore it.
    base_url_override: str | None = None

    def setting(self, name: str, default: Any = None) -> Any:
        """A setting or secret by name (secrets win), ``default`` when unset or empty."""
        if name in self.secrets:
            return self.secrets[name]
        value = self.settings.get(name)
        return default if value in (None, "") else value

    def hub_contact_url(self, contact_id: int | str) -> str:
        """The link to a contact's page in leadbridge (e.g. Salesforce's ``plezi_url`` field)."""
        return f"{self.hub_url.rstrip('/')}/contacts/{contact_id}"
