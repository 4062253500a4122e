""" "Import from <connector>": page a vendor campaign's members into a hub list."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ..db import db
from ..errors import ConfigError
from ..models import ContactList, ListMembership
from ..types import HubKind, LogSide, Outcome
from .context import MAX_PAGES, RunContext
from .pull import store


def import_members(ctx: RunContext, details: dict[str, Any]) -> None:
    """Store every member (skipping those without email) and put them in the list with ``status``."""
    list_id = int(details["list_id"])
    campaign_id = str(details["campaign_id"])
    status = str(details.get("status") or "subscribed")
    if db.session.get(ContactList, list_id) is None:
        raise ConfigError(f"no list #{list_id}")
    wanted = details.get("object_type")
    specs = [s for s in ctx.info.objects_of(HubKind.CONTACT) if not wanted or s.name == wanted]
    if not specs:
        raise ConfigError(f"{ctx.info.display_name} has no person object {wanted!r}")
    spec = specs[0]
    rules = ctx.mappings(spec).items
    source = f"import:{ctx.info.name}:{ctx.conn_id}"
    page_cursor: str | None = None
    seen: set[str] = set()
    for _ in range(MAX_PAGES):
        db.session.commit()
        page = ctx.hooks.fetch_campaign_members(ctx.client, campaign_id, page_cursor)
        for member in page.items:
            ctx.log.advance()
            if not member.email or not member.email.strip():
                ctx.log.add(
                    LogSide.HUB,
                    spec.name,
                    Outcome.SKIPPED,
                    remote_id=member.remote_id,
                    label=member.remote_id,
                    reason="no email",
                )
                continue
            hub = store(ctx, spec, rules, member, force=True)
            if hub is None:
                continue
            db.session.flush()
            membership = db.session.execute(
                select(ListMembership).where(
                    ListMembership.list_id == list_id, ListMembership.contact_id == hub.id
                )
            ).scalar_one_or_none()
            if membership is None:
                db.session.add(
                    ListMembership(list_id=list_id, contact_id=hub.id, status=status, source=source)
                )
            elif membership.status != status:
                membership.status = status
        if ctx.dry_run:
            db.session.rollback()
        ctx.log.checkpoint()
        nxt = page.next_cursor
        if nxt is None or nxt in seen:
            return
        seen.add(nxt)
        page_cursor = nxt
