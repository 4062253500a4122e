"""PlanMillSandbox: PlanMill REST API 1.5 on loopback, faithful where the connector depends on it.

Imitated (see shared/vendor-apis/planmill.md, "The sandbox must imitate"):

* ``/{instance}/api/oauth2/{token,authorize,revoke,tokeninfo,userinfo}``: client credentials,
  authorization code and refresh grants; client auth in the form body **or** HTTP Basic; one live
  refresh token per (client, user); access tokens live ``token_lifetime`` seconds (3600).
* ``/{instance}/api/1.5/{me,accounts,contacts,actions,campaigns,enumerations,hooks,batch}`` with
  ``/meta`` variants; collection paths with or without a trailing slash.
* 201 ``{"id": n}`` on create, 204 on update/delete, bare arrays on lists, objects on single GETs.
* ``rowcount`` (default 100) / 1-based ``nextrows`` with the **wrap-around** quirk (asked past the
  end, the collection comes again from the start), ``sort``/``order``.
* Filters ``searchkey`` (case-insensitive substring over name, e-mail, first and last name),
  ``campaigns``, ``account``, ``interval``/``intervalstart``/``intervalfinish`` (colon-less offsets).
* Bodies validated with PlanMill's ``*_post``/``*_postId`` schemas: 400 ``00018`` with ``fields``.
* Duplicate e-mails and account names allowed; errors as ``{"message", "code"}``.

Knobs for what PlanMill does not document (section 9): ``expired_status`` (401 or 400),
``token_expires_in`` (send ``expires_in`` or not), ``accounts_interval`` (whether ``/accounts``
honours a modification interval), ``max_rowcount``, ``retry_after`` on 429, ``hidden_fields`` and
``no_access`` (rights), ``reject_account_location`` (the Zapier-era 400), ``hooks_need_right``.
"""

from __future__ import annotations

import base64
import itertools
import re
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

import jsonschema
import requests
from flask import Response, jsonify, redirect, request
from leadbridge import clock as clocks
from leadbridge.sandbox import Sandbox

from .data import item_properties, load, schema

INSTANCE_TZ = timezone(timedelta(hours=2))  # the instance's default time zone (Helsinki winter time)
DT_FORMAT = "%Y-%m-%dT%H:%M:%S.%f%z"
RESOURCES = ("accounts", "contacts", "actions", "campaigns")
POST_SCHEMAS = {
    "accounts": ("account_post.schema", "account_postId.schema"),
    "contacts": ("contact_post.schema", "contact_postId.schema"),
    "actions": ("action1_5.schema", "action1_5.schema"),
}
INTERVALS = {
    "contacts": {"Person.Modified": "modified", "Person.Created": "created"},
    "actions": {
        "modified": "modified",
        "created": "created",
        "start": "start",
        "dueDate": "dueDate",
        "Action.FinishDate": "finish",
    },
}
META_SAMPLES = {
    "accounts": "account_meta1_5.sample",
    "contacts": "contact_meta1_5.sample",
    "actions": "action_meta1_5.sample",
}
SEARCH_COLUMNS = ("name", "email", "firstName", "lastName", "subject")
AUDIT = ("created", "createdBy", "modified", "modifiedBy")
INTERNAL_HEADER = "X-Sandbox-Internal"


def format_dt(value: datetime) -> str:
    local = value.astimezone(INSTANCE_TZ)
    return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}" + local.strftime("%z")


def parse_dt(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value, DT_FORMAT)
    except ValueError:
        return None


@dataclass(slots=True)
class Token:
    client_id: str
    user_id: int
    expires_at: datetime
    generation: int


