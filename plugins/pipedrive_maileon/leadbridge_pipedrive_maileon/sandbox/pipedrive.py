"""The Pipedrive side of the sandbox: API v2 (persons, organizations, deals, person fields, search) and
the v1 endpoints v2 lacks (webhooks, users/me), with Pipedrive's auth, envelopes, strict typing, cursor
paging, rate limits and webhook deliveries (retries, bans, deletion).

Facts come from ``shared/vendor-apis/pipedrive.md`` (section 8 is the checklist) and the vendor's OpenAPI
documents (the tests validate every answer against them). Everything reads the leadbridge clock, so tests
on the virtual clock skip retry delays and rate-limit windows.

Test knobs imitate what a salesperson does in Pipedrive's UI (webhook ``change_source`` "app"); requests
through the API produce events with ``change_source`` "api". Switches are plain attributes
(``accept_query_token``, ``delivery_timeout``, ``duplicate_deliveries``, ``account_open``,
``send_retry_after``, ``search_burst_limit``, ``cursor_on_exact_last_page``, ``marketing_status_on_request``).
Not imitated: OAuth, activities, notes, leads, v1-format (``version: "1.0"``) webhook payloads.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import random
import re
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from flask import Response, jsonify, request
from leadbridge import clock as clocks
from leadbridge.sandbox import Sandbox
from leadbridge.sandboxkit.records import Ids, Record, RecordStore

log = logging.getLogger(__name__)

V2 = "/api/v2"
V1_PREFIXES = ("/v1", "/api/v1")
OWN_PREFIXES = ("/api/v2/", "/v1/", "/api/v1/")
ERROR_INFO = "Please check developers.pipedrive.com for more information about Pipedrive API."
RETRY_DELAYS = (3.0, 30.0, 150.0)  # after attempts 1, 2, 3 (meta.attempt 2..4); then given up
BAN_AFTER_FAILURES = 10
BAN_SECONDS = 30 * 60.0
DELETE_AFTER_SECONDS = 3 * 24 * 3600.0
MAX_WEBHOOKS = 40
MAX_LIMIT = 500
SEARCH_WINDOW = 2.0
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
EVENT_ACTIONS = ("create", "change", "delete", "*")
EVENT_OBJECTS = (
    "activity", "deal", "lead", "note", "organization", "person", "pipeline", "product", "stage", "user", "*",
)  # fmt: skip
CREATABLE_FIELD_TYPES = frozenset({
    "varchar", "text", "double", "phone", "date", "daterange", "time", "timerange", "set", "enum",
    "varchar_auto", "address", "monetary", "org", "people", "user",
})  # fmt: skip
SEARCHABLE_TYPES = frozenset({"address", "varchar", "text", "varchar_auto", "double", "monetary", "phone"})
MARKETING_STATUSES = ("no_consent", "unsubscribed", "subscribed", "archived")
DEAL_STATUSES = ("open", "won", "lost")
VISIBLE_TO = (1, 3, 5, 7)
HEX40 = re.compile(r"^[0-9a-f]{40}$")
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TIME = re.compile(r"^\d{2}:\d{2}(:\d{2})?$")

#: ``x-token-cost`` per route, as the OpenAPI documents declare it (a test compares the two).
TOKEN_COSTS = {
    **{f"{kind}_{op}": cost for kind in ("persons", "organizations", "deals")
       for op, cost in (("list", 10), ("create", 5), ("get", 1), ("patch", 5), ("delete", 3))},
    "persons_search": 20, "organizations_search": 20,
    "personFields_list": 10, "personFields_create": 5, "personFields_get": 1,
    "users_me": 2, "webhooks_list": 10, "webhooks_create": 10, "webhooks_delete": 6,
}  # fmt: skip
DEFAULT_COST = 5

# Writable fields per entity and their strict v2 type ("?": null allowed).
PERSON_FIELDS = {
    "name": "str", "first_name": "str", "last_name": "str", "owner_id": "int", "org_id": "int?",
    "add_time": "time", "emails": "contacts", "phones": "contacts", "im": "contacts",
    "visible_to": "visible_to", "label_ids": "ints", "postal_address": "object?", "notes": "str?",
    "birthday": "date?", "job_title": "str?", "marketing_status": "marketing", "custom_fields": "custom",
}  # fmt: skip
ORG_FIELDS = {
    "name": "str", "owner_id": "int", "add_time": "time", "visible_to": "visible_to", "label_ids": "ints",
    "address": "object?", "website": "str?", "linkedin": "str?", "industry": "int?",
    "annual_revenue": "int?", "employee_count": "int?", "custom_fields": "custom",
}  # fmt: skip
DEAL_FIELDS = {
    "title": "str", "owner_id": "int", "person_id": "int?", "org_id": "int?", "pipeline_id": "int",
    "stage_id": "int", "value": "num", "currency": "currency", "status": "deal_status",
    "probability": "num?", "lost_reason": "str?", "visible_to": "visible_to", "close_time": "time?",
    "won_time": "time", "lost_time": "time", "expected_close_date": "date?", "label_ids": "ints",
    "add_time": "time", "custom_fields": "custom",
}  # fmt: skip


class _Invalid(Exception):
    """A request Pipedrive refuses with 400 (the message goes into ``error``)."""


class _NotFound(LookupError):
    """404 on a route; what a test knob raises for an unknown or deleted id."""


@dataclass
class Delivery:
    """One webhook delivery attempt (``status`` is ``None`` for a timeout or a connection error)."""

    webhook_id: int
    event_id: str
    attempt: int
    status: int | None
    at: datetime
    payload: dict[str, Any] = field(default_factory=dict, repr=False)
    error: str | None = None
    #: real seconds from sending to the receiver's answer (its acknowledgement latency)
    seconds: float | None = None


@dataclass
class _Pending:
    webhook_id: int
    event: dict[str, Any]  # {"meta", "data", "previous"} without the per-webhook meta keys
    attempt: int
    due: float  # leadbridge monotonic clock


@dataclass(frozen=True)
class _Kind:
    plural: str  # route and store name
    entity: str  # webhook meta.entity
    label: str
    fields: dict[str, str]
    filters: tuple[str, ...]


KINDS = {
    "persons": _Kind("persons", "person", "Person", PERSON_FIELDS, ("owner_id", "org_id")),
    "organizations": _Kind("organizations", "organization", "Organization", ORG_FIELDS, ("owner_id",)),
    "deals": _Kind("deals", "deal", "Deal", DEAL_FIELDS, ("owner_id", "person_id", "org_id", "pipeline_id",
                                                         "stage_id")),
}  # fmt: skip
PERSONS, ORGS, DEALS = KINDS["persons"], KINDS["organizations"], KINDS["deals"]


class PipedriveAPI:
    """Pipedrive's routes on a :class:`~leadbridge.sandbox.Sandbox` app, and its state."""

    def __init__(self, sandbox: Sandbox, *, api_token: str = "pd-sandbox-token-0123456789abcdef") -> None:  # noqa: S107
        self.sandbox = sandbox
        self.api_token = api_token
        self.lock = sandbox.lock
        self.company_id, self.user_id = 15747575, 26510409
        self.company_domain = "leadbridge-sandbox"
        self.host = f"{self.company_domain}.pipedrive.com"
        self.persons = RecordStore(clocks.utcnow, Ids(100))
        self.organizations = RecordStore(clocks.utcnow, Ids(10))
        self.deals = RecordStore(clocks.utcnow, Ids(500))
        self.person_fields: list[dict[str, Any]] = _builtin_person_fields()
        self._option_ids = Ids(20)
        self.webhooks: dict[int, dict[str, Any]] = {}
        self._webhook_ids = Ids(1872700)
        self.removed_webhooks: list[dict[str, Any]] = []  # deleted by the 3-days-without-success rule
        self.deliveries: list[Delivery] = []
        self.lost: list[dict[str, Any]] = []
        self._pending: list[_Pending] = []
        # switches
        self.accept_query_token = True
        self.delivery_timeout = 10.0
        self.duplicate_deliveries = 1
        self.account_open = True  # False: every call answers 402 (trial ended, unpaid)
        self.send_retry_after = True  # not confirmed that Pipedrive sends it (notes §9.2)
        self.search_burst_limit: int | None = 10
        #: a page ending exactly at the last record: False → next_cursor null, True → a cursor to an
        #: empty page (notes §9.6: not confirmed which one Pipedrive does)
        self.cursor_on_exact_last_page = False
        #: persons show ``marketing_status`` only when ``include_fields`` asks for it, as v2 does
        self.marketing_status_on_request = True
        self._cursors: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._burst: tuple[int, float] | None = None
        self._hits: dict[str, deque[float]] = {}
        self._search_hits: dict[str, deque[float]] = {}
        self._budget: int | None = None
        self.daily_tokens_used = 0
        self._budget_day: date | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.add_person_field("Lead source", "varchar")
        self.add_person_field("Segment", "enum", ["Gold", "Silver"])
        self._install_routes()

    # -- routes and envelopes ---------------------------------------------------------------------

    def _install_routes(self) -> None:
        app = self.sandbox.app
        self._route_names: dict[str, str] = {}  # Flask endpoint → route name (TOKEN_COSTS key)

        def route(path: str, name: str, view: Callable[..., Response], method: str, v1: bool = False) -> None:
            for prefix in V1_PREFIXES if v1 else (V2,):
                endpoint = f"pd{prefix.replace('/', '_')}_{name}"
                self._route_names[endpoint] = name
                app.add_url_rule(prefix + path, endpoint, self._guard(view), methods=[method])

        for plural, kind in KINDS.items():
            route(f"/{plural}", f"{plural}_list", lambda k=kind: self._list(k), "GET")
            route(f"/{plural}", f"{plural}_create", lambda k=kind: self._create_route(k), "POST")
            for op, method in (("get", "GET"), ("patch", "PATCH"), ("delete", "DELETE")):
                view = getattr(self, f"_{op}_route")
                route(f"/{plural}/<int:record_id>", f"{plural}_{op}",
                      lambda record_id, k=kind, v=view: v(k, record_id), method)  # fmt: skip
        route("/persons/search", "persons_search", lambda: self._search(PERSONS), "GET")
        route("/organizations/search", "organizations_search", lambda: self._search(ORGS), "GET")
        route("/personFields", "personFields_list", self._fields_list, "GET")
        route("/personFields", "personFields_create", self._fields_create, "POST")
        route("/personFields/<field_code>", "personFields_get", self._fields_get, "GET")
        route("/users/me", "users_me", self._users_me, "GET", v1=True)
        route("/webhooks", "webhooks_list", self._webhooks_list, "GET", v1=True)
        route("/webhooks", "webhooks_create", self._webhooks_create, "POST", v1=True)
        route("/webhooks/<int:webhook_id>", "webhooks_delete", self._webhooks_delete, "DELETE", v1=True)
        app.before_request(self._gate)
        app.after_request(self._rate_headers)

    def _guard(self, view: Callable[..., Response]) -> Callable[..., Response]:
        def guarded(**kwargs: Any) -> Response:
            try:
                return view(**kwargs)
            except _Invalid as exc:
                return self.error_response(400, str(exc))
            except _NotFound as exc:
                return self.error_response(404, str(exc))

        return guarded

    def error_response(self, status: int, message: str) -> Response:
        """Pipedrive's error envelope (notes §5)."""
        body = {"success": False, "error": message, "error_info": ERROR_INFO, "data": None}
        return _json({**body, "additional_data": None}, status)

    def _ok(self, data: Any, additional: dict[str, Any] | None = None, status: int = 200) -> Response:
        body: dict[str, Any] = {"success": True, "data": data}
        if additional is not None:
            body["additional_data"] = additional
        return _json(body, status)

    # -- auth and rate limits -----------------------------------------------------------------------

    def _token(self) -> str | None:
        if request.headers.get("x-api-token"):
            return request.headers["x-api-token"]
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            return auth[7:]  # OAuth is not imitated yet: the API token doubles as the access token
        return request.args.get("api_token") if self.accept_query_token else None

    def _gate(self) -> Response | None:
        if not request.path.startswith(OWN_PREFIXES):
            return None  # Maileon's /1.0 paths and the control endpoints are not ours
        token = self._token()
        if token != self.api_token:
            return _json({"success": False, "error": "unauthorized access", "errorCode": 401}, 401)
        if not self.account_open:
            return _json({"success": False, "error": "Company account is not open", "errorCode": 402}, 402)
        now = clocks.monotonic()
        name = self._route_names.get(request.endpoint or "", "")
        with self.lock:
            if self._burst is not None:
                hits = self._hits.setdefault(token, deque())
                allowed, remaining, reset = _window_hit(hits, now, *self._burst)
                request.environ["pd.rate"] = (self._burst[0], remaining, reset)
                if not allowed:
                    return self._too_many(reset)
            if name.endswith("_search") and self.search_burst_limit:  # search has its own 10 per 2 s
                hits = self._search_hits.setdefault(token, deque())
                allowed, _, reset = _window_hit(hits, now, self.search_burst_limit, SEARCH_WINDOW)
                if not allowed:
                    return self._too_many(reset)
            if self._budget is not None:
                today = clocks.utcnow().date()
                if today != self._budget_day:  # the budget resets at midnight (server time: UTC here)
                    self._budget_day, self.daily_tokens_used = today, 0
                cost = TOKEN_COSTS.get(name, DEFAULT_COST)
                if self.daily_tokens_used + cost > self._budget:
                    midnight = datetime.combine(today + timedelta(days=1), datetime.min.time(), UTC)
                    return self._too_many((midnight - clocks.utcnow()).total_seconds())
                self.daily_tokens_used += cost
        return None

    def rate_limit_response(self, retry_after: float) -> Response:
        """Pipedrive's 429 (also what the base class's forced ``rate_limit`` faults answer)."""
        return self._too_many(retry_after)

    def _too_many(self, retry_after: float) -> Response:
        # The body of Pipedrive's rate-limit page; the exact text is not confirmed (notes §9.2).
        body = {"success": False, "error": "Request over limit", "errorCode": 429, "error_info": ERROR_INFO}
        resp = _json({**body, "data": None, "additional_data": None}, 429)
        if self.send_retry_after:
            resp.headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
        return resp

    def _rate_headers(self, response: Response) -> Response:
        rate = request.environ.get("pd.rate")
        if rate is not None and request.path.startswith(OWN_PREFIXES):
            for header, value in zip(("limit", "remaining", "reset"), rate, strict=True):
                response.headers[f"x-ratelimit-{header}"] = str(value)
        return response

    def set_burst_limit(self, requests: int | None, window: float = 2.0) -> None:
        """Allow ``requests`` calls per token in a rolling ``window`` (``None``: no limit, no headers)."""
        with self.lock:
            self._burst = (requests, window) if requests else None
            self._hits.clear()

    def set_daily_budget(self, tokens: int | None) -> None:
        """A daily token budget that each call spends by its ``x-token-cost`` (``None``: unlimited)."""
        with self.lock:
            self._budget, self.daily_tokens_used, self._budget_day = tokens, 0, clocks.utcnow().date()

    # -- model ----------------------------------------------------------------------------------------

    def _store(self, kind: _Kind) -> RecordStore:
        return getattr(self, kind.plural)  # type: ignore[no-any-return]

    def _defaults(self, kind: _Kind) -> dict[str, Any]:
        common = {"owner_id": self.user_id, "label_ids": [], "custom_fields": {}, "visible_to": 3}
        if kind is PERSONS:
            return {**common, "name": "", "first_name": None, "last_name": None, "org_id": None, "emails": [],
                    "phones": [], "im": [], "postal_address": None, "notes": None, "birthday": None,
                    "job_title": None, "marketing_status": "no_consent"}  # fmt: skip
        if kind is ORGS:
            return {**common, "name": "", "address": None, "website": None, "linkedin": None,
                    "industry": None, "annual_revenue": None, "employee_count": None}  # fmt: skip
        return {**common, "title": "", "person_id": None, "org_id": None, "pipeline_id": 1, "stage_id": 1,
                "value": 0, "currency": "EUR", "status": "open", "probability": None, "lost_reason": None,
                "close_time": None, "won_time": None, "lost_time": None, "expected_close_date": None,
                "stage_change_time": None}  # fmt: skip

    def _validate(self, kind: _Kind, body: dict[str, Any], existing: Record | None) -> dict[str, Any]:
        """The values a create (``existing`` None) or a PATCH applies; raises :class:`_Invalid`."""
        values: dict[str, Any] = {}
        for name, value in body.items():
            tag = kind.fields.get(name)
            if tag is None or (existing is not None and name == "add_time"):
                raise _Invalid(f"Validation failed: {name}: unknown or read-only field")
            values[name] = (
                self._check_custom(kind, value, existing) if tag == "custom" else _check(name, tag, value)
            )
        for link, store in (("org_id", self.organizations), ("person_id", self.persons)):
            if values.get(link) is not None and store.live(values[link]) is None:
                raise _Invalid(f"{link.split('_')[0].title()} with id {values[link]} was not found")
        if kind is PERSONS:
            _derive_names(values, existing)
        required = "title" if kind is DEALS else "name"
        if (existing is None or required in values) and not values.get(required):
            raise _Invalid(f"Validation failed: {required}: required, must not be empty")
        if kind is DEALS and values.get("status", "open") != "open":
            if existing is None or existing.values["status"] != values["status"]:  # won or lost just now
                now = _t(clocks.utcnow())
                values.setdefault("close_time", now)
                values.setdefault(f"{values['status']}_time", now)
        elif kind is DEALS and "status" in values:
            values.setdefault("close_time", None)  # reopened
        return values

    def _check_custom(self, kind: _Kind, value: Any, existing: Record | None) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise _Invalid("Validation failed: custom_fields: must be an object")
        merged = dict(existing.values["custom_fields"]) if existing else {}
        defs = {f["field_code"]: f for f in self.person_fields if f["is_custom_field"]}
        for key, v in value.items():
            # organization and deal fields are not defined here: only their key shape is checked
            if (key not in defs) if kind is PERSONS else not HEX40.match(key):
                raise _Invalid(f"Validation failed: custom_fields: unknown field {key}")
            merged[key] = _check_custom_value(defs[key], v) if kind is PERSONS else v
        return merged

    def _public(self, kind: _Kind, rec: Record, *, include: Iterable[str] = (), keys: set[str] | None = None,
                full: bool = False) -> dict[str, Any]:  # fmt: skip
        """A record as v2 answers it (``full``: with every optional field, as webhooks carry it)."""
        values = dict(rec.values)
        custom = values.pop("custom_fields")
        if kind is PERSONS:
            custom = {
                f["field_code"]: custom.get(f["field_code"])
                for f in self.person_fields
                if f["is_custom_field"]
            }
            status = values.pop("marketing_status")
            if full or not self.marketing_status_on_request or "marketing_status" in include:
                values["marketing_status"] = status
            values["picture_id"] = None
        if kind is DEALS:
            values.update(is_archived=False, origin="API", origin_id=None, channel=None, channel_id=None,
                          source_lead_id=None, arr=None, mrr=None, acv=None)  # fmt: skip
        if keys is not None:
            custom = {k: v for k, v in custom.items() if k in keys}
        stamps = {
            "add_time": _t(rec.created_at),
            "update_time": _t(rec.updated_at),
            "is_deleted": rec.deleted,
        }
        return {"id": rec.id, **values, **stamps, "custom_fields": custom}

    # -- record changes (API and test knobs) ----------------------------------------------------------

    def _create(self, kind: _Kind, values: dict[str, Any], source: str) -> Record:
        add_time = values.pop("add_time", None)
        rec = self._store(kind).add({**self._defaults(kind), **values})
        if add_time:
            rec.created_at = _parse_time(add_time, "add_time")
        self._emit(kind, "create", rec.id, self._public(kind, rec, full=True), None, source)
        return rec

    def _update(self, kind: _Kind, rec: Record, values: dict[str, Any], source: str) -> Record:
        before = self._public(kind, rec, full=True)
        if self._store(kind).change(rec, values):  # no change, no new update_time, no event
            after = self._public(kind, rec, full=True)
            self._emit(kind, "change", rec.id, after, _previous(before, after), source)
        return rec

    def _delete(self, kind: _Kind, rec: Record, source: str) -> None:
        before = self._public(kind, rec, full=True)
        self._store(kind).delete(rec)
        self._emit(kind, "delete", rec.id, None, before, source)

    def _live(self, kind: _Kind, record_id: int) -> Record:
        rec = self._store(kind).live(record_id)
        if rec is None:
            raise _NotFound(f"{kind.label} not found")
        return rec

    # -- v2 handlers ------------------------------------------------------------------------------------

    def _body(self) -> dict[str, Any]:
        body = request.get_json(silent=True) if request.mimetype == "application/json" else None
        if not isinstance(body, dict):
            raise _Invalid("Invalid request body: a JSON object (Content-Type application/json) is expected")
        return body

    def _list(self, kind: _Kind) -> Response:
        args = request.args
        limit = _query_int("limit", args.get("limit"), low=1, high=MAX_LIMIT) or 100
        sort_by, direction = args.get("sort_by", "id"), args.get("sort_direction", "asc")
        if sort_by not in ("id", "update_time", "add_time") or direction not in ("asc", "desc"):
            raise _Invalid(
                "Validation failed: sort_by must be id|update_time|add_time, sort_direction asc|desc"
            )
        since = _parse_time(args["updated_since"], "updated_since") if "updated_since" in args else None
        until = _parse_time(args["updated_until"], "updated_until") if "updated_until" in args else None
        ids = {_query_int("ids", i) for i in args["ids"].split(",")} if args.get("ids") else None
        if ids is not None and len(ids) > 100:
            raise _Invalid("Validation failed: ids: at most 100")
        filters = {f: _query_int(f, args[f]) for f in kind.filters if f in args}
        status = args.get("status")
        if status is not None and (kind is not DEALS or status not in (*DEAL_STATUSES, "deleted")):
            raise _Invalid("Validation failed: status: must be open|won|lost|deleted")
        keys = _custom_keys(args.get("custom_fields"))
        with self.lock:
            rows = [r for r in self._store(kind).values() if r.deleted == (status == "deleted")
                    and (ids is None or r.id in ids) and all(r.values.get(f) == v for f, v in filters.items())
                    and (status in (None, "deleted") or r.values["status"] == status)
                    and (since is None or r.updated_at.replace(microsecond=0) >= since)  # inclusive
                    and (until is None or r.updated_at.replace(microsecond=0) < until)]  # fmt: skip
            key = _sort_key(sort_by)
            rows.sort(key=key, reverse=direction == "desc")
            after = self._position(kind.plural, args.get("cursor"), (sort_by, direction))
            if after is not None:
                rows = [r for r in rows if (key(r) > after if direction == "asc" else key(r) < after)]
            page, cursor = rows[:limit], None
            if page and (len(rows) > limit or (self.cursor_on_exact_last_page and len(page) == limit)):
                last = page[-1]
                shown = {"field": sort_by, "fieldValue": last.id if sort_by == "id" else _t(key(last)[0]),
                         "sortDirection": direction, "id": last.id}  # fmt: skip
                cursor = self._issue(kind.plural, shown, (sort_by, direction), key(last))
            include = args.get("include_fields", "").split(",")
            data = [self._public(kind, r, include=include, keys=keys) for r in page]
        # next_cursor is null on the last page (notes §4); the v2 document types it as a plain string
        return self._ok(data, {"next_cursor": cursor})

    def _issue(self, scope: str, shown: dict[str, Any], query: Any, position: Any) -> str:
        """An opaque cursor (base64 JSON, as Pipedrive's look); only issued ones are accepted."""
        cursor = (
            base64.urlsafe_b64encode(json.dumps(shown, separators=(",", ":")).encode()).decode().rstrip("=")
        )
        self._cursors[(scope, cursor)] = (query, position)
        return cursor

    def _position(self, scope: str, cursor: str | None, query: Any) -> Any:
        if not cursor:
            return None
        issued = self._cursors.get((scope, cursor))
        if issued is None or issued[0] != query:
            raise _Invalid("Invalid cursor")
        return issued[1]

    def _get_route(self, kind: _Kind, record_id: int) -> Response:
        include, keys = (
            request.args.get("include_fields", "").split(","),
            _custom_keys(request.args.get("custom_fields")),
        )
        with self.lock:
            return self._ok(self._public(kind, self._live(kind, record_id), include=include, keys=keys))

    def _create_route(self, kind: _Kind) -> Response:
        body = self._body()
        with self.lock:
            rec = self._create(kind, self._validate(kind, body, None), "api")
            return self._ok(self._public(kind, rec, include=["marketing_status"]))  # 200, not 201, in v2

    def _patch_route(self, kind: _Kind, record_id: int) -> Response:
        body = self._body()
        with self.lock:
            rec = self._live(kind, record_id)
            self._update(kind, rec, self._validate(kind, body, rec), "api")
            return self._ok(self._public(kind, rec, include=["marketing_status"]))

    def _delete_route(self, kind: _Kind, record_id: int) -> Response:
        with self.lock:
            self._delete(kind, self._live(kind, record_id), "api")
        return self._ok({"id": record_id})

    def _search(self, kind: _Kind) -> Response:
        args = request.args
        term = args.get("term", "").strip()
        exact = {"true": True, "false": False, None: False}.get(args.get("exact_match"))
        if exact is None:
            raise _Invalid("Validation failed: exact_match: must be true or false")
        if len(term) < (1 if exact else 2):
            raise _Invalid("Validation failed: term: must be at least 2 characters long (1 with exact_match)")
        allowed = ("custom_fields", "email", "notes", "phone", "name") if kind is PERSONS else (
            "address", "custom_fields", "notes", "name")  # fmt: skip
        fields = args["fields"].split(",") if args.get("fields") else list(allowed)
        if not set(fields) <= set(allowed):
            raise _Invalid(f"Validation failed: fields: must be among {', '.join(allowed)}")
        limit = _query_int("limit", args.get("limit"), low=1, high=MAX_LIMIT) or 100
        org_filter = _query_int("organization_id", args.get("organization_id"))
        searchable = {f["field_code"] for f in self.person_fields if f["field_type"] in SEARCHABLE_TYPES}
        with self.lock:
            hits = []
            for rec in sorted(self._store(kind).values(), key=lambda r: r.id):
                if rec.deleted or (org_filter is not None and rec.values.get("org_id") != org_filter):
                    continue
                texts = _search_texts(rec.values, fields, searchable)
                score = max((_score(t, term.casefold(), exact) for t in texts), default=0.0)
                if score:
                    hits.append((score, rec))
            hits.sort(key=lambda h: (-h[0], h[1].id))
            offset = self._position(f"{kind.plural}_search", args.get("cursor"), (term, exact)) or 0
            end, cursor = offset + limit, None
            if end < len(hits):
                cursor = self._issue(
                    f"{kind.plural}_search", {"offset": end, "term": term}, (term, exact), end
                )
            items = [
                {"result_score": score, "item": self._search_item(kind, rec)}
                for score, rec in hits[offset:end]
            ]
        return self._ok({"items": items}, {"next_cursor": cursor})

    def _search_item(self, kind: _Kind, rec: Record) -> dict[str, Any]:
        v = rec.values
        item = {"id": rec.id, "type": kind.entity, "name": v["name"], "visible_to": v["visible_to"],
                "owner": {"id": v["owner_id"]}, "custom_fields": [], "notes": []}  # fmt: skip
        if kind is ORGS:
            return {**item, "address": (v.get("address") or {}).get("value")}
        org = self.organizations.get(v["org_id"]) if v.get("org_id") else None
        organization = {"id": org.id, "name": org.values["name"], "address": None} if org else None
        contacts = {"emails": [e["value"] for e in v["emails"]], "phones": [p["value"] for p in v["phones"]]}
        return {**item, **contacts, "organization": organization}

    # -- person fields --------------------------------------------------------------------------------

    def _fields_list(self) -> Response:
        limit = _query_int("limit", request.args.get("limit"), low=1, high=MAX_LIMIT) or 100
        with self.lock:
            offset = self._position("personFields", request.args.get("cursor"), ()) or 0
            end, cursor = offset + limit, None
            if end < len(self.person_fields):
                cursor = self._issue("personFields", {"offset": end}, (), end)
            return self._ok([dict(f) for f in self.person_fields[offset:end]], {"next_cursor": cursor})

    def _fields_get(self, field_code: str) -> Response:
        with self.lock:
            found = next((f for f in self.person_fields if f["field_code"] == field_code), None)
            if found is None:
                raise _NotFound("Field not found")
            return self._ok(dict(found))

    def _fields_create(self) -> Response:
        body = self._body()
        name, ftype, options = body.get("field_name"), body.get("field_type"), body.get("options")
        if not isinstance(name, str) or not 1 <= len(name.strip()) <= 255:
            raise _Invalid("Validation failed: field_name: required, 1 to 255 characters")
        if ftype not in CREATABLE_FIELD_TYPES:
            raise _Invalid(f"Validation failed: field_type: {json.dumps(ftype)} cannot be created")
        labeled = isinstance(options, list) and all(isinstance(o, dict) and isinstance(o.get("label"), str)
                                                    and o["label"] for o in options)  # fmt: skip
        if ftype in ("enum", "set") and not (labeled and options):
            raise _Invalid("Validation failed: options: enum and set fields need options [{label}]")
        if ftype not in ("enum", "set") and options is not None:
            raise _Invalid("Validation failed: options: only enum and set fields have options")
        labels = [o["label"] for o in options] if options else None
        with self.lock:
            return self._ok(dict(self.add_person_field(name.strip(), ftype, labels)))

    # -- v1: users/me and webhooks ------------------------------------------------------------------------

    def _users_me(self) -> Response:
        last_login = clocks.utcnow().strftime("%Y-%m-%d %H:%M:%S")  # v1 times: UTC without a zone
        return self._ok({
            "id": self.user_id, "name": "Sandbox Admin", "default_currency": "EUR", "locale": "en_US",
            "lang": 1, "email": "admin@leadbridge-sandbox.example", "phone": None, "activated": True,
            "last_login": last_login, "created": "2024-01-15 09:00:00", "modified": None,
            "has_created_company": True,
            "access": [{"app": "sales", "admin": True, "permission_set_id": "1"}],
            "active_flag": True, "timezone_name": "Europe/Berlin", "timezone_offset": "+01:00", "role_id": 1,
            "icon_url": None, "is_you": True, "is_deleted": False, "company_id": self.company_id,
            "company_name": "Leadbridge Sandbox", "company_domain": self.company_domain,
            "company_country": "DE", "company_industry": "Software",
            "language": {"language_code": "en", "country_code": "US"},
        })  # fmt: skip

    def _webhooks_list(self) -> Response:
        with self.lock:
            data = [_webhook_public(h) for h in self.webhooks.values()]
        return _json({"status": "ok", "success": True, "data": data}, 200)

    def _webhooks_create(self) -> Response:
        body = request.get_json(silent=True) if request.is_json else request.form.to_dict()  # JSON or form
        if not isinstance(body, dict):
            return _webhook_errors(400, {"body": ["invalid request body"]})
        required = ("subscription_url", "event_action", "event_object", "name")
        errors = {n: ["is required"] for n in required if not (isinstance(body.get(n), str) and body[n])}
        version, action, obj = body.get("version", "2.0"), body.get("event_action"), body.get("event_object")
        for name, ok, what in (
            ("event_action", action in (None, "", *EVENT_ACTIONS), "create|change|delete|*"),
            ("event_object", obj in (None, "", *EVENT_OBJECTS), "|".join(EVENT_OBJECTS)),
            ("version", version in ("1.0", "2.0"), "1.0|2.0"),
            ("http_auth_user", isinstance(body.get("http_auth_user") or "", str), "a string"),
            ("http_auth_password", isinstance(body.get("http_auth_password") or "", str), "a string"),
        ):
            if not ok:
                errors[name] = [f"must be {what}"]
        if "subscription_url" not in errors and not _loopback_url(body["subscription_url"]):
            # Pipedrive wants a public, reachable URL; this sandbox delivers to loopback only.
            errors["subscription_url"] = ["invalid or non-reachable URL"]
        if errors:
            return _webhook_errors(400, errors)
        with self.lock:
            if len(self.webhooks) >= MAX_WEBHOOKS:
                return _webhook_errors(
                    422, {"webhook": [f"limit of {MAX_WEBHOOKS} webhooks per user reached"]}
                )
            hook_id = self._webhook_ids.next()
            self.webhooks[hook_id] = hook = {
                "id": hook_id, "company_id": self.company_id, "owner_id": self.user_id,
                "user_id": self.user_id,
                "event_action": body["event_action"], "event_object": body["event_object"],
                "subscription_url": body["subscription_url"], "version": version, "is_active": 1,
                "add_time": _ms(clocks.utcnow()), "remove_time": None, "type": "general",
                "http_auth_user": body.get("http_auth_user") or None,
                "http_auth_password": None,  # never echoed
                "remove_reason": None, "last_delivery_time": None, "last_http_status": None,
                "admin_id": self.user_id, "name": body["name"],
                # private: delivery state
                "_password": body.get("http_auth_password") or "", "_first_failures": 0, "_banned_until": 0.0,
                "_last_ok": clocks.monotonic(), "_failed": False,
            }  # fmt: skip
            return _json({"status": "ok", "success": True, "data": _webhook_public(hook)}, 201)

    def _webhooks_delete(self, webhook_id: int) -> Response:
        with self.lock:
            if self.webhooks.pop(webhook_id, None) is None:
                return _webhook_errors(404, {"id": [f"Webhook with id {webhook_id} not found"]})
            self._pending = [p for p in self._pending if p.webhook_id != webhook_id]
        return _json({"status": "ok", "success": True}, 200)

    # -- events and deliveries --------------------------------------------------------------------------

    def _emit(self, kind: _Kind, action: str, entity_id: int, data: dict[str, Any] | None,
              previous: dict[str, Any] | None, source: str) -> None:  # fmt: skip
        """Queue one delivery per matching webhook (called under the lock; nothing is sent here)."""
        meta = {
            "action": action, "entity": kind.entity, "entity_id": str(entity_id), "id": str(uuid.uuid4()),
            "company_id": str(self.company_id), "correlation_id": str(uuid.uuid4()), "is_bulk_edit": False,
            "timestamp": _ms(clocks.utcnow()), "type": "general", "user_id": str(self.user_id),
            "version": "2.0", "change_source": source, "permitted_user_ids": [str(self.user_id)],
            "host": self.host,
        }  # fmt: skip
        event = json.loads(json.dumps({"meta": meta, "data": data, "previous": previous}))  # a frozen copy
        now = clocks.monotonic()
        for hook in self.webhooks.values():
            if hook["event_object"] not in (kind.entity, "*") or hook["event_action"] not in (action, "*"):
                continue
            if now < hook["_banned_until"]:
                lost = {
                    "webhook_id": hook["id"],
                    "event_id": meta["id"],
                    "action": action,
                    "entity": kind.entity,
                }
                self.lost.append({**lost, "entity_id": entity_id, "at": clocks.utcnow()})
                continue
            for _ in range(max(1, self.duplicate_deliveries)):
                self._pending.append(_Pending(hook["id"], event, 1, now))

    def pending_deliveries(self) -> int:
        """Deliveries queued (due now or waiting for a retry)."""
        with self.lock:
            return len(self._pending)

    def shuffle_pending(self, rng: random.Random | None = None) -> None:
        """Reorder the queued deliveries, as retries and Pipedrive's parallel senders do."""
        with self.lock:
            (rng or random.Random()).shuffle(self._pending)

    def deliver_due(self, *, workers: int = 1, rate: float | None = None) -> int:
        """POST every delivery whose time has come, now; returns the attempts made.

        :param workers: parallel senders (Pipedrive delivers concurrently); 1 sends in queue order.
        :param rate: at most this many deliveries started per real second (benchmarks).
        """
        now = clocks.monotonic()
        jobs = []
        with self.lock:
            self._remove_silent_webhooks(now)
            due = [p for p in self._pending if p.due <= now]  # queue order (see shuffle_pending)
            self._pending = [p for p in self._pending if p.due > now]
            for p in due:
                hook = self.webhooks.get(p.webhook_id)
                if hook is not None:
                    meta = {**p.event["meta"], "webhook_id": str(hook["id"]),
                            "webhook_owner_id": str(hook["owner_id"]), "attempt": p.attempt}  # fmt: skip
                    auth = (hook["http_auth_user"], hook["_password"]) if hook["http_auth_user"] else None
                    jobs.append((p, hook["subscription_url"], auth, {**p.event, "meta": meta}))
        started = time.perf_counter()

        def send(index: int) -> None:  # never holds the sandbox lock across HTTP
            pending, url, auth, payload = jobs[index]
            if rate:
                wait = started + index / rate - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)  # real time on purpose: a benchmark's offered load
            sent = time.perf_counter()
            try:
                resp = requests.post(url, json=payload, auth=auth, timeout=self.delivery_timeout,
                                     allow_redirects=False)  # fmt: skip
                status, error = resp.status_code, None
            except requests.RequestException as exc:  # a timeout or a refused connection
                status, error = None, f"{type(exc).__name__}: {exc}"
            with self.lock:
                self._settle(pending, status, error, payload, time.perf_counter() - sent)

        if workers <= 1:
            for i in range(len(jobs)):
                send(i)
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                list(pool.map(send, range(len(jobs))))
        return len(jobs)

    def _settle(
        self,
        pending: _Pending,
        status: int | None,
        error: str | None,
        payload: dict[str, Any],
        seconds: float | None = None,
    ) -> None:
        now = clocks.monotonic()
        attempt = pending.attempt
        self.deliveries.append(
            Delivery(
                pending.webhook_id,
                payload["meta"]["id"],
                attempt,
                status,
                clocks.utcnow(),
                payload,
                error,
                seconds,
            )
        )
        hook = self.webhooks.get(pending.webhook_id)
        if hook is None:
            return
        hook.update(last_delivery_time=_ms(clocks.utcnow()), last_http_status=status)
        if status is not None and 200 <= status < 300:
            hook.update(_first_failures=0, _last_ok=now, _failed=False)
            return
        hook["_failed"] = True
        if attempt == 1:
            hook["_first_failures"] += 1
            if hook["_first_failures"] >= BAN_AFTER_FAILURES:  # banned: new events are lost for 30 min
                hook.update(_banned_until=now + BAN_SECONDS, _first_failures=0)
        if attempt <= len(RETRY_DELAYS):
            due = now + RETRY_DELAYS[attempt - 1]
            self._pending.append(_Pending(pending.webhook_id, pending.event, attempt + 1, due))
        self._remove_silent_webhooks(now)

    def _remove_silent_webhooks(self, now: float) -> None:
        for hook_id, hook in list(self.webhooks.items()):
            if hook["_failed"] and now - hook["_last_ok"] >= DELETE_AFTER_SECONDS:
                del self.webhooks[hook_id]
                stamp = _ms(clocks.utcnow())
                self.removed_webhooks.append(
                    {
                        **_webhook_public(hook),
                        "is_active": 0,
                        "remove_time": stamp,
                        "remove_reason": "failed_deliveries",
                    }
                )
                self._pending = [p for p in self._pending if p.webhook_id != hook_id]

    def is_banned(self, webhook_id: int) -> bool:
        with self.lock:
            hook = self.webhooks.get(webhook_id)
            return hook is not None and clocks.monotonic() < hook["_banned_until"]

    def start_delivery_thread(self, interval: float = 0.2) -> None:
        """Deliver in the background every ``interval`` real seconds (the demo)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop = stop = threading.Event()

        def run() -> None:
            while not stop.wait(interval):
                try:
                    self.deliver_due()
                except Exception:  # keep delivering after a bug in one round
                    log.exception("pipedrive sandbox: webhook delivery round failed")

        self._thread = threading.Thread(target=run, name="pipedrive-webhooks", daemon=True)
        self._thread.start()

    def stop_delivery_thread(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    # -- test knobs: what a salesperson does in Pipedrive's UI (change_source "app") -----------------------

    def _knob(self, kind: _Kind, fields: dict[str, Any], existing: Record | None) -> dict[str, Any]:
        if "custom" in fields:
            fields["custom_fields"] = {**fields.get("custom_fields", {}), **(fields.pop("custom") or {})}
        if "custom_fields" in fields and kind is PERSONS:
            fields["custom_fields"] = self._custom_by_name(fields["custom_fields"])
        try:
            return self._validate(kind, fields, existing)
        except _Invalid as exc:
            raise ValueError(str(exc)) from None

    def _custom_by_name(self, custom: dict[str, Any]) -> dict[str, Any]:
        """``{key or field name: value}`` → ``{key: value}``; enum/set labels become option ids."""
        out = {}
        for name, value in custom.items():
            definition = self._field(name)
            labels = {o["label"]: o["id"] for o in definition["options"] or []}
            if definition["field_type"] == "enum" and isinstance(value, str):
                value = labels[value]
            elif definition["field_type"] == "set" and isinstance(value, list):
                value = [labels.get(v, v) for v in value]
            out[definition["field_code"]] = value
        return out

    def add_organization(self, name: str, **fields: Any) -> Record:
        with self.lock:
            return self._create(ORGS, self._knob(ORGS, {"name": name, **fields}, None), "app")

    def add_person(self, name: str, email: str | None, *, org_name: str | None = None,
                   custom: dict[str, Any] | None = None, **fields: Any) -> Record:  # fmt: skip
        """A person as a salesperson types it in (``org_name``: the first organization of that name, or
        a new one); ``custom`` maps field keys or names to values (enum labels allowed)."""
        with self.lock:
            if org_name is not None:
                fields["org_id"] = (
                    self.organizations.find("name", org_name) or self.add_organization(org_name)
                ).id
            if email is not None:
                fields.setdefault("emails", [{"value": email, "primary": True, "label": "work"}])
            return self._create(
                PERSONS, self._knob(PERSONS, {"name": name, "custom": custom, **fields}, None), "app"
            )

    def update_person(self, person_id: int, **fields: Any) -> Record:
        with self.lock:
            rec = self._live(PERSONS, person_id)
            return self._update(PERSONS, rec, self._knob(PERSONS, fields, rec), "app")

    def delete_person(self, person_id: int) -> None:
        with self.lock:
            self._delete(PERSONS, self._live(PERSONS, person_id), "app")

    def add_deal(self, title: str, person_id: int | None, **fields: Any) -> Record:
        with self.lock:
            return self._create(
                DEALS, self._knob(DEALS, {"title": title, "person_id": person_id, **fields}, None), "app"
            )

    def update_deal(self, deal_id: int, **fields: Any) -> Record:
        with self.lock:
            rec = self._live(DEALS, deal_id)
            return self._update(DEALS, rec, self._knob(DEALS, fields, rec), "app")

    def delete_deal(self, deal_id: int) -> None:
        with self.lock:
            self._delete(DEALS, self._live(DEALS, deal_id), "app")

    def add_person_field(
        self, name: str, field_type: str, options: list[str] | None = None
    ) -> dict[str, Any]:
        """Create a custom person field (as an admin does in Settings); returns its v2 definition."""
        with self.lock:
            choices = (
                None if options is None else [{"id": self._option_ids.next(), "label": o} for o in options]
            )
            definition = {"field_name": name, "field_code": secrets.token_hex(20), "field_type": field_type,
                          "options": choices, "is_custom_field": True, "is_optional_response_field": False,
                          "subfields": None}  # fmt: skip
            self.person_fields.append(definition)
            return definition

    def _field(self, name_or_key: str) -> dict[str, Any]:
        with self.lock:
            for f in sorted(self.person_fields, key=lambda f: f["field_code"] != name_or_key):  # keys first
                if name_or_key in (f["field_code"], f["field_name"]):
                    return f
        raise KeyError(f"no person field {name_or_key!r}")

    def field_key(self, name: str) -> str:
        """The key (40 hex characters for a custom field) of the person field called ``name``."""
        return str(self._field(name)["field_code"])

    def option_id(self, field_name: str, label: str) -> int:
        for option in self._field(field_name)["options"] or []:
            if option["label"] == label:
                return int(option["id"])
        raise KeyError(f"person field {field_name!r} has no option {label!r}")

    def person_custom(self, person_id: int, field_name: str) -> Any:
        with self.lock:
            return self.persons[person_id].values["custom_fields"].get(self.field_key(field_name))

    def seed_demo(self, count: int = 12) -> None:
        """Believable demo data, with duplicate e-mails and organization names (Pipedrive allows both)."""
        first, last = (
            ["Jane", "Marek", "Aino", "Tomás", "Priya", "Lena"],
            ["Doe", "Novak", "Virtanen", "Raman"],
        )
        # Names of its own, as the addresses: another demo vendor's "Acme Oy" is another company.
        orgs = ["Fjord Analytics Oy", "Kettle & Co GmbH", "Blue Harbor Ltd", "Fjord Analytics Oy"]
        for i in range(count):
            f, la = first[i % len(first)], last[i % len(last)]
            # Its own domain: the other demo vendors' people are other people (a shared address would
            # be matched, not created, by their connectors).
            email = f"{f}.{la}@pipedrive-demo.example".lower() if i % 5 else "jane.doe@pipedrive-demo.example"
            custom = {"Segment": "Gold" if i % 2 else "Silver"} if i % 3 else None
            person = self.add_person(f"{f} {la}", email, org_name=orgs[i % len(orgs)], custom=custom)
            if i % 4 == 0:
                self.add_deal(f"{orgs[i % len(orgs)]} licence {i}", person.id, value=1000 + 250 * i)
        self.add_organization("Fjord Analytics Oy")  # a second one of that name, with nobody in it


# -- helpers --------------------------------------------------------------------------------------------


def _t(when: datetime | None) -> str | None:
    """A v2 timestamp: RFC 3339, whole seconds, ``Z``."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if when else None


