"""The store: typed SQLAlchemy 2 models for hub records, connections, links, runs and users.

Rules the rest of the code relies on:

* Every datetime is UTC (:class:`~leadbridge.db.UTCDateTime`).
* ``Contact.email_key`` is the lower-cased, trimmed email and is unique: one person per email.
* Secrets never sit in a plain column: :attr:`Connection.secrets_encrypted` and
  :attr:`Connection.credentials_encrypted` hold Fernet tokens (see :mod:`leadbridge.crypto`), and
  no model's ``repr`` shows them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from .db import UTCDateTime, db, utcnow
from .types import RunStatus


def normalize_email(email: str | None) -> str | None:
    """The matching key of an email: trimmed and lower-cased; ``None`` for blank."""
    if email is None:
        return None
    key = email.strip().lower()
    return key or None


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow, index=True)


class Company(TimestampMixin, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "company"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    name_key: Mapped[str] = mapped_column(String(255), index=True)
    domain: Mapped[str | None] = mapped_column(String(255))
    phone: Mapped[str | None] = mapped_column(String(64))
    custom: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    field_changed_at: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    contacts: Mapped[list[Contact]] = relationship(back_populates="company")

    def __repr__(self) -> str:
        return f"<Company {self.id} {self.name!r}>"


class Contact(TimestampMixin, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "contact"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str | None] = mapped_column(String(320))
    email_key: Mapped[str | None] = mapped_column(String(320), unique=True)
    first_name: Mapped[str | None] = mapped_column(String(255))
    last_name: Mapped[str | None] = mapped_column(String(255))
    phone: Mapped[str | None] = mapped_column(String(64))
    title: Mapped[str | None] = mapped_column(String(255))
    company_name: Mapped[str | None] = mapped_column(String(255))
    company_id: Mapped[int | None] = mapped_column(ForeignKey("company.id", ondelete="SET NULL"), index=True)
    status: Mapped[str | None] = mapped_column(String(64), index=True)
    score: Mapped[int | None] = mapped_column(Integer)
    #: none | single_opt_in | double_opt_in | confirmed — the permission to send marketing email.
    consent: Mapped[str] = mapped_column(String(32), default="none")
    consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    unsubscribed: Mapped[bool] = mapped_column(Boolean, default=False)
    custom: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: hub field -> ISO time of its last change, for newest-wins conflict resolution.
    field_changed_at: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    company: Mapped[Company | None] = relationship(back_populates="contacts")
    memberships: Mapped[list[ListMembership]] = relationship(
        back_populates="contact", cascade="all, delete-orphan"
    )

    __table_args__ = (
        Index("ix_contact_name", "last_name", "first_name"),
        # The panel's name search matches first names by prefix too (fast at 100,000 contacts).
        Index("ix_contact_first_name", "first_name"),
    )

    def set_email(self, email: str | None) -> None:
        """Set the email; its matching key follows (also when ``email`` is assigned directly)."""
        self.email = email

    @validates("email")
    def _sync_email_key(self, _key: str, email: str | None) -> str | None:
        # One place keeps email_key in step, so Contact(email=...) cannot bypass uniqueness.
        self.email_key = normalize_email(email)
        return (email.strip() or None) if email else None

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p) or (self.email or f"#{self.id}")

    def __repr__(self) -> str:
        return f"<Contact {self.id} {self.email_key!r}>"


class ContactList(TimestampMixin, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "contact_list"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str | None] = mapped_column(Text)

    memberships: Mapped[list[ListMembership]] = relationship(
        back_populates="contact_list", cascade="all, delete-orphan"
    )


class ListMembership(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "list_membership"

    list_id: Mapped[int] = mapped_column(ForeignKey("contact_list.id", ondelete="CASCADE"), primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id", ondelete="CASCADE"), primary_key=True)
    status: Mapped[str] = mapped_column(String(64), default="subscribed")
    #: where the membership came from, e.g. ``import:planmill:3`` (connection 3).
    source: Mapped[str | None] = mapped_column(String(128))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    contact_list: Mapped[ContactList] = relationship(back_populates="memberships")
    contact: Mapped[Contact] = relationship(back_populates="memberships")

    __table_args__ = (Index("ix_list_membership_contact", "contact_id"),)


class Connection(TimestampMixin, db.Model):  # type: ignore[name-defined,misc]
    """A configured link to one CRM account through one connector plugin."""

    __tablename__ = "connection"

    id: Mapped[int] = mapped_column(primary_key=True)
    plugin: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    secrets_encrypted: Mapped[str | None] = mapped_column(Text)
    credentials_encrypted: Mapped[str | None] = mapped_column(Text)
    #: to_crm | from_crm | both
    direction: Mapped[str] = mapped_column(String(16), default="both")
    schedule_interval_minutes: Mapped[int | None] = mapped_column(Integer, default=120)
    schedule_cron: Mapped[str | None] = mapped_column(String(128))
    sync_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: engine options: objects, debug, delete policy per direction, conflict winner, ...
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: ok | needs_reconnect | error | paused
    state: Mapped[str] = mapped_column(String(32), default="ok")
    state_message: Mapped[str | None] = mapped_column(Text)
    paused_until: Mapped[datetime | None] = mapped_column(UTCDateTime)

    mappings: Mapped[list[FieldMapping]] = relationship(
        back_populates="connection", cascade="all, delete-orphan", order_by="FieldMapping.id"
    )

    def __repr__(self) -> str:  # secrets deliberately absent
        return f"<Connection {self.id} {self.plugin}:{self.name!r} enabled={self.enabled}>"


class FieldMapping(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "field_mapping"

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connection.id", ondelete="CASCADE"), index=True)
    object_type: Mapped[str] = mapped_column(String(64))
    hub_field: Mapped[str] = mapped_column(String(128))
    remote_field: Mapped[str] = mapped_column(String(255))
    direction: Mapped[str] = mapped_column(String(16), default="both")
    #: overwrite | if_empty | never
    write_policy: Mapped[str] = mapped_column(String(16), default="overwrite")
    #: hub value -> remote value, for select/multiselect options.
    value_map: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    locked: Mapped[bool] = mapped_column(Boolean, default=False)

    connection: Mapped[Connection] = relationship(back_populates="mappings")

    __table_args__ = (UniqueConstraint("connection_id", "object_type", "remote_field"),)


class Link(db.Model):  # type: ignore[name-defined,misc]
    """A hub record and its remote twin in one connection, with a fingerprint of what was last synced."""

    __tablename__ = "link"

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connection.id", ondelete="CASCADE"))
    object_type: Mapped[str] = mapped_column(String(64))
    #: contact | company
    hub_kind: Mapped[str] = mapped_column(String(16))
    hub_id: Mapped[int] = mapped_column(Integer)
    remote_id: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    #: field -> value as last synced (both sides agree on these), to tell which side changed.
    last_values: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    remote_modified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    synced_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("connection_id", "object_type", "remote_id"),
        # One vendor record per hub record and object: a race can never link a second one silently.
        UniqueConstraint("connection_id", "object_type", "hub_kind", "hub_id", name="uq_link_hub_record"),
        Index("ix_link_hub", "connection_id", "hub_kind", "hub_id"),
    )


class SyncState(db.Model):  # type: ignore[name-defined,misc]
    """The committed checkpoint of one stream (connection + object + direction)."""

    __tablename__ = "sync_state"

    connection_id: Mapped[int] = mapped_column(
        ForeignKey("connection.id", ondelete="CASCADE"), primary_key=True
    )
    stream: Mapped[str] = mapped_column(String(128), primary_key=True)
    cursor: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class SyncRun(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "sync_run"

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connection.id", ondelete="CASCADE"), index=True)
    #: queued | running | succeeded | partial | failed | paused | cancelled
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.QUEUED.value, index=True)
    #: schedule | manual | webhook | form | api | send | import
    trigger: Mapped[str] = mapped_column(String(16), default="manual")
    direction: Mapped[str] = mapped_column(String(16), default="both")
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: {"crm": {"created": n, ...}, "hub": {...}}
    counts: Mapped[dict[str, dict[str, int]]] = mapped_column(JSON, default=dict)
    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int | None] = mapped_column(Integer)
    api_calls: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    resumes_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    connection: Mapped[Connection] = relationship()
    records: Mapped[list[SyncRecord]] = relationship(
        back_populates="run", cascade="all, delete-orphan", order_by="SyncRecord.id"
    )


class SyncRecord(db.Model):  # type: ignore[name-defined,misc]
    """One record's outcome in one run, on one side."""

    __tablename__ = "sync_record"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("sync_run.id", ondelete="CASCADE"))
    #: crm | hub — where the change was (or would be) written
    side: Mapped[str] = mapped_column(String(8))
    object_type: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    hub_id: Mapped[int | None] = mapped_column(Integer)
    remote_id: Mapped[str | None] = mapped_column(String(255))
    label: Mapped[str | None] = mapped_column(String(512))
    reason: Mapped[str | None] = mapped_column(Text)
    code: Mapped[str | None] = mapped_column(String(128))
    #: field -> [old, new] for updates, dry runs and conflicts
    diff: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    run: Mapped[SyncRun] = relationship(back_populates="records")

    __table_args__ = (
        Index("ix_sync_record_run_side_outcome", "run_id", "side", "outcome"),
        # A contact's sync history in the panel.
        Index("ix_sync_record_hub_id", "hub_id"),
    )


