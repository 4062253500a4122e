"""Pull: read the CRM's changed records page by page and store them in the hub.

Each page is stored, logged and checkpointed in one transaction after it was read (the vendor call
happens with nothing pending), so a crash re-reads at most one page and the look-back overlap is
de-duplicated by the links. A dry run does the same work and rolls the hub writes back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select

from ..db import db, utcnow
from ..metadata import ObjectSpec
from ..models import Company as HubCompany
from ..models import Contact as HubContact
from ..models import Link, SyncState, normalize_email
from ..types import Company, Contact, DeletePolicy, Direction, HubKind, LogSide, Outcome, Page
from . import cursor as cursors
from . import links
from .context import MAX_PAGES, RunContext
from .hubfields import company_key
from .mappings import FieldRule
from .merge import COMPANY_KEY, EMAIL_KEY, NAME_KEY, PullMerge, merge_pull

DELETED_KEY = "__deleted__"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(slots=True)
class PageCache:
    """One page's links and matching hub records (by email key or company name key), read with two
    queries instead of two per record. Passed explicitly to :func:`store`."""

    conn_id: int
    object_type: str
    kind: HubKind
    links: dict[str, Link] = field(default_factory=dict)
    records: dict[str, HubContact | HubCompany] = field(default_factory=dict)

    @classmethod
    def load(
        cls, conn_id: int, object_type: str, kind: HubKind, items: Sequence[Contact | Company]
    ) -> PageCache:
        cache = cls(conn_id, object_type, kind)
        remote_ids = {str(i.remote_id) for i in items if i.remote_id is not None}
        keys = {k for k in (natural_key(i) for i in items) if k}
        if remote_ids:
            found = db.session.execute(
                select(Link).where(
                    Link.connection_id == conn_id,
                    Link.object_type == object_type,
                    Link.remote_id.in_(remote_ids),
                )
            ).scalars()
            cache.links = {link.remote_id: link for link in found}
        hub_ids = {link.hub_id for link in cache.links.values()}
        if keys or hub_ids:
            rows: list[HubContact] | list[HubCompany]
            if kind is HubKind.CONTACT:
                match = or_(HubContact.email_key.in_(keys), HubContact.id.in_(hub_ids))
                rows = list(
                    db.session.execute(select(HubContact).where(match).order_by(HubContact.id)).scalars()
                )
            else:
                match = or_(HubCompany.name_key.in_(keys), HubCompany.id.in_(hub_ids))
                rows = list(
                    db.session.execute(select(HubCompany).where(match).order_by(HubCompany.id)).scalars()
                )
            for row in rows:  # linked ones land in the identity map too; the oldest namesake wins
                key = row.email_key if isinstance(row, HubContact) else row.name_key
                if key:
                    cache.records.setdefault(key, row)
        return cache

    def rekey(self, record: HubContact | HubCompany, key: str) -> None:
        """``record`` is now found under ``key`` (the CRM changed its email)."""
        for old in [k for k, v in self.records.items() if v is record]:
            self.records.pop(old)
        self.records[key] = record


def natural_key(item: Contact | Company) -> str | None:
    """How a CRM record is matched to a hub record without a link: email, or the company's name."""
    return normalize_email(item.email) if isinstance(item, Contact) else (company_key(item.name) or None)


def stream_name(spec: ObjectSpec) -> str:
    return f"pull:{spec.name}"


def pull_object(ctx: RunContext, spec: ObjectSpec) -> None:
    """Pull every record of ``spec`` changed since the checkpoint."""
    om = ctx.mappings(spec)
    stream = stream_name(spec)
    state = db.session.get(SyncState, (ctx.conn_id, stream))
    since = cursors.read_since(state.cursor if state else None, sync_from=ctx.conn.sync_from, full=ctx.full)
    kind = spec.hub_kind
    page_cursor: str | None = None
    seen_cursors: set[str] = set()
    for _ in range(MAX_PAGES):
        db.session.commit()  # nothing pending while the vendor answers
        page: Page[Contact] | Page[Company]
        if kind is HubKind.COMPANY:
            page = ctx.hooks.fetch_companies(ctx.client, since, page_cursor)
        else:
            page = ctx.hooks.fetch_contacts(ctx.client, spec.name, since, page_cursor)
        cache = PageCache.load(ctx.conn_id, spec.name, kind, page.items)
        positions: list[tuple[datetime | None, str]] = []
        for item in page.items:
            store(ctx, spec, om.items, item, page=cache)
            positions.append((item.modified_at, str(item.remote_id or "")))
            ctx.log.advance()
        _checkpoint(ctx, stream, positions)
        nxt = page.next_cursor
        if nxt is None:
            return
        if nxt in seen_cursors:
            ctx.log.note(f"{spec.label}: the CRM repeated a page cursor; paging stopped")
            return
        seen_cursors.add(nxt)
        page_cursor = nxt
    ctx.log.note(f"{spec.label}: stopped after {MAX_PAGES} pages")