class PlanMillError(Exception):
    def __init__(self, status: int, message: str, code: str, fields: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.fields = status, message, code, dict(fields or {})

    def response(self) -> Response:
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.fields:
            body["fields"] = self.fields
        resp = jsonify(body)
        resp.status_code = self.status
        resp.headers["Content-Type"] = "application/json;charset=UTF-8"
        return resp


class PlanMillSandbox(Sandbox):
    """PlanMill on loopback. Seeded from the vendor samples unless ``seed=False``."""

    name = "planmill"

    def __init__(
        self,
        *,
        instance: str = "acme",
        client_id: str = "PlanMill.client.1001.AbCd",
        client_secret: str = "sandbox-secret-1001",  # noqa: S107 - a loopback sandbox's own secret
        token_lifetime: float = 3600.0,
        token_expires_in: bool = True,
        expired_status: int = 401,
        wrap_around: bool = True,
        default_rowcount: int = 100,
        max_rowcount: int | None = None,
        accounts_interval: str | None = None,
        retry_after: float | None = 1.0,
        reject_account_location: bool = False,
        hooks_need_right: bool = False,
        rate_limit: tuple[int, float] | None = None,
        latency: float = 0.0,
        quota: int | None = None,
        seed: bool = True,
    ) -> None:
        self.instance = instance
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_lifetime = token_lifetime
        self.token_expires_in = token_expires_in
        self.expired_status = expired_status
        self.wrap_around = wrap_around
        self.default_rowcount = default_rowcount
        self.max_rowcount = max_rowcount
        self.accounts_interval = accounts_interval
        self.retry_after = retry_after
        self.reject_account_location = reject_account_location
        self.hooks_need_right = hooks_need_right
        #: API calls allowed per UTC day (None: unlimited); PlanMill publishes none, so a knob
        self.quota = quota
        self.quota_used = 0
        self.user: dict[str, Any] = {
            "firstName": "Sandra",
            "lastName": "Sandbox",
            "photo": None,
            "currency": 1,
            "language": "en",
            "effortUnit": 2,
            "id": 2843684,
        }
        self.records: dict[str, dict[int, dict[str, Any]]] = {r: {} for r in RESOURCES}
        self.members: dict[int, set[int]] = {}
        self.hooks: dict[int, dict[str, Any]] = {}
        self.deliveries: list[tuple[str, int | None]] = []
        self.tokens: dict[str, Token] = {}
        self.refresh_tokens: dict[tuple[str, int], str] = {}
        self.codes: dict[str, tuple[str, str]] = {}
        self.grants = 0
        self._search_cache: dict[int, str] = {}
        self._expire_countdown: int | None = None
        self.hidden_fields: dict[str, set[str]] = {}
        self.no_access: set[tuple[str, int]] = set()
        self.clock: Callable[[], datetime] = clocks.utcnow
        #: (method, path, query, JSON body) of every API request, for schema checks in tests
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        self._ids = itertools.count(3000000)
        self._id_lock = threading.Lock()
        self._list_fields = {
            "contacts": item_properties("contact_getAll.schema"),
            "accounts": item_properties("account_getAll.schema"),
        }
        super().__init__(rate_limit=rate_limit, latency=latency)
        if seed:
            self.seed_samples()

    # -- the Sandbox contract --------------------------------------------------------------------

    def connection_settings(self, base_url: str) -> tuple[dict[str, Any], dict[str, str]]:
        return (
            {
                "instance": self.instance,
                "client_id": self.client_id,
                "action_title": "Sent from leadbridge ({company})",
            },
            {"client_secret": self.client_secret},
        )

    def bad_connection_settings(self, base_url: str) -> tuple[dict[str, Any], dict[str, str]]:
        settings, _ = self.connection_settings(base_url)
        return settings, {"client_secret": "not-the-secret"}

    def add_contacts(self, count: int, *, with_email: bool = True) -> list[str]:
        account = self.add_account(f"Conformance account {next(self._ids)}")
        ids = []
        for _ in range(count):
            n = next(self._ids)
            email = f"person{n}@example.com" if with_email else None
            ids.append(
                str(self.add_contact(email, account=account, firstName="Test", lastName=f"Person {n}"))
            )
        return ids

    def contact_count(self) -> int:
        return len(self.records["contacts"])

    def company_count(self) -> int:
        return len(self.records["accounts"])

    def seed_samples(self) -> None:
        """The vendor's own sample rows (plus the two accounts its contacts point at)."""
        for row in load("account_array1_5.sample"):
            self.records["accounts"][row["id"]] = dict(row)
        for row in load("contact_array1_5.sample"):
            account = row["account"]
            if account not in self.records["accounts"]:
                self.records["accounts"][account] = self._new_row(
                    "accounts", {"name": row["accountName"], "type": row.get("accountType") or 8}, account
                )
            self.records["contacts"][row["id"]] = dict(row)
        for row in load("campaign_array1_5.sample"):
            self.records["campaigns"][row["id"]] = dict(row)
            self.members.setdefault(row["id"], set())
        self.members[2001] = {3574, 1534}
        for row in load("action_array1_5.sample"):
            self.records["actions"][row["id"]] = dict(row)

    def seed_demo(self) -> None:
        """A believable tenant: a few accounts, contacts and a campaign to import."""
        names = ["Acme Oy", "Northwind Ltd", "Vandelay Oy", "Kumpula Analytics"]
        accounts = [self.add_account(n, website=f"https://{n.split()[0].lower()}.example") for n in names]
        people = []
        first = ["Aino", "Mikko", "Laura", "Jussi", "Emma", "Olli", "Sofia", "Ville", "Helmi", "Eero"]
        for i in range(24):
            f = first[i % len(first)]
            email = (
                None if i % 8 == 7 else f"{f.lower()}.planmill{i}@{names[i % 4].split()[0].lower()}.example"
            )
            people.append(
                self.add_contact(
                    email, account=accounts[i % 4], firstName=f, lastName=f"Demo {i}", title="Buyer"
                )
            )
        self.add_campaign("Spring webinar 2026", people[:16], type=3, status=1)
        self.add_campaign("Trade fair leads", people[12:], type=4, status=1)

    def rate_limit_response(self, retry_after: float) -> Response:
        resp = PlanMillError(429, "Too many requests", "00429").response()
        if self.retry_after is not None:
            resp.headers["Retry-After"] = str(max(1, round(retry_after)))
        return resp

    # -- helpers for tests and the demo ----------------------------------------------------------

    def _new_id(self) -> int:
        with self._id_lock:
            return next(self._ids)

    def _new_row(self, res: str, body: Mapping[str, Any], rid: int | None = None) -> dict[str, Any]:
        now = format_dt(self.clock())
        row = {**body, "id": rid or self._new_id()}
        row.update(
            {"created": now, "createdBy": "Sandbox, Sandra", "modified": now, "modifiedBy": "Sandbox, Sandra"}
        )
        if res == "accounts":
            row.setdefault("type", 8)
            row.setdefault("owner", self.user["id"])
            row.setdefault("passive", 0)
        if res == "contacts":
            row.setdefault("passive", 0)
            row.setdefault("firstName", "")
            account = self.records["accounts"].get(int(row["account"]))
            row["accountName"] = account["name"] if account else None
            row["accountType"] = account.get("type") if account else None
        return row

    def add_account(self, name: str, **fields: Any) -> int:
        with self.lock:
            row = self._new_row("accounts", {"name": name, **fields})
            self.records["accounts"][row["id"]] = row
            return int(row["id"])

    def add_contact(self, email: str | None, *, account: int, lastName: str = "Person", **fields: Any) -> int:
        with self.lock:
            row = self._new_row(
                "contacts", {"email": email, "account": account, "lastName": lastName, **fields}
            )
            self.records["contacts"][row["id"]] = row
            return int(row["id"])

    def add_campaign(self, name: str, contact_ids: Iterable[int], **fields: Any) -> int:
        with self.lock:
            cid = self._new_id()
            members = set(contact_ids)
            self.records["campaigns"][cid] = {
                "id": cid,
                "name": name,
                "type": fields.get("type", 1),
                "status": fields.get("status", 1),
                "start": format_dt(self.clock()),
                "finish": None,
                "responsible": self.user["id"],
                "members": len(members),
                "participated": 0,
                "notParticipated": 0,
                "registered": 0,
                "unsubscribed": 0,
                "cancelled": 0,
                "latestCreatedMails": None,
                "latestSentMails": None,
            }
            self.members[cid] = members
            return cid

    def expire_tokens_after(self, calls: int) -> None:
        """Let the next ``calls`` authenticated API calls through, then expire every token."""
        with self.lock:
            self._expire_countdown = calls

    def set_modified(self, res: str, rid: int, when: datetime) -> None:
        with self.lock:
            self.records[res][rid]["modified"] = format_dt(when)

    def find(self, res: str, **match: Any) -> list[dict[str, Any]]:
        with self.lock:
            return [
                dict(r) for r in self.records[res].values() if all(r.get(k) == v for k, v in match.items())
            ]

    def deliver(self, hook: str, res: str, rid: int) -> list[int | None]:
        """Send ``hook`` for record ``rid`` to every subscribed URL, once (PlanMill does not retry)."""
        with self.lock:
            row = dict(self.records[res].get(rid) or {})
            targets = [h for h in self.hooks.values() if h["hook"] == hook]
        statuses: list[int | None] = []
        for target in targets:
            payload = {
                "hook": hook,
                "eventUser": self.user["id"],
                "Id": rid,
                "subject": row.get("name") or row.get("lastName") or "",
                "resource": row,
            }
            try:
                status: int | None = requests.post(target["url"], json=payload, timeout=10).status_code
            except requests.RequestException:
                status = None  # only logged by PlanMill
            self.deliveries.append((target["url"], status))
            statuses.append(status)
        return statuses

    @property
    def page_size(self) -> int | None:
        """The largest ``rowcount`` honoured (PlanMill's real cap is undocumented); ``None``: no cap."""
        return self.max_rowcount

    @page_size.setter
    def page_size(self, value: int | None) -> None:
        self.max_rowcount = value

    # -- request pipeline ----------------------------------------------------------------------

    def _log_request(self) -> Response | None:
        if self._exempt():
            return None
        if self.quota is not None and "/api/1.5/" in request.path:
            with self.lock:
                self.quota_used += 1
                if self.quota_used > self.quota:
                    now = clocks.utcnow()
                    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
                    resp = PlanMillError(429, "Daily request quota exceeded", "00429").response()
                    resp.headers["Retry-After"] = str(int((midnight - now).total_seconds()) + 1)
                    return resp
        body = request.get_json(silent=True) if request.method in ("POST", "PUT") else None
        with self.lock:
            self.requests.append((request.method, request.path, request.args.to_dict(), body))
        return None

    def _exempt(self) -> bool:
        return super()._exempt() or request.headers.get(INTERNAL_HEADER) == "1"

    def error_response(self, status: int, code: str, message: str) -> Response:
        return PlanMillError(status, message, code).response()

    def setup_routes(self) -> None:
        app = self.app
        app.url_map.strict_slashes = False
        app.before_request(self._log_request)
        app.register_error_handler(PlanMillError, lambda e: e.response())
        oauth = "/<instance>/api/oauth2"
        api = "/<instance>/api/1.5"
        app.add_url_rule(f"{oauth}/token", view_func=self._token, methods=["POST"])
        app.add_url_rule(f"{oauth}/authorize", view_func=self._authorize, methods=["GET"])
        app.add_url_rule(f"{oauth}/revoke", view_func=self._revoke, methods=["POST"])
        app.add_url_rule(f"{oauth}/tokeninfo", view_func=self._tokeninfo, methods=["GET"])
        app.add_url_rule(f"{oauth}/userinfo", view_func=self._userinfo, methods=["GET"])
        app.add_url_rule(f"{api}/me", view_func=self._me, methods=["GET"])
        app.add_url_rule(f"{api}/enumerations", view_func=self._enumerations, methods=["GET"])
        app.add_url_rule(f"{api}/hooks", view_func=self._hooks, methods=["GET", "POST"])
        app.add_url_rule(f"{api}/hooks/<hid>", view_func=self._hook_delete, methods=["DELETE"])
        app.add_url_rule(f"{api}/batch", view_func=self._batch, methods=["POST"])
        app.add_url_rule(f"{api}/<res>", view_func=self._collection, methods=["GET", "POST"])
        app.add_url_rule(f"{api}/<res>/meta", view_func=self._meta, methods=["GET"])
        app.add_url_rule(f"{api}/<res>/<rid>", view_func=self._item, methods=["GET", "POST", "DELETE"])
        app.add_url_rule(f"{api}/<res>/<rid>/meta", view_func=self._item_meta, methods=["GET"])

    # -- OAuth2 ---------------------------------------------------------------------------------

    def _check_instance(self, instance: str) -> None:
        if instance != self.instance:
            raise PlanMillError(404, "Item not found", "00404")

    def _client_auth(self) -> tuple[str, str]:
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            try:
                cid, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                cid, secret = "", ""
            return cid, secret
        source = request.form if request.form else request.args
        return source.get("client_id", ""), source.get("client_secret", "")

    def _oauth_error(self, status: int, error: str, description: str) -> Response:
        resp = jsonify({"error": error, "error_description": description})
        resp.status_code = status
        return resp

    def _issue(self, client_id: str, *, with_refresh: bool) -> Response:
        access = secrets.token_hex(20)
        with self.lock:
            self.grants += 1
            self.tokens[access] = Token(
                client_id,
                int(self.user["id"]),
                clocks.utcnow() + timedelta(seconds=self.token_lifetime),
                self.token_generation,
            )
            body: dict[str, Any] = {"access_token": access, "token_type": "Bearer", "scope": "api"}
            if self.token_expires_in:
                body["expires_in"] = int(self.token_lifetime)
            if with_refresh:
                refresh = secrets.token_hex(20)
                # One live refresh token per (client, user): issuing one invalidates the previous.
                self.refresh_tokens[(client_id, int(self.user["id"]))] = refresh
                body["refresh_token"] = refresh
        resp = jsonify(body)
        resp.headers["Cache-Control"] = "no-store"
        return resp

    def _token(self, instance: str) -> Response:
        self._check_instance(instance)
        cid, secret = self._client_auth()
        if cid != self.client_id or not secrets.compare_digest(secret, self.client_secret):
            return self._oauth_error(401, "invalid_client", "Client authentication failed")
        grant = request.form.get("grant_type", "")
        if grant == "client_credentials":
            return self._issue(cid, with_refresh=False)
        if grant == "authorization_code":
            code = self.codes.pop(request.form.get("code", ""), None)
            if code is None or code[0] != cid or code[1] != request.form.get("redirect_uri", code[1]):
                return self._oauth_error(400, "invalid_grant", "Invalid authorization code")
            return self._issue(cid, with_refresh=True)
        if grant == "refresh_token":
            live = self.refresh_tokens.get((cid, int(self.user["id"])))
            if not live or request.form.get("refresh_token") != live:
                return self._oauth_error(400, "invalid_grant", "Invalid refresh token")
            return self._issue(cid, with_refresh=True)
        return self._oauth_error(400, "unsupported_grant_type", f"Unsupported grant type {grant!r}")

    def _authorize(self, instance: str) -> Any:
        self._check_instance(instance)
        args = request.args
        if args.get("response_type") != "code" or args.get("client_id") != self.client_id:
            return self._oauth_error(400, "invalid_request", "Unknown client or response type")
        redirect_uri = args.get("redirect_uri", "")
        code = secrets.token_hex(12)
        self.codes[code] = (self.client_id, redirect_uri)
        query = {"code": code, **({"state": args["state"]} if "state" in args else {})}
        return redirect(f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}{urlencode(query)}")

    def _revoke(self, instance: str) -> Response:
        self._check_instance(instance)
        cid, secret = self._client_auth()
        if cid != self.client_id or secret != self.client_secret:
            return self._oauth_error(401, "invalid_client", "Client authentication failed")
        token = request.args.get("token") or request.form.get("token", "")
        with self.lock:
            self.tokens.pop(token, None)
            for key, value in list(self.refresh_tokens.items()):
                if value == token:
                    del self.refresh_tokens[key]
        return jsonify({})

    def _tokeninfo(self, instance: str) -> Response:
        self._check_instance(instance)
        info = self.tokens.get(request.args.get("access_token", ""))
        if info is None:
            raise PlanMillError(401, "Unauthorized", "00401")
        remaining = int((info.expires_at - clocks.utcnow()).total_seconds())
        return jsonify(
            {"client_id": info.client_id, "user_id": info.user_id, "expires_in": max(0, remaining)}
        )

    def _userinfo(self, instance: str) -> Response:
        self._check_instance(instance)
        self._bearer()
        return jsonify(
            {"sub": str(self.user["id"]), "name": f"{self.user['firstName']} {self.user['lastName']}"}
        )

    def _bearer(self) -> Token:
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        with self.lock:
            info = self.tokens.get(token)
            if info is None:
                raise PlanMillError(401, "Unauthorized", "00401")
            if self._expire_countdown is not None:
                if self._expire_countdown <= 0:
                    self._expire_countdown = None
                    self.token_generation += 1
                else:
                    self._expire_countdown -= 1
            if info.generation != self.token_generation or info.expires_at <= clocks.utcnow():
                if self.expired_status == 400:
                    raise PlanMillError(400, "Invalid or expired access token", "00400")
                raise PlanMillError(401, "Access token expired", "00401")
        return info

    # -- API --------------------------------------------------------------------------------------

    def _guard(self, instance: str, res: str | None = None) -> None:
        self._check_instance(instance)
        self._bearer()
        if res is not None and res not in RESOURCES:
            raise PlanMillError(404, "Item not found", "00404")

    def _me(self, instance: str) -> Response:
        self._guard(instance)
        return jsonify(self.user)

    def _enumerations(self, instance: str) -> Response:
        self._guard(instance)
        meta = load("account_meta1_5.sample")
        name = request.args.get("name", "")
        for spec in meta["fields"].values():
            if spec.get("format") == name:
                return jsonify({name: {}})
        return jsonify(
            {
                "Enumeration values.Sales management.Accounts.Type": {
                    "0": "-",
                    "1": "Analyst",
                    "2": "Competitor",
                    "3": "Customer",
                    "5": "Investor",
                    "8": "Prospect",
                }
            }
        )

    def _view(self, res: str, row: Mapping[str, Any], *, listing: bool) -> dict[str, Any]:
        hidden = self.hidden_fields.get(res, set())
        allowed = self._list_fields.get(res) if listing else None
        return {k: v for k, v in row.items() if k not in hidden and (allowed is None or k in allowed)}

    def _collection(self, instance: str, res: str) -> Response:
        self._guard(instance, res)
        if request.method == "POST":
            body = self._json_body()
            if res in ("accounts", "actions") and isinstance(body, dict) and "id" in body:
                # Collection-type resources: a POST with an id in the body updates that record.
                rid = body.pop("id")
                self._update(res, self._parse_id(str(rid)), body)
                return Response(status=204)
            return self._create(res, body)
        with self.lock:
            rows = self._filter(res, list(self.records[res].values()))
            rows = self._sort(rows)
            page = self._page(rows)
            result = [self._view(res, r, listing=True) for r in page if (res, r["id"]) not in self.no_access]
        return self._json(result)

    def _json(self, body: Any, status: int = 200) -> Response:
        resp = jsonify(body)
        resp.status_code = status
        resp.headers["Content-Type"] = "application/json;charset=UTF-8"
        return resp

    def _json_body(self) -> Any:
        body = request.get_json(silent=True)
        if body is None:
            raise PlanMillError(400, "Request body is not valid JSON", "00002")
        return body

    def _parse_id(self, rid: str) -> int:
        if not re.fullmatch(r"[0-9]{1,12}", rid):
            raise PlanMillError(400, "ID in GET request URI was malformed", "00003")
        return int(rid)

    def _validate(self, res: str, body: Any, *, update: bool) -> None:
        doc = schema(POST_SCHEMAS[res][1 if update else 0])
        if res == "actions":
            doc = {**doc["definitions"]["actionSingle"], "definitions": doc["definitions"]}
        validator = jsonschema.validators.validator_for(doc)(doc)
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
        if errors:
            fields: dict[str, str] = {}
            for err in errors:
                key = ".".join(str(p) for p in err.path) or _missing_field(err.message) or "body"
                fields.setdefault(key, err.message[:200])
            raise PlanMillError(400, "Validation failed", "00018", fields)
        if res == "contacts" and "account" in body and int(body["account"]) not in self.records["accounts"]:
            raise PlanMillError(400, "Validation failed", "00018", {"account": "Account not found"})
        if (
            res == "accounts"
            and not update
            and self.reject_account_location
            and any(k.startswith(("billing", "shipping")) for k in body)
        ):
            raise PlanMillError(400, "Account location could not be saved", "00400")

    def _create(self, res: str, body: Any) -> Response:
        if res not in POST_SCHEMAS:
            raise PlanMillError(405, "Method not allowed", "00405")
        with self.lock:
            self._validate(res, body, update=False)
            campaign = body.pop("campaigns", None) if res == "contacts" else None
            row = self._new_row(res, body)
            self.records[res][row["id"]] = row
            if campaign is not None and int(campaign) in self.members:
                self.members[int(campaign)].add(row["id"])
        return self._json({"id": row["id"]}, 201)

    def _update(self, res: str, rid: int, body: Any) -> None:
        if res not in POST_SCHEMAS:
            raise PlanMillError(405, "Method not allowed", "00405")
        with self.lock:
            row = self.records[res].get(rid)
            if row is None:
                raise PlanMillError(404, "Item not found", "00404")
            if (res, rid) in self.no_access:
                raise PlanMillError(401, "No rights to this item", "00401")
            self._validate(res, body, update=True)
            campaign = body.pop("campaigns", None) if res == "contacts" else None
            if campaign is not None and int(campaign) in self.members:
                self.members[int(campaign)].add(rid)
            row.update(body)
            row["modified"] = format_dt(self.clock())
            self._search_cache.pop(id(row), None)
            if res == "contacts" and "account" in body:
                row["accountName"] = self.records["accounts"][int(body["account"])]["name"]

    def _item(self, instance: str, res: str, rid: str) -> Response:
        self._guard(instance, res)
        ident = self._parse_id(rid)
        if request.method == "POST":
            self._update(res, ident, self._json_body())
            return Response(status=204)
        with self.lock:
            row = self.records[res].get(ident)
            if row is None:
                raise PlanMillError(404, "Item not found", "00404")
            if (res, ident) in self.no_access:
                raise PlanMillError(401, "No rights to see this item", "00401")
            if request.method == "DELETE":
                self._search_cache.pop(id(self.records[res].pop(ident)), None)
                for members in self.members.values():
                    members.discard(ident)
                return Response(status=204)
            return self._json(self._view(res, row, listing=False))

    def _meta(self, instance: str, res: str) -> Response:
        self._guard(instance, res)
        if res not in META_SAMPLES:
            return self._json({"filters": [], "fields": {}})
        meta = load(META_SAMPLES[res])
        if res == "accounts" and self.accounts_interval:
            meta["filters"].append(
                {
                    "type": "interval",
                    "name": "interval",
                    "calendar": "yyyy-MM-dd'T'HH:mm:ss.SSSZ",
                    "values": {"Modified": self.accounts_interval},
                }
            )
        if res == "contacts":
            for flt in meta["filters"]:
                if flt.get("name") == "campaigns":
                    flt["values"] = {
                        "-1": "All",
                        **{str(k): c["name"] for k, c in self.records["campaigns"].items()},
                    }
        return self._json(meta)

    def _item_meta(self, instance: str, res: str, rid: str) -> Response:
        self._guard(instance, res)
        ident = self._parse_id(rid)
        if ident not in self.records[res]:
            raise PlanMillError(404, "Item not found", "00404")
        fields = load(META_SAMPLES[res])["fields"] if res in META_SAMPLES else {}
        return self._json(fields)

    # -- listing --------------------------------------------------------------------------------

    def _filter(self, res: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        args = request.args
        key = args.get("searchkey", "").strip().casefold()
        if key:
            rows = [r for r in rows if key in self._search_text(r)]
        if res == "contacts" and args.get("campaigns") not in (None, "", "-1"):
            members = self.members.get(self._int_arg("campaigns"), set())
            rows = [r for r in rows if r["id"] in members]
        if res == "contacts" and args.get("account") not in (None, "", "-1"):
            account = self._int_arg("account")
            rows = [r for r in rows if r.get("account") == account]
        names = ("interval", "intervalstart", "intervalfinish")
        if any(args.get(n) for n in names):
            intervals = dict(INTERVALS.get(res, {}))
            if res == "accounts" and self.accounts_interval:
                intervals[self.accounts_interval] = "modified"
            if res == "accounts" and not self.accounts_interval:
                return rows  # declared in the RAML, not honoured by this tenant
            if not all(args.get(n) for n in names):
                raise PlanMillError(400, "interval, intervalstart and intervalfinish go together", "00003")
            column = intervals.get(args["interval"])
            if column is None:
                raise PlanMillError(400, f"Unknown interval {args['interval']}", "00003")
            start, finish = parse_dt(args["intervalstart"]), parse_dt(args["intervalfinish"])
            if start is None or finish is None:
                # e.g. a "+" sent unescaped arrives as a space
                raise PlanMillError(500, "Invalid date pattern", "00500")
            rows = [r for r in rows if (t := parse_dt(r.get(column))) is not None and start <= t <= finish]
        return rows

    def _search_text(self, row: dict[str, Any]) -> str:
        """The searchable columns of a row, case-folded; cached until the row is written again."""
        text = self._search_cache.get(id(row))
        if text is None:
            text = "\x00".join(str(row.get(c) or "").casefold() for c in SEARCH_COLUMNS)
            self._search_cache[id(row)] = text
        return text

    def _int_arg(self, name: str) -> int:
        try:
            return int(request.args[name])
        except ValueError:
            raise PlanMillError(400, f"Parameter {name} is malformed", "00003") from None

    def _sort(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        column = request.args.get("sort") or "id"
        descending = request.args.get("order") == "1"

        def key(row: dict[str, Any]) -> tuple[Any, ...]:
            value = row.get(column)
            stamp = parse_dt(value)
            if stamp is not None:
                return (0, stamp.timestamp(), row["id"])
            if isinstance(value, int | float):
                return (0, float(value), row["id"])
            return (1 if value is None else 0, str(value or ""), row["id"])

        return sorted(rows, key=key, reverse=descending)

    def _page(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        count = self._int_arg("rowcount") if request.args.get("rowcount") else self.default_rowcount
        start = self._int_arg("nextrows") if request.args.get("nextrows") else 1
        count = max(1, count)
        if self.max_rowcount is not None:
            count = min(count, self.max_rowcount)
        start = max(1, start)
        if start > len(rows) and self.wrap_around:
            start = 1  # PlanMill's trap: past the end, the collection comes again from the start
        return rows[start - 1 : start - 1 + count]

    # -- hooks and batch --------------------------------------------------------------------------

    def _hooks(self, instance: str) -> Response:
        self._guard(instance)
        if self.hooks_need_right:
            raise PlanMillError(401, "No right to view user api key", "00401")
        if request.method == "GET":
            return self._json(list(self.hooks.values()))
        body = self._json_body()
        if not isinstance(body, dict) or not body.get("hook") or not body.get("url"):
            raise PlanMillError(400, "Validation failed", "00018", {"hook": "required", "url": "required"})
        hid = self._new_id()
        self.hooks[hid] = {
            "id": hid,
            "hook": body["hook"],
            "url": body["url"],
            "subject": body["hook"].replace(".", " ").title(),
            "eventUser": body.get("eventUser"),
            "eventProject": body.get("eventProject"),
        }
        return self._json({"id": hid}, 201)

    def _hook_delete(self, instance: str, hid: str) -> Response:
        self._guard(instance)
        if self.hooks.pop(self._parse_id(hid), None) is None:
            raise PlanMillError(404, "Item not found", "00404")
        return Response(status=204)

    def _batch(self, instance: str) -> Response:
        """Requests run in order; once one fails, every later one fails too (documented)."""
        self._guard(instance)
        items = self._json_body()
        if not isinstance(items, list) or len(items) > 50:
            raise PlanMillError(400, "Batch must be a list of at most 50 requests", "00018")
        client = self.app.test_client()
        results: list[dict[str, Any]] = []
        failed = False
        for item in items:
            if failed:
                results.append(
                    {"status": 424, "body": {"message": "Previous request failed", "code": "00424"}}
                )
                continue
            path = f"/{instance}/api/1.5/{str(item.get('destination', '')).lstrip('/')}"
            resp = client.open(
                path,
                method=str(item.get("method", "GET")).upper(),
                json=item.get("body"),
                headers={"Authorization": request.headers.get("Authorization", ""), INTERNAL_HEADER: "1"},
            )
            body = resp.get_json(silent=True)
            results.append({"status": resp.status_code, "body": body})
            failed = resp.status_code >= 400
        return self._json(results)


def _missing_field(message: str) -> str | None:
    found = re.match(r"'([^']+)' is a required property", message)
    return found.group(1) if found else None