class DebugEntry(db.Model):  # type: ignore[name-defined,misc]
    """A redacted request/response summary, kept when a connection's debug mode is on."""

    __tablename__ = "debug_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connection.id", ondelete="CASCADE"), index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("sync_run.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    method: Mapped[str] = mapped_column(String(8))
    url: Mapped[str] = mapped_column(Text)
    status: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    request: Mapped[str | None] = mapped_column(Text)
    response: Mapped[str | None] = mapped_column(Text)


class WebhookDelivery(db.Model):  # type: ignore[name-defined,misc]
    """Vendor delivery ids already processed, so a re-delivered webhook changes nothing."""

    __tablename__ = "webhook_delivery"

    connection_id: Mapped[int] = mapped_column(
        ForeignKey("connection.id", ondelete="CASCADE"), primary_key=True
    )
    event_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookInbox(db.Model):  # type: ignore[name-defined,misc]
    """Webhook events accepted but not yet applied (see :mod:`leadbridge.sync.inbox`).

    A delivery is verified and parsed in its request, its events land here, and the vendor gets its
    answer at once; a background run applies them in arrival order. An event that keeps failing is
    parked after :data:`~leadbridge.sync.inbox.MAX_ATTEMPTS` tries (``parked_at``), kept for a look.
    """

    __tablename__ = "webhook_inbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connection.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(255))
    event: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    #: not retried before this (a back-off after a failed attempt)
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    parked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("connection_id", "event_id", name="uq_webhook_inbox_event"),
        Index("ix_webhook_inbox_pending", "connection_id", "parked_at", "id"),
    )


