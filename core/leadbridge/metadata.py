"""Static connector metadata: what the panel shows and what the core needs before any call.

A connector returns one :class:`ConnectorInfo` from its ``connector_info`` hook. The core validates
it at load time (a connector with invalid metadata is reported as broken), checks the declared core
compatibility, builds the settings form from :attr:`ConnectorInfo.settings`, encrypts every setting
flagged ``secret`` and paces calls from :attr:`ConnectorInfo.rate_limits`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

from .apikeys import StaticAuth
from .errors import ConfigError, PluginError
from .types import Direction, HubKind


class AuthKind(StrEnum):
    """How a connector authenticates; decides which buttons the panel shows."""

    NONE = "none"
    API_KEY = "api_key"
    BASIC = "basic"
    OAUTH2_CLIENT_CREDENTIALS = "oauth2_client_credentials"
    OAUTH2_AUTHORIZATION_CODE = "oauth2_authorization_code"  # panel shows Connect / Revoke access
    OAUTH2_PASSWORD = "oauth2_password"
    OAUTH2_JWT_BEARER = "oauth2_jwt_bearer"


class SettingType(StrEnum):
    STRING = "string"
    SECRET = "secret"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    CHOICE = "choice"
    URL = "url"
    TEXT = "text"


@dataclass(frozen=True, slots=True)
class Setting:
    """One field of a connector's settings form.

    :param secret: stored encrypted, write-only in the panel, masked everywhere else.
    :param pattern: a regular expression the whole value must match (e.g. a PlanMill instance name).
    :param choices: ``(value, label)`` pairs for ``choice`` settings.
    :param required_if: the name of a boolean setting; when that one is on, this one is required
        (Maileon's DOI mailing id once "DOI process" is on).
    """

    name: str
    label: str
    type: SettingType = SettingType.STRING
    required: bool = False
    secret: bool = False
    default: Any = None
    help: str = ""
    pattern: str | None = None
    choices: tuple[tuple[str, str], ...] = ()
    required_if: str | None = None

    def __post_init__(self) -> None:
        if self.type is SettingType.SECRET and not self.secret:
            object.__setattr__(self, "secret", True)


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A declared allowance: ``requests`` per ``per_seconds`` (86400 for a daily quota)."""

    requests: int
    per_seconds: float

    @property
    def interval(self) -> float:
        """The minimum spacing between calls that respects this limit."""
        return self.per_seconds / self.requests


@dataclass(frozen=True, slots=True)
class ObjectSpec:
    """A vendor object the connector syncs and how it maps to the hub.

    :param name: the connector's name for it, passed back as ``object_type`` (``Lead``, ``contact``).
    :param hub_kind: which hub records it becomes.
    :param directions: the directions the connector supports for it (Salesforce Contacts: pull only).
    :param batch_size: the most records one ``upsert_*`` call accepts (the core batches accordingly).
    :param push_only_linked_to: push only hub records this connection also links through that other
        object (Pipedrive → Maileon relays Pipedrive persons, not every hub contact); naming the
        object itself makes pushes update linked records only, never create.
    :param needs_consent: an email-marketing target: push only contacts with consent (not
        ``none``) and not unsubscribed, plus those already linked, so a withdrawal reaches it too.
    """

    name: str
    label: str
    hub_kind: HubKind
    directions: frozenset[Direction]
    batch_size: int = 100
    supports_delete: bool = False
    push_only_linked_to: str | None = None
    needs_consent: bool = False


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A further vendor API one connection talks to (Pipedrive → Maileon: Maileon), beside the
    connector's main API. The core gives it its own client (``client.endpoint(name)``): base URL,
    credentials, pacer and rate limits, error classification, redaction and call counting.

    :param name: how the connector asks for it (``client.endpoint("maileon")``) and how its calls
        are counted (``maileon GET /1.0/contacts``).
    :param base_url: its fixed API root; ``None`` asks ``api_base_url(connection, endpoint=name)``.
    :param auth: its static key (:mod:`leadbridge.http.auth`), read from the connection's settings.
    :param rate_limits: its own declared allowances (it gets its own pacer).
    """

    name: str
    label: str
    base_url: str | None = None
    auth: StaticAuth | None = None
    rate_limits: tuple[RateLimit, ...] = ()


_NAME = re.compile(r"^[a-z][a-z0-9_]{1,40}$")

#: A :attr:`ConnectorInfo.features` flag: the connector exists for tests and as a template (the kit's
#: example connector); ``leadbridge demo`` leaves it out even when it is installed.
TEST_ONLY = "test_only"


@dataclass(frozen=True, slots=True)
class ConnectorInfo:
    """Everything the host knows about a connector before talking to its vendor."""

    name: str
    display_name: str
    description: str
    version: str
    auth_kind: AuthKind
    settings: tuple[Setting, ...]
    objects: tuple[ObjectSpec, ...]
    requires_core: str = ">=0.1"
    rate_limits: tuple[RateLimit, ...] = ()
    logo_svg: str | None = None
    docs_url: str | None = None
    default_interval_minutes: int = 120
    features: frozenset[str] = frozenset()
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: the main API's static key, when the connector has no ``authenticate`` hook
    auth: StaticAuth | None = None
    #: further vendor APIs of one connection (see :class:`Endpoint`)
    endpoints: tuple[Endpoint, ...] = ()

    def endpoint(self, name: str) -> Endpoint:
        """The declared endpoint ``name``; :class:`ConfigError` when there is none."""
        for ep in self.endpoints:
            if ep.name == name:
                return ep
        raise ConfigError(f"{self.display_name} declares no endpoint {name!r}")

    @property
    def secret_names(self) -> frozenset[str]:
        """Names of the settings that must be encrypted and never shown."""
        return frozenset(s.name for s in self.settings if s.secret)

    def object(self, name: str) -> ObjectSpec:
        """The object spec called ``name``; :class:`ConfigError` when the connector has none."""
        for spec in self.objects:
            if spec.name == name:
                return spec
        raise ConfigError(f"{self.display_name} has no object {name!r}")

    def objects_of(self, kind: HubKind) -> tuple[ObjectSpec, ...]:
        """The objects that map to hub records of ``kind``."""
        return tuple(o for o in self.objects if o.hub_kind is kind)


def validate_info(info: object, *, entry_point_name: str, core_version: str) -> ConnectorInfo:
    """Check metadata a plugin returned; raise :class:`PluginError` saying what is wrong."""
    if not isinstance(info, ConnectorInfo):
        raise PluginError(f"connector_info() must return ConnectorInfo, got {type(info).__name__}")
    if info.name != entry_point_name:
        raise PluginError(f"connector name {info.name!r} differs from its entry point {entry_point_name!r}")
    if not _NAME.match(info.name):
        raise PluginError(f"connector name {info.name!r} must match {_NAME.pattern}")
    try:
        spec = SpecifierSet(info.requires_core)
    except InvalidSpecifier as exc:
        raise PluginError(f"requires_core {info.requires_core!r} is not a version specifier") from exc
    if not spec.contains(Version(core_version), prereleases=True):
        raise PluginError(f"needs leadbridge{info.requires_core}, this is {core_version}")
    names = [s.name for s in info.settings]
    if len(names) != len(set(names)):
        raise PluginError("settings names must be unique")
    for s in info.settings:
        if s.type is SettingType.CHOICE and not s.choices:
            raise PluginError(f"choice setting {s.name!r} has no choices")
        if s.required_if is not None and not any(
            o.name == s.required_if and o.type is SettingType.BOOLEAN for o in info.settings
        ):
            raise PluginError(f"setting {s.name!r}: required_if names no boolean setting")
        if s.pattern is not None:
            try:
                re.compile(s.pattern)
            except re.error as exc:
                raise PluginError(f"setting {s.name!r}: pattern is not a valid regex ({exc})") from None
    if not info.display_name.strip():
        raise PluginError("display_name must not be empty")
    if not info.objects:
        raise PluginError("a connector must declare at least one object")
    object_names = [o.name for o in info.objects]
    if len(object_names) != len(set(object_names)):
        raise PluginError("object names must be unique")
    for obj in info.objects:
        if obj.batch_size < 1:
            raise PluginError(f"object {obj.name!r}: batch_size must be at least 1")
        if not obj.directions:
            raise PluginError(f"object {obj.name!r} declares no direction")
        if obj.push_only_linked_to is not None:
            other = next((o for o in info.objects if o.name == obj.push_only_linked_to), None)
            if other is None or other.hub_kind is not obj.hub_kind:
                raise PluginError(
                    f"object {obj.name!r}: push_only_linked_to names no {obj.hub_kind.value} object"
                )
    for limit in info.rate_limits:
        if limit.requests <= 0 or limit.per_seconds <= 0:
            raise PluginError("rate limits must be positive")
    if info.default_interval_minutes < 1:
        raise PluginError("default_interval_minutes must be at least 1")
    secret_settings = {s.name for s in info.settings if s.secret}
    declared_keys = [info.auth] + [ep.auth for ep in info.endpoints]
    for key in declared_keys:
        for name in key.settings if key else ():
            if name not in secret_settings:
                raise PluginError(f"static auth reads {name!r}, which is not a secret setting")
    endpoint_names = [ep.name for ep in info.endpoints]
    if len(endpoint_names) != len(set(endpoint_names)):
        raise PluginError("endpoint names must be unique")
    for ep in info.endpoints:
        if not _NAME.match(ep.name):
            raise PluginError(f"endpoint name {ep.name!r} must match {_NAME.pattern}")
        if ep.base_url is not None and not ep.base_url.startswith("https://"):
            raise PluginError(f"endpoint {ep.name!r}: base_url must be an https URL")
        if any(limit.requests <= 0 or limit.per_seconds <= 0 for limit in ep.rate_limits):
            raise PluginError(f"endpoint {ep.name!r}: rate limits must be positive")
    return info


def validate_settings(info: ConnectorInfo, values: Mapping[str, Any]) -> dict[str, Any]:
    """Coerce and check submitted settings against the schema.

    Returns the cleaned values (defaults filled in). Raises :class:`ConfigError` listing every problem,
    so a form can show them all at once. Secret values are never echoed in messages.
    """
    problems: list[str] = []
    cleaned: dict[str, Any] = {}
    known = {s.name for s in info.settings}
    for unknown in sorted(set(values) - known):
        problems.append(f"{unknown}: not a setting of {info.display_name}")
    for s in info.settings:
        raw = values.get(s.name, s.default)
        if raw is None or raw == "":
            if s.required:
                problems.append(f"{s.label}: required")
            cleaned[s.name] = s.default
            continue
        try:
            cleaned[s.name] = _coerce(s, raw)
        except ValueError as exc:
            problems.append(f"{s.label}: {exc}")
    for s in info.settings:
        if s.required_if and cleaned.get(s.required_if) and cleaned.get(s.name) in (None, ""):
            switch = next(o.label for o in info.settings if o.name == s.required_if)
            problems.append(f"{s.label}: required when {switch} is on")
    if problems:
        raise ConfigError("; ".join(problems), code="invalid_settings")
    return cleaned


def _coerce(s: Setting, raw: Any) -> Any:
    if s.type is SettingType.BOOLEAN:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off"}:
            return False
        raise ValueError("must be yes or no")
    if s.type is SettingType.INTEGER:
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise ValueError("must be a whole number") from None
    value = str(raw).strip()
    if s.type is SettingType.CHOICE and value not in {c for c, _ in s.choices}:
        raise ValueError(f"must be one of {', '.join(c for c, _ in s.choices)}")
    if s.type is SettingType.URL and not re.match(r"^https?://[^\s/$.?#].[^\s]*$", value):
        raise ValueError("must be an http(s) URL")
    if s.pattern is not None and not re.fullmatch(s.pattern, value):
        # A secret's value never appears in the message.
        raise ValueError("has an invalid format" if s.secret else f"{value!r} has an invalid format")
    return value