def _ms(when: datetime) -> str:
    """Webhook meta and v1 webhook-object timestamps: milliseconds, ``Z``."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _parse_time(value: str, name: str) -> datetime:
    if not isinstance(value, str) or not RFC3339.match(value):
        raise _Invalid(f"Validation failed: {name}: must be an RFC 3339 date-time (2025-01-01T10:20:00Z)")
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def _query_int(name: str, value: str | None, *, low: int = 0, high: int | None = None) -> int | None:
    if value is None:
        return None
    if not re.fullmatch(r"\d+", value) or int(value) < low or (high is not None and int(value) > high):
        raise _Invalid(
            f"Validation failed: {name}: must be an integer" + (f" from {low} to {high}" if high else "")
        )
    return int(value)


def _custom_keys(value: str | None) -> set[str] | None:
    keys = set(value.split(",")) if value else None
    if keys is not None and len(keys) > 15:
        raise _Invalid("Validation failed: custom_fields: at most 15 keys")
    return keys


def _contacts_ok(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(c, dict) and isinstance(c.get("value"), str) and isinstance(c.get("primary", False), bool)
        and isinstance(c.get("label", ""), str) and set(c) <= {"value", "primary", "label"} for c in value
    )  # fmt: skip


def _check(name: str, tag: str, value: Any) -> Any:
    """Pipedrive v2's strict typing: ``"1"`` is not a number and ``0``/``1`` are not booleans."""
    if tag.endswith("?"):
        if value is None:
            return None
        tag = tag[:-1]
    is_str = isinstance(value, str)
    ok = {
        "str": is_str, "int": _is_int(value), "num": _is_num(value), "object": isinstance(value, dict),
        "ints": isinstance(value, list) and all(_is_int(v) for v in value),
        "visible_to": _is_int(value) and value in VISIBLE_TO, "marketing": value in MARKETING_STATUSES,
        "deal_status": value in DEAL_STATUSES, "currency": is_str and re.fullmatch(r"[A-Z]{3}", value),
        "date": is_str and DATE.match(value), "time": is_str and RFC3339.match(value),
        "contacts": _contacts_ok(value),
    }[tag]  # fmt: skip
    if not ok:
        raise _Invalid(f"Validation failed: {name}: invalid value {json.dumps(value)} (expected {tag})")
    if tag == "contacts":
        return [{"value": c["value"], "primary": c.get("primary", i == 0), "label": c.get("label", "work")}
                for i, c in enumerate(value)]  # fmt: skip
    return value


