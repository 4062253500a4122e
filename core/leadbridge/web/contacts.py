"""Contacts, companies and lists: search, filters, keyset pages, "Send to" and "Import from"."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import Select, and_, exists, func, or_, select

from ..connections import client_for, view
from ..db import db
from ..errors import LeadbridgeError
from ..models import Company, Connection, Contact, ContactList, Link, ListMembership, SyncRecord, SyncRun
from ..state import get_plugins
from ..sync import start_import, start_send
from ..types import HubKind
from . import jobs
from .util import connection_info, get_or_404, int_arg

bp = Blueprint("contacts", __name__)

PAGE = 50
#: The upper bound of a prefix range: prefix <= value < prefix + HIGH uses a plain b-tree index.
HIGH = "\U0010ffff"


def prefix_range(column: Any, prefix: str) -> Any:
    return and_(column >= prefix, column < prefix + HIGH)


def contact_search(q: str) -> Any:
    """Email or name prefix, through indexed ranges (fast at 100,000 contacts)."""
    q = q.strip()
    low = q.lower()
    terms = [prefix_range(Contact.email_key, low)]
    if "@" not in q:
        for variant in {q, q[:1].upper() + q[1:], low}:
            terms.append(prefix_range(Contact.last_name, variant))
            terms.append(prefix_range(Contact.first_name, variant))
    return or_(*terms)


def filtered_contacts(args: Any) -> tuple[Select[tuple[Contact]], dict[str, Any]]:
    query = select(Contact).where(Contact.deleted_at.is_(None))
    f = {
        "q": args.get("q", "").strip(),
        "status": args.get("status", ""),
        "list": int_arg("list"),
        "company": int_arg("company"),
    }
    if f["q"]:
        query = query.where(contact_search(f["q"]))
    if f["status"]:
        query = query.where(Contact.status == f["status"])
    if f["company"]:
        query = query.where(Contact.company_id == f["company"])
    if f["list"]:
        query = query.where(
            exists().where(ListMembership.contact_id == Contact.id, ListMembership.list_id == f["list"])
        )
    return query, f


def keyset(
    query: Select[Any], id_col: Any, *, searching: bool = False
) -> tuple[list[Any], int | None, int | None]:
    """One page of ``query`` newest first, with ``before``/``after`` cursors on the id (no OFFSET).

    ``searching``: the filter is a selective indexed search. Sorting by ``id + 0`` keeps SQLite from
    walking the primary key newest-first and testing every row (slow when few rows match); it then
    uses the search indexes and sorts only the matches.
    """
    before, after = int_arg("before"), int_arg("after")
    sort_key = id_col + 0 if searching else id_col
    if after:
        rows = list(
            db.session.execute(query.where(id_col > after).order_by(sort_key.asc()).limit(PAGE + 1)).scalars()
        )
        has_newer = len(rows) > PAGE
        rows = list(reversed(rows[:PAGE]))
        older = rows[-1].id if rows else None
        return rows, (rows[0].id if has_newer and rows else None), older
    if before:
        query = query.where(id_col < before)
    rows = list(db.session.execute(query.order_by(sort_key.desc()).limit(PAGE + 1)).scalars())
    has_older = len(rows) > PAGE
    rows = rows[:PAGE]
    return rows, (rows[0].id if before and rows else None), (rows[-1].id if has_older and rows else None)


CACHE_KEY = "leadbridge.contacts_page_cache"
#: Seconds the contact total and status options may be stale (each costs a scan at 100,000 contacts).
CACHE_SECONDS = 15.0


def cached(name: str, compute: Any) -> Any:
    """A value shared by the requests of this process for :data:`CACHE_SECONDS`."""
    store: dict[str, tuple[float, Any]] = current_app.extensions.setdefault(CACHE_KEY, {})
    hit = store.get(name)
    now = time.monotonic()
    if hit is not None and now - hit[0] < float(current_app.config.get("PANEL_CACHE_SECONDS", CACHE_SECONDS)):
        return hit[1]
    value = compute()
    store[name] = (now, value)
    return value


def send_targets() -> list[Connection]:
    """Enabled connections whose connector can write contacts ("Send to <connector>")."""
    plugins = get_plugins()
    out = []
    for conn in db.session.execute(
        select(Connection).where(Connection.enabled.is_(True)).order_by(Connection.name)
    ).scalars():
        if plugins.implements(conn.plugin, "upsert_contact"):
            out.append(conn)
    return out


@bp.get("/contacts")
def index() -> ResponseReturnValue:
    query, f = filtered_contacts(request.args)
    contacts, newer, older = keyset(query, Contact.id, searching=bool(f["q"]))
    statuses = cached(
        "statuses",
        lambda: [
            s
            for (s,) in db.session.execute(
                select(Contact.status)
                .where(Contact.status.is_not(None))
                .distinct()
                .order_by(Contact.status)
                .limit(50)
            )
        ],
    )
    lists = list(db.session.execute(select(ContactList).order_by(ContactList.name)).scalars())
    company = db.session.get(Company, f["company"]) if f["company"] else None
    total = None
    if not any(f.values()):
        total = cached(
            "total",
            lambda: db.session.execute(
                select(func.count(Contact.id)).where(Contact.deleted_at.is_(None))
            ).scalar_one(),
        )
    return render_template(
        "contacts/index.html",
        contacts=contacts,
        newer=newer,
        older=older,
        f=f,
        statuses=statuses,
        lists=lists,
        company=company,
        total=total,
        targets=send_targets(),
    )


@bp.get("/contacts/<int:contact_id>")
def show(contact_id: int) -> ResponseReturnValue:
    contact = get_or_404(Contact, contact_id)
    links = list(
        db.session.execute(
            select(Link, Connection)
            .join(Connection, Connection.id == Link.connection_id)
            .where(Link.hub_kind == HubKind.CONTACT.value, Link.hub_id == contact.id)
        ).all()
    )
    contact_objects = _object_names(HubKind.CONTACT)
    history = list(
        db.session.execute(
            select(SyncRecord, SyncRun)
            .join(SyncRun, SyncRun.id == SyncRecord.run_id)
            .where(SyncRecord.hub_id == contact.id, SyncRecord.object_type.in_(contact_objects))
            .order_by(SyncRecord.id.desc())
            .limit(50)
        ).all()
    )
    memberships = list(
        db.session.execute(
            select(ListMembership, ContactList)
            .join(ContactList)
            .where(ListMembership.contact_id == contact.id)
        ).all()
    )
    return render_template(
        "contacts/show.html",
        contact=contact,
        links=links,
        history=history,
        memberships=memberships,
        targets=send_targets(),
    )


def _object_names(kind: HubKind) -> list[str]:
    names: set[str] = set()
    for info in get_plugins().loaded().values():
        names.update(o.name for o in info.objects if o.hub_kind is kind)
    return sorted(names) or ["contact"]


@bp.post("/contacts/send")
def send() -> ResponseReturnValue:
    """ "Send to <connector>" for the checked contacts (or one contact's page)."""
    conn = get_or_404(Connection, int_arg("connection_id"))
    ids = sorted({int(v) for v in request.form.getlist("contact_ids") if v.isdigit()})
    back = request.form.get("back", "")
    back = back if back.startswith("/") and not back.startswith("//") else url_for("contacts.index")
    if not ids:
        flash("Select at least one contact.", "warning")
        return redirect(back)
    if not conn.enabled:
        flash(f"{conn.name} is disabled.", "error")
        return redirect(back)
    db.session.commit()
    try:
        run_id = start_send(conn.id, ids, trigger="send", with_action=True)
    except LeadbridgeError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(back)
    return redirect(url_for("contacts.job", job_id=run_id, back=back))


@bp.get("/jobs/<int:job_id>")
def job(job_id: int) -> ResponseReturnValue:
    """A "Send to"/"Import from" run's progress and outcome, read from its row (polled by htmx)."""
    run = get_or_404(SyncRun, job_id)
    if (run.details or {}).get("mode") not in ("send", "import"):
        abort(404)
    back = request.args.get("back", "")
    back = back if back.startswith("/") and not back.startswith("//") else url_for("contacts.index")
    list_id = (run.details or {}).get("list_id")
    lst = db.session.get(ContactList, int(list_id)) if list_id else None
    found = jobs.Job(
        run, jobs.label_for(run, db.session.get(Connection, run.connection_id), lst and lst.name), back
    )
    template = "contacts/_job.html" if request.headers.get("HX-Request") else "contacts/job.html"
    return render_template(template, job=found, run=run)


# -- companies -------------------------------------------------------------------------------


@bp.get("/companies")
def companies() -> ResponseReturnValue:
    q = request.args.get("q", "").strip()
    query = select(Company).where(Company.deleted_at.is_(None))
    if q:
        query = query.where(prefix_range(Company.name_key, " ".join(q.split()).lower()))
    rows, newer, older = keyset(query, Company.id)
    counts = (
        dict(
            db.session.execute(
                select(Contact.company_id, func.count(Contact.id))
                .where(Contact.company_id.in_([c.id for c in rows]), Contact.deleted_at.is_(None))
                .group_by(Contact.company_id)
            ).all()
        )
        if rows
        else {}
    )
    return render_template(
        "contacts/companies.html", companies=rows, newer=newer, older=older, q=q, counts=counts
    )


@bp.get("/companies/<int:company_id>")
def company(company_id: int) -> ResponseReturnValue:
    row = get_or_404(Company, company_id)
    return redirect(url_for("contacts.index", company=row.id))


# -- lists -------------------------------------------------------------------------------------


def import_sources() -> list[Connection]:
    plugins = get_plugins()
    return [
        c
        for c in db.session.execute(
            select(Connection).where(Connection.enabled.is_(True)).order_by(Connection.name)
        ).scalars()
        if plugins.implements(c.plugin, "list_campaigns")
    ]


@bp.get("/lists")
def lists() -> ResponseReturnValue:
    rows = db.session.execute(
        select(ContactList, func.count(ListMembership.contact_id))
        .outerjoin(ListMembership, ListMembership.list_id == ContactList.id)
        .group_by(ContactList.id)
        .order_by(ContactList.name)
    ).all()
    return render_template("contacts/lists.html", rows=rows)


@bp.post("/lists")
def create_list() -> ResponseReturnValue:
    name = request.form.get("name", "").strip()
    if not name:
        flash("A list needs a name.", "error")
        return redirect(url_for("contacts.lists"))
    if db.session.execute(select(ContactList.id).where(ContactList.name == name)).first():
        flash(f"A list named {name} already exists.", "error")
        return redirect(url_for("contacts.lists"))
    row = ContactList(name=name, description=request.form.get("description", "").strip() or None)
    db.session.add(row)
    db.session.commit()
    flash(f"List {name} created.", "success")
    return redirect(url_for("contacts.list_show", list_id=row.id))


@bp.get("/lists/<int:list_id>")
def list_show(list_id: int) -> ResponseReturnValue:
    row = get_or_404(ContactList, list_id)
    query = select(Contact).where(
        Contact.deleted_at.is_(None),
        exists().where(ListMembership.contact_id == Contact.id, ListMembership.list_id == row.id),
    )
    contacts, newer, older = keyset(query, Contact.id)
    statuses = (
        dict(
            db.session.execute(
                select(ListMembership.contact_id, ListMembership.status).where(
                    ListMembership.list_id == row.id, ListMembership.contact_id.in_([c.id for c in contacts])
                )
            ).all()
        )
        if contacts
        else {}
    )
    size = db.session.execute(
        select(func.count()).select_from(ListMembership).where(ListMembership.list_id == row.id)
    ).scalar_one()
    return render_template(
        "contacts/list.html",
        lst=row,
        contacts=contacts,
        newer=newer,
        older=older,
        statuses=statuses,
        size=size,
        sources=import_sources(),
        targets=send_targets(),
    )


@bp.route("/lists/<int:list_id>/import/<int:conn_id>", methods=["GET", "POST"])
def import_list(list_id: int, conn_id: int) -> ResponseReturnValue:
    """ "Import from <connector>": pick the campaign and the status imported members get."""
    lst = get_or_404(ContactList, list_id)
    conn = get_or_404(Connection, conn_id)
    info = connection_info(conn)
    if info is None or not get_plugins().implements(conn.plugin, "list_campaigns"):
        abort(404)
    person_objects = [o for o in info.objects if o.hub_kind is HubKind.CONTACT]
    if request.method == "POST":
        campaign_id = request.form.get("campaign_id", "").strip()
        status = request.form.get("status", "").strip() or "subscribed"
        object_type = request.form.get("object_type") or None
        if not campaign_id:
            flash("Choose a campaign.", "error")
            return redirect(url_for("contacts.import_list", list_id=lst.id, conn_id=conn.id))
        db.session.commit()
        back = url_for("contacts.list_show", list_id=lst.id)
        try:
            run_id = start_import(
                conn.id, list_id=lst.id, campaign_id=campaign_id, status=status, object_type=object_type
            )
        except LeadbridgeError as exc:
            db.session.rollback()
            flash(str(exc), "error")
            return redirect(back)
        return redirect(url_for("contacts.job", job_id=run_id, back=back))
    campaigns: list[Any] = []
    problem = None
    if not conn.enabled:
        problem = f"{conn.name} is disabled."
    else:
        db.session.commit()
        try:
            campaigns = get_plugins().connector(view(conn)).list_campaigns(client_for(conn))
        except LeadbridgeError as exc:
            problem = f"Could not list the campaigns of {conn.name}: {exc}"
    return render_template(
        "contacts/import.html",
        lst=lst,
        conn=conn,
        info=info,
        campaigns=campaigns,
        problem=problem,
        person_objects=person_objects,
    )
