"""The small typed values that cross the hook contract.

Connectors receive and return these, never ORM models or loose dicts, so the contract can be
type-checked and documented. All datetimes are timezone-aware UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class FieldType(StrEnum):
    """The hub's field types; every remote field is described as one of these."""

    TEXT = "text"
    TEXTAREA = "textarea"
    NUMBER = "number"
    SELECT = "select"
    MULTISELECT = "multiselect"
    DATE = "date"
    DATETIME = "datetime"
    TIME = "time"
    EMAIL = "email"
    URL = "url"
    PHONE = "phone"
    BOOLEAN = "boolean"


class Direction(StrEnum):
    """Which way data flows, seen from the hub: ``to_crm`` pushes, ``from_crm`` pulls."""

    TO_CRM = "to_crm"
    FROM_CRM = "from_crm"
    BOTH = "both"

    def includes(self, other: Direction) -> bool:
        """True when this direction covers ``other`` (``both`` covers either one-way direction)."""
        return self is other or self is Direction.BOTH


class Outcome(StrEnum):
    """What happened to one record in a write or read."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"
    DELETED = "deleted"
    FAILED = "failed"
    CONFLICT = "conflict"


class LogSide(StrEnum):
    """Which side a run-log record was written to: the CRM (push) or the hub (pull)."""

    CRM = "crm"
    HUB = "hub"


class RunStatus(StrEnum):
    """Where a sync run stands. ``queued`` and ``running`` are active; the rest are final."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    #: finished, but some records failed (see the run log)
    PARTIAL = "partial"
    FAILED = "failed"
    #: stopped by a vendor quota or rate limit; resumes after the reset
    PAUSED = "paused"
    CANCELLED = "cancelled"

    @property
    def active(self) -> bool:
        return self in (RunStatus.QUEUED, RunStatus.RUNNING)

    @property
    def finished_ok(self) -> bool:
        return self in (RunStatus.SUCCEEDED, RunStatus.PARTIAL)


class WebhookEventKind(StrEnum):
    """What a webhook event does to the hub record it names (connectors may add their own kinds,
    such as Pipedrive's ``deal_added``, which the core records but does not apply)."""

    UPSERT = "upsert"
    DELETE = "delete"
    UNSUBSCRIBE = "unsubscribe"


class WritePolicy(StrEnum):
    """When a mapping may overwrite the target field."""

    OVERWRITE = "overwrite"
    #: only when the target is empty
    IF_EMPTY = "if_empty"
    #: set when the record is created, never overwritten
    NEVER = "never"


class DeletePolicy(StrEnum):
    """What a deletion on one side does on the other (``options["delete_policy"][flow]``)."""

    IGNORE = "ignore"
    UNSUBSCRIBE = "unsubscribe"
    DELETE = "delete"


class ConflictPolicy(StrEnum):
    """Who wins when both sides changed a two-way field (``options["conflict"]``)."""

    NEWEST = "newest"
    HUB = "hub"
    CRM = "crm"


class HubKind(StrEnum):
    """The kind of hub record a connector object maps to."""

    CONTACT = "contact"
    COMPANY = "company"
    ACTION = "action"
    CAMPAIGN = "campaign"


@dataclass(frozen=True, slots=True)
class Choice:
    """One option of a select or multiselect field: the stored ``value`` and the ``label`` people see."""

    value: str
    label: str


@dataclass(frozen=True, slots=True)
class RemoteField:
    """A field of a CRM object, described in hub terms.

    :param name: the vendor's API name (``LastName``, ``custom_fields.cf_12``).
    :param type: the hub type values of this field convert to and from.
    :param required: the vendor refuses a create without it (shown locked in the mapping screen).
    :param writable: the connector can write it (false for formula, system or read-only fields).
    :param readable: the connector can read it back.
    :param choices: the options of a select/multiselect, discovered live.
    :param hub_field: the hub field this maps to by default, if any (preset mappings).
    :param directions: the directions the vendor allows for this field.
    """

    name: str
    label: str
    type: FieldType
    object_type: str = "contact"
    required: bool = False
    writable: bool = True
    readable: bool = True
    custom: bool = False
    choices: tuple[Choice, ...] = ()
    hub_field: str | None = None
    directions: frozenset[Direction] = frozenset({Direction.TO_CRM, Direction.FROM_CRM, Direction.BOTH})
    vendor_type: str | None = None


