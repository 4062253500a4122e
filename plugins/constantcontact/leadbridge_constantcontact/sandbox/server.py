"""The Constant Contact sandbox: contacts, custom fields, lists and bulk activities behind OAuth2.

What it imitates (from the vendor notes): the unique e-mail index *including* deleted contacts
(``POST /contacts`` answers 409 with the owner's UUID in the message), ``sign_up_form`` upserts
(append lists and custom fields, revive deleted contacts, permission side effects), PUT full-replace
of top-level fields, DELETE to a ``deleted`` state, ``GET /contacts`` filters with opaque, signed
cursors that keep the original query (tampered → 400) and that see updates made while paging,
optional 202 answers, custom fields (100 cap, 409 on duplicate label), lists (409 on duplicate name),
JSON imports (state machine advanced by polls, 4 MB truncation, 1,000 queued cap), bulk deletes,
4 requests/second and 10,000/day with header-less 429 bodies, 415 on non-JSON writes, 403 without
``contact_data``, 401 object bodies for bad or expired tokens.

Knobs (plain attributes): ``page_size`` (caps ``limit``), ``accepted_pages`` (the next N list answers
are 202 "processing"), ``activity_polls`` (polls before an activity completes), ``daily_limit`` /
``daily_used`` (per application:
``daily_used_by``), ``import_body_limit``, ``confirmed_opt_in``, ``sign_up_actions`` (the ``action`` strings),
``clock_offset`` (seconds added to the clock), and the auth server's ``access_lifetime``,
``accept_body_credentials``, ``auto_approve``, per-app ``refresh_mode``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Response, jsonify, request
from leadbridge import clock as clocks
from leadbridge.sandbox import Sandbox
from leadbridge.sandboxkit.oauth import OAuthServer
from leadbridge.types import Credentials

API = "/v3"
CLIENT_ID = "sandbox-cc-app-0001"
CLIENT_SECRET = "sandbox-cc-secret-do-not-use"
PERMISSIONS = ("explicit", "implicit", "not_set", "pending_confirmation", "temp_hold", "unsubscribed")
STATUSES = ("all", "active", "deleted", "not_set", "pending_confirmation", "temp_hold", "unsubscribed")
INCLUDES = ("custom_fields", "list_memberships", "phone_numbers", "street_addresses", "taggings", "notes")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
TOP_TEXT = ("first_name", "last_name", "job_title", "company_name")
READ_ONLY_EMAIL = (
    "created_at",
    "updated_at",
    "opt_in_date",
    "opt_out_date",
    "opt_out_source",
    "confirm_status",
    "opt_in_source",
)
IMPORT_PHONES = {
    "phone": "other",
    "home_phone": "home",
    "work_phone": "work",
    "mobile_phone": "mobile",
    "other_phone": "other",
}
IMPORT_ADDRESS = {
    "street": "street",
    "city": "city",
    "state": "state",
    "zip": "postal_code",
    "country": "country",
}


def _err(status: int, key: str, message: str) -> Response:
    response = jsonify([{"error_key": key, "error_message": message}])
    response.status_code = status
    return response


def _obj_err(status: int, key: str, message: str) -> Response:
    response = jsonify({"error_key": key, "error_message": message})
    response.status_code = status
    return response


class ConstantContactSandbox(Sandbox):
    name = "constantcontact"

    def __init__(self, *, rate_limit: tuple[int, float] | None = (4, 1.0), latency: float = 0.0) -> None:
        self.clock_offset = 0.0
        self.auth = OAuthServer(
            self.now, lambda: self.token_generation, prefix="/oauth2/default/v1", vendor="Constant Contact"
        )
        self.auth.register_app(CLIENT_ID, CLIENT_SECRET)
        self.contacts: dict[str, dict[str, Any]] = {}
        self.by_email: dict[str, str] = {}
        self.custom_fields: dict[str, dict[str, Any]] = {}
        self.lists: dict[str, dict[str, Any]] = {}
        self.activities: dict[str, dict[str, Any]] = {}
        self._seq = 0
        self._last_stamp = 0.0
        self._cursor_key = secrets.token_bytes(16)
        self.page_size = 500
        self.accepted_pages = 0
        self.activity_polls = 2
        self.daily_limit = 10_000
        self.daily_used_by: dict[str, int] = {}
        self._day = self._day_of(clocks.wall_time())
        self.import_body_limit = 4 * 1024 * 1024
        self.confirmed_opt_in = False
        self.sign_up_actions = ("created", "updated")
        self.max_queued_activities = 1000
        #: the next N activities end ``failed`` (nothing applied), as the vendor's workers sometimes do
        self.fail_activities = 0
        #: whether an import row that changes nothing still bumps ``updated_at`` (not confirmed)
        self.import_touches_unchanged = True
        self.record_exchanges = False
        #: addresses the vendor refuses (its do-not-mail list): 400 on writes, a row error in imports
        self.blocked_emails: set[str] = set()
        self.exchanges: list[dict[str, Any]] = []
        super().__init__(rate_limit=rate_limit, latency=latency)

    # -- time ------------------------------------------------------------------------------

    def now(self) -> float:
        return clocks.wall_time() + self.clock_offset

    def _stamp(self) -> str:
        # Millisecond precision like the vendor: two changes in one millisecond share a stamp
        # (never ahead of the clock), so "updated after" has the vendor's boundary ambiguity.
        with self.lock:
            t = max(self.now(), self._last_stamp)
            self._last_stamp = t
        return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

    @staticmethod
    def _day_of(t: float) -> str:
        return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d")

    # -- Sandbox contract --------------------------------------------------------------------

    def rate_limit_response(self, retry_after: float) -> Response:
        # Constant Contact sends no Retry-After and no rate headers.
        return _obj_err(429, "throttled", "Too Many Requests")

    def connection_settings(self, base_url: str) -> tuple[dict[str, Any], dict[str, str]]:
        tokens = self.auth.issue_grant(CLIENT_ID)
        settings = {
            "client_id": CLIENT_ID,
            "auth_url": f"{base_url}/oauth2/default/v1/authorize",
            "token_url": f"{base_url}/oauth2/default/v1/token",
            "scopes": "contact_data offline_access",
            "list_name": "leadbridge",
        }
        return settings, {"client_secret": CLIENT_SECRET, "refresh_token": tokens["refresh_token"]}

    def connection_credentials(self, base_url: str) -> Credentials:
        """A grant as if the admin had pressed Connect a day ago: the refresh token is good, the
        access token has expired (so the first call renews, as it would in real life)."""
        tokens = self.auth.issue_grant(CLIENT_ID)
        return Credentials(
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
            access_token=tokens["access_token"],
            expires_at=clocks.utcnow() - timedelta(seconds=1),
            refresh_token=tokens["refresh_token"],
        )

    def bad_connection_settings(self, base_url: str) -> tuple[dict[str, Any], dict[str, str]]:
        settings, secrets_ = self.connection_settings(base_url)
        return settings, {**secrets_, "client_secret": "wrong-secret-0000"}

    def seed_demo(self) -> None:
        vehicle = self._create_custom_field("Vehicle make", "string")
        level = self._create_custom_field("Membership level", "single_select", ["Bronze", "Silver", "Gold"])
        newsletter = self._create_list("Monthly newsletter")
        self._create_list("Spring webinar")
        first = ["Debora", "Marcus", "Ana", "Kenji", "Priya", "Tom", "Leila", "Oskar", "Mei", "Jonas"]
        last = ["Lang", "Okafor", "Silva", "Tanaka", "Raman", "Berg", "Haddad", "Nyström", "Chen", "Weber"]
        companies = ["Acme Corp.", "Northwind", "Globex", "Initech", "Umbrella"]
        for i in range(42):
            f, la = first[i % len(first)], last[(i * 3) % len(last)]
            c = self._new_contact(f"{f}.{la}.{i}@example.com".lower(), permission="implicit")
            c.update(
                first_name=f,
                last_name=la,
                company_name=companies[i % len(companies)],
                job_title=["Musician", "Buyer", "CEO", "Analyst"][i % 4],
            )
            c["phone_numbers"] = [self._phone(f"+1-555-01{i:02d}", "work")]
            c["custom_fields"] = (
                [{"custom_field_id": vehicle["custom_field_id"], "value": "Tesla S 2017"}]
                if i % 3 == 0
                else []
            )
            if i % 4 == 0:
                c["custom_fields"].append(
                    {
                        "custom_field_id": level["custom_field_id"],
                        "choice_ids": [str(level["choices"][i % 3]["choice_id"])],
                    }
                )
            c["list_memberships"] = [newsletter["list_id"]] if i % 2 == 0 else []

    def add_contacts(self, count: int, *, with_email: bool = True) -> list[str]:
        ids = []
        with self.lock:
            start = len(self.contacts)
            for i in range(count):
                email = f"cc.person.{start + i}@example.org" if with_email else None
                c = self._new_contact(email, permission="implicit")
                c["first_name"], c["last_name"] = "Person", f"N{start + i}"
                ids.append(c["contact_id"])
        return ids

    def contact_count(self) -> int:
        with self.lock:
            return sum(1 for c in self.contacts.values() if not c.get("deleted_at"))

    def company_count(self) -> int:
        return 0  # Constant Contact has no company object

    # -- test helpers ------------------------------------------------------------------------

    def contact_by_email(self, email: str) -> dict[str, Any] | None:
        with self.lock:
            cid = self.by_email.get(email.strip().lower())
            return self.contacts.get(cid) if cid else None

    def edit_contact(self, contact_id: str, **changes: Any) -> None:
        """Change a contact as a Constant Contact user would (bumps ``updated_at``)."""
        with self.lock:
            c = self.contacts[contact_id]
            c.update(changes)
            c["update_source"] = "Contact"
            c["updated_at"] = self._stamp()

    def delete_contact(self, contact_id: str) -> None:
        with self.lock:
            self._delete(self.contacts[contact_id])

    # -- model -------------------------------------------------------------------------------

    def _phone(self, number: str, kind: str) -> dict[str, Any]:
        return {"phone_number_id": str(uuid.uuid4()), "phone_number": number, "kind": kind}

    def _new_contact(self, email: str | None, *, permission: str, source: str = "Account") -> dict[str, Any]:
        now = self._stamp()
        self._seq += 1
        c: dict[str, Any] = {
            "contact_id": str(uuid.uuid4()),
            "create_source": source,
            "update_source": source,
            "created_at": now,
            "updated_at": now,
            "custom_fields": [],
            "phone_numbers": [],
            "street_addresses": [],
            "list_memberships": [],
            "taggings": [],
            "notes": [],
        }
        if email:
            c["email_address"] = {
                "address": email,
                "permission_to_send": permission,
                "created_at": now,
                "updated_at": now,
                "opt_in_source": source,
                "confirm_status": "off",
            }
            self.by_email[email.lower()] = c["contact_id"]
        self.contacts[c["contact_id"]] = c
        return c

    def _delete(self, c: dict[str, Any]) -> None:
        c["deleted_at"] = datetime.fromtimestamp(self.now(), UTC).strftime("%Y-%m-%d")
        c["list_memberships"] = []
        c["updated_at"] = self._stamp()

    def _status(self, c: dict[str, Any]) -> str:
        if c.get("deleted_at"):
            return "deleted"
        perm = (c.get("email_address") or {}).get("permission_to_send", "not_set")
        return "active" if perm in ("explicit", "implicit") else str(perm)

    def _public(self, c: dict[str, Any], include: set[str]) -> dict[str, Any]:
        out = {k: v for k, v in c.items() if k not in INCLUDES and v is not None}
        for name in include:
            out[name] = list(c.get(name) or [])
        return out

    def _create_custom_field(
        self, label: str, ftype: str, choices: list[str] | None = None
    ) -> dict[str, Any]:
        now = self._stamp()
        cf: dict[str, Any] = {
            "custom_field_id": str(uuid.uuid4()),
            "label": label,
            "name": re.sub(r"\s+", "_", label.strip()),
            "type": ftype,
            "metadata": {},
            "choices": [],
            "created_at": now,
            "updated_at": now,
        }
        for i, ch in enumerate(choices or []):
            cf["choices"].append({"choice_id": i + 1, "choice_label": ch, "display_order": i + 1})
        self.custom_fields[cf["custom_field_id"]] = cf
        return cf

    def _create_list(self, name: str) -> dict[str, Any]:
        now = self._stamp()
        lst = {
            "list_id": str(uuid.uuid4()),
            "name": name,
            "favorite": False,
            "created_at": now,
            "updated_at": now,
        }
        self.lists[str(lst["list_id"])] = lst
        return lst

    # -- pipeline ----------------------------------------------------------------------------

    def error_response(self, status: int, code: str, message: str) -> Response:
        return _err(status, code.lower(), message)

    def setup_routes(self) -> None:
        self.auth.install(self.app)
        self.app.before_request(self._api_gate)
        self.app.after_request(self._record_exchange)
        route = self.app.add_url_rule
        route(f"{API}/contacts", "contacts", self.list_contacts, methods=["GET"])
        route(f"{API}/contacts", "create_contact", self.create_contact, methods=["POST"])
        route(f"{API}/contacts/sign_up_form", "sign_up_form", self.sign_up_form, methods=["POST"])
        route(f"{API}/contacts/<contact_id>", "get_contact", self.get_contact, methods=["GET"])
        route(f"{API}/contacts/<contact_id>", "put_contact", self.put_contact, methods=["PUT"])
        route(
            f"{API}/contacts/<contact_id>",
            "delete_contact_route",
            self.delete_contact_route,
            methods=["DELETE"],
        )
        route(f"{API}/contact_custom_fields", "custom_fields", self.list_custom_fields, methods=["GET"])
        route(
            f"{API}/contact_custom_fields", "create_custom_field", self.create_custom_field, methods=["POST"]
        )
        route(f"{API}/contact_lists", "lists", self.list_lists, methods=["GET"])
        route(f"{API}/contact_lists", "create_list", self.create_list, methods=["POST"])
        route(f"{API}/contact_lists/<list_id>", "delete_list", self.delete_list, methods=["DELETE"])
        route(f"{API}/activities/contacts_json_import", "json_import", self.json_import, methods=["POST"])
        route(f"{API}/activities/contact_delete", "bulk_delete", self.bulk_delete, methods=["POST"])
        route(f"{API}/activities/<activity_id>", "activity", self.get_activity, methods=["GET"])

    @property
    def daily_used(self) -> int:
        """Requests counted today for the sandbox's own application (the API key the demo uses)."""
        return self.daily_used_by.get(CLIENT_ID, 0)

    @daily_used.setter
    def daily_used(self, value: int) -> None:
        self.daily_used_by[CLIENT_ID] = value

    def _api_gate(self) -> Response | None:
        if not request.path.startswith(API + "/"):
            return None
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        grant = self.auth.check_access(token) if token else None
        if grant is None:
            return _obj_err(401, "unauthorized", "Unauthorized")
        with self.lock:
            # The daily allowance is per application (API key) and resets at 00:00 UTC.
            day = self._day_of(self.now())
            if day != self._day:
                self._day = day
                self.daily_used_by.clear()
            used = self.daily_used_by.get(grant.client_id, 0)
            if used >= self.daily_limit:
                return _obj_err(429, "quota_exceeded", "Limit Exceeded")
            self.daily_used_by[grant.client_id] = used + 1
        if "contact_data" not in grant.scopes:
            return _err(403, "forbidden", "This token does not have the contact_data scope.")
        if request.method in ("POST", "PUT") and request.mimetype != "application/json":
            return _err(415, "unsupported_media_type", "Content-Type must be application/json")
        return None

    def _record_exchange(self, response: Response) -> Response:
        # Kept for contract tests: every API request and answer, validated against the OpenAPI document.
        if self.record_exchanges and request.path.startswith(API + "/"):
            with self.lock:
                self.exchanges.append(
                    {
                        "method": request.method,
                        "path": request.path,
                        "query": request.args.to_dict(),
                        "content_type": request.mimetype,
                        "body": request.get_json(silent=True) if request.data else None,
                        "status": response.status_code,
                        "response": response.get_json(silent=True) if response.is_json else None,
                    }
                )
        return response

    def _json(self) -> Any:
        return request.get_json(silent=True)

    # -- contacts ----------------------------------------------------------------------------

    def _cursor(self, query: dict[str, str], offset: int) -> str:
        payload = base64.urlsafe_b64encode(json.dumps({"q": query, "o": offset}).encode()).decode()
        sig = hmac.new(self._cursor_key, payload.encode(), hashlib.sha256).hexdigest()[:16]
        return f"{payload}.{sig}"

    def _uncursor(self, cursor: str) -> tuple[dict[str, str], int] | None:
        payload, _, sig = cursor.rpartition(".")
        good = hmac.new(self._cursor_key, payload.encode(), hashlib.sha256).hexdigest()[:16]
        if not payload or not hmac.compare_digest(sig, good):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(payload))
            return dict(data["q"]), int(data["o"])
        except (ValueError, KeyError, TypeError):
            return None

    def list_contacts(self) -> Response:
        if "cursor" in request.args:
            decoded = self._uncursor(request.args["cursor"])
            if decoded is None:
                return _err(400, "contacts.api.bad.request", "The cursor is invalid or expired.")
            query, offset = decoded
        else:
            query, offset = dict(request.args), 0
        try:
            limit = int(query.get("limit", 50))
        except ValueError:
            return _err(400, "contacts.api.validation.error", "limit does not have a valid value")
        if not 1 <= limit <= 500:
            return _err(400, "contacts.api.validation.error", "limit must be between 1 and 500")
        statuses = set((query.get("status") or "").split(",")) - {""}
        if statuses - set(STATUSES):
            return _err(400, "contacts.api.validation.error", "status does not have a valid value")
        include = set((query.get("include") or "").split(",")) - {""}
        if include - set(INCLUDES):
            return _err(400, "contacts.api.validation.error", "include does not have a valid value")
        bounds: dict[str, str] = {}
        for key in ("updated_after", "updated_before", "created_after", "created_before", "optout_after"):
            if query.get(key):
                try:
                    parsed = datetime.fromisoformat(query[key].replace("Z", "+00:00"))
                except ValueError:
                    return _err(400, "contacts.api.validation.error", f"{key} does not have a valid value")
                if parsed.tzinfo is None:
                    parsed = parsed.replace(tzinfo=UTC)
                bounds[key] = parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        lists = set((query.get("lists") or "").split(",")) - {""}
        email = (query.get("email") or "").strip().lower()
        with self.lock:
            rows = []
            for c in self.contacts.values():
                status = self._status(c)
                if statuses and "all" not in statuses and status not in statuses:
                    continue
                if not statuses and status == "deleted":
                    continue  # the default excludes deleted contacts
                if email and (c.get("email_address") or {}).get("address", "").lower() != email:
                    continue
                if lists and not lists & set(c.get("list_memberships") or []):
                    continue
                if "updated_after" in bounds and c["updated_at"] <= bounds["updated_after"]:
                    continue
                if "updated_before" in bounds and c["updated_at"] >= bounds["updated_before"]:
                    continue
                if "created_after" in bounds and c["created_at"] <= bounds["created_after"]:
                    continue
                if "created_before" in bounds and c["created_at"] >= bounds["created_before"]:
                    continue
                if "optout_after" in bounds and (
                    (c.get("email_address") or {}).get("opt_out_date", "") <= bounds["optout_after"]
                ):
                    continue
                rows.append(c)
            rows.sort(key=lambda c: (c["updated_at"], c["contact_id"]))
            size = min(limit, self.page_size)
            page = rows[offset : offset + size]
            body: dict[str, Any] = {"contacts": [self._public(c, include) for c in page]}
            if query.get("include_count") == "true":
                body["contacts_count"] = len(rows)
            body["_links"] = {}
            if offset + size < len(rows):
                body["_links"] = {
                    "next": {"href": f"{API}/contacts?cursor={self._cursor(query, offset + size)}"}
                }
            status_code = 200
            if self.accepted_pages > 0:
                self.accepted_pages -= 1
                body["status"] = "processing"
                status_code = 202
        response = jsonify(body)
        response.status_code = status_code
        return response

    def get_contact(self, contact_id: str) -> Response:
        include = set((request.args.get("include") or "").split(",")) - {""}
        if include - set(INCLUDES):
            return _err(400, "contacts.api.validation.error", "include does not have a valid value")
        with self.lock:
            c = self.contacts.get(contact_id)
            if c is None:
                return _err(404, "contacts.api.not.found", f"Contact {contact_id} not found")
            return jsonify(self._public(c, include))

    def create_contact(self) -> Response:
        body = self._json()
        if not isinstance(body, dict):
            return _err(400, "contacts.api.bad.request", "The request body is not valid JSON.")
        if body.get("create_source") not in ("Contact", "Account"):
            return _err(400, "contacts.api.validation.error", "create_source is required")
        email = ((body.get("email_address") or {}).get("address") or "").strip()
        if not (email or body.get("first_name") or body.get("last_name") or body.get("sms_channel")):
            return _err(
                400,
                "contacts.api.validation.error",
                "At least one of first_name, last_name, email_address, sms_channel is required",
            )
        if email and not EMAIL_RE.match(email):
            return _err(400, "contacts.api.validation.error", "email_address.address is not valid")
        with self.lock:
            owner = self.by_email.get(email.lower()) if email else None
            if owner:
                return _err(
                    409,
                    "contacts.api.conflict",
                    f"Validation failed: Email already exists for contact {owner}.",
                )
            perm = (body.get("email_address") or {}).get("permission_to_send") or "implicit"
            c = self._new_contact(email or None, permission=perm, source=body["create_source"])
            self._apply_top(c, body, replace=False)
            self._apply_subresources(c, body)
            c["list_memberships"] = list(dict.fromkeys(body.get("list_memberships") or []))
            response = jsonify(self._public(c, set(INCLUDES)))
        response.status_code = 201
        return response

    def _apply_top(self, c: dict[str, Any], body: dict[str, Any], *, replace: bool) -> str | None:
        for name in (*TOP_TEXT, "anniversary"):
            if name in body or replace:
                value = body.get(name)
                if isinstance(value, str) and len(value) > (10 if name == "anniversary" else 50):
                    return f"{name} is too long"
                c[name] = value if value not in ("",) else None
        for name in ("birthday_month", "birthday_day"):
            if name in body or replace:
                c[name] = body.get(name)
        return None

    def _apply_subresources(self, c: dict[str, Any], body: dict[str, Any]) -> None:
        if "phone_numbers" in body:
            c["phone_numbers"] = [
                self._phone(p.get("phone_number", ""), p.get("kind") or "other")
                for p in body["phone_numbers"][:3]
            ]
        if "street_addresses" in body:
            c["street_addresses"] = [
                {"street_address_id": str(uuid.uuid4()), **a} for a in body["street_addresses"][:3]
            ]
        if "custom_fields" in body:
            c["custom_fields"] = [
                e for e in body["custom_fields"] if e.get("custom_field_id") in self.custom_fields
            ]

    def sign_up_form(self) -> Response:
        body = self._json()
        if not isinstance(body, dict):
            return _err(400, "contacts.api.bad.request", "The request body is not valid JSON.")
        lists = body.get("list_memberships")
        if not isinstance(lists, list) or not 1 <= len(lists) <= 50:
            return _err(400, "contacts.api.validation.error", "list_memberships is required (1 to 50 lists)")
        email = body.get("email_address")
        if not isinstance(email, str) or not EMAIL_RE.match(email.strip()) or len(email) > 50:
            return _err(400, "contacts.api.validation.error", "email_address is not valid")
        email = email.strip()
        if email.lower() in self.blocked_emails:
            return _err(400, "contacts.api.validation.error", f"{email} is on the do-not-mail list")
        with self.lock:
            unknown = [x for x in lists if x not in self.lists]
            if unknown:
                return _err(404, "contacts.api.not.found", f"List {unknown[0]} not found")
            cid = self.by_email.get(email.lower())
            created = cid is None
            if created:
                perm = "pending_confirmation" if self.confirmed_opt_in else "explicit"
                c = self._new_contact(email, permission=perm, source="Contact")
            else:
                c = self.contacts[str(cid)]
                c.pop("deleted_at", None)  # the upsert revives a deleted contact
                email_obj = c["email_address"]
                if email_obj.get("permission_to_send") != "unsubscribed":  # never re-opts-in by API
                    email_obj["permission_to_send"] = "explicit"
            problem = self._apply_top(c, body, replace=False)
            if problem:
                return _err(400, "contacts.api.validation.error", problem)
            if body.get("phone_number"):
                numbers = [p for p in c["phone_numbers"] if p.get("kind") != "home"]
                c["phone_numbers"] = [self._phone(body["phone_number"], "home"), *numbers][:3]
            if body.get("street_address"):
                others = [
                    a for a in c["street_addresses"] if a.get("kind") != body["street_address"].get("kind")
                ]
                c["street_addresses"] = [
                    {"street_address_id": str(uuid.uuid4()), **body["street_address"]},
                    *others,
                ][:3]
            for entry in body.get("custom_fields") or []:  # appended / overwritten, never removed
                fid = entry.get("custom_field_id")
                if fid in self.custom_fields:
                    c["custom_fields"] = [e for e in c["custom_fields"] if e["custom_field_id"] != fid]
                    c["custom_fields"].append({"custom_field_id": fid, "value": entry.get("value")})
            c["list_memberships"] = list(dict.fromkeys([*c["list_memberships"], *lists]))
            c["update_source"] = "Contact"
            c["updated_at"] = self._stamp()
            action = self.sign_up_actions[0] if created else self.sign_up_actions[1]
            response = jsonify({"contact_id": c["contact_id"], "action": action})
        response.status_code = 201 if created else 200
        return response

    def put_contact(self, contact_id: str) -> Response:
        body = self._json()
        if not isinstance(body, dict):
            return _err(400, "contacts.api.bad.request", "The request body is not valid JSON.")
        if body.get("update_source") not in ("Contact", "Account"):
            return _err(400, "contacts.api.validation.error", "update_source is required")
        for key in ("created_at", "updated_at", "deleted_at", "create_source"):
            if key in body:
                return _err(400, "contacts.api.validation.error", f"{key} is read-only")
        email_obj = body.get("email_address")
        if email_obj is not None:
            bad = [k for k in READ_ONLY_EMAIL if k in email_obj]
            if bad:
                return _err(400, "contacts.api.validation.error", f"email_address.{bad[0]} is read-only")
        with self.lock:
            c = self.contacts.get(contact_id)
            if c is None:
                return _err(404, "contacts.api.not.found", f"Contact {contact_id} not found")
            if c.get("deleted_at") and body["update_source"] != "Account":
                return _err(404, "contacts.api.not.found", f"Contact {contact_id} not found")
            if email_obj is None and c.get("email_address"):
                return _err(400, "contacts.api.validation.error", "email_address is required")
            if email_obj is not None:
                address = str(email_obj.get("address") or "").strip()
                if not EMAIL_RE.match(address):
                    return _err(400, "contacts.api.validation.error", "email_address.address is not valid")
                owner = self.by_email.get(address.lower())
                if owner and owner != contact_id:
                    return _err(
                        409,
                        "contacts.api.conflict",
                        f"Validation failed: Email already exists for contact {owner}.",
                    )
                current = c.get("email_address") or {}
                old = current.get("address")
                perm = email_obj.get("permission_to_send") or current.get("permission_to_send", "implicit")
                if current.get("permission_to_send") == "unsubscribed" and perm != "unsubscribed":
                    return _err(
                        400,
                        "contacts.api.validation.error",
                        "An unsubscribed contact cannot be opted in through the API",
                    )
                now = self._stamp()
                new_obj = {**current, "address": address, "permission_to_send": perm, "updated_at": now}
                if perm == "unsubscribed" and current.get("permission_to_send") != "unsubscribed":
                    new_obj.update(opt_out_source="Account", opt_out_date=now)
                c["email_address"] = new_obj
                if old and old.lower() != address.lower():
                    self.by_email.pop(old.lower(), None)
                self.by_email[address.lower()] = contact_id
            problem = self._apply_top(c, body, replace=True)  # PUT nulls every omitted top-level field
            if problem:
                return _err(400, "contacts.api.validation.error", problem)
            self._apply_subresources(c, body)
            if "list_memberships" in body:
                c["list_memberships"] = list(dict.fromkeys(body["list_memberships"]))
            c.pop("deleted_at", None)
            c["update_source"] = body["update_source"]
            c["updated_at"] = self._stamp()
            return jsonify(self._public(c, {"custom_fields", "phone_numbers", "street_addresses"}))

    def delete_contact_route(self, contact_id: str) -> Response:
        with self.lock:
            c = self.contacts.get(contact_id)
            if c is None or c.get("deleted_at"):
                return _err(404, "contacts.api.not.found", f"Contact {contact_id} not found")
            self._delete(c)
        return Response(status=204)

    # -- custom fields and lists -------------------------------------------------------------

    def list_custom_fields(self) -> Response:
        limit = request.args.get("limit", "50")
        if not limit.isdigit() or not 1 <= int(limit) <= 100:
            return _err(400, "contacts.api.validation.error", "limit must be between 1 and 100")
        with self.lock:
            fields = list(self.custom_fields.values())[: int(limit)]
            return jsonify({"custom_fields": fields, "_links": {}})

    def create_custom_field(self) -> Response:
        body = self._json() or {}
        label = str(body.get("label") or "").strip()
        if (
            not label
            or len(label) > 50
            or body.get("type")
            not in ("string", "number", "currency", "date", "single_select", "multi_select")
        ):
            return _err(400, "contacts.api.validation.error", "label and a valid type are required")
        with self.lock:
            if any(cf["label"].lower() == label.lower() for cf in self.custom_fields.values()):
                return _err(409, "contacts.api.conflict", f"A custom field with label {label} already exists")
            if len(self.custom_fields) >= 100:
                return _err(
                    400, "contacts.api.validation.error", "An account can have at most 100 custom fields"
                )
            cf = self._create_custom_field(
                label, body["type"], [c.get("choice_label", "") for c in body.get("choices") or []]
            )
        response = jsonify(cf)
        response.status_code = 201
        return response

    def list_lists(self) -> Response:
        limit = request.args.get("limit", "50")
        if not limit.isdigit() or not 1 <= int(limit) <= 1000:
            return _err(400, "contacts.api.validation.error", "limit must be between 1 and 1000")
        status = request.args.get("status", "active")
        name = request.args.get("name")
        with self.lock:
            out = []
            for lst in self.lists.values():
                if (status == "active" and lst.get("deleted_at")) or (
                    status == "deleted" and not lst.get("deleted_at")
                ):
                    continue
                if name is not None and lst["name"] != name:
                    continue
                item = dict(lst)
                if request.args.get("include_count") == "true" or request.args.get(
                    "include_membership_count"
                ):
                    item["membership_count"] = sum(
                        1 for c in self.contacts.values() if lst["list_id"] in c.get("list_memberships", [])
                    )
                out.append(item)
            return jsonify({"lists": out[: int(limit)], "lists_count": len(out), "_links": {}})

    def create_list(self) -> Response:
        body = self._json() or {}
        name = str(body.get("name") or "").strip()
        if not name:
            return _err(400, "contacts.api.validation.error", "name is required")
        with self.lock:
            if any(lst["name"] == name and not lst.get("deleted_at") for lst in self.lists.values()):
                return _err(409, "contacts.api.conflict", f"A list named {name} already exists")
            lst = self._create_list(name)
            lst["favorite"] = bool(body.get("favorite", False))
        response = jsonify(lst)
        response.status_code = 201
        return response

    def delete_list(self, list_id: str) -> Response:
        """Deleting a list answers 202 with the activity that strips its memberships."""
        with self.lock:
            lst = self.lists.get(list_id)
            if lst is None or lst.get("deleted_at"):
                return _err(404, "contacts.api.not.found", f"List {list_id} not found")
            lst["deleted_at"] = lst["updated_at"] = self._stamp()
            act = self._new_activity("list_delete", {"list_id": list_id}, 1)
            response = jsonify(
                {"activity_id": act["activity_id"], "state": act["state"], "_links": act["_links"]}
            )
        response.status_code = 202
        return response

    # -- activities --------------------------------------------------------------------------

    def _queued(self) -> int:
        return sum(1 for a in self.activities.values() if a["state"] in ("initialized", "processing"))

    def _new_activity(self, kind: str, payload: dict[str, Any], total: int) -> dict[str, Any]:
        now = self._stamp()
        aid = str(uuid.uuid4())
        act = {
            "activity_id": aid,
            "state": "initialized",
            "created_at": now,
            "updated_at": now,
            "percent_done": 0,
            "activity_errors": [],
            "status": {"items_total_count": total, "items_completed_count": 0, "error_count": 0},
            "_links": {"self": {"href": f"{API}/activities/{aid}"}},
        }
        self.activities[aid] = act
        self._pending[aid] = (kind, payload, 0)
        return act

    @property
    def _pending(self) -> dict[str, tuple[str, dict[str, Any], int]]:
        if not hasattr(self, "_pending_store"):
            self._pending_store: dict[str, tuple[str, dict[str, Any], int]] = {}
        return self._pending_store

    def json_import(self) -> Response:
        raw = request.get_data()
        with self.lock:
            if self._queued() >= self.max_queued_activities:
                return _obj_err(429, "activities.api.limit", "Too many activities are queued.")
        try:
            body = json.loads(raw)
        except ValueError:
            return _err(400, "activities.api.bad.request", "The request body is not valid JSON.")
        rows = body.get("import_data") if isinstance(body, dict) else None
        list_ids = body.get("list_ids") if isinstance(body, dict) else None
        if not isinstance(rows, list) or not isinstance(list_ids, list) or not 1 <= len(list_ids) <= 50:
            return _err(
                400, "activities.api.validation.error", "import_data and list_ids (1 to 50) are required"
            )
        if len(rows) > 40_000:
            return _err(400, "activities.api.validation.error", "at most 40,000 contacts per import")
        if len(raw) > self.import_body_limit:
            # The vendor silently drops what passes 4 MB: keep only the rows that fit.
            kept, size = [], 100
            for row in rows:
                size += len(json.dumps(row).encode()) + 1
                if size > self.import_body_limit:
                    break
                kept.append(row)
            rows = kept
        with self.lock:
            act = self._new_activity("import", {"rows": rows, "list_ids": list_ids}, len(rows))
            response = jsonify(act)
        response.status_code = 201
        return response

    def bulk_delete(self) -> Response:
        body = self._json() or {}
        ids, list_ids = body.get("contact_ids"), body.get("list_ids")
        if bool(ids) == bool(list_ids) or (ids and len(ids) > 500) or (list_ids and len(list_ids) > 50):
            return _err(
                400,
                "activities.api.validation.error",
                "send contact_ids (at most 500) or list_ids (at most 50), not both",
            )
        with self.lock:
            if self._queued() >= self.max_queued_activities:
                return _obj_err(429, "activities.api.limit", "Too many activities are queued.")
            act = self._new_activity(
                "delete", {"contact_ids": ids or [], "list_ids": list_ids or []}, len(ids or list_ids or [])
            )
            response = jsonify(act)
        response.status_code = 201
        return response

    def get_activity(self, activity_id: str) -> Response:
        with self.lock:
            act = self.activities.get(activity_id)
            if act is None:
                return _err(404, "activities.api.not.found", f"Activity {activity_id} not found")
            if activity_id in self._pending:
                kind, payload, polls = self._pending[activity_id]
                polls += 1
                if polls >= self.activity_polls:
                    del self._pending[activity_id]
                    self._finish(act, kind, payload)
                else:
                    self._pending[activity_id] = (kind, payload, polls)
                    act.update(
                        state="processing", percent_done=50, started_at=act.get("started_at") or self._stamp()
                    )
            return jsonify(act)

    def complete_activities(self) -> None:
        """Finish every queued activity now (as if the vendor's workers caught up)."""
        with self.lock:
            for aid, (kind, payload, _) in list(self._pending.items()):
                del self._pending[aid]
                self._finish(self.activities[aid], kind, payload)

    def _finish(self, act: dict[str, Any], kind: str, payload: dict[str, Any]) -> None:
        errors: list[str] = []
        if self.fail_activities > 0:
            self.fail_activities -= 1
            now = self._stamp()
            act.update(
                state="failed",
                percent_done=0,
                completed_at=now,
                updated_at=now,
                activity_errors=["The activity failed to process. Try again."],
            )
            act["status"].update(error_count=act["status"]["items_total_count"])
            return
        if kind == "list_delete":
            for c in self.contacts.values():
                if payload["list_id"] in c.get("list_memberships", []):
                    c["list_memberships"].remove(payload["list_id"])
        elif kind == "import":
            for n, row in enumerate(payload["rows"], start=1):
                problem = self._import_row(row, payload["list_ids"])
                if problem:
                    errors.append(f"Line {n}: {problem}")
        else:
            targets = payload["contact_ids"] or [
                c["contact_id"]
                for c in self.contacts.values()
                if set(payload["list_ids"]) & set(c.get("list_memberships") or [])
            ]
            for cid in targets:
                target = self.contacts.get(cid)
                if target is not None and not target.get("deleted_at"):
                    self._delete(target)
        now = self._stamp()
        act.update(
            state="completed", percent_done=100, activity_errors=errors, completed_at=now, updated_at=now
        )
        act.setdefault("started_at", now)
        total = act["status"]["items_total_count"]
        act["status"].update(
            items_completed_count=total, error_count=len(errors), person_count=total - len(errors)
        )

    def _import_row(self, row: dict[str, Any], list_ids: list[str]) -> str | None:
        email = str(row.get("email") or "").strip()
        if not EMAIL_RE.match(email) or len(email) > 50:
            return f"invalid email address {email!r}"
        if email.lower() in self.blocked_emails:
            return f"{email} is on the do-not-mail list"
        cid = self.by_email.get(email.lower())
        before = json.dumps(self.contacts[cid], sort_keys=True) if cid else None
        if cid is None:
            c = self._new_contact(email, permission="implicit")
        else:
            c = self.contacts[cid]
            c.pop("deleted_at", None)
        problems = []
        for name in (*TOP_TEXT, "anniversary"):
            if row.get(name):
                c[name] = str(row[name])[:50]
        for name in ("birthday_month", "birthday_day"):
            if row.get(name):
                c[name] = int(row[name])
        for key, kind in IMPORT_PHONES.items():
            if row.get(key):
                c["phone_numbers"] = [
                    self._phone(str(row[key]), kind),
                    *[p for p in c["phone_numbers"] if p.get("kind") != kind],
                ][:3]
        address = {field: str(row[key]) for key, field in IMPORT_ADDRESS.items() if row.get(key)}
        if address:
            others = [a for a in c["street_addresses"] if a.get("kind") != "home"]
            c["street_addresses"] = [
                {"street_address_id": str(uuid.uuid4()), "kind": "home", **address},
                *others,
            ][:3]
        by_name = {cf["name"]: cf for cf in self.custom_fields.values()}
        for key, value in row.items():
            if not key.startswith("cf:"):
                continue
            cf = by_name.get(key[3:])
            if cf is None:
                problems.append(f"unknown custom field {key[3:]}")
                continue
            entry: dict[str, Any] = {"custom_field_id": cf["custom_field_id"]}
            if cf["type"] in ("single_select", "multi_select"):
                labels = [v.strip() for v in str(value).split(",")]
                entry["choice_ids"] = [
                    str(ch["choice_id"]) for ch in cf["choices"] if ch["choice_label"] in labels
                ]
            else:
                entry["value"] = str(value)
            c["custom_fields"] = [
                e for e in c["custom_fields"] if e["custom_field_id"] != cf["custom_field_id"]
            ]
            c["custom_fields"].append(entry)
        c["list_memberships"] = list(dict.fromkeys([*c["list_memberships"], *list_ids]))
        if self.import_touches_unchanged or json.dumps(c, sort_keys=True) != before:
            c["update_source"] = "Account"
            c["updated_at"] = self._stamp()
        return f"{email}: {'; '.join(problems)}" if problems else None
