"""The store on a real database (SQLite by default, PostgreSQL with LEADBRIDGE_TEST_DATABASE_URL)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from flask import Flask
from leadbridge import clock as clocks
from leadbridge.db import db
from leadbridge.models import (
    Company,
    Connection,
    Contact,
    ContactList,
    DebugEntry,
    FieldMapping,
    Link,
    ListMembership,
    SyncRecord,
    SyncRun,
    SyncState,
    WebhookDelivery,
)
from sqlalchemy import delete, func, select, text
from sqlalchemy.exc import IntegrityError, StatementError


def _contact(email: str | None, **kw: object) -> Contact:
    contact = Contact(**kw)
    contact.set_email(email)
    return contact


def _connection(name: str = "CRM") -> Connection:
    conn = Connection(plugin="example", name=name, settings={})
    db.session.add(conn)
    db.session.flush()
    return conn


def _count(model: type) -> int:
    return int(db.session.execute(select(func.count()).select_from(model)).scalar_one())


# -- contacts -------------------------------------------------------------------------------------


def test_email_is_unique_case_insensitively(app_ctx: Flask) -> None:
    db.session.add(_contact("alice@x.com"))
    db.session.commit()
    db.session.add(_contact("  ALICE@x.com "))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()
    assert _count(Contact) == 1


def test_email_key_follows_direct_assignment(app_ctx: Flask) -> None:
    # Contact(email=...) must not bypass the key, or uniqueness would silently not hold.
    db.session.add(Contact(email="Bob@Example.com"))
    db.session.commit()
    stored = db.session.execute(select(Contact)).scalar_one()
    assert (stored.email, stored.email_key) == ("Bob@Example.com", "bob@example.com")
    db.session.add(Contact(email="BOB@EXAMPLE.COM"))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_contacts_without_email_do_not_collide(app_ctx: Flask) -> None:
    db.session.add_all([_contact(None), _contact("   "), Contact(first_name="No", last_name="Mail")])
    db.session.commit()
    keys = db.session.execute(select(Contact.email, Contact.email_key)).all()
    assert [tuple(k) for k in keys] == [(None, None)] * 3


def test_utc_round_trip(app_ctx: Flask) -> None:
    helsinki = timezone(timedelta(hours=2))
    moment = datetime(2026, 3, 29, 2, 30, 15, 123456, tzinfo=helsinki)
    db.session.add(_contact("utc@x.com", consent_at=moment))
    db.session.commit()
    db.session.expunge_all()  # read back from the database, not the identity map

    stored = db.session.execute(select(Contact.consent_at)).scalar_one()
    assert stored == moment
    assert stored.tzinfo is not None and stored.utcoffset() == timedelta(0)
    assert stored.replace(tzinfo=None) == datetime(2026, 3, 29, 0, 30, 15, 123456)


def test_naive_datetimes_are_refused(app_ctx: Flask) -> None:
    db.session.add(_contact("naive@x.com", consent_at=datetime(2026, 1, 1, 12, 0)))
    with pytest.raises(StatementError, match="naive datetime"):
        db.session.commit()
    db.session.rollback()
    assert _count(Contact) == 0


def test_timestamps_are_set_and_aware(app_ctx: Flask) -> None:
    before = clocks.utcnow()
    db.session.add(_contact("t@x.com"))
    db.session.commit()
    db.session.expunge_all()
    contact = db.session.execute(select(Contact)).scalar_one()
    assert contact.created_at.tzinfo is not None
    assert contact.created_at >= before - timedelta(seconds=1)


# -- lists ----------------------------------------------------------------------------------------


def test_list_memberships_carry_a_status(app_ctx: Flask) -> None:
    webinar = ContactList(name="Webinar")
    ann, ben = _contact("ann@x.com"), _contact("ben@x.com")
    db.session.add_all([webinar, ann, ben])
    db.session.flush()
    list_id, ann_id = webinar.id, ann.id
    source = "import:example:1"
    db.session.add_all(
        [
            ListMembership(list_id=list_id, contact_id=ann_id, status="registered", source=source),
            ListMembership(list_id=list_id, contact_id=ben.id, status="attended"),
        ]
    )
    db.session.commit()
    db.session.expunge_all()

    rows = db.session.execute(
        select(Contact.email_key, ListMembership.status, ListMembership.source)
        .join(ListMembership, ListMembership.contact_id == Contact.id)
        .where(ListMembership.list_id == list_id)
        .order_by(Contact.email_key)
    ).all()
    assert [tuple(r) for r in rows] == [("ann@x.com", "registered", source), ("ben@x.com", "attended", None)]

    db.session.add(ListMembership(list_id=list_id, contact_id=ann_id, status="attended"))
    with pytest.raises(IntegrityError):  # one membership per (list, contact)
        db.session.commit()
    db.session.rollback()


# -- links ----------------------------------------------------------------------------------------


def test_links_are_unique_per_remote_record_and_per_hub_record(app_ctx: Flask) -> None:
    one, two = _connection("One"), _connection("Two")

    def link(conn: Connection, object_type: str, remote_id: str, hub_id: int = 1) -> Link:
        return Link(
            connection_id=conn.id,
            object_type=object_type,
            hub_kind="contact",
            hub_id=hub_id,
            remote_id=remote_id,
        )

    # The same remote id is fine in another object type or another connection.
    db.session.add_all([link(one, "Lead", "00Q1"), link(one, "Contact", "00Q1"), link(two, "Lead", "00Q1")])
    db.session.commit()
    db.session.add(link(one, "Lead", "00Q1", hub_id=2))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()
    # One hub record has at most one record per connector object: a race cannot link a second one.
    db.session.add(link(one, "Lead", "00Q2", hub_id=1))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()
    assert _count(Link) == 3


# -- cascades -------------------------------------------------------------------------------------


def test_deleting_a_connection_deletes_everything_it_owns(app_ctx: Flask) -> None:
    keep, gone = _connection("Keep"), _connection("Gone")
    for conn in (keep, gone):
        run = SyncRun(connection_id=conn.id, counts={})
        db.session.add(run)
        db.session.flush()
        db.session.add_all(
            [
                FieldMapping(
                    connection_id=conn.id, object_type="contact", hub_field="email", remote_field="email"
                ),
                Link(
                    connection_id=conn.id, object_type="contact", hub_kind="contact", hub_id=1, remote_id="r1"
                ),
                SyncState(connection_id=conn.id, stream="contact:from_crm", cursor={"since": "x"}),
                SyncRecord(run_id=run.id, side="crm", object_type="contact", outcome="created"),
                DebugEntry(connection_id=conn.id, run_id=run.id, method="GET", url="http://x/"),
                WebhookDelivery(connection_id=conn.id, event_id="evt-1"),
            ]
        )
    db.session.commit()
    owned = (FieldMapping, Link, SyncState, SyncRun, SyncRecord, DebugEntry, WebhookDelivery)
    assert {m.__name__: _count(m) for m in owned} == {m.__name__: 2 for m in owned}

    # A plain SQL delete: the foreign keys themselves cascade, not only the ORM.
    db.session.execute(delete(Connection).where(Connection.id == gone.id))
    db.session.commit()
    db.session.expunge_all()
    assert {m.__name__: _count(m) for m in owned} == {m.__name__: 1 for m in owned}
    assert db.session.execute(select(Connection.name)).scalars().all() == ["Keep"]


def test_deleting_a_contact_or_list_deletes_memberships_only(app_ctx: Flask) -> None:
    newsletter, webinar = ContactList(name="Newsletter"), ContactList(name="Webinar")
    ann, ben = _contact("ann@x.com"), _contact("ben@x.com")
    db.session.add_all([newsletter, webinar, ann, ben])
    db.session.flush()
    for lst in (newsletter, webinar):
        for person in (ann, ben):
            db.session.add(ListMembership(list_id=lst.id, contact_id=person.id))
    db.session.commit()

    db.session.delete(ann)
    db.session.commit()
    assert _count(ListMembership) == 2
    db.session.execute(delete(ContactList).where(ContactList.id == webinar.id))
    db.session.commit()
    db.session.expunge_all()
    assert _count(ListMembership) == 1
    assert db.session.execute(select(Contact.email_key)).scalars().all() == ["ben@x.com"]
    assert db.session.execute(select(ContactList.name)).scalars().all() == ["Newsletter"]


def test_deleting_a_company_keeps_its_contacts(app_ctx: Flask) -> None:
    acme = Company(name="Acme Oy", name_key="acme oy")
    db.session.add(acme)
    db.session.flush()
    db.session.add(_contact("ann@acme.example", company_id=acme.id, company_name="Acme Oy"))
    db.session.commit()
    db.session.execute(delete(Company).where(Company.id == acme.id))
    db.session.commit()
    db.session.expunge_all()
    contact = db.session.execute(select(Contact)).scalar_one()
    assert (contact.company_id, contact.company_name) == (None, "Acme Oy")


# -- schema and engine ----------------------------------------------------------------------------


def test_migration_matches_the_models(app_ctx: Flask) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, db.metadata)
    assert diff == [], "models and migration differ: regenerate the initial revision (see the common brief)"


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(app_ctx: Flask) -> None:
    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite pragmas")
    pragmas = {
        name: db.session.execute(text(f"PRAGMA {name}")).scalar_one()
        for name in ("journal_mode", "busy_timeout", "foreign_keys")
    }
    assert pragmas == {"journal_mode": "wal", "busy_timeout": 30000, "foreign_keys": 1}
