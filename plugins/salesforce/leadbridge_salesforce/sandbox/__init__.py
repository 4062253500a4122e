"""A loopback imitation of the Salesforce REST API (v66.0 by default; any ``vNN.N`` is accepted).

What it imitates, from the vendor notes: the OAuth token endpoint (password, client credentials,
JWT bearer, refresh token) answering without ``expires_in``; sessions that expire after a
configurable idle time with 401 ``INVALID_SESSION_ID``; SOQL ``query``/``queryAll`` paging through
``nextRecordsUrl`` with expiring locators and a cap on open cursors; sObject CRUD, upsert by
external id (201/200/300/404), Collections (200 records, ``allOrNone``, ``statusCode`` errors),
Composite (25 sub-requests, one API call), Bulk API 2.0 ingest; describe; the daily allocation in
``Sforce-Limit-Info`` and 403 ``REQUEST_LIMIT_EXCEEDED``; duplicate rules (``duplicateResut``),
converted leads, field-level security, validation rules.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from flask import Response, request
from leadbridge import clock as clocks
from leadbridge.sandbox import Sandbox

from .schema import OBJECTS
from .soql import SoqlError
from .store import ApiError, Store, sf_time

DATA = re.compile(r"^/services/data/v(\d{2,3}\.\d)(/.*)?$")
VERSIONS = ["58.0", "59.0", "60.0", "61.0", "62.0", "63.0", "64.0", "65.0", "66.0"]
ORG_ID = "00D5g000004ABCDEAA"
USER_ID = "0055g000009XYZAAA2"


LIMIT_200 = "record limit reached. cannot submit more than 200 records into this call"


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def _errors(exc: ApiError) -> Response:
    return _json(exc.single(), exc.status)


class SalesforceSandbox(Sandbox):
    name = "salesforce"

    def __init__(self, **kw: Any) -> None:
        self.store = Store()
        # credentials the org accepts
        self.consumer_key = "3MVG9sandbox.consumer.key"
        self.consumer_secret = "sandbox-consumer-secret"
        self.username = "api@leadbridge.example"
        self.password = "Sandbox-Pass-1"
        self.security_token = "SbxTok3n"
        self.jwt_public_key: Any = None
        self.jwt_approved = True
        # knobs (section 9 of the vendor notes: not confirmed, so configurable)
        self.session_lifetime = 7200.0
        self.daily_limit = 15000
        self.api_usage = 0
        self.query_batch_size = 2000
        self.locator_ttl = 900.0
        self.max_cursors = 10
        self.upsert_update_status = 200
        self.password_flow_blocked = False
        self.password_expired = False
        self.client_credentials_on_login_host = False  # True: answer as login.salesforce.com does
        #: the data host the token answer names (a real-looking one: the core redirects calls here)
        self.instance_url = "https://leadbridge-sandbox.my.salesforce.com"
        self.extra_token_fields: dict[str, str] = {}
        self.versions = list(VERSIONS)
        self.logins = 0
        self.bulk_polls_until_complete = 1
        self.expire_sessions_at_usage: int | None = None  # mid-run expiry: after this many data calls
        self.sessions: dict[str, tuple[int, float]] = {}
        self.refresh_tokens: set[str] = set()
        self.cursors: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.requests_seen: list[dict[str, Any]] = []  # JSON bodies the connector sent
        self.responses_seen: list[dict[str, Any]] = []  # JSON bodies the sandbox answered
        super().__init__(**kw)

    @property
    def page_size(self) -> int:
        """The query batch size (the conformance kit lowers it to span pages)."""
        return self.query_batch_size

    @page_size.setter
    def page_size(self, value: int) -> None:
        self.query_batch_size = value

    # -- the kit's hooks ---------------------------------------------------------------------

    def connection_settings(self, base_url: str) -> tuple[dict[str, Any], dict[str, str]]:
        # The recommended flow (client credentials on My Domain); tests switch to the others.
        settings = {
            "auth_flow": "client_credentials",
            "login_host": "my_domain",
            "my_domain": "leadbridge-demo",
            "username": self.username,
        }
        secrets_ = {
            "consumer_key": self.consumer_key,
            "consumer_secret": self.consumer_secret,
            "password": self.password,
            "security_token": self.security_token,
        }
        return settings, secrets_

    def bad_connection_settings(self, base_url: str) -> tuple[dict[str, Any], dict[str, str]]:
        settings, secrets_ = self.connection_settings(base_url)
        return settings, {**secrets_, "consumer_secret": "wrong-secret", "password": "wrong-password"}

    def add_contacts(self, count: int, *, with_email: bool = True) -> list[str]:
        ids = []
        for _ in range(count):
            n = self.store.counter + 1
            body = {"FirstName": "Vendor", "LastName": f"Lead{n}", "Company": f"Company {n}"}
            if with_email:
                body["Email"] = f"lead{n}@vendor.example"
            ids.append(self.store.save("Lead", body, allow_duplicates=True)[0])
        return ids

    def contact_count(self) -> int:
        return sum(1 for r in self.store.records["Lead"].values() if not r["IsDeleted"])

    def company_count(self) -> int:
        return sum(1 for r in self.store.records["Account"].values() if not r["IsDeleted"])

    def seed_demo(self) -> None:
        s = self.store
        acme, _ = s.save("Account", {"Name": "Acme Oy", "Website": "https://acme.example"})
        globex, _ = s.save("Account", {"Name": "Globex SA", "Industry": "Technology"})
        for first, last, email, account in [
            ("Aino", "Virtanen", "aino@acme.example", acme),
            ("Jussi", "Laine", "jussi@globex.example", globex),
        ]:
            s.save(
                "Contact",
                {
                    "FirstName": first,
                    "LastName": last,
                    "Email": email,
                    "AccountId": account,
                    "Sync_To_Leadbridge__c": "Yes",
                },
            )
        s.save(
            "Contact",
            {
                "FirstName": "Private",
                "LastName": "Person",
                "Email": "private@acme.example",
                "AccountId": acme,
                "Sync_To_Leadbridge__c": "No",
            },
        )
        for i, (first, last, company) in enumerate(
            [
                ("Emma", "Korhonen", "Northwind Ltd"),
                ("Olli", "Nieminen", "Initech GmbH"),
                ("Sofia", "Rossi", "Umbrella AB"),
            ]
        ):
            s.save(
                "Lead",
                {
                    "FirstName": first,
                    "LastName": last,
                    "Company": company,
                    "LeadSource": "Web",
                    "Email": f"{first.lower()}.{last.lower()}@{company.split()[0].lower()}.example",
                    "Industry": ["Banking", "Technology", "Education"][i],
                },
            )
        campaign, _ = s.save("Campaign", {"Name": "Spring webinar 2026", "IsActive": True})
        for lead in list(s.records["Lead"])[:2]:
            s.save("CampaignMember", {"CampaignId": campaign, "LeadId": lead, "Status": "Sent"})

    def rate_limit_response(self, retry_after: float) -> Response:
        # Salesforce has no 429: its throttle is 403 REQUEST_LIMIT_EXCEEDED, without Retry-After.
        return _json(
            [{"message": "ConcurrentPerOrgLongTxn Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
            403,
        )

    def expire_tokens(self) -> None:
        with self.lock:
            super().expire_tokens()

    def data_calls(self) -> int:
        """API calls that count against the daily allocation (everything under /services/data/vNN.N)."""
        return sum(1 for c in self.calls if DATA.match(c.path))

    # -- routes ---------------------------------------------------------------------------------

    def error_response(self, status: int, code: str, message: str) -> Response:
        return _json([{"errorCode": code, "message": message}], status)

    def setup_routes(self) -> None:
        app = self.app
        app.before_request(self._gate)
        app.after_request(self._limit_header)
        app.add_url_rule("/services/oauth2/token", view_func=self.token, methods=["POST"])
        app.add_url_rule("/services/data/", view_func=self.versions_list, methods=["GET"])
        app.add_url_rule("/services/data", view_func=self.versions_list, methods=["GET"])
        base = "/services/data/<version>"
        app.add_url_rule(f"{base}/limits", view_func=self.limits)
        app.add_url_rule(f"{base}/sobjects", view_func=self.sobjects)
        app.add_url_rule(f"{base}/sobjects/<sobject>/describe", view_func=self.describe)
        app.add_url_rule(f"{base}/sobjects/<sobject>/updated/", view_func=self.updated)
        app.add_url_rule(f"{base}/sobjects/<sobject>/deleted/", view_func=self.deleted)
        app.add_url_rule(f"{base}/sobjects/<sobject>", view_func=self.create, methods=["POST"])
        app.add_url_rule(
            f"{base}/sobjects/<sobject>/<record_id>",
            view_func=self.record,
            methods=["GET", "PATCH", "DELETE"],
        )
        app.add_url_rule(
            f"{base}/sobjects/<sobject>/<field>/<path:value>",
            view_func=self.upsert_one,
            methods=["GET", "PATCH"],
        )
        app.add_url_rule(f"{base}/query", view_func=self.query, defaults={"all_rows": False})
        app.add_url_rule(f"{base}/query/", view_func=self.query, defaults={"all_rows": False})
        app.add_url_rule(f"{base}/queryAll", view_func=self.query, defaults={"all_rows": True})
        app.add_url_rule(f"{base}/queryAll/", view_func=self.query, defaults={"all_rows": True})
        app.add_url_rule(f"{base}/query/<locator>", view_func=self.more, defaults={"all_rows": False})
        app.add_url_rule(f"{base}/queryAll/<locator>", view_func=self.more, defaults={"all_rows": True})
        app.add_url_rule(f"{base}/composite", view_func=self.composite, methods=["POST"])
        app.add_url_rule(
            f"{base}/composite/sobjects", view_func=self.collections, methods=["POST", "PATCH", "DELETE"]
        )
        app.add_url_rule(
            f"{base}/composite/sobjects/<sobject>/<field>",
            view_func=self.collections_upsert,
            methods=["PATCH"],
        )
        app.add_url_rule(f"{base}/jobs/ingest", view_func=self.bulk_create, methods=["POST"])
        app.add_url_rule(f"{base}/jobs/ingest/<job_id>", view_func=self.bulk_job, methods=["GET", "PATCH"])
        app.add_url_rule(f"{base}/jobs/ingest/<job_id>/batches", view_func=self.bulk_upload, methods=["PUT"])
        app.add_url_rule(f"{base}/jobs/ingest/<job_id>/<kind>/", view_func=self.bulk_results)

    def _gate(self) -> Response | None:
        """Session check and the daily allocation for every data call (after the base's faults)."""
        match = DATA.match(request.path)
        if match is None or self._exempt():
            return None
        self.requests_seen.append(
            {"method": request.method, "path": request.path, "json": request.get_json(silent=True)}
        )
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        with self.lock:
            session = self.sessions.get(token)
            now = clocks.monotonic()
            if (
                session is None
                or session[0] != self.token_generation
                or now - session[1] > self.session_lifetime
            ):
                return _json(
                    [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}], 401
                )
            self.sessions[token] = (session[0], now)  # sessions time out after inactivity
            if self.api_usage >= self.daily_limit:
                return _json(
                    [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}], 403
                )
            self.api_usage += 1
            if self.expire_sessions_at_usage == self.api_usage:
                self.token_generation += 1  # this call still passes; the next one finds its session gone
        return None

    def _limit_header(self, response: Response) -> Response:
        recorded = DATA.match(request.path) or request.path == "/services/oauth2/token"
        if recorded and response.mimetype == "application/json":
            self.responses_seen.append(
                {
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "json": json.loads(response.get_data(as_text=True) or "null"),
                }
            )
        if DATA.match(request.path):
            response.headers["Sforce-Limit-Info"] = f"api-usage={self.api_usage}/{self.daily_limit}"
        return response

    # -- OAuth ----------------------------------------------------------------------------------

    def token(self) -> Response:
        form = request.form
        grant = form.get("grant_type", "")

        def fail(error: str, description: str) -> Response:
            return _json({"error": error, "error_description": description}, 400)

        if grant == "password":
            if self.password_flow_blocked:
                return fail("invalid_grant", "authentication failure")
            if form.get("client_id") != self.consumer_key:
                return fail("invalid_client_id", "client identifier invalid")
            if form.get("client_secret") != self.consumer_secret:
                return fail("invalid_client", "invalid client credentials")
            if (
                form.get("username") != self.username
                or form.get("password") != self.password + self.security_token
                or self.password_expired
            ):
                return fail("invalid_grant", "authentication failure")
        elif grant == "client_credentials":
            if self.client_credentials_on_login_host:
                return fail("invalid_grant", "request not supported on this domain")
            key, _, secret = self._basic()
            if key != self.consumer_key:
                return fail("invalid_client_id", "client identifier invalid")
            if secret != self.consumer_secret:
                return fail("invalid_client", "invalid client credentials")
        elif grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            problem = self._check_jwt(form.get("assertion", ""))
            if problem:
                return fail("invalid_grant", problem)
        elif grant == "refresh_token":
            if form.get("refresh_token") not in self.refresh_tokens:
                return fail("invalid_grant", "expired access/refresh token")
        else:
            return fail("unsupported_grant_type", "grant type not supported")
        with self.lock:
            self.logins += 1
            token = f"{ORG_ID[:15]}!AR{secrets.token_urlsafe(40)}"
            self.sessions[token] = (self.token_generation, clocks.monotonic())
        body = {
            "access_token": token,
            "instance_url": self.instance_url,
            "id": f"https://login.salesforce.com/id/{ORG_ID}/{USER_ID}",
            "token_type": "Bearer",
            "issued_at": str(int(clocks.wall_time() * 1000)),
            "signature": base64.b64encode(secrets.token_bytes(32)).decode(),
            **self.extra_token_fields,
        }
        return _json(body)

    def _basic(self) -> tuple[str, str, str]:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return "", "", ""
        try:
            return base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return "", "", ""

    @staticmethod
    def _pad(text: str) -> str:
        return text + "=" * (-len(text) % 4)

    def _check_jwt(self, assertion: str) -> str | None:
        pad = self._pad
        try:
            header_b64, payload_b64, sig_b64 = assertion.split(".")
            claims = json.loads(base64.urlsafe_b64decode(pad(payload_b64)))
            signature = base64.urlsafe_b64decode(pad(sig_b64))
        except ValueError:
            return "invalid assertion"
        if self.jwt_public_key is None:
            return "invalid assertion"
        key = self.jwt_public_key
        if isinstance(key, str | bytes):
            key = serialization.load_pem_public_key(key.encode() if isinstance(key, str) else key)
        try:
            key.verify(signature, f"{header_b64}.{payload_b64}".encode(), padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return "invalid assertion"
        if claims.get("iss") != self.consumer_key:
            return "invalid client credentials"
        if claims.get("sub") != self.username:
            return "authentication failure"
        if int(claims.get("exp", 0)) < clocks.wall_time():
            return "expired authorization code"
        if not self.jwt_approved:
            return "user hasn't approved this consumer"
        return None

    # -- data API -------------------------------------------------------------------------------

    def versions_list(self) -> Response:
        return _json([{"label": f"v{v}", "url": f"/services/data/v{v}", "version": v} for v in self.versions])

    def limits(self, version: str) -> Response:
        return _json(
            {
                "DailyApiRequests": {"Max": self.daily_limit, "Remaining": self.daily_limit - self.api_usage},
                "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
            }
        )

    def sobjects(self, version: str) -> Response:
        return _json(
            {
                "encoding": "UTF-8",
                "maxBatchSize": 200,
                "sobjects": [
                    {
                        "name": n,
                        "label": o["label"],
                        "keyPrefix": o["keyPrefix"],
                        "createable": True,
                        "updateable": True,
                        "queryable": True,
                        "custom": False,
                    }
                    for n, o in OBJECTS.items()
                ],
            }
        )

    def describe(self, version: str, sobject: str) -> Response:
        if sobject not in OBJECTS:
            return _json(
                [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}], 404
            )
        o = OBJECTS[sobject]
        return _json(
            {
                "name": sobject,
                "label": o["label"],
                "keyPrefix": o["keyPrefix"],
                "custom": False,
                "createable": sobject != "Campaign" or True,
                "updateable": True,
                "queryable": True,
                "fields": self.store.describe_fields(sobject),
            }
        )

    def create(self, version: str, sobject: str) -> Response:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return _json([{"message": "Unexpected character", "errorCode": "JSON_PARSER_ERROR"}], 400)
        try:
            new_id, _ = self.store.save(sobject, body, allow_duplicates=self._allow_dupes())
        except ApiError as exc:
            return _errors(exc)
        return _json({"id": new_id, "success": True, "errors": []}, 201)

    def _allow_dupes(self) -> bool:
        return (
            "allowsave=true"
            in request.headers.get("Sforce-Duplicate-Rule-Header", "").replace(" ", "").lower()
        )

    def record(self, version: str, sobject: str, record_id: str) -> Response:
        try:
            self.store.known(sobject)
            if request.method == "DELETE":
                self.store.delete(sobject, record_id)
                return Response(status=204)
            if request.method == "PATCH":
                self.store.save(sobject, request.get_json(silent=True) or {}, record_id)
                return Response(status=204)
            rec = self.store.get(sobject, record_id)
            if rec is None:
                return _json(
                    [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}], 404
                )
            wanted = request.args.get("fields")
            names = (
                [n.strip() for n in wanted.split(",")]
                if wanted
                else [f["name"] for f in self.store.describe_fields(sobject)]
            )
            return _json(self.store.shape(sobject, rec, names, self.store.resolve(sobject)))
        except ApiError as exc:
            return _errors(exc)
        except SoqlError as exc:
            return _json([{"message": exc.message, "errorCode": exc.code}], 400)

    def upsert_one(self, version: str, sobject: str, field: str, value: str) -> Response:
        try:
            self.store.known(sobject)
            f = self.store.field(sobject, field)
            if f is None or not (f["externalId"] or f["name"] == "Id"):
                return _json(
                    [
                        {
                            "message": f"Provided external ID field does not exist or is not accessible: {field}",  # noqa: E501
                            "errorCode": "NOT_FOUND",
                        }
                    ],
                    404,
                )
            matches = [
                r
                for r in self.store.records[sobject].values()
                if not r["IsDeleted"] and str(r.get(f["name"]) or "").lower() == value.lower()
            ]
            if request.method == "GET":
                if not matches:
                    return _json(
                        [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}], 404
                    )
                return _json(matches[0])
            body = request.get_json(silent=True) or {}
            if any(k.lower() == f["name"].lower() for k in body):
                return _json(
                    [
                        {
                            "message": f"The field {f['name']} should not be specified in the sobject data.",
                            "errorCode": "INVALID_FIELD",
                        }
                    ],
                    400,
                )
            if len(matches) > 1:
                return _json([self.store.attributes(sobject, r["Id"])["url"] for r in matches], 300)
            if matches:
                rid, _ = self.store.save(sobject, body, matches[0]["Id"])
                if self.upsert_update_status == 204:
                    return Response(status=204)
                return _json({"id": rid, "success": True, "errors": [], "created": False}, 200)
            rid, _ = self.store.save(
                sobject, {**body, f["name"]: value}, allow_duplicates=self._allow_dupes()
            )
            return _json({"id": rid, "success": True, "errors": [], "created": True}, 201)
        except ApiError as exc:
            return _errors(exc)

    # -- query ----------------------------------------------------------------------------------

    def query(self, version: str, all_rows: bool) -> Response:
        status, body = self.run_query(version, request.args.get("q", ""), all_rows)
        return _json(body, status)

    def run_query(self, version: str, text: str, all_rows: bool) -> tuple[int, Any]:
        try:
            rows = self.store.run_query(text, include_deleted=all_rows)
        except SoqlError as exc:
            return 400, [{"message": exc.message, "errorCode": exc.code}]
        for row in rows:
            self._reversion(row, version)
        return 200, self._page(version, rows, all_rows, 0, None)

    def _reversion(self, row: dict[str, Any], version: str) -> None:
        for value in row.values():
            if isinstance(value, dict) and "attributes" in value:
                self._reversion(value, version)
        attrs = row.get("attributes")
        if attrs:
            attrs["url"] = re.sub(r"/v\d+\.\d/", f"/{version}/", attrs["url"])

    def _page(
        self, version: str, rows: list[dict[str, Any]], all_rows: bool, start: int, locator: str | None
    ) -> dict[str, Any]:
        size = self.query_batch_size
        batch = rows[start : start + size]
        done = start + size >= len(rows)
        body: dict[str, Any] = {"totalSize": len(rows), "done": done, "records": batch}
        if not done:
            with self.lock:
                if locator is None:
                    locator = f"01g5g{secrets.token_hex(6).upper()}"
                    self.cursors[locator] = {"rows": rows}
                    while len(self.cursors) > self.max_cursors:  # opening more closes the oldest
                        self.cursors.pop(next(iter(self.cursors)))
                self.cursors[locator]["at"] = clocks.monotonic()
            resource = "queryAll" if all_rows else "query"
            body["nextRecordsUrl"] = f"/services/data/{version}/{resource}/{locator}-{start + size}"
        elif locator is not None:
            with self.lock:
                self.cursors.pop(locator, None)
        return body

    def more(self, version: str, locator: str, all_rows: bool) -> Response:
        name, _, offset = locator.partition("-")
        with self.lock:
            cursor = self.cursors.get(name)
            if cursor is None or clocks.monotonic() - cursor["at"] > self.locator_ttl or not offset.isdigit():
                self.cursors.pop(name, None)
                return _json(
                    [{"message": "invalid query locator", "errorCode": "INVALID_QUERY_LOCATOR"}], 400
                )
        return _json(self._page(version, cursor["rows"], all_rows, int(offset), name))

    # -- composite ------------------------------------------------------------------------------

    def composite(self, version: str) -> Response:
        body = request.get_json(silent=True) or {}
        subs = body.get("compositeRequest") or []
        if len(subs) > 25:
            return _json(
                [{"message": "Composite request limit is 25 subrequests", "errorCode": "INVALID_REQUEST"}],
                400,
            )
        out = []
        for sub in subs:
            status, result = self._sub_request(
                str(sub.get("method", "GET")), str(sub.get("url", "")), sub.get("body")
            )
            out.append(
                {
                    "body": result,
                    "httpHeaders": {},
                    "httpStatusCode": status,
                    "referenceId": sub.get("referenceId"),
                }
            )
        return _json({"compositeResponse": out})

    def _sub_request(self, method: str, url: str, body: Any) -> tuple[int, Any]:
        parts = urlsplit(url)
        match = DATA.match(parts.path.rstrip("/"))
        if match is None:
            return 400, [{"message": f"bad url {url}", "errorCode": "INVALID_URL"}]
        version, rest = f"v{match[1]}", match[2] or ""
        if method == "GET" and rest in ("/query", "/queryAll"):
            text = (parse_qs(parts.query).get("q") or [""])[0]
            return self.run_query(version, text, rest == "/queryAll")
        m = re.fullmatch(r"/sobjects/(\w+)", rest)
        if method == "POST" and m:
            try:
                new_id, _ = self.store.save(m[1], body or {})
            except ApiError as exc:
                return exc.status, exc.single()
            return 201, {"id": new_id, "success": True, "errors": []}
        return 400, [
            {
                "message": f"the sandbox does not support {method} {rest} in composite",
                "errorCode": "INVALID_REQUEST",
            }
        ]

    def collections(self, version: str) -> Response:
        if request.method == "DELETE":
            ids = [i for i in request.args.get("ids", "").split(",") if i]
            if len(ids) > 200:
                return _json(
                    [
                        {
                            "message": LIMIT_200,
                            "errorCode": "EXCEEDED_ID_LIMIT",
                        }
                    ],
                    400,
                )
            results = []
            for rid in ids:
                found = self._type_of(rid)
                try:
                    if found is None:
                        raise ApiError(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
                    self.store.delete(found, rid)
                    results.append({"id": rid, "success": True, "errors": []})
                except ApiError as exc:
                    results.append({"id": rid, "success": False, "errors": [exc.item()]})
            return _json(results)
        body = request.get_json(silent=True) or {}
        records = body.get("records") or []
        if len(records) > 200:
            return _json(
                [
                    {
                        "message": "record limit reached. cannot submit more than 200 records into this call",
                        "errorCode": "EXCEEDED_ID_LIMIT",
                    }
                ],
                400,
            )

        def one(record: dict[str, Any]) -> tuple[str, bool]:
            sobject = str((record.get("attributes") or {}).get("type") or "")
            if not sobject:
                raise ApiError(400, "INVALID_TYPE", "sObject type must be specified in attributes")
            if request.method == "PATCH":
                if not record.get("Id"):
                    raise ApiError(400, "MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
                return self.store.save(sobject, record, str(record["Id"]))
            if record.get("Id"):
                raise ApiError(400, "INVALID_FIELD", "cannot specify Id in an insert call", ["Id"])
            return self.store.save(sobject, record, allow_duplicates=self._allow_dupes())

        return self._apply_all(records, one, bool(body.get("allOrNone")), with_created=False)

    def collections_upsert(self, version: str, sobject: str, field: str) -> Response:
        body = request.get_json(silent=True) or {}
        records = body.get("records") or []
        if len(records) > 200:
            return _json([{"message": "record limit reached", "errorCode": "EXCEEDED_ID_LIMIT"}], 400)
        f = self.store.field(sobject, field) if sobject in OBJECTS else None
        if f is None or not f["externalId"]:
            return _json(
                [{"message": f"Field {field} is not an external id field", "errorCode": "INVALID_FIELD"}], 400
            )

        def one(record: dict[str, Any]) -> tuple[str, bool]:
            value = str(record.get(f["name"]) or "")
            if not value:
                raise ApiError(400, "MISSING_ARGUMENT", f"{f['name']} not specified", [f["name"]])
            matches = [
                r
                for r in self.store.records[sobject].values()
                if not r["IsDeleted"] and str(r.get(f["name"]) or "").lower() == value.lower()
            ]
            if len(matches) > 1:
                raise ApiError(
                    300, "DUPLICATE_EXTERNAL_ID", f"{f['name']}: more than one record found", [f["name"]]
                )
            if matches:
                rest = {k: v for k, v in record.items() if k != f["name"]}
                return self.store.save(sobject, rest, matches[0]["Id"])
            return self.store.save(sobject, record, allow_duplicates=self._allow_dupes())

        return self._apply_all(records, one, bool(body.get("allOrNone")), with_created=True)

    def _apply_all(
        self, records: list[dict[str, Any]], one: Any, all_or_none: bool, *, with_created: bool
    ) -> Response:
        before = self.store.snapshot() if all_or_none else None
        results: list[dict[str, Any]] = []
        failed = False
        for record in records:
            try:
                rid, created = one(record)
                item: dict[str, Any] = {"id": rid, "success": True, "errors": []}
                if with_created:
                    item["created"] = created
            except ApiError as exc:
                failed = True
                item = {"success": False, "errors": [exc.item()]}
                if record.get("Id"):
                    item["id"] = record["Id"]
            results.append(item)
        if all_or_none and failed and before is not None:
            self.store.restore(before)
            rolled = {
                "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                "message": "Record rolled back because not all records were valid and the request was using "
                "AllOrNone header",
                "fields": [],
            }
            results = [
                r if not r["success"] else {"id": None, "success": False, "errors": [rolled]} for r in results
            ]
        return _json(results)

    def _type_of(self, record_id: str) -> str | None:
        for sobject, recs in self.store.records.items():
            if self.store.canonical(record_id) in recs:
                return sobject
        return None

    # -- replication ----------------------------------------------------------------------------

    def _window(self) -> tuple[str, str]:
        from .soql import parse_dt

        return sf_time(parse_dt(request.args["start"])), sf_time(parse_dt(request.args["end"]))

    def updated(self, version: str, sobject: str) -> Response:
        start, end = self._window()
        ids = [
            r["Id"]
            for r in self.store.records.get(sobject, {}).values()
            if not r["IsDeleted"] and start <= r["SystemModstamp"] <= end
        ]
        return _json({"ids": ids, "latestDateCovered": end})

    def deleted(self, version: str, sobject: str) -> Response:
        start, end = self._window()
        gone = [
            {"id": r["Id"], "deletedDate": r["SystemModstamp"]}
            for r in self.store.records.get(sobject, {}).values()
            if r["IsDeleted"] and start <= r["SystemModstamp"] <= end
        ]
        return _json({"deletedRecords": gone, "earliestDateAvailable": start, "latestDateCovered": end})

    # -- Bulk API 2.0 ingest --------------------------------------------------------------------

    def bulk_create(self, version: str) -> Response:
        spec = request.get_json(silent=True) or {}
        if spec.get("object") not in OBJECTS or spec.get("operation") not in (
            "insert",
            "update",
            "upsert",
            "delete",
        ):
            return _json([{"message": "invalid job", "errorCode": "INVALIDJOB"}], 400)
        if spec["operation"] == "upsert" and not spec.get("externalIdFieldName"):
            return _json([{"message": "externalIdFieldName is required", "errorCode": "INVALIDJOB"}], 400)
        job_id = self.store.new_id("Job")
        job = {
            "id": job_id,
            "object": spec["object"],
            "operation": spec["operation"],
            "state": "Open",
            "externalIdFieldName": spec.get("externalIdFieldName"),
            "contentType": "CSV",
            "lineEnding": "LF",
            "apiVersion": float(version[1:]),
            "numberRecordsProcessed": 0,
            "numberRecordsFailed": 0,
            "csv": "",
            "ok": [],
            "failed": [],
            "polls": 0,
        }
        self.jobs[job_id] = job
        return _json(self._job_view(job))

    @staticmethod
    def _job_view(job: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in job.items() if k not in ("csv", "ok", "failed", "polls")}

    def bulk_upload(self, version: str, job_id: str) -> Response:
        job = self.jobs.get(job_id)
        if job is None or job["state"] != "Open":
            return _json([{"message": "job is not open", "errorCode": "INVALIDJOB"}], 400)
        job["csv"] += request.get_data(as_text=True)
        return Response(status=201)

    def bulk_job(self, version: str, job_id: str) -> Response:
        job = self.jobs.get(job_id)
        if job is None:
            return _json(
                [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}], 404
            )
        if request.method == "PATCH":
            state = (request.get_json(silent=True) or {}).get("state")
            if state == "UploadComplete":
                job["state"] = "UploadComplete"
                self._process(job)
            elif state == "Aborted":
                job["state"] = "Aborted"
            return _json(self._job_view(job))
        if job["state"] in ("UploadComplete", "InProgress"):
            job["polls"] += 1
            job["state"] = "JobComplete" if job["polls"] >= self.bulk_polls_until_complete else "InProgress"
        return _json(self._job_view(job))

    def _process(self, job: dict[str, Any]) -> None:
        rows = list(csv.DictReader(io.StringIO(job["csv"])))
        for row in rows:
            values = {k: (v if v != "" else None) for k, v in row.items() if v != "" or k == "#N/A"}
            try:
                if job["operation"] == "insert":
                    rid, created = self.store.save(job["object"], values)
                elif job["operation"] == "update":
                    rid, created = self.store.save(job["object"], values, str(values.get("Id")))
                elif job["operation"] == "delete":
                    self.store.delete(job["object"], str(values.get("Id")))
                    rid, created = str(values.get("Id")), False
                else:
                    ext = str(job["externalIdFieldName"])
                    matches = [
                        r
                        for r in self.store.records[job["object"]].values()
                        if not r["IsDeleted"]
                        and str(r.get(ext) or "").lower() == str(values.get(ext) or "").lower()
                    ]
                    if matches:
                        rest = {k: v for k, v in values.items() if k != ext}
                        rid, created = self.store.save(job["object"], rest, matches[0]["Id"])
                    else:
                        rid, created = self.store.save(job["object"], values)
                job["ok"].append({"sf__Id": rid, "sf__Created": str(created).lower(), **row})
            except ApiError as exc:
                job["failed"].append({"sf__Id": "", "sf__Error": f"{exc.code}:{exc.error['message']}", **row})
        job["numberRecordsProcessed"] = len(rows)
        job["numberRecordsFailed"] = len(job["failed"])

    def bulk_results(self, version: str, job_id: str, kind: str) -> Response:
        job = self.jobs.get(job_id)
        if job is None or kind not in ("successfulResults", "failedResults"):
            return _json(
                [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}], 404
            )
        rows = job["ok"] if kind == "successfulResults" else job["failed"]
        out = io.StringIO()
        if rows:
            writer = csv.DictWriter(out, fieldnames=list(rows[0].keys()), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        return Response(out.getvalue(), mimetype="text/csv")
