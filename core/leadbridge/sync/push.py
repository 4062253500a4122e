"""Push: send the hub's changed records to the CRM, companies before the contacts that need them.

Candidates are hub records never synced or changed since their link's ``synced_at``, read in
keyset order one batch (the object's ``batch_size``) at a time. Every write — companies, contacts,
actions, deletes — goes through one step, :func:`write`: dry run, commit before the call, the
call (idempotent writes re-sent once after a plain transient failure), results paired to inputs
by ``ref``, failures logged. A crash after the vendor applied a batch re-sends at most that batch,
which the upsert contract makes harmless. What did not change since the last sync is not sent.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Row, Select, and_, exists, func, or_, select
from sqlalchemy.orm import aliased

from ..db import db, utcnow
from ..errors import RecordError, TransientError, worth_resending
from ..metadata import ObjectSpec
from ..models import Company as HubCompany
from ..models import Contact as HubContact
from ..models import Link
from ..types import Action, Company, Contact, DeletePolicy, Direction, LogSide, Outcome, RecordResult
from . import links
from .context import RunContext
from .hubfields import company_key
from .merge import COMPANY_KEY, EMAIL_KEY, NAME_KEY, plan_push
from .pull import DELETED_KEY

#: Hub contact fields an action carries in ``Action.contact.extra`` (for title placeholders).
HUB_ACTION_FIELDS = ("first_name", "last_name", "email", "title", "phone")
#: hub facts every written contact carries in ``Contact.extra`` besides those (a marketing target
#: decides from them whether to subscribe or unsubscribe)
HUB_WRITE_FACTS = (*HUB_ACTION_FIELDS, "company_name", "consent", "unsubscribed")
PLACEHOLDER = re.compile(r"\{(company|first_name|last_name|email|title|phone)\}")
CRM = LogSide.CRM

T = TypeVar("T")


# -- the write step --------------------------------------------------------------------------------


@dataclass(slots=True)
class Write(Generic[T]):
    """One record to write: what the connector gets (``item``) and what the log says about it."""

    item: T
    ref: str
    hub_id: int | None
    label: str | None
    remote_id: str | None
    diff: dict[str, Any] | None = None


def write(
    ctx: RunContext,
    log_object: str,
    writes: Sequence[Write[T]],
    call: Callable[[list[T]], list[RecordResult]],
    *,
    hook: str,
    object_type: str | None,
    dry_outcome: Callable[[Write[T]], Outcome],
    dry_reason: str = "dry run",
    idempotent: bool = True,
    tolerant: bool = False,
) -> list[tuple[Write[T], RecordResult]]:
    """Write ``writes`` through ``call`` and return each with its result (failures already logged).

    :param hook: the connector hook ``call`` wraps (for the log).
    :param dry_outcome: what a dry run logs for a write (nothing is sent; results echo the link).
    :param idempotent: an upsert or delete, re-sent once after a plain transient failure; actions
        are events and are never re-sent (a lost answer must not make two).
    :param tolerant: a plain transient failure fails this batch only (explicit sends, actions);
        otherwise it stops the run, which resumes from its checkpoint. Rate limits and quotas
        always stop (pause) the run.
    """
    if not writes:
        return []
    if ctx.dry_run:
        for w in writes:
            ctx.log.add(
                CRM,
                log_object,
                dry_outcome(w),
                hub_id=w.hub_id,
                remote_id=w.remote_id,
                label=w.label,
                reason=dry_reason,
                diff=w.diff,
            )
        return [
            (w, RecordResult(dry_outcome(w), ref=w.ref, remote_id=w.remote_id, reason=dry_reason))
            for w in writes
        ]
    items = [w.item for w in writes]
    db.session.commit()  # nothing pending while the vendor works
    try:
        results = ctx.write(hook, object_type, call, items) if idempotent else call(items)
    except (RecordError, TransientError) as exc:
        if isinstance(exc, TransientError) and not (tolerant and worth_resending(exc)):
            raise
        results = [RecordResult(Outcome.FAILED, ref=w.ref, reason=exc.message, code=exc.code) for w in writes]
    paired = pair(writes, results)
    for w, result in paired:
        if not result.ok:
            ctx.log.add(
                CRM,
                log_object,
                Outcome.FAILED,
                hub_id=w.hub_id,
                remote_id=w.remote_id,
                label=w.label,
                reason=result.reason,
                code=result.code,
            )
    return paired


def pair(writes: Sequence[Write[T]], results: list[RecordResult]) -> list[tuple[Write[T], RecordResult]]:
    """Match results to writes by ``ref``, by position for a result whose ``ref`` names no write
    (none, or the connector's own: the contract also promises input order); a write the connector
    answered nothing for is a failure, never silently dropped."""
    refs = {w.ref for w in writes}
    by_ref = {r.ref: r for r in results if r.ref in refs}
    paired = []
    for i, w in enumerate(writes):
        positional = results[i] if i < len(results) and results[i].ref not in refs else None
        result = by_ref.get(w.ref) or positional
        paired.append((w, result or RecordResult(Outcome.FAILED, ref=w.ref, reason="no result returned")))
    return paired


def _dry_upsert(w: Write[Any]) -> Outcome:
    return Outcome.UPDATED if w.remote_id else Outcome.CREATED


# -- candidates ------------------------------------------------------------------------------------

Model = TypeVar("Model", HubContact, HubCompany)


def _changed(
    ctx: RunContext, model: type[Model], spec: ObjectSpec, kind: str, ids: list[int] | None = None
) -> Select[Model, Link]:
    """``(hub row, its link or None)`` for rows of ``model`` to push: never synced or changed since
    their last sync (every row on a full sync, exactly ``ids`` when given)."""
    link = aliased(Link)
    query = (
        select(model, link)
        .outerjoin(
            link,
            and_(
                link.connection_id == ctx.conn_id,
                link.object_type == spec.name,
                link.hub_kind == kind,
                link.hub_id == model.id,
            ),
        )
        .where(model.deleted_at.is_(None))
    )
    if spec.push_only_linked_to is not None:
        source = aliased(Link)
        query = query.where(
            exists().where(
                source.connection_id == ctx.conn_id,
                source.object_type == spec.push_only_linked_to,
                source.hub_kind == kind,
                source.hub_id == model.id,
            )
        )
    if spec.needs_consent and model is HubContact:
        consented = and_(HubContact.consent != "none", HubContact.unsubscribed.is_(False))
        query = query.where(or_(consented, link.id.is_not(None)))
    if ids is not None:
        return query.where(model.id.in_(ids))
    if not ctx.full:
        query = query.where(or_(link.id.is_(None), model.updated_at > link.synced_at))
    return query


def _batches(
    query: Select[Any, Link], model: type[Model], size: int
) -> Iterator[list[Row[Any, Link | None]]]:
    """The query's rows in ``(updated_at, id)`` keyset order, ``size`` at a time (rows written
    meanwhile move behind the keyset instead of being read twice)."""
    after: tuple[datetime, int] | None = None
    while True:
        q = query
        if after is not None:
            q = q.where(
                or_(model.updated_at > after[0], and_(model.updated_at == after[0], model.id > after[1]))
            )
        rows = list(db.session.execute(q.order_by(model.updated_at, model.id).limit(size)).all())
        if not rows:
            return
        # Taken before the batch is written: a row touched meanwhile must not move the keyset past others.
        after = (rows[-1][0].updated_at, rows[-1][0].id)
        yield rows


def count_candidates(ctx: RunContext, spec: ObjectSpec, contact_ids: list[int] | None = None) -> int:
    sub = _changed(ctx, HubContact, spec, "contact", contact_ids).subquery()
    return int(db.session.execute(select(func.count()).select_from(sub)).scalar_one())


# -- companies -------------------------------------------------------------------------------------


@dataclass(slots=True)
class OutgoingCompany:
    """One company a run needs at the CRM: a hub company, or only a name a contact gives."""

    key: str  # ``id:<hub id>`` or ``name:<key>``: the run's company cache key
    name: str
    row: HubCompany | None


def _company_of(hub: HubContact) -> OutgoingCompany | None:
    if hub.company_id:
        return OutgoingCompany(f"id:{hub.company_id}", hub.company_name or "", hub.company)
    if hub.company_name and company_key(hub.company_name):
        return OutgoingCompany(f"name:{company_key(hub.company_name)}", hub.company_name, None)
    return None


def ensure_companies(ctx: RunContext, companies: Sequence[OutgoingCompany], *, force: bool = False) -> None:
    """Upsert the companies not yet known in this run; fills ``ctx.company_cache`` with their remote ids."""
    spec = ctx.company_spec()
    rules = [r for r in ctx.mappings(spec).items if r.hub_field != "name"] if spec is not None else []
    todo: list[Write[Company]] = []
    state: dict[str, tuple[OutgoingCompany, Link | None, dict[str, Any], dict[str, Any]]] = {}
    for c in companies:
        if c.key in ctx.company_cache or c.key in state:
            continue
        link = links.by_hub(ctx.conn_id, spec.name, "company", c.row.id) if spec and c.row else None
        if link is not None and not force and c.row is not None and c.row.updated_at <= link.synced_at:
            ctx.company_cache[c.key] = link.remote_id
            continue
        last = dict(link.last_values or {}) if link else {}
        fields = plan_push(rules, c.row, last, create=link is None).fields if c.row else {}
        if link is not None and not fields and last.get(NAME_KEY) == company_key(c.name):
            ctx.company_cache[c.key] = link.remote_id
            if not ctx.dry_run and c.row is not None:
                link.synced_at = c.row.updated_at
            continue
        remote_id = link.remote_id if link else None
        state[c.key] = (c, link, last, fields)
        item = Company(name=c.name, remote_id=remote_id, fields=dict(fields), ref=c.key)
        todo.append(Write(item, c.key, c.row.id if c.row else None, c.name, remote_id))
    if not todo:
        return
    if spec is None or not ctx.implements("upsert_company"):
        for w in todo:
            ctx.company_cache[w.ref] = None  # the connector resolves companies by name itself
        return
    versions = {w.ref: row.updated_at for w in todo if (row := state[w.ref][0].row) is not None}
    link_ids = {w.ref: link.id for w in todo if (link := state[w.ref][1]) is not None}
    for start in range(0, len(todo), spec.batch_size):
        chunk = todo[start : start + spec.batch_size]
        done = write(
            ctx,
            spec.name,
            chunk,
            lambda items: ctx.hooks.upsert_company(ctx.client, items),
            hook="upsert_company",
            object_type=spec.name,
            dry_outcome=_dry_upsert,
        )
        for w, result in done:
            if ctx.dry_run or not result.ok or not result.remote_id:
                ctx.company_cache[w.ref] = result.remote_id if ctx.dry_run else None
                if not ctx.dry_run and result.ok:
                    ctx.log.add(
                        CRM,
                        spec.name,
                        Outcome.FAILED,
                        hub_id=w.hub_id,
                        label=w.label,
                        reason="no id returned",
                    )
                continue
            ctx.company_cache[w.ref] = result.remote_id
            c, _link, last, fields = state[w.ref]
            if w.hub_id is not None:
                link_id = link_ids.get(w.ref)
                links.save(
                    db.session.get(Link, link_id)
                    if link_id
                    else links.by_remote(ctx.conn_id, spec.name, result.remote_id),
                    conn_id=ctx.conn_id,
                    object_type=spec.name,
                    kind="company",
                    hub_id=w.hub_id,
                    remote_id=result.remote_id,
                    last={**last, **fields, NAME_KEY: company_key(c.name)},
                    synced_at=versions[w.ref],
                )
            ctx.log.add(
                CRM,
                spec.name,
                result.outcome,
                hub_id=w.hub_id,
                remote_id=result.remote_id,
                label=w.label,
                reason=result.reason,
            )
        ctx.log.checkpoint()


def push_companies(ctx: RunContext, spec: ObjectSpec) -> None:
    """Push hub companies changed since their last sync (contacts' companies are also ensured on the fly)."""
    for rows in _batches(_changed(ctx, HubCompany, spec, "company"), HubCompany, spec.batch_size):
        ensure_companies(ctx, [OutgoingCompany(f"id:{r.id}", r.name, r) for r, _link in rows], force=ctx.full)
        ctx.log.advance(len(rows))
        ctx.log.checkpoint()


# -- contacts --------------------------------------------------------------------------------------


@dataclass(slots=True)
class Outgoing:
    """One planned contact write, with everything needed after the commit (no lazy loads)."""

    hub_id: int
    label: str
    version: datetime
    link_id: int | None
    remote_id: str | None
    last: dict[str, Any]
    fields: dict[str, Any]
    diff: dict[str, list[Any]]
    email: str | None
    email_key: str | None
    company: OutgoingCompany | None
    company_remote_id: str | None = None
    result: RecordResult | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def company_name(self) -> str | None:
        return self.company.name if self.company else None

    def company_changed(self) -> bool:
        """The CRM record names another company than the one agreed at the last sync."""
        if self.company is None:
            return False
        agreed = {self.company_remote_id, company_key(self.company.name)} - {None, ""}
        return self.last.get(COMPANY_KEY) not in agreed

    def as_contact(self) -> Contact:
        company = Company(name=self.company.name, remote_id=self.company_remote_id) if self.company else None
        return Contact(
            email=self.email,
            remote_id=self.remote_id,
            fields=dict(self.fields),
            ref=str(self.hub_id),
            company=company,
            extra=dict(self.extra),
        )


def push_contacts(
    ctx: RunContext,
    spec: ObjectSpec,
    *,
    contact_ids: list[int] | None = None,
    force: bool = False,
    with_action: bool = False,
) -> None:
    """Push changed hub contacts of ``spec`` (or exactly ``contact_ids``) in batches."""
    rules = [r for r in ctx.mappings(spec).items if r.hub_field != "email"]
    labels = {f.name: f.label for f in ctx.mappings(spec).remote.values()}
    for rows in _batches(
        _changed(ctx, HubContact, spec, "contact", contact_ids), HubContact, spec.batch_size
    ):
        planned: list[tuple[Link | None, Outgoing]] = []
        for hub, found in rows:
            ctx.log.advance()
            out = _plan_contact(ctx, spec, rules, labels, hub, found, force=force)
            if out is not None:
                planned.append((found, out))
        ensure_companies(ctx, [out.company for _link, out in planned if out.company])
        batch: list[Outgoing] = []
        for link, out in planned:
            if out.company:
                out.company_remote_id = ctx.company_cache.get(out.company.key)
            email_changed = link is not None and out.last.get(EMAIL_KEY) != out.email_key
            company_changed = out.company_changed()
            if (
                link is not None
                and not out.fields
                and not email_changed
                and not company_changed
                and not force
            ):
                if not ctx.dry_run:
                    link.synced_at = out.version  # nothing to send: zero writes
                ctx.log.add(CRM, spec.name, Outcome.UNCHANGED)
                if with_action:
                    out.result = RecordResult(Outcome.UNCHANGED, ref=str(out.hub_id), remote_id=out.remote_id)
                    batch.append(out)
                continue
            if email_changed:
                out.diff["email"] = [out.last.get(EMAIL_KEY), out.email]
            if company_changed:
                out.diff["company"] = [out.last.get(COMPANY_KEY), out.company_name]
            batch.append(out)
        _send(ctx, spec, batch, tolerant=contact_ids is not None)
        if with_action:
            create_actions(ctx, [o for o in batch if o.result is not None and o.result.ok])
        ctx.log.checkpoint()


def _plan_contact(
    ctx: RunContext,
    spec: ObjectSpec,
    rules: list[Any],
    labels: dict[str, str],
    hub: HubContact,
    link: Link | None,
    *,
    force: bool,
) -> Outgoing | None:
    label = hub.email or hub.full_name
    last = dict(link.last_values or {}) if link else {}
    if last.get(DELETED_KEY):
        if not ctx.dry_run and link is not None:
            link.synced_at = hub.updated_at
        ctx.log.add(
            CRM,
            spec.name,
            Outcome.SKIPPED,
            hub_id=hub.id,
            remote_id=link.remote_id if link else None,
            label=label,
            reason="deleted in the CRM; not recreated",
        )
        return None
    if not hub.email_key and link is None:
        ctx.log.add(CRM, spec.name, Outcome.SKIPPED, hub_id=hub.id, label=label, reason="no email")
        return None
    plan = plan_push(rules, hub, last, create=link is None, force=force, labels=labels)
    if plan.errors:
        ctx.log.add(
            CRM,
            spec.name,
            Outcome.FAILED,
            hub_id=hub.id,
            label=label,
            reason="; ".join(plan.errors),
            code=plan.code,
        )
        return None
    if plan.missing:
        ctx.log.add(
            CRM,
            spec.name,
            Outcome.SKIPPED,
            hub_id=hub.id,
            label=label,
            reason=f"missing required field {', '.join(plan.missing)}",
            code="required_field_missing",
        )
        return None
    return Outgoing(
        hub_id=hub.id,
        label=label,
        version=hub.updated_at,
        link_id=link.id if link else None,
        remote_id=link.remote_id if link else None,
        last=last,
        fields=plan.fields,
        diff=plan.diff,
        email=hub.email,
        email_key=hub.email_key,
        company=_company_of(hub),
        # The hub's own values, for action titles with {first_name}-style placeholders.
        extra={k: v for k in HUB_WRITE_FACTS if (v := getattr(hub, k)) not in (None, "")},
    )


def _send(ctx: RunContext, spec: ObjectSpec, batch: list[Outgoing], *, tolerant: bool = False) -> None:
    todo = [o for o in batch if o.result is None]
    writes = [Write(o.as_contact(), str(o.hub_id), o.hub_id, o.label, o.remote_id, o.diff) for o in todo]
    hooks = ctx.hooks
    done = write(
        ctx,
        spec.name,
        writes,
        lambda items: hooks.upsert_contact(ctx.client, spec.name, items),
        hook="upsert_contact",
        object_type=spec.name,
        dry_outcome=_dry_upsert,
        tolerant=tolerant,
    )
    if ctx.dry_run:
        return
    outs = {str(o.hub_id): o for o in todo}
    remote_ids = [r.remote_id for _w, r in done if r.ok and r.remote_id]
    existing = links.by_remote_ids(ctx.conn_id, spec.name, remote_ids)
    for w, result in done:
        o = outs[w.ref]
        o.result = result
        if not result.ok:
            continue
        remote_id = result.remote_id or o.remote_id
        if not remote_id:
            o.result = RecordResult(Outcome.FAILED, ref=w.ref, reason="the connector returned no id")
            ctx.log.add(
                CRM, spec.name, Outcome.FAILED, hub_id=o.hub_id, label=o.label, reason=o.result.reason
            )
            continue
        holder = existing.get(remote_id)
        if holder is not None and holder.hub_id != o.hub_id and holder.id != o.link_id:
            o.result = RecordResult(Outcome.FAILED, ref=w.ref, reason="duplicate")
            ctx.log.add(
                CRM,
                spec.name,
                Outcome.FAILED,
                hub_id=o.hub_id,
                remote_id=remote_id,
                label=o.label,
                reason=f"the CRM matched record {remote_id}, already linked to hub contact #{holder.hub_id}",
                code="duplicate",
            )
            continue
        agreed = {**o.last, **o.fields, EMAIL_KEY: o.email_key}
        if o.company:
            agreed[COMPANY_KEY] = o.company_remote_id or company_key(o.company.name)
        link = db.session.get(Link, o.link_id) if o.link_id else holder
        saved = links.save(
            link,
            conn_id=ctx.conn_id,
            object_type=spec.name,
            kind="contact",
            hub_id=o.hub_id,
            remote_id=remote_id,
            last=agreed,
            synced_at=o.version,
        )
        existing[remote_id] = saved
        o.remote_id = remote_id
        sent = (Outcome.CREATED, Outcome.UPDATED, Outcome.UNCHANGED, Outcome.SKIPPED)
        outcome = result.outcome if result.outcome in sent else Outcome.UPDATED
        ctx.log.add(
            CRM,
            spec.name,
            outcome,
            hub_id=o.hub_id,
            remote_id=remote_id,
            label=o.label,
            reason=result.reason,
            diff=o.diff if outcome in (Outcome.CREATED, Outcome.UPDATED) else None,
        )


# -- actions ---------------------------------------------------------------------------------------


DEFAULT_ACTION_TITLE = "Sent from leadbridge"


def action_title(ctx: RunContext, company_name: str | None, values: dict[str, Any] | None = None) -> str:
    """The connection's ``action_title`` (else the connector's declared default) with ``{company}``,
    ``{first_name}``, ``{last_name}``, ``{email}``, ``{title}`` (job title) and ``{phone}`` filled
    once, from the hub contact. Connectors use :attr:`Action.title` as it is: filling it again
    made "leadbridge: leadbridge: CTO". An empty placeholder leaves no "()" or dangling separator."""
    declared = next((s.default for s in ctx.info.settings if s.name == "action_title"), None)
    template = str(ctx.view.setting("action_title") or declared or DEFAULT_ACTION_TITLE)
    hub = {k: "" if v is None else str(v) for k, v in (values or {}).items()}
    filled = {"company": company_name or "", **hub}
    title = PLACEHOLDER.sub(lambda m: filled.get(m.group(1), ""), template)
    title = re.sub(r"\(\s*\)|<\s*>", "", title)
    return " ".join(title.split()).strip(" -:,") or DEFAULT_ACTION_TITLE


def create_actions(ctx: RunContext, sent: list[Outgoing]) -> None:
    """Record an action per contact in the CRM (events: never re-sent, so never duplicated; a
    failed one is logged as failed)."""
    if not sent or not ctx.implements("create_action"):
        return
    hooks = ctx.hooks
    for o in sent:
        company = Company(name=o.company.name, remote_id=o.company_remote_id) if o.company else None
        action = Action(
            title=action_title(ctx, o.company_name, o.extra),
            contact=Contact(email=o.email, remote_id=o.remote_id, ref=str(o.hub_id), extra=dict(o.extra)),
            company=company,
            occurred_at=utcnow(),
            ref=str(o.hub_id),
        )
        one = [Write(action, str(o.hub_id), o.hub_id, action.title, None)]
        for w, result in write(
            ctx,
            "action",
            one,
            lambda items: [hooks.create_action(ctx.client, items[0])],
            hook="create_action",
            object_type=None,
            dry_outcome=lambda w: Outcome.CREATED,
            idempotent=False,
            tolerant=True,
        ):
            if result.ok and not ctx.dry_run:
                ctx.log.add(
                    CRM,
                    "action",
                    result.outcome,
                    hub_id=w.hub_id,
                    remote_id=result.remote_id,
                    label=w.label,
                    reason=result.reason,
                    code=result.code,
                )


# -- deletes ---------------------------------------------------------------------------------------


def push_deletes(ctx: RunContext, spec: ObjectSpec) -> None:
    """Apply the to-CRM delete policy to contacts deleted in the hub (soft-deleted or gone)."""
    policy = ctx.delete_policy(Direction.TO_CRM)
    if policy is DeletePolicy.IGNORE:
        return
    rows = [
        link
        for (link,) in db.session.execute(
            select(Link)
            .outerjoin(HubContact, HubContact.id == Link.hub_id)
            .where(
                Link.connection_id == ctx.conn_id,
                Link.object_type == spec.name,
                Link.hub_kind == "contact",
                or_(HubContact.id.is_(None), HubContact.deleted_at.is_not(None)),
            )
            .order_by(Link.id)
        ).all()
        if not (link.last_values or {}).get(DELETED_KEY)
    ]
    if not rows:
        return
    if policy is DeletePolicy.DELETE and not (spec.supports_delete and ctx.implements("delete_contacts")):
        ctx.log.note(f"{spec.label}: the delete policy is 'delete' but the connector cannot delete")
        return
    unsub = next((r for r in ctx.mappings(spec).items if r.hub_field == "unsubscribed" and r.pushes()), None)
    if policy is DeletePolicy.UNSUBSCRIBE and unsub is None:
        ctx.log.note(f"{spec.label}: the delete policy is 'unsubscribe' but no field maps 'unsubscribed'")
        return
    outcome = Outcome.DELETED if policy is DeletePolicy.DELETE else Outcome.UPDATED
    hooks = ctx.hooks
    deleting = policy is DeletePolicy.DELETE
    call: Callable[[list[Any]], list[RecordResult]] = (
        (lambda ids: hooks.delete_contacts(ctx.client, spec.name, ids))
        if deleting
        else (lambda items: hooks.upsert_contact(ctx.client, spec.name, items))
    )

    def planned(link: Link) -> Write[Any]:
        if deleting:
            # The hook gets bare ids: its results name the remote id as ``ref`` (or none: by position).
            return Write(link.remote_id, link.remote_id, link.hub_id, None, link.remote_id)
        assert unsub is not None
        email = (link.last_values or {}).get(EMAIL_KEY)
        ref = str(link.hub_id)
        item = Contact(email=email, remote_id=link.remote_id, fields={unsub.remote_field: True}, ref=ref)
        return Write(item, ref, link.hub_id, None, link.remote_id)

    for start in range(0, len(rows), spec.batch_size):
        chunk = rows[start : start + spec.batch_size]
        writes = [planned(link) for link in chunk]
        lasts = {
            w.ref: (link.id, dict(link.last_values or {})) for w, link in zip(writes, chunk, strict=True)
        }
        done = write(
            ctx,
            spec.name,
            writes,
            call,
            hook="delete_contacts" if deleting else "upsert_contact",
            object_type=spec.name,
            dry_outcome=lambda w: outcome,
            dry_reason=f"deleted in the hub ({policy}); dry run",
        )
        if ctx.dry_run:
            continue
        for w, result in done:
            if not result.ok:
                continue
            link_id, last = lasts[w.ref]
            row = db.session.get(Link, link_id)
            if row is not None:
                row.last_values = {**last, DELETED_KEY: True}
            ctx.log.add(
                CRM,
                spec.name,
                outcome,
                hub_id=w.hub_id,
                remote_id=w.remote_id,
                reason=f"deleted in the hub ({policy})",
                diff={} if policy is DeletePolicy.DELETE else {"unsubscribed": [False, True]},
            )
        ctx.log.checkpoint()