class WebhookSubscription(db.Model):  # type: ignore[name-defined,misc]
    """The vendor webhooks the core registered for a connection (see :mod:`leadbridge.sync.subscriptions`).

    One row per connection: the URL registered, the vendor's ids for it, the shared secret handed to
    ``register_webhooks`` (Fernet-encrypted), and the outcome of the last registration attempt.
    """

    __tablename__ = "webhook_subscription"

    connection_id: Mapped[int] = mapped_column(
        ForeignKey("connection.id", ondelete="CASCADE"), primary_key=True
    )
    url: Mapped[str | None] = mapped_column(String(1024))
    remote_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    secret_encrypted: Mapped[str | None] = mapped_column(Text)
    #: registered | removed | failed
    status: Mapped[str] = mapped_column(String(16), default="removed")
    error: Mapped[str | None] = mapped_column(Text)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:  # the secret deliberately absent
        return f"<WebhookSubscription {self.connection_id} {self.status} ids={self.remote_ids}>"


class RemoteFieldCache(db.Model):  # type: ignore[name-defined,misc]
    """A connection's remote fields per object as ``field_types`` last returned them (see
    :mod:`leadbridge.sync.fieldcache`): shared by every process, valid for a limited time."""

    __tablename__ = "remote_field_cache"

    connection_id: Mapped[int] = mapped_column(
        ForeignKey("connection.id", ondelete="CASCADE"), primary_key=True
    )
    object_type: Mapped[str] = mapped_column(String(128), primary_key=True)
    fields: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class User(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "user"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(150), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=True)
    #: bumped on logout / password change: every older session cookie stops working.
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<User {self.id} {self.username!r}>"


class ApiToken(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    #: sha256 of the token; the token itself is shown once.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Form(db.Model):  # type: ignore[name-defined,misc]
    """A public form endpoint: submissions create or update a contact and trigger the push."""

    __tablename__ = "form"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    list_id: Mapped[int | None] = mapped_column(ForeignKey("contact_list.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Lock(db.Model):  # type: ignore[name-defined,misc]
    """Named database locks with an owner and heartbeat (the single scheduler, one run per connection)."""

    __tablename__ = "lock"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128))
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
