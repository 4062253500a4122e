"""ExampleCRM on loopback: a tiny but realistic JSON API for the example connector and the test kit.

The API (every ``/api`` route needs ``Authorization: Bearer <token>``):

* ``POST /oauth/token`` — client credentials (HTTP Basic or form fields) and rotating refresh tokens;
  access tokens live :attr:`ExampleSandbox.token_ttl` seconds; after
  :meth:`~leadbridge.sandbox.Sandbox.expire_tokens` old ones get 401 ``invalid_token``; after
  :meth:`ExampleSandbox.revoke_refresh_tokens` refreshes get 400 ``invalid_grant``.
* ``POST /oauth/revoke`` — RFC 7009 revocation of a refresh (and its access) token.
* ``GET /api/fields?object=contact|company`` — typed fields, custom ones included.
* ``GET /api/contacts?updated_since=&cursor=&limit=`` — ordered by ``(updated_at, id)``, opaque
  cursor, deleted records included with ``"deleted": true``. Same for ``GET /api/companies``.
* ``POST /api/contacts/batch`` — upsert by ``id`` or email (case-insensitive), at most 100 records,
  one result per record (``{"error": "REQUIRED_FIELD_MISSING", "field": "last_name"}`` on refusal).
* ``DELETE /api/contacts/<id>``; ``POST /api/companies`` (create one) and ``POST /api/companies/batch``
  (upsert by ``id`` or exact name).
* ``POST /api/actions``; ``GET /api/campaigns``; ``GET /api/campaigns/<id>/members?cursor=``.
* ``GET/POST /api/webhooks``, ``DELETE /api/webhooks/<id>`` — webhook subscriptions; deliveries are signed
  ``X-Example-Signature: sha256=<hex HMAC-SHA256 of the body>``.

Rate limits come from the base class's token bucket (429 with ``Retry-After``); every answer carries
``X-RateLimit-Limit/Remaining/Reset`` when a bucket is configured.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Response, jsonify, request
from leadbridge import clock as clocks
from leadbridge.sandbox import Sandbox

MAX_BATCH = 100
MAX_PAGE = 100
STAGES = ("subscriber", "lead", "customer")
INDUSTRIES = ("software", "retail", "manufacturing", "public_sector")

CONTACT_FIELDS: list[dict[str, Any]] = [
    {"name": "email", "label": "Email", "type": "email", "required": True},
    {"name": "first_name", "label": "First name", "type": "string"},
    {"name": "last_name", "label": "Last name", "type": "string", "required": True},
    {"name": "phone", "label": "Phone", "type": "phone"},
    {"name": "job_title", "label": "Job title", "type": "string"},
    {"name": "lifecycle_stage", "label": "Lifecycle stage", "type": "picklist", "options": list(STAGES)},
    {"name": "score", "label": "Score", "type": "integer"},
    {"name": "newsletter", "label": "Newsletter", "type": "checkbox"},
    {"name": "birthday", "label": "Birthday", "type": "date"},
    {"name": "notes", "label": "Notes", "type": "longtext"},
    {"name": "created_at", "label": "Created", "type": "datetime", "read_only": True},
    {
        "name": "cf_industry",
        "label": "Industry",
        "type": "picklist",
        "custom": True,
        "options": list(INDUSTRIES),
    },
]
COMPANY_FIELDS: list[dict[str, Any]] = [
    {"name": "name", "label": "Name", "type": "string", "required": True},
    {"name": "domain", "label": "Website domain", "type": "url"},
    {"name": "phone", "label": "Phone", "type": "phone"},
    {"name": "cf_employees", "label": "Employees", "type": "integer", "custom": True},
]
_WRITABLE = {
    "contact": {f["name"] for f in CONTACT_FIELDS if not f.get("read_only")},
    "company": {f["name"] for f in COMPANY_FIELDS if not f.get("read_only")},
}
_OPTIONS = {f["name"]: set(f["options"]) for f in CONTACT_FIELDS if "options" in f}


@dataclass
class Record:
    """One vendor-side record (contact or company)."""

    id: int
    values: dict[str, Any]
    updated_at: datetime
    created_at: datetime
    deleted: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            **self.values,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "deleted": self.deleted,
        }


@dataclass
class Campaign:
    id: int
    name: str
    members: list[int] = field(default_factory=list)


class ExampleSandbox(Sandbox):
    """The ExampleCRM vendor API; state lives in memory, one instance per test or demo.

    :param page_size: the most records one list page returns (the vendor's maximum is 100).
    :param token_ttl: seconds an access token lives.
    """

    name = "example"
    client_id = "example-client"
    client_secret = "example-secret-s3cr3t"
    webhook_secret = "example-webhook-s3cr3t"

    def __init__(
        self,
        *,
        rate_limit: tuple[int, float] | None = None,
        latency: float = 0.0,
        page_size: int = MAX_PAGE,
        token_ttl: int = 3600,
    ) -> None:
        self.page_size = page_size
        self.token_ttl = token_ttl
        self.contacts: dict[int, Record] = {}
        self.companies: dict[int, Record] = {}
        self.actions: list[dict[str, Any]] = []
        self.campaigns: dict[int, Campaign] = {}
        self.webhooks: list[dict[str, Any]] = []
        self.tokens: dict[str, tuple[int, datetime]] = {}  # token -> (generation, expires_at)
        self.refresh_tokens: dict[str, str] = {}  # refresh token -> the access token issued with it
        self.token_requests = 0
        self._ids = 1000
        self._now: datetime | None = None
        self._id_lock = threading.Lock()
        super().__init__(rate_limit=rate_limit, latency=latency)

    # -- control methods (tests and the demo call these directly) -----------------------------

    def set_now(self, when: datetime | None) -> None:
        """Freeze the vendor clock at ``when`` (``None``: real time again); drives ``updated_at``."""
        with self.lock:
            self._now = when

    def now(self) -> datetime:
        """The vendor clock."""
        return self._now or clocks.utcnow()

    def add_contacts(self, count: int, *, with_email: bool = True) -> list[str]:
        """Create ``count`` contacts vendor-side (as if a salesperson typed them); return their ids."""
        ids = []
        with self.lock:
            for _ in range(count):
                n = self._next_id()
                values: dict[str, Any] = {
                    "email": f"person{n}@example.net" if with_email else None,
                    "first_name": "Person",
                    "last_name": f"Number {n}",
                    "lifecycle_stage": "lead",
                    "score": n % 50,
                }
                self.contacts[n] = self._new(n, values)
                ids.append(str(n))
        return ids

    def add_company(self, name: str, **values: Any) -> str:
        """Create one company vendor-side; return its id."""
        with self.lock:
            n = self._next_id()
            self.companies[n] = self._new(n, {"name": name, **values})
            return str(n)

    def add_campaign(self, name: str, member_ids: list[str]) -> str:
        """Create a campaign whose members are the given contact ids; return its id."""
        with self.lock:
            n = self._next_id()
            self.campaigns[n] = Campaign(n, name, [int(i) for i in member_ids])
            return str(n)

    def contact(self, remote_id: str) -> dict[str, Any] | None:
        """A contact as the API would return it (deleted ones included), or ``None``."""
        with self.lock:
            rec = self.contacts.get(int(remote_id))
            return rec.as_json() if rec else None

    def find_contact(self, email: str) -> dict[str, Any] | None:
        """The live contact with this email (case-insensitive), or ``None``."""
        with self.lock:
            rec = self._by_email(email)
            return rec.as_json() if rec else None

    def contact_count(self) -> int:
        """Live (not deleted) contacts."""
        with self.lock:
            return sum(1 for r in self.contacts.values() if not r.deleted)

    def company_count(self) -> int:
        """Live (not deleted) companies."""
        with self.lock:
            return sum(1 for r in self.companies.values() if not r.deleted)

    def connection_settings(self, base_url: str) -> tuple[dict[str, Any], dict[str, str]]:
        """Settings and secrets that authenticate against this sandbox."""
        return (
            {"client_id": self.client_id, "action_title": "Web lead from leadbridge ({company})"},
            {"client_secret": self.client_secret, "webhook_secret": self.webhook_secret},
        )

    def bad_connection_settings(self, base_url: str) -> tuple[dict[str, Any], dict[str, str]]:
        """Settings whose client secret the token endpoint refuses."""
        return {"client_id": self.client_id}, {"client_secret": "not-the-secret"}

    def seed_demo(self) -> None:
        """A few companies, forty contacts and two campaigns."""
        acme = self.add_company("Acme Oy", domain="acme.example", cf_employees=120)
        self.add_company("Northwind Ltd", domain="northwind.example", cf_employees=40)
        ids = self.add_contacts(40)
        with self.lock:
            for i, remote_id in enumerate(ids):
                rec = self.contacts[int(remote_id)]
                rec.values["cf_industry"] = INDUSTRIES[i % len(INDUSTRIES)]
                if i % 3 == 0:
                    rec.values["company_id"] = acme
        self.add_campaign("Spring webinar", ids[:12])
        self.add_campaign("Trade fair 2026", ids[10:25])

    def sign(self, body: bytes, secret: str | None = None) -> str:
        """The ``X-Example-Signature`` header value ExampleCRM sends with a webhook body."""
        key = (secret or self.webhook_secret).encode()
        return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()

    def webhook_delivery(
        self, events: list[dict[str, Any]], *, secret: str | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """A signed webhook delivery ``(body, headers)`` carrying ``events``
        (each ``{"id", "type": "contact.updated"|"contact.deleted", "data": {...}}``)."""
        body = json.dumps({"events": events}).encode()
        return body, {"Content-Type": "application/json", "X-Example-Signature": self.sign(body, secret)}

    # -- internals ------------------------------------------------------------------------------

    def _next_id(self) -> int:
        with self._id_lock:
            self._ids += 1
            return self._ids

    def _new(self, n: int, values: dict[str, Any]) -> Record:
        now = self.now()
        return Record(n, values, updated_at=now, created_at=now)

    def _by_email(self, email: str) -> Record | None:
        key = email.strip().lower()
        for rec in self.contacts.values():
            if not rec.deleted and (rec.values.get("email") or "").lower() == key:
                return rec
        return None

    # -- routes ---------------------------------------------------------------------------------

    def setup_routes(self) -> None:
        app = self.app
        app.before_request(self._authorize)
        app.after_request(self._rate_headers)
        app.post("/oauth/token")(self._token)
        app.post("/oauth/revoke")(self._revoke)
        app.get("/api/fields")(self._fields)
        app.get("/api/contacts")(self._list_contacts)
        app.post("/api/contacts/batch")(self._upsert_contacts)
        app.delete("/api/contacts/<int:contact_id>")(self._delete_contact)
        app.get("/api/companies")(self._list_companies)
        app.post("/api/companies")(self._create_company)
        app.post("/api/companies/batch")(self._upsert_companies)
        app.post("/api/actions")(self._create_action)
        app.get("/api/campaigns")(self._list_campaigns)
        app.get("/api/campaigns/<int:campaign_id>/members")(self._campaign_members)
        app.get("/api/webhooks")(self._list_webhooks)
        app.post("/api/webhooks")(self._create_webhook)
        app.delete("/api/webhooks/<webhook_id>")(self._delete_webhook)

    def _authorize(self) -> Response | None:
        if not request.path.startswith("/api/"):
            return None
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        with self.lock:
            issued = self.tokens.get(token)
            if issued is None or issued[0] != self.token_generation or issued[1] <= self.now():
                return _error(401, "invalid_token", "the access token is invalid or expired")
        return None

    def _rate_headers(self, response: Response) -> Response:
        if self.rate_limit is not None:
            capacity, per = self.rate_limit
            response.headers["X-RateLimit-Limit"] = str(capacity)
            response.headers["X-RateLimit-Remaining"] = str(self.rate_limit_remaining())
            response.headers["X-RateLimit-Reset"] = f"{per:g}"
        return response

    def _token(self) -> Response:
        with self.lock:
            self.token_requests += 1
        auth = request.authorization
        client_id = auth.username if auth else request.form.get("client_id")
        secret = (auth.password if auth else request.form.get("client_secret")) or ""
        if client_id != self.client_id or not hmac.compare_digest(secret, self.client_secret):
            return _error(401, "invalid_client", "unknown client or wrong secret")
        grant = request.form.get("grant_type")
        with self.lock:
            if grant == "refresh_token":
                # Rotating refresh tokens: each one works once.
                if self.refresh_tokens.pop(request.form.get("refresh_token", ""), None) is None:
                    return _error(400, "invalid_grant", "refresh token revoked, expired or already used")
            elif grant != "client_credentials":
                return _error(400, "unsupported_grant_type", "use client_credentials or refresh_token")
            token = "ex_" + secrets.token_urlsafe(24)
            refresh = "exr_" + secrets.token_urlsafe(24)
            self.tokens[token] = (self.token_generation, self.now() + timedelta(seconds=self.token_ttl))
            self.refresh_tokens[refresh] = token
        return jsonify(
            access_token=token, token_type="bearer", expires_in=self.token_ttl, refresh_token=refresh
        )

    def _revoke(self) -> Response:
        auth = request.authorization
        client_id = auth.username if auth else request.form.get("client_id")
        secret = (auth.password if auth else request.form.get("client_secret")) or ""
        if client_id != self.client_id or not hmac.compare_digest(secret, self.client_secret):
            return _error(401, "invalid_client", "unknown client or wrong secret")
        token = request.form.get("token", "")
        with self.lock:
            # RFC 7009: revoking a refresh token also ends the access token issued with it.
            access = self.refresh_tokens.pop(token, None)
            self.tokens.pop(access or token, None)
        return jsonify({})  # unknown tokens are "revoked" too, so retries are harmless

    def revoke_refresh_tokens(self) -> None:
        """Revoke every refresh token (the app was removed in ExampleCRM): refreshes get ``invalid_grant``."""
        with self.lock:
            self.refresh_tokens.clear()

    def _fields(self) -> Response:
        obj = request.args.get("object", "contact")
        if obj not in ("contact", "company"):
            return _error(400, "UNKNOWN_OBJECT", f"no object {obj!r}")
        return jsonify(data=CONTACT_FIELDS if obj == "contact" else COMPANY_FIELDS)

    def _page(self, records: dict[int, Record]) -> Response:
        try:
            limit = min(int(request.args.get("limit", self.page_size)), self.page_size, MAX_PAGE)
            since = _parse_iso(request.args.get("updated_since"))
            after = _decode_cursor(request.args.get("cursor"))
        except ValueError as exc:
            return _error(400, "INVALID_PARAMETER", str(exc))
        with self.lock:
            rows = sorted(records.values(), key=lambda r: (r.updated_at, r.id))
            if since is not None:
                rows = [r for r in rows if r.updated_at >= since]
            if after is not None:
                rows = [r for r in rows if (r.updated_at, r.id) > after]
            page = rows[: max(limit, 1)]
            more = len(rows) > len(page)
            data = [self._render(r) for r in page]
        cursor = _encode_cursor(page[-1].updated_at, page[-1].id) if more else None
        return jsonify(data=data, next_cursor=cursor)

    def _render(self, rec: Record) -> dict[str, Any]:
        out = rec.as_json()
        company_id = out.get("company_id")
        if company_id is not None:
            company = self.companies.get(int(company_id))
            out["company_name"] = company.values.get("name") if company else None
        return out

    def _list_contacts(self) -> Response:
        return self._page(self.contacts)

    def _list_companies(self) -> Response:
        return self._page(self.companies)

    def _batch(self) -> list[dict[str, Any]] | Response:
        body = request.get_json(silent=True) or {}
        records = body.get("records")
        if not isinstance(records, list):
            return _error(400, "INVALID_BODY", 'expected {"records": [...]}')
        if len(records) > MAX_BATCH:
            return _error(400, "BATCH_TOO_LARGE", f"at most {MAX_BATCH} records per call")
        return records

    def _upsert_contacts(self) -> Response | tuple[Response, int]:
        records = self._batch()
        if isinstance(records, Response):
            return records
        with self.lock:
            results = [self._upsert_contact(r) for r in records]
        return jsonify(results=results), 200

    def _upsert_contact(self, raw: dict[str, Any]) -> dict[str, Any]:
        values = {k: v for k, v in raw.items() if k != "id"}
        unknown = sorted(set(values) - _WRITABLE["contact"] - {"company_id"})
        if unknown:
            return {"error": "UNKNOWN_FIELD", "field": unknown[0], "message": f"unknown field {unknown[0]}"}
        for name, allowed in _OPTIONS.items():
            if values.get(name) not in (None, "") and values[name] not in allowed:
                return {"error": "INVALID_OPTION", "field": name, "message": f"{values[name]!r} not allowed"}
        email = values.get("email")
        if email is not None and "@" not in str(email):
            return {"error": "INVALID_EMAIL", "field": "email", "message": "not an email address"}
        if values.get("company_id") not in (None, "") and int(values["company_id"]) not in self.companies:
            return {"error": "NOT_FOUND", "field": "company_id", "message": "no such company"}
        rec: Record | None = None
        if raw.get("id"):
            rec = self.contacts.get(int(raw["id"]))
            if rec is None or rec.deleted:
                return {"error": "NOT_FOUND", "message": f"no contact {raw['id']}"}
        elif email:
            rec = self._by_email(str(email))
        if rec is None:
            for required in ("email", "last_name"):
                if not values.get(required):
                    return {
                        "error": "REQUIRED_FIELD_MISSING",
                        "field": required,
                        "message": f"{required} is required",
                    }
            n = self._next_id()
            self.contacts[n] = self._new(n, values)
            return {"status": "created", "id": str(n)}
        if all(rec.values.get(k) == v for k, v in values.items()):
            return {"status": "unchanged", "id": str(rec.id)}
        if "last_name" in values and not values["last_name"]:
            return {
                "error": "REQUIRED_FIELD_MISSING",
                "field": "last_name",
                "message": "last_name is required",
            }
        rec.values.update(values)
        rec.updated_at = self.now()
        return {"status": "updated", "id": str(rec.id)}

    def _delete_contact(self, contact_id: int) -> Response | tuple[str, int]:
        with self.lock:
            rec = self.contacts.get(contact_id)
            if rec is None or rec.deleted:
                return _error(404, "NOT_FOUND", f"no contact {contact_id}")
            rec.deleted = True
            rec.updated_at = self.now()
        return "", 204

    def _create_company(self) -> Response | tuple[Response, int]:
        body = request.get_json(silent=True) or {}
        if not body.get("name"):
            return _error(400, "REQUIRED_FIELD_MISSING", "name is required")
        return jsonify(id=self.add_company(str(body.pop("name")), **body)), 201

    def _upsert_companies(self) -> Response:
        records = self._batch()
        if isinstance(records, Response):
            return records
        with self.lock:
            return jsonify(results=[self._upsert_company(r) for r in records])

    def _upsert_company(self, raw: dict[str, Any]) -> dict[str, Any]:
        values = {k: v for k, v in raw.items() if k != "id"}
        unknown = sorted(set(values) - _WRITABLE["company"])
        if unknown:
            return {"error": "UNKNOWN_FIELD", "field": unknown[0], "message": f"unknown field {unknown[0]}"}
        rec: Record | None = None
        if raw.get("id"):
            rec = self.companies.get(int(raw["id"]))
            if rec is None or rec.deleted:
                return {"error": "NOT_FOUND", "message": f"no company {raw['id']}"}
        elif values.get("name"):
            rec = next(
                (
                    r
                    for r in self.companies.values()
                    if not r.deleted and r.values.get("name") == values["name"]
                ),
                None,
            )
        if rec is None:
            if not values.get("name"):
                return {"error": "REQUIRED_FIELD_MISSING", "field": "name", "message": "name is required"}
            n = self._next_id()
            self.companies[n] = self._new(n, values)
            return {"status": "created", "id": str(n)}
        if all(rec.values.get(k) == v for k, v in values.items()):
            return {"status": "unchanged", "id": str(rec.id)}
        rec.values.update(values)
        rec.updated_at = self.now()
        return {"status": "updated", "id": str(rec.id)}

    def _create_action(self) -> Response | tuple[Response, int]:
        body = request.get_json(silent=True) or {}
        if not body.get("title"):
            return _error(400, "REQUIRED_FIELD_MISSING", "title is required")
        with self.lock:
            contact = self.contacts.get(int(body.get("contact_id") or 0))
            if contact is None or contact.deleted:
                return _error(400, "NOT_FOUND", "no such contact")
            n = self._next_id()
            self.actions.append({"id": str(n), **body})
        return jsonify(id=str(n)), 201

    def _list_campaigns(self) -> Response:
        with self.lock:
            data = [
                {"id": str(c.id), "name": c.name, "member_count": len(c.members)}
                for c in self.campaigns.values()
            ]
        return jsonify(data=data)

    def _campaign_members(self, campaign_id: int) -> Response:
        with self.lock:
            campaign = self.campaigns.get(campaign_id)
            if campaign is None:
                return _error(404, "NOT_FOUND", f"no campaign {campaign_id}")
            members = {i: self.contacts[i] for i in campaign.members if i in self.contacts}
        return self._page(members)

    def _list_webhooks(self) -> Response:
        with self.lock:
            return jsonify(data=[{k: v for k, v in w.items() if k != "secret"} for w in self.webhooks])

    def _create_webhook(self) -> Response | tuple[Response, int]:
        body = request.get_json(silent=True) or {}
        if not str(body.get("url", "")).startswith(("http://", "https://")) or not body.get("secret"):
            return _error(400, "INVALID_BODY", "url and secret are required")
        with self.lock:
            hook = {
                "id": str(self._next_id()),
                "url": body["url"],
                "secret": body["secret"],
                "events": list(body.get("events") or ["contact.updated", "contact.deleted"]),
            }
            self.webhooks.append(hook)
        return jsonify({k: v for k, v in hook.items() if k != "secret"}), 201

    def _delete_webhook(self, webhook_id: str) -> Response | tuple[Response, int]:
        with self.lock:
            kept = [w for w in self.webhooks if w["id"] != webhook_id]
            if len(kept) == len(self.webhooks):
                return _error(404, "NOT_FOUND", f"no webhook {webhook_id}")
            self.webhooks[:] = kept
        return Response(status=204)


def _error(status: int, code: str, message: str) -> Response:
    resp = jsonify(error=code, message=message)
    resp.status_code = status
    return resp


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _parse_iso(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("updated_since needs a time zone")
    return parsed


def _encode_cursor(updated_at: datetime, rec_id: int) -> str:
    raw = json.dumps([_iso(updated_at), rec_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(value: str | None) -> tuple[datetime, int] | None:
    if not value:
        return None
    try:
        stamp, rec_id = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
        parsed = _parse_iso(stamp)
    except (ValueError, TypeError) as exc:
        raise ValueError("invalid cursor") from exc
    assert parsed is not None
    return parsed, int(rec_id)