@dataclass(slots=True)
class Company:
    """A company ("account", "organization", "third") on either side of the contract.

    :param remote_id: the vendor's id; ``None`` when not yet known (a create).
    :param name: the company name; connectors that match by name compare it exactly.
    :param fields: remote field name -> value, already converted to the hub type of that field.
    :param ref: the hub company id this record came from or belongs to (set by the core on writes).
    """

    name: str
    remote_id: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    modified_at: datetime | None = None
    deleted: bool = False
    ref: str | None = None


@dataclass(slots=True)
class Contact:
    """A person (contact, lead, person) on either side of the contract.

    :param email: the match key, as the vendor stores it (the core compares case-insensitively).
    :param remote_id: the vendor's id; ``None`` when not yet known (the connector looks it up or creates).
    :param fields: remote field name -> value in the field's hub type; only mapped fields are present.
    :param company: the related company; on writes the core has already upserted it, so its
        ``remote_id`` is set whenever the vendor has one.
    :param modified_at: when the vendor last changed it (drives incremental cursors).
    :param deleted: the vendor reports this record as deleted (feeds the delete policy).
    :param ref: the hub contact id (set by the core on writes; results echo it back).
    :param extra: vendor facts the core keeps but does not interpret (e.g. ``converted_to``).
    """

    email: str | None
    remote_id: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    company: Company | None = None
    modified_at: datetime | None = None
    deleted: bool = False
    ref: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Action:
    """An event recorded in the CRM about a contact (a task, an activity, a transaction).

    Actions are events: creating the same action twice creates two.
    """

    title: str
    contact: Contact
    company: Company | None = None
    kind: str = "note"
    occurred_at: datetime | None = None
    description: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Campaign:
    """A vendor campaign (or list) whose members can be imported into a hub list."""

    remote_id: str
    name: str
    member_count: int | None = None


@dataclass(slots=True)
class Page(Generic[T]):
    """One page of records and the opaque cursor of the next page (``None``: this was the last page)."""

    items: list[T]
    next_cursor: str | None = None


@dataclass(slots=True)
class RecordResult:
    """The outcome of writing (or reading) one record.

    :param ref: echoes the ``ref`` of the record it answers, so results can be matched to inputs.
    :param remote_id: the vendor id after the write (set on created/updated/unchanged).
    :param code: the vendor's error code for failures (``REQUIRED_FIELD_MISSING``, ``409``...).
    :param extra: details the run log shows (``duplicate_ids``, ``field``...).
    """

    outcome: Outcome
    ref: str | None = None
    remote_id: str | None = None
    reason: str | None = None
    code: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True unless the record failed."""
        return self.outcome is not Outcome.FAILED


@dataclass(slots=True)
class Credentials:
    """What :func:`~leadbridge.hookspecs.authenticate` obtained; the core stores it encrypted.

    :param headers: headers the core adds to every vendor request (``Authorization``, ``x-api-token``).
    :param expires_at: when the access token stops working; the core renews a little before.
    :param refresh_token: kept for the next ``authenticate`` call; rotated ones are saved before use.
    :param extra: vendor facts tied to the grant (e.g. Salesforce's ``instance_url``).
    """

    headers: dict[str, str]
    access_token: str | None = None
    expires_at: datetime | None = None
    refresh_token: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:  # never show tokens
        return f"Credentials(expires_at={self.expires_at!r}, headers=<{len(self.headers)} redacted>)"


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """An incoming webhook call, as the core received it."""

    method: str
    headers: Mapping[str, str]
    body: bytes
    query: Mapping[str, str]
    remote_addr: str | None = None


@dataclass(slots=True)
class WebhookEvent:
    """What a webhook means for the hub.

    :param kind: a :class:`WebhookEventKind`, or a connector-specific event (``deal_added``).
    :param object_type: the connector object the event is about.
    :param event_id: the vendor's delivery id, used to ignore duplicate deliveries.
    :param action: an event to relay through this connection's ``create_action`` (a Pipedrive deal
        becoming a Maileon transaction). ``action.contact.remote_id`` names the ``object_type``
        record it is about; the core hands ``create_action`` that record's hub contact instead
        (email and hub facts), and logs a failure when the hub does not know it.
    """

    kind: WebhookEventKind | str
    object_type: str
    event_id: str
    contact: Contact | None = None
    company: Company | None = None
    data: dict[str, Any] = field(default_factory=dict)
    action: Action | None = None


@dataclass(frozen=True, slots=True)
class RateUsage:
    """What the vendor's response headers say about the allowance (all optional)."""

    remaining: int | None = None
    limit: int | None = None
    reset_in: float | None = None
    daily_used: int | None = None
    daily_limit: int | None = None
