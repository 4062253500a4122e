"""The typed face of one connection's connector: every hook call the core makes goes through here.

:class:`~leadbridge.plugins.Plugins` dispatches by hook name (pluggy's model), so its ``call``
returns ``Any``. :class:`Connector` wraps it with one method per per-connection hook, with the
hookspec's arguments and return type, so the engine's calls and results are checked by mypy and a
misspelt hook is an attribute error at type-check time, not a runtime surprise. The checks of
:meth:`Plugins.call` (loaded, enabled, implemented, ``object_type`` declared) still apply.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import requests

    from .connection_view import ConnectionView
    from .errors import LeadbridgeError
    from .http import VendorClient
    from .types import (
        Action,
        Campaign,
        Company,
        Contact,
        Credentials,
        Page,
        RateUsage,
        RecordResult,
        RemoteField,
        WebhookEvent,
        WebhookRequest,
    )


class Dispatch(Protocol):
    """What :class:`Connector` needs of :class:`~leadbridge.plugins.Plugins` (no import back)."""

    def implements(self, name: str, hook: str) -> bool: ...

    def call(self, connection: ConnectionView, hook: str, **kwargs: Any) -> Any: ...

    def call_optional(self, connection: ConnectionView, hook: str, **kwargs: Any) -> Any: ...


class Connector:
    """The hooks of the plugin owning ``view``'s connection, typed (see :mod:`leadbridge.hookspecs`
    for when each is called and what it must do)."""

    def __init__(self, plugins: Dispatch, view: ConnectionView) -> None:
        self.plugins = plugins
        self.view = view

    def implements(self, hook: str) -> bool:
        return self.plugins.implements(self.view.plugin, hook)

    def _call(self, hook: str, **kw: Any) -> Any:
        return self.plugins.call(self.view, hook, **kw)

    def _optional(self, hook: str, **kw: Any) -> Any:
        return self.plugins.call_optional(self.view, hook, **kw)

    # -- connection ------------------------------------------------------------------------

    def api_base_url(self, endpoint: str | None = None) -> str:
        """The base URL of the connector's main API, or of its named ``endpoint``."""
        return str(self._call("api_base_url", endpoint=endpoint))

    def authenticate(self, client: VendorClient, previous: Credentials | None) -> Credentials | None:
        result: Credentials | None = self._call("authenticate", client=client, previous=previous)
        return result

    def revoke_credentials(self, client: VendorClient) -> bool | None:
        result: bool | None = self._call("revoke_credentials", client=client)
        return result

    def classify_error(
        self, response: requests.Response, endpoint: str | None = None
    ) -> LeadbridgeError | None:
        result: LeadbridgeError | None = self._optional(
            "classify_error", response=response, endpoint=endpoint
        )
        return result

    def read_rate_limits(self, response: requests.Response, endpoint: str | None = None) -> RateUsage | None:
        result: RateUsage | None = self._optional("read_rate_limits", response=response, endpoint=endpoint)
        return result

    # -- discovery ---------------------------------------------------------------------------

    def field_types(self, client: VendorClient, object_type: str) -> list[RemoteField]:
        return list(self._call("field_types", client=client, object_type=object_type) or [])

    def list_campaigns(self, client: VendorClient) -> list[Campaign]:
        return list(self._call("list_campaigns", client=client) or [])

    # -- reads -------------------------------------------------------------------------------

    def fetch_contacts(
        self, client: VendorClient, object_type: str, since: datetime | None, cursor: str | None
    ) -> Page[Contact]:
        page: Page[Contact] = self._call(
            "fetch_contacts", client=client, object_type=object_type, since=since, cursor=cursor
        )
        return page

    def fetch_companies(
        self, client: VendorClient, since: datetime | None, cursor: str | None
    ) -> Page[Company]:
        page: Page[Company] = self._call("fetch_companies", client=client, since=since, cursor=cursor)
        return page

    def fetch_campaign_members(
        self, client: VendorClient, campaign_id: str, cursor: str | None
    ) -> Page[Contact]:
        page: Page[Contact] = self._call(
            "fetch_campaign_members", client=client, campaign_id=campaign_id, cursor=cursor
        )
        return page

    # -- writes ------------------------------------------------------------------------------

    def upsert_company(self, client: VendorClient, companies: Sequence[Company]) -> list[RecordResult]:
        return list(self._call("upsert_company", client=client, companies=companies))

    def upsert_contact(
        self, client: VendorClient, object_type: str, contacts: Sequence[Contact]
    ) -> list[RecordResult]:
        return list(self._call("upsert_contact", client=client, object_type=object_type, contacts=contacts))

    def delete_contacts(
        self, client: VendorClient, object_type: str, remote_ids: Sequence[str]
    ) -> list[RecordResult]:
        return list(
            self._call("delete_contacts", client=client, object_type=object_type, remote_ids=remote_ids)
        )

    def create_action(self, client: VendorClient, action: Action) -> RecordResult:
        result: RecordResult = self._call("create_action", client=client, action=action)
        return result

    # -- webhooks ----------------------------------------------------------------------------

    def handle_webhook(self, client: VendorClient, request: WebhookRequest) -> list[WebhookEvent]:
        return list(self._call("handle_webhook", client=client, request=request) or [])

    def register_webhooks(self, client: VendorClient, url: str, secret: str) -> list[str]:
        return [str(i) for i in self._call("register_webhooks", client=client, url=url, secret=secret) or []]

    def unregister_webhooks(self, client: VendorClient, webhook_ids: Sequence[str]) -> None:
        self._call("unregister_webhooks", client=client, webhook_ids=webhook_ids)