def _checkpoint(ctx: RunContext, stream: str, positions: list[tuple[datetime | None, str]]) -> None:
    if ctx.dry_run:
        db.session.rollback()  # the same computation, nothing kept: hub data and cursor untouched
        ctx.log.checkpoint()
        return
    state = db.session.get(SyncState, (ctx.conn_id, stream))
    if state is None:
        state = SyncState(connection_id=ctx.conn_id, stream=stream, cursor={})
        db.session.add(state)
    state.cursor = cursors.advance(state.cursor, positions, ceiling=ctx.started_at)
    ctx.log.checkpoint()


def _tombstone(ctx: RunContext, spec: ObjectSpec, link: Link, hub: HubContact | HubCompany | None) -> None:
    """The CRM deleted the record: apply the from-CRM delete policy; never push it back."""
    link.last_values = {**(link.last_values or {}), DELETED_KEY: True}
    if hub is None or not isinstance(hub, HubContact):
        return
    policy = ctx.delete_policy(Direction.FROM_CRM)
    label = hub.email or f"#{hub.id}"
    if policy is DeletePolicy.UNSUBSCRIBE and not hub.unsubscribed:
        hub.unsubscribed = True
        ctx.log.add(
            LogSide.HUB,
            spec.name,
            Outcome.UPDATED,
            hub_id=hub.id,
            remote_id=link.remote_id,
            label=label,
            reason="deleted in the CRM: unsubscribed",
            diff={"unsubscribed": [False, True]},
        )
    elif policy is DeletePolicy.DELETE and hub.deleted_at is None:
        hub.deleted_at = utcnow()
        ctx.log.add(
            LogSide.HUB,
            spec.name,
            Outcome.DELETED,
            hub_id=hub.id,
            remote_id=link.remote_id,
            label=label,
            reason="deleted in the CRM",
        )


def store(
    ctx: RunContext,
    spec: ObjectSpec,
    rules: list[FieldRule],
    item: Contact | Company,
    *,
    page: PageCache | None = None,
    force: bool = False,
) -> HubContact | HubCompany | None:
    """Store one CRM record in the hub: match it (link, then email or exact company name), create
    or merge, record what both sides now agree on, log the outcome.

    :param page: the page's prefetched links and records (a single record reads its own).
    :param force: store even a record the look-back already stored (list imports).
    """
    page = page or PageCache.load(ctx.conn_id, spec.name, spec.hub_kind, [item])
    is_contact = isinstance(item, Contact)
    remote_id = str(item.remote_id) if item.remote_id is not None else None
    link = page.links.get(remote_id) if remote_id else None
    hub: HubContact | HubCompany | None = None
    if link is not None:
        hub = (
            db.session.get(HubContact, link.hub_id) if is_contact else db.session.get(HubCompany, link.hub_id)
        )
    label = (item.email if isinstance(item, Contact) else item.name) or remote_id or "?"
    if item.deleted:
        if link is not None:
            _tombstone(ctx, spec, link, hub)
        return None
    overlap = link is not None and cursors.already_stored(link.remote_modified_at, item.modified_at)
    if overlap and not force and not ctx.full:
        return hub  # read again in the look-back overlap: already stored
    key = natural_key(item)
    created = False
    if hub is None:
        if not key:
            reason = "no email" if is_contact else "no name"
            ctx.log.add(
                LogSide.HUB, spec.name, Outcome.SKIPPED, remote_id=remote_id, label=label, reason=reason
            )
            return None
        hub = page.records.get(key)
        if hub is not None and remote_id and _linked_elsewhere(ctx, spec, hub, remote_id, label):
            return hub
        if hub is None:
            hub = _new_record(item, key)
            db.session.add(hub)
            created = True
            page.records[key] = hub
    merged, pending = _merge(ctx, rules, hub, item.fields, item.modified_at, link, created)
    if isinstance(item, Contact) and isinstance(hub, HubContact):
        _merge_email(ctx, spec, hub, item, merged.diff, merged.last, merged.changed_at, created=created)
        _attach_company(ctx, hub, item.company, merged.diff)
        pulled_company = _company_seen(rules, item)
        if pulled_company:
            # What the CRM record points at, in the terms push compares: a pulled contact whose company
            # did not change is not re-sent (the first `sync --full` after a pull used to echo them all).
            merged.last[COMPANY_KEY] = pulled_company
    else:
        merged.last[NAME_KEY] = key
    stamp = _stamp(hub, merged, created)
    if isinstance(hub, HubContact) and hub.email_key and page.records.get(hub.email_key) is not hub:
        page.rekey(hub, hub.email_key)  # the CRM changed the email: the old key no longer names it
    if remote_id:
        page.links[remote_id] = links.save(
            link,
            conn_id=ctx.conn_id,
            object_type=spec.name,
            kind=spec.hub_kind.value,
            hub_id=hub.id,
            remote_id=remote_id,
            last=merged.last,
            synced_at=_synced_at(link, pending, stamp),
            remote_modified_at=item.modified_at,
        )
        if not is_contact:
            ctx.company_cache[f"id:{hub.id}"] = remote_id
    _log_stored(ctx, spec, hub.id, remote_id, label, merged, created)
    return hub


