"""Field types, cursor arithmetic, mapping validation and default mappings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from leadbridge import fieldtypes
from leadbridge.db import db
from leadbridge.errors import ConfigError
from leadbridge.fieldtypes import ConversionError, compatibility, convert, validate
from leadbridge.models import Connection, FieldMapping
from leadbridge.sync import cursor, default_mappings, validate_mapping
from leadbridge.sync.export import safe_cell
from leadbridge.types import FieldType as F
from leadbridge.types import Outcome, RecordResult
from sqlalchemy import select


@pytest.mark.parametrize(
    ("value", "source", "target", "expected"),
    [
        (["a", "b"], F.MULTISELECT, F.TEXT, "a, b"),
        ("42", F.TEXT, F.NUMBER, 42),
        ("4,5", F.TEXT, F.NUMBER, 4.5),
        ("yes", F.TEXT, F.BOOLEAN, True),
        (True, F.BOOLEAN, F.NUMBER, 1),
        ("2026-01-31", F.DATE, F.DATETIME, "2026-01-31T00:00:00+00:00"),
        ("2026-01-31T10:00:00+02:00", F.DATETIME, F.DATE, "2026-01-31"),
        ("2026-01-31T10:00:00Z", F.TEXT, F.DATETIME, "2026-01-31T10:00:00+00:00"),
        ("gold", F.SELECT, F.MULTISELECT, ["gold"]),
        ("a; b, a", F.TEXT, F.MULTISELECT, ["a", "b"]),
        (None, F.TEXT, F.NUMBER, None),
        ("acme.example", F.TEXT, F.URL, "acme.example"),
    ],
)
def test_convert(value: Any, source: F, target: F, expected: Any) -> None:
    assert convert(value, source, target) == expected


@pytest.mark.parametrize(
    ("value", "source", "target"),
    [
        ("abc", F.TEXT, F.NUMBER),
        (["a", "b"], F.MULTISELECT, F.SELECT),
        ("maybe", F.TEXT, F.BOOLEAN),
        ("not an email", F.TEXT, F.EMAIL),
        ("31.1.2026", F.TEXT, F.DATE),
    ],
)
def test_convert_refuses_values_that_do_not_qualify(value: Any, source: F, target: F) -> None:
    with pytest.raises(ConversionError):
        convert(value, source, target)


def test_compatibility_table() -> None:
    assert compatibility(F.MULTISELECT, F.TEXT) == "always"
    assert compatibility(F.TEXT, F.NUMBER) == "checked"
    assert compatibility(F.MULTISELECT, F.NUMBER) == "refused"
    assert compatibility(F.DATE, F.BOOLEAN) == "refused"
    assert fieldtypes.compatibility_reason(F.EMAIL, F.PHONE) is not None
    assert all(compatibility(t, t) == "always" for t in F)
    assert all(compatibility(t, F.TEXT) == "always" for t in F)
    assert validate(datetime(2026, 1, 1, 12, tzinfo=UTC), F.DATETIME) == "2026-01-01T12:00:00+00:00"


def test_cursor_never_passes_the_run_start_and_never_moves_back() -> None:
    start = datetime(2026, 3, 1, 12, tzinfo=UTC)
    two_min = start - timedelta(minutes=2)
    seen = [(two_min, "7"), (two_min, "9"), (start + timedelta(seconds=5), "3")]
    moved = cursor.advance({}, seen, ceiling=start)
    assert moved == {"at": start.isoformat(), "id": ""}
    earlier = cursor.advance(moved, [(start - timedelta(hours=1), "1")], ceiling=start)
    assert earlier == moved
    tie = cursor.advance({}, seen[:2], ceiling=start)
    assert tie["id"] == "9"  # (time, id) tiebreak


def test_read_since_uses_look_back_and_sync_from() -> None:
    at = datetime(2026, 3, 1, 12, tzinfo=UTC)
    sync_from = datetime(2026, 1, 1, tzinfo=UTC)
    assert cursor.read_since(None, sync_from=sync_from) == sync_from
    assert cursor.read_since(None, sync_from=None) is None
    assert cursor.read_since({"at": at.isoformat(), "id": "5"}, sync_from=None) == at - cursor.LOOKBACK
    assert cursor.read_since({"at": at.isoformat()}, sync_from=sync_from, full=True) == sync_from
    assert cursor.already_stored(at, at) and not cursor.already_stored(at, at + timedelta(microseconds=1))


def test_safe_cell() -> None:
    assert safe_cell("=1+1") == "'=1+1" and safe_cell("\tx") == "'\tx" and safe_cell("ok") == "ok"
    assert safe_cell(None) == "" and safe_cell(-3) == "'-3"


def test_default_mappings_from_presets(connection: Connection) -> None:
    created = default_mappings(connection)
    db.session.commit()
    pairs = {(m.object_type, m.hub_field, m.remote_field, m.direction) for m in created}
    assert ("contact", "title", "job_title", "both") in pairs
    assert ("company", "domain", "domain", "both") in pairs
    locked = {m.remote_field for m in created if m.locked}
    assert {"email", "last_name"} <= locked
    assert default_mappings(connection) == []  # idempotent
    total = db.session.execute(select(FieldMapping)).scalars().all()
    assert len(total) == len(created)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("contact", "score", "cf_industry", "both", "overwrite", {}), None),
        (("contact", "score", "notes", "from_crm", "overwrite", {}), None),
        (("contact", "unsubscribed", "birthday", "to_crm", "overwrite", {}), "cannot map a boolean"),
        (("contact", "first_name", "created_at", "to_crm", "overwrite", {}), "Created cannot sync to_crm"),
        (("contact", "first_name", "nope", "both", "overwrite", {}), "no field 'nope'"),
        (("contact", "first_name", "first_name", "both", "sometimes", {}), "write policy"),
        (("contact", "nickname", "first_name", "both", "overwrite", {}), "not a hub contact field"),
        (("contact", "consent", "lifecycle_stage", "both", "overwrite", {"double_opt_in": "customer"}), None),
        (("contact", "consent", "lifecycle_stage", "both", "overwrite", {"double_opt_in": "vip"}), "vip"),
        (("contact", "consent", "lifecycle_stage", "both", "overwrite", {"maybe": "lead"}), "maybe"),
    ],
)
def test_validate_mapping(connection: Connection, args: tuple[Any, ...], message: str | None) -> None:
    if message is None:
        validate_mapping(connection, *args)
        return
    with pytest.raises(ConfigError, match=message):
        validate_mapping(connection, *args)


# -- the write step pairs results by ref -----------------------------------------------------------


def test_results_pair_by_ref_whatever_their_order_and_a_missing_answer_is_a_failure() -> None:
    from leadbridge.sync.push import Write, pair

    writes = [Write(rid, rid, n, None, rid) for n, rid in enumerate(["r1", "r2", "r3"])]
    answered = [RecordResult(Outcome.DELETED, ref="r3"), RecordResult(Outcome.DELETED, ref="r1")]
    paired = {w.ref: r for w, r in pair(writes, answered)}
    assert paired["r1"].outcome is Outcome.DELETED and paired["r3"].outcome is Outcome.DELETED
    assert paired["r2"].outcome is Outcome.FAILED and paired["r2"].reason == "no result returned"


def test_results_without_refs_pair_by_position_and_a_short_answer_fails_the_rest() -> None:
    from leadbridge.sync.push import Write, pair

    writes = [Write(rid, rid, n, None, rid) for n, rid in enumerate(["a", "b"])]
    paired = pair(writes, [RecordResult(Outcome.UPDATED)])
    assert [r.outcome for _w, r in paired] == [Outcome.UPDATED, Outcome.FAILED]
    # A connector echoing refs of its own (not the inputs') is paired by position too.
    own = pair(writes, [RecordResult(Outcome.DELETED, ref="x1"), RecordResult(Outcome.FAILED, ref="x2")])
    assert [r.outcome for _w, r in own] == [Outcome.DELETED, Outcome.FAILED]


def test_push_batches_keep_their_keyset_when_a_row_of_the_batch_changes_meanwhile(app_ctx: Any) -> None:
    """A contact edited while its batch is at the vendor must not move the keyset past the others."""
    from datetime import UTC, datetime, timedelta

    from leadbridge.models import Contact as HubContact
    from leadbridge.models import Link
    from leadbridge.sync.push import _batches

    start = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(6):
        c = HubContact(consent="none", unsubscribed=False, custom={}, field_changed_at={})
        c.set_email(f"k{i}@example.org")
        c.updated_at = start + timedelta(seconds=i)
        db.session.add(c)
    db.session.commit()
    query = select(HubContact, Link).outerjoin(Link, Link.hub_id == HubContact.id)
    seen: list[int] = []
    for rows in _batches(query, HubContact, 2):
        seen += [c.id for c, _ in rows]
        rows[-1][0].updated_at = start + timedelta(days=1)  # edited during the vendor call
        db.session.commit()
    assert len(seen) == 6 + 3 and len(set(seen)) == 6  # each once, plus each edited one read again later
