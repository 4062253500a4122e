"""The JSON API ``/api/v1``: bearer tokens (sha256-hashed :class:`~leadbridge.models.ApiToken`),
contacts, companies, lists, connections and runs. Described by :mod:`leadbridge.web.openapi`."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import jsonschema
from flask import Blueprint, Response, g, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy import Select, exists, func, select
from werkzeug.exceptions import HTTPException

from ..db import db, utcnow
from ..errors import LeadbridgeError
from ..models import (
    ApiToken,
    Company,
    Connection,
    Contact,
    ContactList,
    ListMembership,
    SyncRecord,
    SyncRun,
    normalize_email,
)
from ..state import get_plugins
from ..sync import notify_contacts_changed, start_run
from .contacts import contact_search, prefix_range
from .openapi import SCHEMAS, document
from .tokens import hash_token

bp = Blueprint("api", __name__, url_prefix="/api/v1")
log = logging.getLogger(__name__)

CONTACT_COLUMNS = (
    "email",
    "first_name",
    "last_name",
    "phone",
    "title",
    "company_name",
    "company_id",
    "status",
    "score",
    "consent",
    "unsubscribed",
    "custom",
)
COMPANY_COLUMNS = ("name", "domain", "phone", "custom")


class ApiError(Exception):
    def __init__(self, status: int, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.problems = status, message, problems


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError) -> ResponseReturnValue:
    body: dict[str, Any] = {"error": exc.message}
    if exc.problems:
        body["problems"] = exc.problems
    response = jsonify(body)
    response.status_code = exc.status
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="leadbridge"'
    return response


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> ResponseReturnValue:
    return jsonify(error=exc.description or exc.name), exc.code or 500


@bp.before_request
def _authenticate() -> None:
    if request.endpoint == "api.openapi_json":
        return
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "send Authorization: Bearer <token>")
    row = db.session.execute(
        select(ApiToken).where(ApiToken.token_hash == hash_token(token.strip()))
    ).scalar_one_or_none()
    if row is None:
        raise ApiError(401, "unknown or revoked token")
    row.last_used_at = utcnow()
    db.session.commit()
    g.api_token = row


@bp.get("/openapi.json")
def openapi_json() -> ResponseReturnValue:
    return jsonify(document())


# -- helpers -----------------------------------------------------------------------------------


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


def contact_json(c: Contact) -> dict[str, Any]:
    return {
        "id": c.id,
        **{k: getattr(c, k) for k in CONTACT_COLUMNS},
        "custom": dict(c.custom or {}),
        "consent": c.consent or "none",
        "unsubscribed": bool(c.unsubscribed),
        "created_at": _iso(c.created_at),
        "updated_at": _iso(c.updated_at),
    }


def company_json(c: Company) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "domain": c.domain,
        "phone": c.phone,
        "custom": dict(c.custom or {}),
        "created_at": _iso(c.created_at),
        "updated_at": _iso(c.updated_at),
    }


def list_json(lst: ContactList) -> dict[str, Any]:
    size = db.session.execute(
        select(func.count()).select_from(ListMembership).where(ListMembership.list_id == lst.id)
    ).scalar_one()
    return {"id": lst.id, "name": lst.name, "description": lst.description, "member_count": size}


def connection_json(c: Connection) -> dict[str, Any]:
    record = get_plugins().records.get(c.plugin)
    return {
        "id": c.id,
        "name": c.name,
        "plugin": c.plugin,
        "plugin_state": record.state.value if record else "not installed",
        "enabled": c.enabled,
        "state": c.state,
        "state_message": c.state_message,
        "direction": c.direction,
        "interval_minutes": c.schedule_interval_minutes,
        "cron": c.schedule_cron,
    }


def run_json(r: SyncRun) -> dict[str, Any]:
    return {
        "id": r.id,
        "connection_id": r.connection_id,
        "status": r.status,
        "trigger": r.trigger,
        "direction": r.direction,
        "dry_run": r.dry_run,
        "started_at": _iso(r.started_at),
        "finished_at": _iso(r.finished_at),
        "counts": r.counts or {},
        "progress_done": r.progress_done or 0,
        "progress_total": r.progress_total,
        "api_calls": r.api_calls or 0,
        "error": r.error,
    }


def record_json(r: SyncRecord) -> dict[str, Any]:
    return {
        "id": r.id,
        "side": r.side,
        "object_type": r.object_type,
        "outcome": r.outcome,
        "hub_id": r.hub_id,
        "remote_id": r.remote_id,
        "label": r.label,
        "reason": r.reason,
        "code": r.code,
        "diff": r.diff or {},
        "at": _iso(r.at),
    }


def _body(schema: str) -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "send a JSON object")
    validator = jsonschema.Draft202012Validator(SCHEMAS[schema])
    problems = [
        f"{'/'.join(str(p) for p in e.absolute_path) or 'body'}: {e.message}"
        for e in validator.iter_errors(data)
    ]
    if problems:
        raise ApiError(400, "invalid request body", problems)
    return data


def _limit() -> int:
    raw = request.args.get("limit", "50")
    if not raw.isdigit() or not 1 <= int(raw) <= 500:
        raise ApiError(400, "limit: 1 to 500")
    return int(raw)


def _cursor() -> int | None:
    raw = request.args.get("cursor", "")
    if not raw:
        return None
    if not raw.isdigit():
        raise ApiError(400, "cursor: use next_cursor of the previous page")
    return int(raw)


def _page(query: Select[Any], id_col: Any, render: Any, *, searching: bool = False) -> ResponseReturnValue:
    limit, cursor = _limit(), _cursor()
    if cursor:
        query = query.where(id_col < cursor)
    # A selective search sorts its matches instead of walking the whole table (see contacts.keyset).
    sort_key = id_col + 0 if searching else id_col
    rows = list(db.session.execute(query.order_by(sort_key.desc()).limit(limit + 1)).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    return jsonify(items=[render(r) for r in rows], next_cursor=str(rows[-1].id) if more and rows else None)


def _get(model: type[Any], ident: int) -> Any:
    row = db.session.get(model, ident)
    if row is None or getattr(row, "deleted_at", None) is not None:
        raise ApiError(404, f"{model.__name__.lower()} {ident} not found")
    return row


def _notify(contact_ids: list[int]) -> None:
    if contact_ids:
        try:
            notify_contacts_changed(contact_ids, trigger="api")
        except Exception:  # stored already; the scheduled sync pushes it anyway
            log.exception("could not trigger the push for API changes")


def _apply_contact(c: Contact, data: dict[str, Any]) -> None:
    now = utcnow().isoformat()
    changed = dict(c.field_changed_at or {})
    if "email" in data:
        key = normalize_email(data["email"])
        if (
            key
            and db.session.execute(
                select(Contact.id).where(Contact.email_key == key, Contact.id != (c.id or 0))
            ).first()
        ):
            raise ApiError(409, f"another contact has the email {data['email']}")
        if key != c.email_key:
            c.set_email(data["email"])
            changed["email"] = now
    if data.get("company_id") is not None and db.session.get(Company, data["company_id"]) is None:
        raise ApiError(400, "company_id: no such company")
    for name in CONTACT_COLUMNS:
        if name == "email" or name not in data:
            continue
        if getattr(c, name) != data[name]:
            setattr(c, name, data[name])
            changed[name] = now
    c.field_changed_at = changed


# -- contacts ----------------------------------------------------------------------------------


@bp.get("/contacts")
def contacts_list() -> ResponseReturnValue:
    query = select(Contact).where(Contact.deleted_at.is_(None))
    if request.args.get("q"):
        query = query.where(contact_search(request.args["q"]))
    if request.args.get("status"):
        query = query.where(Contact.status == request.args["status"])
    if request.args.get("company", "").isdigit():
        query = query.where(Contact.company_id == int(request.args["company"]))
    if request.args.get("list", "").isdigit():
        query = query.where(
            exists().where(
                ListMembership.contact_id == Contact.id, ListMembership.list_id == int(request.args["list"])
            )
        )
    return _page(query, Contact.id, contact_json, searching=bool(request.args.get("q")))


@bp.post("/contacts")
def contacts_create() -> ResponseReturnValue:
    data = _body("ContactInput")
    c = Contact(consent="none", unsubscribed=False, custom={}, field_changed_at={})
    _apply_contact(c, data)
    db.session.add(c)
    db.session.commit()
    _notify([c.id])
    return jsonify(contact_json(c)), 201


@bp.post("/contacts/upsert")
def contacts_upsert() -> ResponseReturnValue:
    data = _body("ContactUpsert")
    key = normalize_email(data["email"])
    c = db.session.execute(select(Contact).where(Contact.email_key == key)).scalar_one_or_none()
    created = c is None
    if c is None:
        c = Contact(consent="none", unsubscribed=False, custom={}, field_changed_at={})
        db.session.add(c)
    c.deleted_at = None
    _apply_contact(c, data)
    db.session.commit()
    _notify([c.id])
    return jsonify(contact_json(c)), 201 if created else 200


@bp.get("/contacts/<int:contact_id>")
def contacts_get(contact_id: int) -> ResponseReturnValue:
    return jsonify(contact_json(_get(Contact, contact_id)))


@bp.patch("/contacts/<int:contact_id>")
def contacts_update(contact_id: int) -> ResponseReturnValue:
    c = _get(Contact, contact_id)
    _apply_contact(c, _body("ContactInput"))
    db.session.commit()
    _notify([c.id])
    return jsonify(contact_json(c))


@bp.delete("/contacts/<int:contact_id>")
def contacts_delete(contact_id: int) -> ResponseReturnValue:
    c = _get(Contact, contact_id)
    c.deleted_at = utcnow()  # soft delete: the engine propagates it per the delete policy
    db.session.commit()
    _notify([c.id])
    return Response(status=204)


# -- companies ---------------------------------------------------------------------------------


def _apply_company(c: Company, data: dict[str, Any]) -> None:
    for name in COMPANY_COLUMNS:
        if name in data:
            setattr(c, name, data[name])
    if "name" in data:
        c.name_key = " ".join(data["name"].split()).lower()


@bp.get("/companies")
def companies_list() -> ResponseReturnValue:
    query = select(Company).where(Company.deleted_at.is_(None))
    if request.args.get("q"):
        query = query.where(prefix_range(Company.name_key, " ".join(request.args["q"].split()).lower()))
    return _page(query, Company.id, company_json)


@bp.post("/companies")
def companies_create() -> ResponseReturnValue:
    data = _body("CompanyInput")
    if not data.get("name"):
        raise ApiError(400, "invalid request body", ["name: required"])
    c = Company(custom={}, field_changed_at={})
    _apply_company(c, data)
    db.session.add(c)
    db.session.commit()
    return jsonify(company_json(c)), 201


@bp.get("/companies/<int:company_id>")
def companies_get(company_id: int) -> ResponseReturnValue:
    return jsonify(company_json(_get(Company, company_id)))


@bp.patch("/companies/<int:company_id>")
def companies_update(company_id: int) -> ResponseReturnValue:
    c = _get(Company, company_id)
    _apply_company(c, _body("CompanyInput"))
    db.session.commit()
    return jsonify(company_json(c))


@bp.delete("/companies/<int:company_id>")
def companies_delete(company_id: int) -> ResponseReturnValue:
    c = _get(Company, company_id)
    c.deleted_at = utcnow()
    db.session.commit()
    return Response(status=204)


# -- lists -------------------------------------------------------------------------------------


@bp.get("/lists")
def lists_list() -> ResponseReturnValue:
    rows = db.session.execute(select(ContactList).order_by(ContactList.name)).scalars()
    return jsonify([list_json(r) for r in rows])


@bp.post("/lists")
def lists_create() -> ResponseReturnValue:
    data = _body("ListInput")
    if db.session.execute(select(ContactList.id).where(ContactList.name == data["name"])).first():
        raise ApiError(409, f"a list named {data['name']} exists")
    lst = ContactList(name=data["name"], description=data.get("description"))
    db.session.add(lst)
    db.session.commit()
    return jsonify(list_json(lst)), 201


@bp.get("/lists/<int:list_id>")
def lists_get(list_id: int) -> ResponseReturnValue:
    return jsonify(list_json(_get(ContactList, list_id)))


@bp.get("/lists/<int:list_id>/members")
def members_list(list_id: int) -> ResponseReturnValue:
    lst = _get(ContactList, list_id)
    limit, cursor = _limit(), _cursor()
    query = select(ListMembership).where(ListMembership.list_id == lst.id)
    if cursor:
        query = query.where(ListMembership.contact_id < cursor)
    rows = list(
        db.session.execute(query.order_by(ListMembership.contact_id.desc()).limit(limit + 1)).scalars()
    )
    more = len(rows) > limit
    rows = rows[:limit]
    items = [
        {
            "contact": contact_json(m.contact),
            "status": m.status,
            "source": m.source,
            "added_at": _iso(m.added_at),
        }
        for m in rows
    ]
    return jsonify(items=items, next_cursor=str(rows[-1].contact_id) if more and rows else None)


@bp.post("/lists/<int:list_id>/members")
def members_add(list_id: int) -> ResponseReturnValue:
    lst = _get(ContactList, list_id)
    data = _body("MembersInput")
    ids = sorted(set(data["contact_ids"]))
    found = set(db.session.execute(select(Contact.id).where(Contact.id.in_(ids))).scalars())
    if missing := [i for i in ids if i not in found]:
        raise ApiError(404, f"contacts not found: {', '.join(map(str, missing))}")
    status = data.get("status") or "subscribed"
    for cid in ids:
        m = db.session.get(ListMembership, (lst.id, cid))
        if m is None:
            db.session.add(ListMembership(list_id=lst.id, contact_id=cid, status=status, source="api"))
        else:
            m.status = status
    db.session.commit()
    return jsonify(list_json(lst))


@bp.delete("/lists/<int:list_id>/members/<int:contact_id>")
def members_remove(list_id: int, contact_id: int) -> ResponseReturnValue:
    m = db.session.get(ListMembership, (list_id, contact_id))
    if m is None:
        raise ApiError(404, "not a member")
    db.session.delete(m)
    db.session.commit()
    return Response(status=204)


# -- connections and runs ----------------------------------------------------------------------


@bp.get("/connections")
def connections_list() -> ResponseReturnValue:
    rows = db.session.execute(select(Connection).order_by(Connection.id)).scalars()
    return jsonify([connection_json(c) for c in rows])


@bp.get("/connections/<int:connection_id>")
def connections_get(connection_id: int) -> ResponseReturnValue:
    return jsonify(connection_json(_get(Connection, connection_id)))


@bp.post("/connections/<int:connection_id>/runs")
def runs_start(connection_id: int) -> ResponseReturnValue:
    conn = _get(Connection, connection_id)
    data = _body("RunInput")
    if not conn.enabled:
        raise ApiError(409, f"connection {conn.name} is disabled")
    db.session.commit()
    try:
        run_id = start_run(
            conn.id,
            trigger="api",
            direction=data.get("direction"),
            dry_run=bool(data.get("dry_run")),
            full=bool(data.get("full")),
        )
    except LeadbridgeError as exc:
        db.session.rollback()
        raise ApiError(409, str(exc)) from None
    return jsonify(run_id=int(run_id)), 202


@bp.get("/runs")
def runs_list() -> ResponseReturnValue:
    query = select(SyncRun)
    if request.args.get("connection", "").isdigit():
        query = query.where(SyncRun.connection_id == int(request.args["connection"]))
    if request.args.get("status"):
        query = query.where(SyncRun.status == request.args["status"])
    return _page(query, SyncRun.id, run_json)


@bp.get("/runs/<int:run_id>")
def runs_get(run_id: int) -> ResponseReturnValue:
    return jsonify(run_json(_get(SyncRun, run_id)))


@bp.get("/runs/<int:run_id>/records")
def records_list(run_id: int) -> ResponseReturnValue:
    run = _get(SyncRun, run_id)
    query = select(SyncRecord).where(SyncRecord.run_id == run.id)
    if request.args.get("side"):
        query = query.where(SyncRecord.side == request.args["side"])
    if request.args.get("outcome"):
        query = query.where(SyncRecord.outcome == request.args["outcome"])
    return _page(query, SyncRecord.id, record_json)
