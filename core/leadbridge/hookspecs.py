"""The connector contract: every hook a leadbridge connector may implement.

Conventions (they hold for every hook below):

* Hooks are called with keyword arguments only; an implementation may accept fewer arguments than
  the spec lists (pluggy's opt-in arguments), so new arguments never break old connectors.
* Per-connection hooks are ``firstresult`` and reach **only** the plugin that owns the connection,
  through :meth:`leadbridge.plugins.Plugins.call`; a write is never broadcast. A connector that does
  not implement a hook the core needs makes the core raise :class:`~leadbridge.errors.NotSupported`.
* ``client`` is the core's :class:`~leadbridge.http.VendorClient` for this connection. Use it for
  every vendor call: it owns timeouts, retries, pacing, token refresh, call counting and redaction.
  Connectors never sleep, retry or refresh on their own.
* Raise the errors of :mod:`leadbridge.errors`: ``ConfigError``/``AuthError`` (not retried),
  ``TransientError``/``RateLimited``/``QuotaExhausted`` (retried or paused by the core),
  ``RecordError`` (one record refused). Per-record failures of a batch are returned as
  :class:`~leadbridge.types.RecordResult` with ``outcome=failed``, not raised.
* Datetimes are timezone-aware UTC.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import pluggy

from . import PROJECT_NAME

if TYPE_CHECKING:
    import requests

    from .connection_view import ConnectionView
    from .errors import LeadbridgeError
    from .http import VendorClient
    from .metadata import ConnectorInfo
    from .sandbox import Sandbox
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

hookspec = pluggy.HookspecMarker(PROJECT_NAME)

# ---------------------------------------------------------------------------------------------
# Metadata
# ---------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def connector_info() -> ConnectorInfo:
    """Describe the connector: names, settings schema, auth kind, objects, rate limits.

    Called once per plugin when the host loads it (and by ``leadbridge plugins``), before any
    connection exists. Must be cheap and make no network call.

    :returns: a :class:`~leadbridge.metadata.ConnectorInfo` whose ``name`` equals the plugin's entry
        point name. Invalid metadata or an incompatible ``requires_core`` marks the plugin broken.
        ``None`` is not allowed: a plugin without metadata is not a connector and is reported broken.
    """


@hookspec(firstresult=True)
def connector_sandbox() -> Sandbox | None:
    """Return the loopback imitation of this connector's vendor API.

    Called by ``leadbridge demo`` (which serves it on 127.0.0.1 and creates a ready connection from
    :meth:`~leadbridge.sandbox.Sandbox.connection_settings`) and by the connector test kit. Each call
    returns a **new** sandbox with its own state.

    :returns: a :class:`~leadbridge.sandbox.Sandbox`, or ``None`` when the connector ships none
        (the demo then skips it; the conformance suite cannot run).
    """


# ---------------------------------------------------------------------------------------------
# Authentication and transport
# ---------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def api_base_url(connection: ConnectionView, endpoint: str | None) -> str:
    """Return the root URL of the vendor API for ``connection``.

    Called whenever the core builds a :class:`~leadbridge.http.VendorClient` for the connection
    (at the start of a run and again after ``authenticate``, since some vendors name the host in
    the token answer, like Salesforce's ``instance_url``). Build it from a fixed template and
    validated settings only, so no setting can aim the connector at an arbitrary host. Always
    return the real vendor URL: when the operator overrides the base URL (sandboxes, tests, the
    demo) the core's client sends every request to the override's origin with the path kept, so a
    connector never handles the override itself (nor token, login or instance hosts for it).

    :param endpoint: ``None`` for the connector's main API; the name of a declared
        :class:`~leadbridge.metadata.Endpoint` without a fixed ``base_url`` when the core builds
        that endpoint's client (connectors without endpoints may leave the argument out).
    :returns: an absolute ``https://`` URL.
    """


@hookspec(firstresult=True)
def authenticate(
    connection: ConnectionView, client: VendorClient, previous: Credentials | None
) -> Credentials | None:
    """Obtain credentials for ``connection`` (log in, exchange or refresh a token).

    Called by the core before the first vendor call of a run, when stored credentials are about to
    expire, once after the vendor answered "token expired" (:class:`~leadbridge.errors.TokenExpired`),
    and by "Test connection". Only one call per connection runs at a time; the core saves the
    result (encrypted) before it is used, so a rotated refresh token is never lost.

    :param connection: the connection, with its decrypted secrets.
    :param client: a client **without** credentials attached, for the token endpoint.
    :param previous: the credentials stored before (carrying a refresh token), or ``None``.
    :returns: fresh :class:`~leadbridge.types.Credentials`, or ``None`` when the vendor needs no
        login (headers from settings only).
    :raises AuthError: the vendor refused the credentials (never retried).
    :raises NeedsReconnect: a stored grant is revoked or expired; a human must reconnect.
    """


@hookspec(firstresult=True)
def revoke_credentials(connection: ConnectionView, client: VendorClient) -> bool | None:
    """Revoke the stored grant at the vendor when the admin presses "Revoke access".

    Called by :func:`leadbridge.connections.revoke` before the core forgets the credentials
    (``connection.credentials`` still holds them). Best effort: an error is logged, never shown as a
    failure, since the local grant is forgotten either way. Optional; a connector without it only
    has its credentials forgotten locally.

    :param client: a client **without** credentials attached (revocation endpoints authenticate
        the app, not the user); aim it at another host with ``client.unauthenticated(url)``.
    :returns: ``True`` when the vendor confirmed the revocation, ``None`` when there was nothing to revoke.
    """


@hookspec(firstresult=True)
def classify_error(
    connection: ConnectionView, response: requests.Response, endpoint: str | None
) -> LeadbridgeError | None:
    """Translate a vendor's error response into the leadbridge error taxonomy.

    Called by the core's HTTP client for every response with status >= 400, before its own default
    rules (401 → token expired, 429 → rate limited with ``Retry-After``, 5xx → transient,
    other 4xx → record error). Use it for vendor quirks: Salesforce's 403 ``REQUEST_LIMIT_EXCEEDED``
    quota, Constant Contact's 429 ``throttled`` vs ``quota_exceeded``.

    :param endpoint: which API answered: ``None`` for the main one, else a declared endpoint's name.
    :returns: the error to raise (the core retries or pauses according to its class), or ``None``
        to apply the default rules.
    """


@hookspec(firstresult=True)
def read_rate_limits(
    connection: ConnectionView, response: requests.Response, endpoint: str | None
) -> RateUsage | None:
    """Read the vendor's rate-limit headers from any response.

    Called for every response. The core's pacer slows down as the remaining allowance shrinks and
    stops the run cleanly ("paused until reset") before a daily quota runs out. Each named
    endpoint has its own pacer.

    :param endpoint: which API answered: ``None`` for the main one, else a declared endpoint's name.
    :returns: what the headers say, or ``None`` when the vendor sends none (the pacer then uses the
        limits declared in :class:`~leadbridge.metadata.ConnectorInfo`).
    """


# ---------------------------------------------------------------------------------------------
# Discovery
# ---------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def field_types(connection: ConnectionView, client: VendorClient, object_type: str) -> list[RemoteField]:
    """List the fields of a vendor object, typed in hub terms, custom fields included.

    Called when the field-mapping screen opens or is refreshed, when a mapping is saved (to check
    type compatibility and select options) and at the start of a sync. Field names must be unique.

    :param object_type: one of the connector's declared :class:`~leadbridge.metadata.ObjectSpec` names.
    :returns: every field of the object the connector can read or write, with select options.
    """


@hookspec(firstresult=True)
def list_campaigns(connection: ConnectionView, client: VendorClient) -> list[Campaign] | None:
    """List the vendor's campaigns (or lists) whose members can be imported into a hub list.

    Called when a marketer opens "Import from <connector>" on a list.

    :returns: the campaigns, or ``None`` when the connector has no such concept.
    """


# ---------------------------------------------------------------------------------------------
# Reads
# ---------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def fetch_contacts(
    connection: ConnectionView,
    client: VendorClient,
    object_type: str,
    since: datetime | None,
    cursor: str | None,
) -> Page[Contact]:
    """Read one page of people changed since ``since``, oldest change first.

    Called by the sync engine when pulling, page after page, until ``next_cursor`` is ``None``.
    The engine owns the incremental state: it passes ``since`` (already moved back by a small
    look-back and never later than the run's start), de-duplicates the overlap and saves its
    checkpoint only after the page was stored.

    :param object_type: which person object (``contact``, ``Lead``...).
    :param since: only records modified at or after this instant; ``None`` means all.
    :param cursor: the ``next_cursor`` of the previous page, ``None`` for the first page.
    :returns: a :class:`~leadbridge.types.Page`; each contact carries ``remote_id`` and
        ``modified_at``; deleted records come with ``deleted=True`` when the vendor reports them.
        The connector must stop paging itself when the vendor would loop (PlanMill wraps around).
    """


@hookspec(firstresult=True)
def fetch_companies(
    connection: ConnectionView, client: VendorClient, since: datetime | None, cursor: str | None
) -> Page[Company]:
    """Read one page of companies changed since ``since``; same contract as :func:`fetch_contacts`."""


@hookspec(firstresult=True)
def fetch_campaign_members(
    connection: ConnectionView, client: VendorClient, campaign_id: str, cursor: str | None
) -> Page[Contact]:
    """Read one page of a campaign's members for "Import from <connector>".

    Called by the list import, page after page. Members without an email are returned too (with
    ``email=None``); the core skips and counts them.
    """


# ---------------------------------------------------------------------------------------------
# Writes (idempotent upserts; results in input order)
# ---------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def upsert_company(
    connection: ConnectionView, client: VendorClient, companies: Sequence[Company]
) -> list[RecordResult]:
    """Create or update a batch of companies; called before their contacts are written.

    Matching: ``remote_id`` when set, else the connector's natural key (exact, normalised name for
    vendors that only offer fuzzy search). Writing the same company twice leaves one remote record.

    :param companies: at most the object's declared ``batch_size`` companies.
    :returns: one :class:`~leadbridge.types.RecordResult` per input, same order, ``ref`` echoed,
        ``remote_id`` set on success.
    """


@hookspec(firstresult=True)
def upsert_contact(
    connection: ConnectionView, client: VendorClient, object_type: str, contacts: Sequence[Contact]
) -> list[RecordResult]:
    """Create or update a batch of people; the core has already upserted their companies.

    Called when pushing (scheduled, manual, form or API trigger) and for "Send to <connector>".
    Matching: ``remote_id`` when set, else the email compared case-insensitively. Re-sending a
    batch after a crash must create nothing new. Use the vendor's batch endpoint when it has one.

    :param object_type: which person object to write (``contact``, ``Lead``...).
    :param contacts: at most the object's ``batch_size`` contacts; ``fields`` hold only the mapped
        fields this push may write; ``company.remote_id`` is set when known.
    :returns: one result per input, same order: ``created``/``updated``/``unchanged`` with
        ``remote_id``, or ``failed`` with the vendor's ``code`` and a ``reason``.
    """


@hookspec(firstresult=True)
def delete_contacts(
    connection: ConnectionView, client: VendorClient, object_type: str, remote_ids: Sequence[str]
) -> list[RecordResult]:
    """Delete people in the CRM (only when the connection's delete policy says so).

    Deleting a record that is already gone is a success (``deleted``), so retries are safe.

    :returns: one result per id, same order.
    """


@hookspec(firstresult=True)
def create_action(connection: ConnectionView, client: VendorClient, action: Action) -> RecordResult:
    """Record an event about a contact in the CRM (PlanMill action, Salesforce task, Maileon transaction).

    Called after the contact was upserted (``action.contact.remote_id`` is set; ``action.contact.extra``
    carries the hub's ``first_name``, ``last_name``, ``email``, ``title`` and ``phone`` when known, and
    ``action.title`` is the connection's ``action_title`` with those placeholders and ``{company}``
    already filled: use it verbatim as the subject, never fill the template again), on an explicit
    "Send to <connector>" and, when the admin enables it, on scheduled pushes. Actions are events,
    not state: calling twice creates two actions.

    :returns: the result with the new action's ``remote_id``.
    """


# ---------------------------------------------------------------------------------------------
# Webhooks
# ---------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def handle_webhook(
    connection: ConnectionView, client: VendorClient, request: WebhookRequest
) -> list[WebhookEvent]:
    """Authenticate and parse a webhook delivery sent to this connection's webhook URL.

    Called by the web app for ``POST /webhooks/<connection id>``. Must verify the delivery (shared
    secret, signature or basic auth) before anything else and raise
    :class:`~leadbridge.errors.AuthError` when it fails; the core answers 401 and stores nothing.
    Each event carries the vendor's delivery id; the core ignores ids it has already processed.

    :returns: the events the delivery carries (possibly empty).
    """


@hookspec(firstresult=True)
def register_webhooks(connection: ConnectionView, client: VendorClient, url: str, secret: str) -> list[str]:
    """Create (or re-use) the vendor webhooks that point at ``url``; return their vendor ids.

    Called by the core when a connection that pulls from the CRM is enabled, created enabled, or
    saved (and not when ``options["webhooks"]`` is ``False``). Must be idempotent: webhooks that
    already point at ``url`` are kept, not duplicated. Return only the webhooks the connection's
    settings want now: ids a previous registration returned and this one does not are removed by
    the core through :func:`unregister_webhooks`.

    :param url: the connection's public webhook URL (``HUB_URL/webhooks/<connection id>``).
    :param secret: a shared secret for the vendor to sign or authenticate deliveries with: the
        connection's ``webhook_secret`` setting when it has one, else one the core generated and
        keeps encrypted (``connection.setting("webhook_secret")`` returns it in every hook call).
    :returns: the vendor ids of the webhooks now pointing at ``url``.
    """


@hookspec(firstresult=True)
def unregister_webhooks(connection: ConnectionView, client: VendorClient, webhook_ids: Sequence[str]) -> None:
    """Delete vendor webhooks the core registered for this connection.

    Called by the core when the connection is disabled, deleted, stops pulling from the CRM, or its
    access is revoked (before the credentials go), and for ids a new registration no longer returns.
    A webhook that is already gone counts as deleted, so a retry is safe.

    :param webhook_ids: ids that :func:`register_webhooks` returned earlier.
    """