def _check_custom_value(definition: dict[str, Any], value: Any) -> Any:
    """A v2 custom value by field type: option id(s) for enum/set, objects for money, address, ranges."""
    if value is None:
        return None
    ftype, is_str, is_obj = definition["field_type"], isinstance(value, str), isinstance(value, dict)
    options = {o["id"] for o in definition["options"] or []}

    def pair(pattern: re.Pattern[str]) -> bool:
        return is_obj and all(pattern.match(str(value.get(k, ""))) for k in ("start", "end"))

    ok = {
        "varchar": is_str and len(value) <= 255, "varchar_auto": is_str and len(value) <= 255, "text": is_str,
        "phone": is_str, "double": _is_num(value), "date": is_str and DATE.match(value),
        "time": is_str and TIME.match(value), "daterange": pair(DATE), "timerange": pair(TIME),
        "monetary": is_obj and _is_num(value.get("value")) and isinstance(value.get("currency"), str),
        "enum": _is_int(value) and value in options,
        "set": isinstance(value, list) and all(_is_int(v) and v in options for v in value),
        "address": is_obj and isinstance(value.get("value"), str),
        "org": _is_int(value), "people": _is_int(value), "user": _is_int(value),
    }.get(ftype, True)  # fmt: skip
    if not ok:
        raise _Invalid(f"Validation failed: custom_fields: {json.dumps(value)} is not a {ftype} value "
                       f"for {definition['field_name']}")  # fmt: skip
    return value


