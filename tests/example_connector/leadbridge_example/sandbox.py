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

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import Response, jsonify, request
from leadbridge import clock as clocks
from leadbridge.sandbox import Sandbox
from leadbridge.sandboxkit.oauth import OAuthServer
from leadbridge.sandboxkit.records import Ids, Record, RecordStore, parse_iso

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
        self._now: datetime | None = None
        self.ids = Ids(1000)
        self.contacts = RecordStore(self.now, self.ids)
        self.companies = RecordStore(self.now, self.ids)
        self.actions: list[dict[str, Any]] = []
        self.campaigns: dict[int, Campaign] = {}
        self.webhooks: list[dict[str, Any]] = []
        # Client credentials with a rotating refresh token on every grant; RFC 7009 revocation.
        self.auth = OAuthServer(
            lambda: self.now().timestamp(),
            lambda: self.token_generation,
            prefix="/oauth",
            vendor="ExampleCRM",
            refresh_scope=None,
            token_prefixes=("ex_", "exr_"),
        )
        self.auth.access_lifetime = token_ttl
        self.auth.accept_body_credentials = True
        self.auth.register_app(self.client_id, self.client_secret, client_credentials=True)
        super().__init__(rate_limit=rate_limit, latency=latency)

    @property
    def tokens(self) -> dict[str, Any]:
        """The access tokens that still work."""
        return self.auth.live_access_tokens()

    @property
    def refresh_tokens(self) -> dict[str, Any]:
        """The refresh tokens that still work."""
        return dict(self.auth.refresh)

    @property
    def token_requests(self) -> int:
        return self.auth.token_requests

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
                rec = self.contacts.add({"first_name": "Person", "lifecycle_stage": "lead"})
                n = rec.id
                rec.values.update(
                    email=f"person{n}@example.net" if with_email else None,
                    last_name=f"Number {n}",
                    score=n % 50,
                )
                ids.append(str(n))
        return ids

    def add_company(self, name: str, **values: Any) -> str:
        """Create one company vendor-side; return its id."""
        with self.lock:
            return str(self.companies.add({"name": name, **values}).id)

    def add_campaign(self, name: str, member_ids: list[str]) -> str:
        """Create a campaign whose members are the given contact ids; return its id."""
        with self.lock:
            n = self.ids.next()
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
            return self.contacts.count()

    def company_count(self) -> int:
        """Live (not deleted) companies."""
        with self.lock:
            return self.companies.count()

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

    def _by_email(self, email: str) -> Record | None:
        """ExampleCRM's matching rule: one live contact per email, compared case-insensitively."""
        return self.contacts.find("email", email, casefold=True)

    # -- routes ---------------------------------------------------------------------------------

    def setup_routes(self) -> None:
        app = self.app
        app.before_request(self._authorize)
        app.after_request(self._rate_headers)
        self.auth.install(app)
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
        if not token or self.auth.check_access(token) is None:
            return _error(401, "invalid_token", "the access token is invalid or expired")
        return None

    def _rate_headers(self, response: Response) -> Response:
        if self.rate_limit is not None:
            capacity, per = self.rate_limit
            response.headers["X-RateLimit-Limit"] = str(capacity)
            response.headers["X-RateLimit-Remaining"] = str(self.rate_limit_remaining())
            response.headers["X-RateLimit-Reset"] = f"{per:g}"
        return response

    def revoke_refresh_tokens(self) -> None:
        """Revoke every refresh token (the app was removed in ExampleCRM): refreshes get ``invalid_grant``."""
        self.auth.forget_refresh_tokens()

    def _fields(self) -> Response:
        obj = request.args.get("object", "contact")
        if obj not in ("contact", "company"):
            return _error(400, "UNKNOWN_OBJECT", f"no object {obj!r}")
        return jsonify(data=CONTACT_FIELDS if obj == "contact" else COMPANY_FIELDS)

    def _page(self, records: RecordStore, among: list[int] | None = None) -> Response:
        try:
            limit = min(int(request.args.get("limit", self.page_size)), self.page_size, MAX_PAGE)
            since = parse_iso(request.args.get("updated_since"))
            with self.lock:
                page, cursor = records.page(
                    since=since, cursor=request.args.get("cursor"), limit=limit, among=among
                )
                data = [self._render(r) for r in page]
        except ValueError as exc:
            return _error(400, "INVALID_PARAMETER", str(exc))
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
            rec = self.contacts.live(raw["id"])
            if rec is None:
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
            return {"status": "created", "id": str(self.contacts.add(values).id)}
        if all(rec.values.get(k) == v for k, v in values.items()):
            return {"status": "unchanged", "id": str(rec.id)}
        if "last_name" in values and not values["last_name"]:
            return {
                "error": "REQUIRED_FIELD_MISSING",
                "field": "last_name",
                "message": "last_name is required",
            }
        self.contacts.change(rec, values)
        return {"status": "updated", "id": str(rec.id)}

    def _delete_contact(self, contact_id: int) -> Response | tuple[str, int]:
        with self.lock:
            rec = self.contacts.live(contact_id)
            if rec is None:
                return _error(404, "NOT_FOUND", f"no contact {contact_id}")
            self.contacts.delete(rec)
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
            rec = self.companies.live(raw["id"])
            if rec is None:
                return {"error": "NOT_FOUND", "message": f"no company {raw['id']}"}
        elif values.get("name"):
            rec = self.companies.find("name", values["name"])
        if rec is None:
            if not values.get("name"):
                return {"error": "REQUIRED_FIELD_MISSING", "field": "name", "message": "name is required"}
            return {"status": "created", "id": str(self.companies.add(values).id)}
        if not self.companies.change(rec, values):
            return {"status": "unchanged", "id": str(rec.id)}
        return {"status": "updated", "id": str(rec.id)}

    def _create_action(self) -> Response | tuple[Response, int]:
        body = request.get_json(silent=True) or {}
        if not body.get("title"):
            return _error(400, "REQUIRED_FIELD_MISSING", "title is required")
        with self.lock:
            if self.contacts.live(body.get("contact_id") or 0) is None:
                return _error(400, "NOT_FOUND", "no such contact")
            n = self.ids.next()
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
            members = list(campaign.members)
        return self._page(self.contacts, among=members)

    def _list_webhooks(self) -> Response:
        with self.lock:
            return jsonify(data=[{k: v for k, v in w.items() if k != "secret"} for w in self.webhooks])

    def _create_webhook(self) -> Response | tuple[Response, int]:
        body = request.get_json(silent=True) or {}
        if not str(body.get("url", "")).startswith(("http://", "https://")) or not body.get("secret"):
            return _error(400, "INVALID_BODY", "url and secret are required")
        with self.lock:
            hook = {
                "id": str(self.ids.next()),
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