def _new_record(item: Contact | Company, key: str) -> HubContact | HubCompany:
    if isinstance(item, Contact):
        contact = HubContact(consent="none", unsubscribed=False, custom={}, field_changed_at={})
        contact.set_email(item.email)
        return contact
    return HubCompany(name=item.name.strip(), name_key=key, custom={}, field_changed_at={})


def _linked_elsewhere(
    ctx: RunContext, spec: ObjectSpec, hub: HubContact | HubCompany, remote_id: str, label: str
) -> bool:
    """The hub record matched by email or name is linked to another live CRM record: a duplicate in
    the CRM, logged and left alone (one hub record has one link per object)."""
    other = links.by_hub(ctx.conn_id, spec.name, spec.hub_kind.value, hub.id)
    if other is None or other.remote_id == remote_id or (other.last_values or {}).get(DELETED_KEY):
        return False
    ctx.log.add(
        LogSide.HUB,
        spec.name,
        Outcome.SKIPPED,
        hub_id=hub.id,
        remote_id=remote_id,
        label=label,
        reason=f"duplicate in the CRM: {label} is already linked to {other.remote_id}",
        code="duplicate",
    )
    return True


def _log_stored(
    ctx: RunContext,
    spec: ObjectSpec,
    hub_id: int,
    remote_id: str | None,
    label: str,
    merged: PullMerge,
    created: bool,
) -> None:
    for field_name, conflict in merged.conflicts.items():
        ctx.log.add(
            LogSide.HUB,
            spec.name,
            Outcome.CONFLICT,
            hub_id=hub_id,
            remote_id=remote_id,
            label=label,
            reason=f"{field_name} changed on both sides; {conflict['winner']} wins",
            diff={field_name: conflict},
        )
    reason = "; ".join(merged.errors) or None
    if created or merged.diff:
        outcome = Outcome.CREATED if created else Outcome.UPDATED
        ctx.log.add(
            LogSide.HUB,
            spec.name,
            outcome,
            hub_id=hub_id,
            remote_id=remote_id,
            label=label,
            reason=reason,
            diff=merged.diff,
        )
    elif reason:
        ctx.log.add(
            LogSide.HUB,
            spec.name,
            Outcome.SKIPPED,
            hub_id=hub_id,
            remote_id=remote_id,
            label=label,
            reason=reason,
        )
    else:
        ctx.log.add(LogSide.HUB, spec.name, Outcome.UNCHANGED)


def _company_seen(rules: list[FieldRule], item: Contact) -> str | None:
    """The company a CRM person record names, as push compares it: the related company's remote id,
    else its normalised name — from the relation, or from a field mapped to the hub's company name
    (a Salesforce Lead's ``Company``)."""
    if item.company is not None and (item.company.remote_id or company_key(item.company.name)):
        return str(item.company.remote_id or company_key(item.company.name))
    for rule in rules:
        if rule.hub_field == "company_name" and rule.pulls() and item.fields.get(rule.remote_field):
            return company_key(str(item.fields[rule.remote_field])) or None
    return None