def _derive_names(values: dict[str, Any], existing: Record | None) -> None:
    """``name`` is first and last name together; a name alone is split at its first space."""
    parts = {"first_name", "last_name"} & set(values)
    if "name" in values and not parts:
        first, _, last = values["name"].strip().partition(" ")
        values["first_name"], values["last_name"] = first or None, last or None
    elif parts and "name" not in values:
        old = existing.values if existing else {}
        first, last = (values.get(k, old.get(k)) or "" for k in ("first_name", "last_name"))
        values["name"] = f"{first} {last}".strip()


def _builtin_person_fields() -> list[dict[str, Any]]:
    def builtin(name: str, code: str, ftype: str, options: list[Any] | None = None) -> dict[str, Any]:
        return {"field_name": name, "field_code": code, "field_type": ftype, "options": options,
                "is_custom_field": False, "is_optional_response_field": code == "marketing_status",
                "subfields": None}  # fmt: skip

    statuses = [{"id": s, "label": s.replace("_", " ").capitalize()} for s in MARKETING_STATUSES]
    return [
        builtin("Name", "name", "varchar"), builtin("First name", "first_name", "varchar"),
        builtin("Last name", "last_name", "varchar"), builtin("Email", "emails", "varchar"),
        builtin("Phone", "phones", "phone"), builtin("Organization", "org_id", "org"),
        builtin("Owner", "owner_id", "user"), builtin("Job title", "job_title", "varchar"),
        builtin("Marketing status", "marketing_status", "enum", statuses),
        builtin("Visible to", "visible_to", "visible_to"), builtin("Labels", "label_ids", "set", []),
        builtin("Person created", "add_time", "date"), builtin("Update time", "update_time", "date"),
    ]  # fmt: skip


