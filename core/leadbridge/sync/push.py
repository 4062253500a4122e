"""Push: send the hub's changed records to the CRM, companies before the contacts that need them.

Candidates are hub records never synced or changed since their link's ``synced_at``; each batch
(the object's ``batch_size``) is planned, committed, sent, and then its links, log and progress are
committed together. A crash after the vendor applied a batch re-sends at most that batch, which
the upsert contract makes harmless. What did not change since the last sync is not sent at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import aliased

from ..db import db, utcnow
from ..errors import RecordError, TransientError
from ..metadata import ObjectSpec
from ..models import Company as HubCompany
from ..models import Contact as HubContact
from ..models import Link
from ..types import Action, Company, Contact, Outcome, RecordResult
from . import links
from .context import RunContext
from .hubfields import company_key
from .merge import COMPANY_KEY, EMAIL_KEY, NAME_KEY, plan_push
from .pull import DELETED_KEY

#: Hub contact fields an action carries in ``Action.contact.extra`` (for title placeholders).
HUB_ACTION_FIELDS = ("first_name", "last_name", "email", "title", "phone")
PLACEHOLDER = re.compile(r"\{(company|first_name|last_name|email|title|phone)\}")


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
    company_key: str | None
    company_name: str | None
    company_remote_id: str | None = None
    result: RecordResult | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# -- companies -----------------------------------------------------------------------------------


def _company_cache_key(hub: HubContact) -> tuple[str, str] | None:
    if hub.company_id:
        return f"id:{hub.company_id}", hub.company_name or ""
    if hub.company_name and company_key(hub.company_name):
        return f"name:{company_key(hub.company_name)}", hub.company_name
    return None


def ensure_companies(
    ctx: RunContext, companies: list[tuple[str, HubCompany | None, str]], *, force: bool = False
) -> None:
    """Upsert the companies not yet known in this run; fills ``ctx.company_cache`` with their remote ids.

    :param companies: ``(cache key, hub company row or None, name)``.
    """
    spec = ctx.company_spec()
    todo: list[tuple[str, HubCompany | None, str, Link | None, dict[str, Any], dict[str, Any]]] = []
    seen: set[str] = set()
    rules = ctx.mappings(spec).items if spec is not None else []
    for key, row, name in companies:
        if key in ctx.company_cache or key in seen:
            continue
        seen.add(key)
        link = links.by_hub(ctx.conn_id, spec.name, "company", row.id) if (spec and row is not None) else None
        if link is not None and not force and row is not None and row.updated_at <= link.synced_at:
            ctx.company_cache[key] = link.remote_id
            continue
        last = dict(link.last_values or {}) if link else {}
        plan = (
            plan_push([r for r in rules if r.hub_field != "name"], row, last, create=link is None)
            if row
            else None
        )
        fields = plan.fields if plan else {}
        if link is not None and not fields and last.get(NAME_KEY) == company_key(name):
            ctx.company_cache[key] = link.remote_id
            if not ctx.dry_run:
                link.synced_at = row.updated_at if row is not None else link.synced_at
            continue
        todo.append((key, row, name, link, last, fields))
    if not todo:
        return
    if spec is None or not ctx.implements("upsert_company"):
        for key, *_ in todo:
            ctx.company_cache[key] = None  # the connector resolves companies by name itself
        return
    for start in range(0, len(todo), spec.batch_size):
        chunk = todo[start : start + spec.batch_size]
        payload = [
            Company(name=name, remote_id=link.remote_id if link else None, fields=dict(fields), ref=key)
            for key, _row, name, link, _last, fields in chunk
        ]
        if ctx.dry_run:
            for key, row, name, link, _last, _fields in chunk:
                ctx.company_cache[key] = link.remote_id if link else None
                ctx.log.add(
                    "crm",
                    spec.name,
                    Outcome.UPDATED if link else Outcome.CREATED,
                    hub_id=row.id if row else None,
                    label=name,
                    reason="dry run",
                )
            continue
        versions = {key: (row.id, row.updated_at) if row is not None else None for key, row, *_ in chunk}
        meta = {
            key: (name, last, fields, link.id if link else None)
            for key, _row, name, link, last, fields in chunk
        }
        db.session.commit()
        try:
            results: list[RecordResult] = ctx.call_write("upsert_company", companies=payload)
        except RecordError as exc:
            results = [
                RecordResult(Outcome.FAILED, ref=c.ref, reason=exc.message, code=exc.code) for c in payload
            ]
        for company, result in _pair(payload, results):
            key = company.ref or ""
            name, last, fields, link_id = meta[key]
            version = versions[key]
            if not result.ok or not result.remote_id:
                ctx.company_cache[key] = None
                ctx.log.add(
                    "crm",
                    spec.name,
                    Outcome.FAILED,
                    hub_id=version[0] if version else None,
                    label=name,
                    reason=result.reason or "no id returned",
                    code=result.code,
                )
                continue
            ctx.company_cache[key] = result.remote_id
            if version is not None:
                agreed = {**last, **fields, NAME_KEY: company_key(name)}
                link = (
                    db.session.get(Link, link_id)
                    if link_id
                    else links.by_remote(ctx.conn_id, spec.name, result.remote_id)
                )
                links.save(
                    link,
                    conn_id=ctx.conn_id,
                    object_type=spec.name,
                    kind="company",
                    hub_id=version[0],
                    remote_id=result.remote_id,
                    last=agreed,
                    synced_at=version[1],
                )
            ctx.log.add(
                "crm",
                spec.name,
                result.outcome,
                hub_id=version[0] if version else None,
                remote_id=result.remote_id,
                label=name,
                reason=result.reason,
            )
        ctx.log.checkpoint()


def push_companies(ctx: RunContext, spec: ObjectSpec) -> None:
    """Push hub companies changed since their last sync (contacts' companies are also ensured on the fly)."""
    link = aliased(Link)
    query = (
        select(HubCompany)
        .outerjoin(
            link,
            and_(
                link.connection_id == ctx.conn_id,
                link.object_type == spec.name,
                link.hub_kind == "company",
                link.hub_id == HubCompany.id,
            ),
        )
        .where(HubCompany.deleted_at.is_(None))
    )
    if not ctx.full:
        query = query.where(or_(link.id.is_(None), HubCompany.updated_at > link.synced_at))
    after: tuple[datetime, int] | None = None
    while True:
        q = query
        if after is not None:
            q = q.where(
                or_(
                    HubCompany.updated_at > after[0],
                    and_(HubCompany.updated_at == after[0], HubCompany.id > after[1]),
                )
            )
        rows = list(
            db.session.execute(
                q.order_by(HubCompany.updated_at, HubCompany.id).limit(spec.batch_size)
            ).scalars()
        )
        if not rows:
            return
        after = (rows[-1].updated_at, rows[-1].id)
        ensure_companies(ctx, [(f"id:{r.id}", r, r.name) for r in rows], force=ctx.full)
        ctx.log.advance(len(rows))
        ctx.log.checkpoint()


# -- contacts ------------------------------------------------------------------------------------


def _candidates(ctx: RunContext, spec: ObjectSpec, contact_ids: list[int] | None) -> Any:
    link = aliased(Link)
    query = (
        select(HubContact, link)
        .outerjoin(
            link,
            and_(
                link.connection_id == ctx.conn_id,
                link.object_type == spec.name,
                link.hub_kind == "contact",
                link.hub_id == HubContact.id,
            ),
        )
        .where(HubContact.deleted_at.is_(None))
    )
    if contact_ids is not None:
        query = query.where(HubContact.id.in_(contact_ids))
    elif not ctx.full:
        query = query.where(or_(link.id.is_(None), HubContact.updated_at > link.synced_at))
    return query


def count_candidates(ctx: RunContext, spec: ObjectSpec, contact_ids: list[int] | None = None) -> int:
    sub = _candidates(ctx, spec, contact_ids).subquery()
    return int(db.session.execute(select(func.count()).select_from(sub)).scalar_one())


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
    query = _candidates(ctx, spec, contact_ids)
    after: tuple[datetime, int] | None = None
    while True:
        q = query
        if after is not None:
            q = q.where(
                or_(
                    HubContact.updated_at > after[0],
                    and_(HubContact.updated_at == after[0], HubContact.id > after[1]),
                )
            )
        rows = db.session.execute(
            q.order_by(HubContact.updated_at, HubContact.id).limit(spec.batch_size)
        ).all()
        if not rows:
            return
        after = (rows[-1][0].updated_at, rows[-1][0].id)
        planned: list[tuple[HubContact, Link | None, Outgoing]] = []
        for hub, link in rows:
            ctx.log.advance()
            out = _plan_contact(ctx, spec, rules, labels, hub, link, force=force)
            if out is not None:
                planned.append((hub, link, out))
        ensure_companies(
            ctx,
            [
                (out.company_key, hub.company if hub.company_id else None, out.company_name or "")
                for hub, _link, out in planned
                if out.company_key
            ],
        )
        batch: list[Outgoing] = []
        for _hub, link, out in planned:
            if out.company_key:
                out.company_remote_id = ctx.company_cache.get(out.company_key)
            company_changed = out.company_key is not None and out.last.get(COMPANY_KEY) not in {
                out.company_remote_id,
                company_key(out.company_name),
            } - {None, ""}
            email_changed = link is not None and out.last.get(EMAIL_KEY) != out.email_key
            if (
                link is not None
                and not out.fields
                and not email_changed
                and not company_changed
                and not force
            ):
                if not ctx.dry_run:
                    link.synced_at = out.version  # nothing to send: zero writes
                ctx.log.add("crm", spec.name, Outcome.UNCHANGED)
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
            "crm",
            spec.name,
            Outcome.SKIPPED,
            hub_id=hub.id,
            remote_id=link.remote_id if link else None,
            label=label,
            reason="deleted in the CRM; not recreated",
        )
        return None
    if not hub.email_key and link is None:
        ctx.log.add("crm", spec.name, Outcome.SKIPPED, hub_id=hub.id, label=label, reason="no email")
        return None
    plan = plan_push(rules, hub, last, create=link is None, force=force, labels=labels)
    if plan.errors:
        ctx.log.add(
            "crm",
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
            "crm",
            spec.name,
            Outcome.SKIPPED,
            hub_id=hub.id,
            label=label,
            reason=f"missing required field {', '.join(plan.missing)}",
            code="required_field_missing",
        )
        return None
    company = _company_cache_key(hub)
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
        company_key=company[0] if company else None,
        company_name=company[1] if company else None,
        # The hub's own values, for action titles with {first_name}-style placeholders.
        extra={k: v for k in HUB_ACTION_FIELDS if (v := getattr(hub, k)) not in (None, "")},
    )


