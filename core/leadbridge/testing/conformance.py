"""The connector conformance suite: one line runs the contract checks against a connector's sandbox.

.. code-block:: python

    from leadbridge.testing import ConnectorConformance

    class TestConformance(ConnectorConformance):
        connector = "planmill"

Each check is one test method. A check skips (with the reason) when the connector legitimately lacks
the capability, as declared in its metadata (no company object, no pull direction, no token to
renew...). Vendor-specific required values can be given in :attr:`ConnectorConformance.contact_fields`
and :attr:`ConnectorConformance.company_fields`. Optional sandbox attributes the suite uses are
listed in :class:`leadbridge.sandbox.Sandbox`.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

import pytest
from flask import Flask

from ..connection_view import ConnectionView
from ..connections import client_for, view
from ..errors import AuthError
from ..http import CallStats, VendorClient
from ..http.auth import StaticCredentials
from ..metadata import AuthKind, ConnectorInfo, ObjectSpec, SettingType, validate_info, validate_settings
from ..plugins import Plugins, PluginState
from ..sandbox import Sandbox
from ..state import get_plugins
from ..types import (
    Campaign,
    Company,
    Contact,
    Direction,
    FieldType,
    HubKind,
    Outcome,
    RecordResult,
    RemoteField,
    WebhookRequest,
)

if TYPE_CHECKING:
    from ..models import Connection

#: setting names that must be flagged ``secret``
SECRET_LOOKING = re.compile(r"(?i)(secret|password|passwd|token|key)")
#: a safety stop: a connector that keeps handing out cursors is looping
MAX_PAGES = 500

SAMPLE_VALUES: dict[FieldType, Any] = {
    FieldType.TEXT: "Conformance",
    FieldType.TEXTAREA: "Written by the leadbridge conformance suite.",
    FieldType.NUMBER: 7,
    FieldType.DATE: "2026-01-15",
    FieldType.DATETIME: "2026-01-15T10:00:00+00:00",
    FieldType.TIME: "10:00:00",
    FieldType.URL: "https://conformance.example",
    FieldType.PHONE: "+358401234567",
    FieldType.BOOLEAN: True,
}

TOKEN_AUTH = frozenset(
    {
        AuthKind.OAUTH2_CLIENT_CREDENTIALS,
        AuthKind.OAUTH2_AUTHORIZATION_CODE,
        AuthKind.OAUTH2_PASSWORD,
        AuthKind.OAUTH2_JWT_BEARER,
    }
)


class ConnectorHarness:
    """Calls one connection's hooks the way the core does (for the suite and connectors' own tests).

    :param connection: the stored connection (the ``connection`` fixture).
    :param stats: counts every vendor call made through :attr:`client`.
    """

    def __init__(self, connection: Connection, sandbox: Sandbox, *, stats: CallStats | None = None) -> None:
        self.connection = connection
        self.sandbox = sandbox
        self.plugins: Plugins = get_plugins()
        self.info: ConnectorInfo = self.plugins.info(connection.plugin)
        self.stats = stats or CallStats()
        self.client: VendorClient = client_for(connection, stats=self.stats)

    def view(self) -> ConnectionView:
        """A fresh :class:`ConnectionView` of the connection."""
        return view(self.connection)

    def implements(self, hook: str) -> bool:
        """True when the connector implements ``hook``."""
        return self.plugins.implements(self.connection.plugin, hook)

    def call(self, hook: str, **kwargs: Any) -> Any:
        """Call ``hook`` on the owning connector with this harness's client."""
        return self.plugins.call(self.view(), hook, client=self.client, **kwargs)

    def login(self) -> int:
        """Make sure the client holds credentials; return how many sandbox calls that took."""
        before = self.sandbox.count_calls()
        if self.client.auth is not None:
            self.client.auth.headers()
        return self.sandbox.count_calls() - before

    def object(self, kind: HubKind, direction: Direction) -> ObjectSpec | None:
        """The first declared object of ``kind`` that supports ``direction`` (for writes: one that
        may create records, not an update-only one such as Pipedrive persons)."""
        for spec in self.info.objects_of(kind):
            if direction is Direction.TO_CRM and spec.push_only_linked_to == spec.name:
                continue
            if direction in spec.directions or Direction.BOTH in spec.directions:
                return spec
        return None

    def fields(self, object_type: str) -> list[RemoteField]:
        """The ``field_types`` answer for ``object_type``."""
        result: list[RemoteField] = self.call("field_types", object_type=object_type)
        return result

    def fetch_all(self, object_type: str, since: datetime | None = None) -> tuple[list[Contact], int]:
        """Page through ``fetch_contacts`` like the engine does; return ``(records, pages)``."""
        records: list[Contact] = []
        cursor: str | None = None
        for pages in range(1, MAX_PAGES + 1):
            page = self.call("fetch_contacts", object_type=object_type, since=since, cursor=cursor)
            records.extend(page.items)
            cursor = page.next_cursor
            if cursor is None:
                return records, pages
        raise AssertionError(f"fetch_contacts still returned a cursor after {MAX_PAGES} pages (looping?)")

    def sample_values(
        self, object_type: str, overrides: dict[str, Any], *, skip: Callable[[RemoteField], bool]
    ) -> dict[str, Any]:
        """Values for every required writable field of ``object_type`` (``overrides`` win)."""
        values: dict[str, Any] = {}
        for f in self.fields(object_type):
            if not f.required or not f.writable or skip(f):
                continue
            if f.type in (FieldType.SELECT, FieldType.MULTISELECT) and f.choices:
                first = f.choices[0].value
                values[f.name] = [first] if f.type is FieldType.MULTISELECT else first
            elif f.type in SAMPLE_VALUES:
                values[f.name] = SAMPLE_VALUES[f.type]
        return {**values, **overrides}