def _previous(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The old values of what changed (custom fields nested under ``custom_fields``)."""
    previous = {
        k: v for k, v in before.items() if k not in ("custom_fields", "update_time") and after.get(k) != v
    }
    old, new = before.get("custom_fields") or {}, after.get("custom_fields") or {}
    changed = {k: old.get(k) for k in {**old, **new} if old.get(k) != new.get(k)}
    return {**previous, "custom_fields": changed} if changed else previous


def _sort_key(sort_by: str) -> Callable[[Record], tuple[Any, ...]]:
    if sort_by == "update_time":
        return lambda r: (r.updated_at, r.id)
    if sort_by == "add_time":
        return lambda r: (r.created_at, r.id)
    return lambda r: (r.id,)


def _search_texts(values: dict[str, Any], fields: list[str], searchable: set[str]) -> list[str]:
    texts = [values.get("name") or ""] if "name" in fields else []
    texts += [e["value"] for e in values.get("emails", [])] if "email" in fields else []
    texts += [p["value"] for p in values.get("phones", [])] if "phone" in fields else []
    texts += [values["notes"]] if "notes" in fields and values.get("notes") else []
    texts += [values["address"].get("value", "")] if "address" in fields and values.get("address") else []
    if "custom_fields" in fields:  # only text-like custom fields are searchable
        custom = (values.get("custom_fields") or {}).items()
        texts += [
            v["value"] if isinstance(v, dict) else str(v)
            for k, v in custom
            if k in searchable and v is not None
        ]
    return texts


def _score(text: str, wanted: str, exact: bool) -> float:
    text = text.strip().casefold()  # exact_match is case-insensitive too
    if exact or wanted not in text:
        return 1.0 if text == wanted else 0.0
    return round(len(wanted) / max(len(text), 1), 4)


def _window_hit(hits: deque[float], now: float, limit: int, window: float) -> tuple[bool, int, int]:
    """A rolling-window limiter: (allowed, remaining, seconds until the window frees a slot)."""
    while hits and hits[0] <= now - window:
        hits.popleft()
    if len(hits) >= limit:
        return False, 0, max(1, math.ceil(hits[0] + window - now))
    hits.append(now)
    return True, limit - len(hits), max(1, math.ceil(hits[0] + window - now))


def _loopback_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        return (
            parts.scheme in ("http", "https") and (parts.hostname or "") in LOOPBACK_HOSTS and parts.port != 0
        )
    except ValueError:
        return False


def _webhook_public(hook: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in hook.items() if not k.startswith("_")}


def _webhook_errors(status: int, errors: dict[str, list[str]]) -> Response:
    """v1 webhook errors (the spec's ``WebhooksBadRequestResponse``; the 422 body is assumed alike)."""
    return _json({"status": "error", "success": False, "errors": errors}, status)


def _json(body: Any, status: int) -> Response:
    resp = jsonify(body)
    resp.status_code = status
    return resp