def _pair(payload: list[Any], results: list[RecordResult]) -> list[tuple[Any, RecordResult]]:
    """Match results to inputs by ``ref`` (falling back to position); a missing answer is a failure."""
    by_ref = {r.ref: r for r in results if r.ref is not None}
    paired = []
    for i, item in enumerate(payload):
        result = by_ref.get(item.ref) or (results[i] if i < len(results) and results[i].ref is None else None)
        paired.append(
            (item, result or RecordResult(Outcome.FAILED, ref=item.ref, reason="no result returned"))
        )
    return paired


def _send(ctx: RunContext, spec: ObjectSpec, batch: list[Outgoing], *, tolerant: bool = False) -> None:
    todo = [o for o in batch if o.result is None]
    if not todo:
        return
    if ctx.dry_run:
        for o in todo:
            outcome = Outcome.CREATED if o.link_id is None else Outcome.UPDATED
            ctx.log.add(
                "crm",
                spec.name,
                outcome,
                hub_id=o.hub_id,
                remote_id=o.remote_id,
                label=o.label,
                reason="dry run",
                diff=o.diff,
            )
        return
    payload = [
        Contact(
            email=o.email,
            remote_id=o.remote_id,
            fields=dict(o.fields),
            ref=str(o.hub_id),
            company=Company(name=o.company_name or "", remote_id=o.company_remote_id)
            if o.company_key
            else None,
        )
        for o in todo
    ]
    db.session.commit()  # nothing pending while the vendor works
    try:
        results: list[RecordResult] = ctx.call_write(
            "upsert_contact", object_type=spec.name, contacts=payload
        )
    except (RecordError, TransientError) as exc:
        if isinstance(exc, TransientError) and (not tolerant or type(exc) is not TransientError):
            raise  # a scheduled run stops and resumes from its checkpoint; quotas pause it
        # An explicit send: this batch failed, the other contacts still go.
        results = [
            RecordResult(Outcome.FAILED, ref=c.ref, reason=exc.message, code=exc.code) for c in payload
        ]
    outs = {str(o.hub_id): o for o in todo}
    remote_ids = [r.remote_id for r in results if r.ok and r.remote_id]
    existing = (
        {
            row.remote_id: row
            for row in db.session.execute(
                select(Link).where(
                    Link.connection_id == ctx.conn_id,
                    Link.object_type == spec.name,
                    Link.remote_id.in_(remote_ids),
                )
            ).scalars()
        }
        if remote_ids
        else {}
    )
    for contact, result in _pair(payload, results):
        o = outs[contact.ref or ""]
        o.result = result
        if not result.ok:
            ctx.log.add(
                "crm",
                spec.name,
                Outcome.FAILED,
                hub_id=o.hub_id,
                remote_id=o.remote_id,
                label=o.label,
                reason=result.reason,
                code=result.code,
            )
            continue
        remote_id = result.remote_id or o.remote_id
        if not remote_id:
            o.result = RecordResult(Outcome.FAILED, ref=contact.ref, reason="the connector returned no id")
            ctx.log.add(
                "crm", spec.name, Outcome.FAILED, hub_id=o.hub_id, label=o.label, reason=o.result.reason
            )
            continue
        holder = existing.get(remote_id)
        if holder is not None and holder.hub_id != o.hub_id and holder.id != o.link_id:
            o.result = RecordResult(Outcome.FAILED, ref=contact.ref, reason="duplicate")
            ctx.log.add(
                "crm",
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
        if o.company_key:
            agreed[COMPANY_KEY] = o.company_remote_id or company_key(o.company_name)
        link = db.session.get(Link, o.link_id) if o.link_id else holder
        links.save(
            link,
            conn_id=ctx.conn_id,
            object_type=spec.name,
            kind="contact",
            hub_id=o.hub_id,
            remote_id=remote_id,
            last=agreed,
            synced_at=o.version,
        )
        existing[remote_id] = link if link is not None else existing.get(remote_id)  # type: ignore[assignment]
        o.remote_id = remote_id
        outcome = (
            result.outcome
            if result.outcome in (Outcome.CREATED, Outcome.UPDATED, Outcome.UNCHANGED, Outcome.SKIPPED)
            else Outcome.UPDATED
        )
        ctx.log.add(
            "crm",
            spec.name,
            outcome,
            hub_id=o.hub_id,
            remote_id=remote_id,
            label=o.label,
            reason=result.reason,
            diff=o.diff if outcome in (Outcome.CREATED, Outcome.UPDATED) else None,
        )


# -- actions -------------------------------------------------------------------------------------


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
    """Record an action per contact in the CRM (events: never retried, so never duplicated)."""
    if not sent or not ctx.implements("create_action"):
        return
    for o in sent:
        company = Company(name=o.company_name or "", remote_id=o.company_remote_id) if o.company_key else None
        action = Action(
            title=action_title(ctx, o.company_name, o.extra),
            contact=Contact(email=o.email, remote_id=o.remote_id, ref=str(o.hub_id), extra=dict(o.extra)),
            company=company,
            occurred_at=utcnow(),
            ref=str(o.hub_id),
        )
        if ctx.dry_run:
            ctx.log.add(
                "crm", "action", Outcome.CREATED, hub_id=o.hub_id, label=action.title, reason="dry run"
            )
            continue
        db.session.commit()
        try:
            result: RecordResult = ctx.call("create_action", action=action)
        except (RecordError, TransientError) as exc:
            if isinstance(exc, TransientError) and type(exc) is not TransientError:
                raise
            # Actions are events, never re-sent (a lost answer must not make two): logged as failed.
            result = RecordResult(Outcome.FAILED, ref=action.ref, reason=exc.message, code=exc.code)
        ctx.log.add(
            "crm",
            "action",
            result.outcome if result.ok else Outcome.FAILED,
            hub_id=o.hub_id,
            remote_id=result.remote_id,
            label=action.title,
            reason=result.reason,
            code=result.code,
        )


# -- deletes -------------------------------------------------------------------------------------


def push_deletes(ctx: RunContext, spec: ObjectSpec) -> None:
    """Apply the to-CRM delete policy to contacts deleted in the hub (soft-deleted or gone)."""
    policy = ctx.delete_policy("to_crm")
    if policy == "ignore":
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
    if policy == "delete" and not (spec.supports_delete and ctx.implements("delete_contacts")):
        ctx.log.note(f"{spec.label}: the delete policy is 'delete' but the connector cannot delete")
        return
    unsub = next((r for r in ctx.mappings(spec).items if r.hub_field == "unsubscribed" and r.pushes()), None)
    if policy == "unsubscribe" and unsub is None:
        ctx.log.note(f"{spec.label}: the delete policy is 'unsubscribe' but no field maps 'unsubscribed'")
        return
    for start in range(0, len(rows), spec.batch_size):
        chunk = rows[start : start + spec.batch_size]
        meta = [(link.id, link.hub_id, link.remote_id, dict(link.last_values or {})) for link in chunk]
        if ctx.dry_run:
            for _lid, hub_id, remote_id, _last in meta:
                ctx.log.add(
                    "crm",
                    spec.name,
                    Outcome.DELETED if policy == "delete" else Outcome.UPDATED,
                    hub_id=hub_id,
                    remote_id=remote_id,
                    reason=f"deleted in the hub ({policy}); dry run",
                )
            continue
        db.session.commit()
        if policy == "delete":
            results: list[RecordResult] = ctx.call_write(
                "delete_contacts", object_type=spec.name, remote_ids=[m[2] for m in meta]
            )
        else:
            assert unsub is not None
            payload = [
                Contact(
                    email=m[3].get(EMAIL_KEY),
                    remote_id=m[2],
                    fields={unsub.remote_field: True},
                    ref=str(m[1]),
                )
                for m in meta
            ]
            results = ctx.call_write("upsert_contact", object_type=spec.name, contacts=payload)
        for (link_id, hub_id, remote_id, last), result in zip(meta, results, strict=False):
            if not result.ok:
                ctx.log.add(
                    "crm",
                    spec.name,
                    Outcome.FAILED,
                    hub_id=hub_id,
                    remote_id=remote_id,
                    reason=result.reason,
                    code=result.code,
                )
                continue
            link = db.session.get(Link, link_id)
            if link is not None:
                link.last_values = {**last, DELETED_KEY: True}
            ctx.log.add(
                "crm",
                spec.name,
                Outcome.DELETED if policy == "delete" else Outcome.UPDATED,
                hub_id=hub_id,
                remote_id=remote_id,
                reason=f"deleted in the hub ({policy})",
                diff={} if policy == "delete" else {"unsubscribed": [False, True]},
            )
        ctx.log.checkpoint()