def _new_email() -> str:
    return f"conformance-{uuid.uuid4().hex[:10]}@example.com"


class ConnectorConformance:
    """Subclass it, set :attr:`connector`, and pytest runs the contract checks against its sandbox."""

    #: the connector's entry point name
    connector: ClassVar[str]
    #: extra values for contact writes (remote field name -> value), for vendor-specific requirements
    contact_fields: ClassVar[dict[str, Any]] = {}
    #: extra values for company writes
    company_fields: ClassVar[dict[str, Any]] = {}
    #: records seeded for the paging check when the sandbox has no ``page_size`` to lower
    fetch_seed: ClassVar[int] = 250
    #: the page size the suite asks of sandboxes that have a ``page_size`` attribute
    small_page: ClassVar[int] = 5

    # -- fixtures ---------------------------------------------------------------------------------

    @pytest.fixture
    def leadbridge_connector(self) -> str:
        """Aims the kit's fixtures (app, sandbox, connection) at :attr:`connector`."""
        return self.connector

    @pytest.fixture
    def connection_plugin(self) -> str:
        """``sandbox`` and ``connection`` belong to :attr:`connector` too."""
        return self.connector

    @pytest.fixture
    def harness(self, connection: Connection, sandbox: Sandbox) -> ConnectorHarness:
        """A :class:`ConnectorHarness` on the kit's ``connection``."""
        return ConnectorHarness(connection, sandbox)

    # -- metadata -----------------------------------------------------------------------------------

    def test_connector_loads_with_valid_metadata(self, app_ctx: Flask) -> None:
        record = get_plugins().records.get(self.connector)
        assert record is not None, f"{self.connector} is not installed (no entry point in group 'leadbridge')"
        assert record.state is PluginState.LOADED, f"{self.connector} is {record.state.value}: {record.error}"
        info = get_plugins().info(self.connector)
        validate_info(info, entry_point_name=self.connector, core_version=_core_version())
        object_names = [o.name for o in info.objects]
        assert len(object_names) == len(set(object_names)), "object names must be unique"
        for spec in info.objects:
            assert spec.batch_size >= 1, f"{spec.name}: batch_size must be positive"
            assert spec.directions, f"{spec.name}: declares no direction"

    def test_secret_looking_settings_are_flagged_secret(self, app_ctx: Flask) -> None:
        info = get_plugins().info(self.connector)
        # An endpoint address (``token_url``) names a token but is not one.
        unflagged = [
            s.name
            for s in info.settings
            if SECRET_LOOKING.search(s.name) and not s.secret and s.type is not SettingType.URL
        ]
        assert not unflagged, f"settings that look secret but are not flagged secret: {unflagged}"

    def test_sandbox_settings_pass_the_settings_schema(self, app_ctx: Flask, sandbox: Sandbox) -> None:
        info = get_plugins().info(self.connector)
        settings, secrets = sandbox.connection_settings("http://127.0.0.1:1")
        assert not set(secrets) - info.secret_names, (
            "connection_settings() returned non-secret values as secrets"
        )
        validate_settings(info, {**settings, **secrets})

    def test_api_base_url_is_the_real_https_vendor_url(self, harness: ConnectorHarness) -> None:
        """The core, not the connector, redirects calls to the sandbox: the URL never depends on it."""
        overridden = harness.view()
        assert overridden.base_url_override, "the kit's connection should carry the sandbox override"
        real = dataclasses.replace(overridden, base_url_override=None)
        url = harness.plugins.connector(real).api_base_url()
        assert isinstance(url, str) and url.startswith("https://"), f"vendor URL {url!r} is not https"
        assert harness.plugins.connector(overridden).api_base_url() == url, (
            "api_base_url must not read connection.base_url_override: the core rewrites the host"
        )
        assert (
            urlsplit(harness.client.destination(url)).netloc == urlsplit(overridden.base_url_override).netloc
        )

    # -- authentication -------------------------------------------------------------------------

    def test_authenticate_succeeds_with_good_credentials(self, harness: ConnectorHarness) -> None:
        harness.login()
        if isinstance(harness.client.auth, StaticCredentials):
            assert harness.client.auth.headers(), "the declared static key yields no headers"
        elif harness.client.auth is not None and harness.info.auth_kind is not AuthKind.NONE:
            assert harness.client.auth.credentials is not None, "authenticate returned no credentials"
            assert harness.client.auth.credentials.headers, "credentials carry no headers"
        spec = harness.info.objects[0]
        assert harness.fields(spec.name), f"field_types({spec.name!r}) is empty after logging in"

    def test_authenticate_raises_auth_error_with_bad_credentials(
        self, make_connection: Callable[..., Connection], sandbox: Sandbox
    ) -> None:
        bad = make_connection(bad=True, name="bad credentials")
        with pytest.raises(AuthError):
            harness = ConnectorHarness(bad, sandbox)
            harness.login()
            harness.fields(harness.info.objects[0].name)

    # -- discovery ------------------------------------------------------------------------------------

    def test_field_types_are_typed_with_unique_names(self, harness: ConnectorHarness) -> None:
        for spec in harness.info.objects:
            fields = harness.fields(spec.name)
            assert fields, f"{spec.name}: no fields"
            for f in fields:
                assert isinstance(f, RemoteField), f"{spec.name}: {f!r} is not a RemoteField"
                assert isinstance(f.type, FieldType), (
                    f"{spec.name}.{f.name}: type {f.type!r} is not a FieldType"
                )
                if f.type in (FieldType.SELECT, FieldType.MULTISELECT):
                    values = [c.value for c in f.choices]
                    assert len(values) == len(set(values)), f"{spec.name}.{f.name}: duplicate choices"
            names = [f.name for f in fields]
            dupes = sorted({n for n in names if names.count(n) > 1})
            assert not dupes, f"{spec.name}: duplicate field names {dupes}"

    def test_campaigns_are_listed_typed(self, harness: ConnectorHarness) -> None:
        if not harness.implements("list_campaigns"):
            pytest.skip("the connector has no campaigns (list_campaigns not implemented)")
        campaigns = harness.call("list_campaigns")
        if campaigns is None:
            pytest.skip("the connector reports no campaign concept")
        assert all(isinstance(c, Campaign) for c in campaigns)
        assert len({c.remote_id for c in campaigns}) == len(campaigns), "campaign ids must be unique"

    # -- writes -----------------------------------------------------------------------------------

    def _sample_contact(self, harness: ConnectorHarness, spec: ObjectSpec) -> Contact:
        email = _new_email()
        fields = harness.sample_values(
            spec.name,
            dict(self.contact_fields),
            skip=lambda f: f.type is FieldType.EMAIL or f.hub_field in ("email", "unsubscribed"),
        )
        for f in harness.fields(spec.name):
            if f.writable and (f.hub_field == "email" or (f.type is FieldType.EMAIL and f.required)):
                fields[f.name] = email
        # The hub facts the core sends with every write; a marketing target gets a consenting contact.
        facts = {
            "email": email,
            "consent": "single_opt_in" if spec.needs_consent else "none",
            "unsubscribed": False,
        }
        return Contact(email=email, fields=fields, ref="1", extra=facts)

    def test_upserting_the_same_contact_twice_leaves_one_record(
        self, harness: ConnectorHarness, sandbox: Sandbox
    ) -> None:
        spec = harness.object(HubKind.CONTACT, Direction.TO_CRM)
        if spec is None:
            pytest.skip("no contact object can be written to the CRM")
        contact = self._sample_contact(harness, spec)
        before = _count(lambda: sandbox.contact_count_for(spec.name))
        first = _single(harness.call("upsert_contact", object_type=spec.name, contacts=[contact]))
        second = _single(harness.call("upsert_contact", object_type=spec.name, contacts=[contact]))
        assert first.ok and first.remote_id, f"first upsert failed: {first.code} {first.reason}"
        assert first.ref == "1", "results must echo the input's ref"
        assert second.ok, f"second upsert failed: {second.code} {second.reason}"
        assert second.remote_id == first.remote_id, "the second upsert wrote a different record"
        assert second.outcome is not Outcome.CREATED, "the second upsert reported a new record"
        assert sandbox.contact_count_for(spec.name) == before + 1

    def test_upserting_the_same_company_twice_leaves_one_record(
        self, harness: ConnectorHarness, sandbox: Sandbox
    ) -> None:
        spec = harness.object(HubKind.COMPANY, Direction.TO_CRM)
        if spec is None:
            pytest.skip("no company object can be written to the CRM")
        name = f"Conformance {uuid.uuid4().hex[:8]} Oy"
        fields = harness.sample_values(
            spec.name, dict(self.company_fields), skip=lambda f: f.hub_field == "name"
        )
        company = Company(name=name, fields=fields, ref="1")
        before = _count(sandbox.company_count)
        first = _single(harness.call("upsert_company", companies=[company]))
        second = _single(harness.call("upsert_company", companies=[company]))
        assert first.ok and first.remote_id, f"first upsert failed: {first.code} {first.reason}"
        assert second.ok and second.remote_id == first.remote_id, (
            "the second upsert wrote a different company"
        )
        assert sandbox.company_count() == before + 1

    def test_a_record_missing_required_fields_does_not_sink_its_batch(
        self, harness: ConnectorHarness, sandbox: Sandbox
    ) -> None:
        """A refused record comes back ``failed`` with a reason, never as an exception for the whole
        batch. (A connector may also fill the gap itself, like PlanMill's last name from the email.)"""
        spec = harness.object(HubKind.CONTACT, Direction.TO_CRM)
        if spec is None:
            pytest.skip("no contact object can be written to the CRM")
        required = [
            f.name
            for f in harness.fields(spec.name)
            if f.required and f.writable and f.type is not FieldType.EMAIL and f.hub_field != "email"
        ]
        if not required:
            pytest.skip(f"{spec.name} has no required field besides the email to leave out")
        good = self._sample_contact(harness, spec)
        bad = self._sample_contact(harness, spec)
        for name in required:
            bad.fields.pop(name, None)
        good.ref, bad.ref = "good", "bad"
        before = _count(lambda: sandbox.contact_count_for(spec.name))
        results = harness.call("upsert_contact", object_type=spec.name, contacts=[bad, good])
        assert [r.ref for r in results] == ["bad", "good"], "one result per input, in input order"
        assert results[1].ok and results[1].remote_id, f"the valid record failed: {results[1].reason}"
        if results[0].outcome is Outcome.FAILED:
            assert results[0].code or results[0].reason, "a failed record must say why"
        else:
            assert results[0].ok and results[0].remote_id, "an accepted record needs its remote_id"
        assert sandbox.contact_count_for(spec.name) == before + 1 + (1 if results[0].ok else 0)

    def test_deleting_a_contact_twice_succeeds_both_times(
        self, harness: ConnectorHarness, sandbox: Sandbox
    ) -> None:
        spec = harness.object(HubKind.CONTACT, Direction.TO_CRM)
        if spec is None or not spec.supports_delete:
            pytest.skip("the connector declares no contact deletes")
        created = _single(
            harness.call(
                "upsert_contact", object_type=spec.name, contacts=[self._sample_contact(harness, spec)]
            )
        )
        assert created.ok and created.remote_id
        before = sandbox.contact_count_for(spec.name)
        for _ in range(2):
            result = _single(
                harness.call("delete_contacts", object_type=spec.name, remote_ids=[created.remote_id])
            )
            assert result.outcome is Outcome.DELETED, f"delete answered {result.outcome}: {result.reason}"
        assert sandbox.contact_count_for(spec.name) == before - 1

    # -- reads ------------------------------------------------------------------------------------

    def _seed_pages(self, sandbox: Sandbox) -> tuple[set[str], bool]:
        paged = hasattr(sandbox, "page_size")
        if paged:
            sandbox.page_size = self.small_page  # type: ignore[attr-defined]
        count = self.small_page * 2 + 3 if paged else self.fetch_seed
        try:
            return set(sandbox.add_contacts(count)), paged
        except NotImplementedError:
            pytest.skip("the sandbox cannot seed contacts (add_contacts not implemented)")

    def test_fetching_several_pages_returns_every_record_once(
        self, harness: ConnectorHarness, sandbox: Sandbox
    ) -> None:
        spec = harness.object(HubKind.CONTACT, Direction.FROM_CRM)
        if spec is None:
            pytest.skip("no contact object can be read from the CRM")
        seeded, paged = self._seed_pages(sandbox)
        records, pages = harness.fetch_all(spec.name)
        ids = [r.remote_id for r in records]
        assert all(ids), "every fetched record must carry its remote_id"
        dupes = sorted({i for i in ids if ids.count(i) > 1 and i is not None})
        assert not dupes, f"records returned more than once: {dupes[:5]}"
        missing = seeded - set(i for i in ids if i is not None)
        assert not missing, f"{len(missing)} seeded records never fetched"
        if paged:
            assert pages > 1, "the seed should have spanned several pages"

    def test_incremental_fetch_from_the_end_returns_nothing_new(
        self, harness: ConnectorHarness, sandbox: Sandbox
    ) -> None:
        spec = harness.object(HubKind.CONTACT, Direction.FROM_CRM)
        if spec is None:
            pytest.skip("no contact object can be read from the CRM")
        self._seed_pages(sandbox)
        records, _ = harness.fetch_all(spec.name)
        assert all(r.modified_at is not None for r in records), "fetched contacts must carry modified_at"
        seen = {(r.remote_id, r.modified_at) for r in records}
        last = max(r.modified_at for r in records if r.modified_at is not None)
        assert last.tzinfo is not None, "modified_at must be timezone-aware"
        again, _ = harness.fetch_all(spec.name, since=last)
        new = [(r.remote_id, r.modified_at) for r in again if (r.remote_id, r.modified_at) not in seen]
        assert not new, f"an incremental fetch from the last change returned unseen records: {new[:3]}"
        # ...but a change made afterwards is found from the same point.
        added = set(sandbox.add_contacts(1))
        after, _ = harness.fetch_all(spec.name, since=last)
        assert added <= {r.remote_id for r in after}, "a later change was not returned incrementally"

    # -- transport ------------------------------------------------------------------------------

    def _token_connector(self, harness: ConnectorHarness) -> None:
        if harness.client.auth is None or harness.info.auth_kind not in TOKEN_AUTH:
            pytest.skip(f"{harness.info.auth_kind.value} auth has no expiring token")

    def test_expired_token_is_renewed_once_and_the_call_succeeds(
        self, harness: ConnectorHarness, sandbox: Sandbox
    ) -> None:
        self._token_connector(harness)
        assert harness.client.auth is not None
        login_calls = harness.login()
        spec = harness.info.objects[0]
        before = sandbox.count_calls()
        harness.fields(spec.name)
        normal_calls = sandbox.count_calls() - before
        renewals = harness.client.auth.renewals
        sandbox.expire_tokens()
        before = sandbox.count_calls()
        assert harness.fields(spec.name), "the call after renewal returned nothing"
        assert harness.client.auth.renewals == renewals + 1, "expected exactly one renewal"
        assert harness.stats.renewals == 1
        # the rejected call + the renewal's own calls + the call again (and the rest of the hook's calls)
        assert sandbox.count_calls() - before == normal_calls + 1 + login_calls

    def test_rate_limit_answer_is_waited_out_not_hammered(
        self, harness: ConnectorHarness, sandbox: Sandbox
    ) -> None:
        harness.login()
        spec = harness.info.objects[0]
        before = sandbox.count_calls()
        harness.fields(spec.name)
        normal_calls = sandbox.count_calls() - before
        sandbox.fail_next(429, mode="rate_limit", retry_after=1)
        before = len(sandbox.calls)
        assert harness.fields(spec.name)
        calls = sandbox.calls[before:]
        assert len(calls) == normal_calls + 1, (
            f"expected one retry, saw {[(c.path, c.status) for c in calls]}"
        )
        assert harness.stats.rate_limited == 1
        assert harness.stats.retries == 1
        # No burst: the retry went out only after the vendor's Retry-After (a lower bound, never flaky).
        limited = next(i for i, c in enumerate(calls) if c.status == 429)
        assert calls[limited + 1].at - calls[limited].at >= 0.9

    # -- webhooks -----------------------------------------------------------------------------------

    def test_webhook_without_valid_authentication_is_refused(self, harness: ConnectorHarness) -> None:
        if not harness.implements("handle_webhook"):
            pytest.skip("the connector takes no webhooks")
        forged = WebhookRequest(
            method="POST",
            headers={"Content-Type": "application/json"},
            body=b'{"events": [{"id": "forged"}]}',
            query={},
            remote_addr="203.0.113.9",
        )
        with pytest.raises(AuthError):
            harness.call("handle_webhook", request=forged)


def _single(results: Sequence[RecordResult]) -> RecordResult:
    assert len(results) == 1, f"expected one result per input, got {len(results)}"
    result = results[0]
    assert isinstance(result, RecordResult)
    return result


def _count(counter: Callable[[], int]) -> int:
    try:
        return counter()
    except NotImplementedError:
        pytest.skip("the sandbox cannot count its records")


def _core_version() -> str:
    from .. import __version__

    return __version__