def _merge(
    ctx: RunContext,
    rules: list[FieldRule],
    hub: HubContact | HubCompany,
    fields: dict[str, Any],
    remote_time: datetime | None,
    link: Link | None,
    created: bool,
) -> tuple[PullMerge, bool]:
    """Merge a CRM record's mapped fields into ``hub`` (the match ``key`` is handled by the caller).

    Returns the merge and whether the hub still holds changes the CRM must receive: its own unsent
    edits, or a conflict the hub won.
    """
    unsent = _hub_pending(link, hub, created)  # before the merge touches the record
    last = dict(link.last_values or {}) if link else {}
    last.pop(DELETED_KEY, None)
    key = "email" if isinstance(hub, HubContact) else "name"  # matched by the caller, never merged
    merged = merge_pull(
        [r for r in rules if r.hub_field != key],
        hub,
        fields,
        last,
        created=created,
        policy=ctx.conflict_policy,
        remote_time=remote_time,
        linked=link is not None,
    )
    pending = unsent or any(c["winner"] == "hub" for c in merged.conflicts.values())
    return merged, pending


def _stamp(hub: HubContact | HubCompany, merged: PullMerge, created: bool) -> datetime:
    """Set the change times of a pulled record and flush it; return the stamp used."""
    stamp = utcnow()
    if merged.diff or created:
        hub.updated_at = stamp
        if merged.changed_at:
            hub.field_changed_at = {**(hub.field_changed_at or {}), **merged.changed_at}
    if created:
        hub.created_at = stamp
    db.session.flush()
    return stamp


def _hub_pending(link: Link | None, hub: HubContact | HubCompany, created: bool) -> bool:
    """True when the hub record has changes the CRM has not received yet (they must still be pushed)."""
    if created:
        return False
    if link is None:
        return True  # matched an existing hub record: its own values may differ from the CRM's
    return hub.updated_at is not None and hub.updated_at > link.synced_at


def _synced_at(link: Link | None, pending: bool, stamp: datetime) -> datetime:
    # Pending hub changes keep the old sync time, so the record stays a push candidate.
    if not pending:
        return stamp
    return link.synced_at if link is not None else EPOCH


def _merge_email(
    ctx: RunContext,
    spec: ObjectSpec,
    hub: HubContact,
    item: Contact,
    diff: dict[str, list[Any]],
    last: dict[str, Any],
    changed_at: dict[str, str],
    *,
    created: bool,
) -> None:
    """An email changed in the CRM updates the linked hub contact (never a duplicate)."""
    remote_key = normalize_email(item.email)
    if not remote_key:
        return
    if created or hub.email_key == remote_key:
        last[EMAIL_KEY] = remote_key
        return
    if last.get(EMAIL_KEY) == remote_key:
        return  # the CRM still has the old email; the hub's new one is pushed
    clash = db.session.execute(
        select(HubContact.id).where(HubContact.email_key == remote_key, HubContact.id != hub.id)
    ).scalar_one_or_none()
    if clash is not None:
        ctx.log.note(f"{item.email}: email change not applied, hub contact #{clash} already has it")
        return
    diff["email"] = [hub.email, item.email]
    hub.set_email(item.email)
    changed_at["email"] = (item.modified_at or utcnow()).isoformat()
    last[EMAIL_KEY] = remote_key


def _attach_company(
    ctx: RunContext, hub: HubContact, company: Company | None, diff: dict[str, list[Any]]
) -> None:
    if company is None or not company.name:
        return
    row: HubCompany | None = None
    link_row: HubCompany | None = None
    spec = ctx.company_spec()
    if company.remote_id and spec is not None:
        link = links.by_remote(ctx.conn_id, spec.name, str(company.remote_id))
        row = link_row = db.session.get(HubCompany, link.hub_id) if link else None
    if row is None:
        row = db.session.execute(
            select(HubCompany).where(HubCompany.name_key == company_key(company.name)).limit(1)
        ).scalar_one_or_none()
    if row is None:
        row = HubCompany(
            name=company.name.strip(), name_key=company_key(company.name), custom={}, field_changed_at={}
        )
        db.session.add(row)
        db.session.flush()
    if hub.company_id == row.id:
        return
    if hub.company_id is not None and link_row is None:
        current = db.session.get(HubCompany, hub.company_id)
        if current is not None and current.name_key == row.name_key:
            return  # a namesake: keep the company the contact already has
    if hub.company_name != row.name:
        diff["company_name"] = [hub.company_name, row.name]
    else:
        diff["company_id"] = [hub.company_id, row.id]
    hub.company_id = row.id
    hub.company_name = row.name


__all__ = ["COMPANY_KEY", "PageCache", "pull_object", "store"]
