"""Loopback imitation of Maileon's REST API 1.0 (``https://api.maileon.com/1.0``), from the vendor notes.

Every route lives under ``/1.0/``. What it imitates:

* Auth: ``Authorization: Basic base64(<key>)`` carrying the key only. ``base64(<key>:)`` (user name
  plus empty password, what most HTTP clients build) is refused like any unknown key: the real API
  takes the key alone. :attr:`MaileonAPI.accept_raw_key` also lets ``Basic <key>`` through (XQueue's
  n8n node sends it). Unknown or expired key → 401; method missing from the key's privileges → 403.
* Content negotiation: request bodies are XML unless ``Content-Type`` names JSON; answers are JSON
  when ``Accept`` contains ``json``, XML (``application/vnd.maileon.api+xml``) otherwise. Errors are
  ``<error><message>…</message></error>``, in JSON ``{"error": {"message": "…"}}`` (the XML mirrored:
  Maileon documents no JSON error body).
* Contacts keyed by e-mail (case-insensitive), external ids not unique (409 on ambiguous writes),
  ``sync_mode`` (2 = ignore existing is the default), permission never downgraded, DOI pending until
  :meth:`MaileonAPI.confirm_doi`, typed custom fields, paging with ``X-Items``/``X-Pages``.
* Transaction types and ``POST /transactions`` with per-item ``reports``; the unsubscription report
  with epoch-millisecond dates; the mailing type; a webhook registry.

Choices where the notes are silent (notes §10): a new contact answers 201 with an empty body, an
update 200; times are UTC; ``POST /transactions`` answers 201; a transaction type or webhook created
answers 201 with the new id as the bare body.

Not imitated: bulk ``POST /contacts`` (sync reports), contact filters, ``Link`` headers, webhook
*delivery* (only the registry), anonymisation of unsubscribed contacts, the reasons report.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flask import Response, has_request_context, request
from leadbridge import clock as clocks
from leadbridge.sandbox import Sandbox

PREFIX = "/1.0"
XML_TYPE = "application/vnd.maileon.api+xml"
ALL_METHODS = frozenset({"GET", "POST", "PUT", "DELETE"})
PERMISSIONS = range(1, 7)  # 1 none, 2 soi, 3 coi, 4 doi, 5 doi+, 6 other
DOI_PERMISSIONS = (4, 5)
STANDARD_FIELDS = (
    "ADDRESS", "BIRTHDAY", "CITY", "COUNTRY", "FIRSTNAME", "FULLNAME", "GENDER", "HNR", "LASTNAME",
    "LOCALE", "NAMEDAY", "ORGANIZATION", "REGION", "SALUTATION", "TITLE", "ZIP", "STATE",
)  # fmt: skip
SYSTEM_FIELDS = ("SENDOUT_STATUS", "PERMISSION_STATUS", "CUSTOM_SOURCE", "CHECKSUM")  # readable, not writable
DATE_FIELDS = ("BIRTHDAY", "NAMEDAY")
CUSTOM_TYPES = ("string", "integer", "float", "date", "boolean")
ATTRIBUTE_TYPES = ("string", "double", "float", "integer", "boolean", "date", "timestamp", "json")
WEBHOOK_EVENTS = ("unsubscription", "doi", "bounce", "filtered", "contact_field_change")
MAX_PAGE_SIZE = 1000
MAX_TRANSACTIONS_BYTES = 9_000_000
MAX_STRING = 1000  # string attributes of a transaction type that is not storeOnly
TYPE_SEGMENT_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
INTEGER_RE = re.compile(r"^[+-]?\d+$")
DEFAULT_KEY = "3f1c2a8e-5b7d-4e21-9a0c-6d8b4f2e1a90"


class MaileonError(Exception):
    """Raised by a handler; answered as ``<error><message>``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class ApiKey:
    expires: datetime | None = None
    methods: frozenset[str] = ALL_METHODS


@dataclass
class MaileonContact:
    id: int
    email: str
    external_id: str | None
    permission: int
    standard: dict[str, str] = field(default_factory=dict)
    custom: dict[str, str] = field(default_factory=dict)
    created: datetime = field(default_factory=clocks.utcnow)
    updated: datetime = field(default_factory=clocks.utcnow)
    unsubscribed: bool = False
    doi_pending: bool = False
    doi_mailing: str | None = None
    doiplus: bool = False
    src: str | None = None
    subscription_page: str | None = None


@dataclass
class _ContactBody:
    """A parsed contact body; ``""`` values clear a field, ``external_id=None`` leaves it alone."""

    email: str | None = None
    external_id: str | None = None
    standard: dict[str, str] = field(default_factory=dict)
    custom: dict[str, str] = field(default_factory=dict)


def _stamp(moment: datetime) -> str:
    """Contact times as Maileon prints them (Java's Timestamp): ``2015-08-04 13:12:46.0``."""
    return moment.strftime("%Y-%m-%d %H:%M:%S") + ".0"


def _epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _xml(tag: str, value: Any, items: dict[str, str]) -> ET.Element:
    """Python data to XML: dicts become children, lists repeat ``items[tag]``, ``None`` is ``nil``."""
    element = ET.Element(tag)
    if isinstance(value, dict):
        for key, child in value.items():
            element.append(_xml(key, child, items))
    elif isinstance(value, list):
        for child in value:
            element.append(_xml(items[tag], child, items))
    elif value is None:
        element.set("nil", "true")
    else:
        element.text = _text(value)
    return element


def _child_text(element: ET.Element, tag: str) -> str | None:
    child = element.find(tag)
    if child is None or child.get("nil") == "true":
        return None
    return (child.text or "").strip()


def _is_date(value: str, fmt: str = "%Y-%m-%d") -> bool:
    try:
        datetime.strptime(value, fmt)
    except ValueError:
        return False
    return True


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _typed_ok(kind: str, value: Any) -> bool:
    """Whether a value fits one of Maileon's data types (custom fields and transaction attributes)."""
    if kind == "json":
        return True
    if value is None or isinstance(value, dict | list):
        return False
    text, number = _text(value), not isinstance(value, bool)
    if kind in ("float", "double"):
        return number and _is_number(text)
    if kind == "integer":
        return number and not isinstance(value, float) and bool(INTEGER_RE.match(text))
    if kind == "boolean":
        return text.lower() in ("true", "false")
    if kind == "date":
        return bool(DATE_RE.match(text)) and _is_date(text)
    if kind == "timestamp":
        return _is_date(text, "%Y-%m-%d %H:%M:%S")
    return kind == "string"


class MaileonAPI:
    """Maileon's routes and state, mounted on ``sandbox.app`` (see the module docstring)."""

    def __init__(self, sandbox: Sandbox, *, api_key: str = DEFAULT_KEY) -> None:
        self.sandbox = sandbox
        self.app = sandbox.app
        self.api_key = api_key
        self.keys: dict[str, ApiKey] = {}
        self.contacts: dict[int, MaileonContact] = {}
        self.custom_fields: dict[str, str] = {}
        self.transaction_types: dict[int, dict[str, Any]] = {}
        self.transactions: list[dict[str, Any]] = []
        self.unsubscriptions: list[dict[str, Any]] = []
        self.webhooks: dict[int, dict[str, Any]] = {}
        self.doi_mailings: set[str] = {"doi-1001"}
        self.regular_mailings: set[str] = {"news-2001"}
        #: the account's DOI mailing, used when ``doimailing`` is not given
        self.default_doi_mailing = "doi-1001"
        self.accept_raw_key = False
        self._next_contact_id = 15975220
        self._next_type_id = 1
        self._next_webhook_id = 1
        self.add_key(api_key)
        self._register_routes()

    # -- test hooks ------------------------------------------------------------------------

    def add_key(self, key: str, *, expires: datetime | None = None, methods: set[str] | None = None) -> None:
        """Issue (or replace) an API key, optionally expiring or limited to some HTTP methods."""
        self.keys[key] = ApiKey(expires, frozenset(m.upper() for m in methods) if methods else ALL_METHODS)

    def contact_by_email(self, email: str) -> MaileonContact | None:
        wanted = email.casefold()
        return next((c for c in self.contacts.values() if c.email.casefold() == wanted), None)

    def contacts_by_external_id(self, external_id: str) -> list[MaileonContact]:
        return [c for c in self.contacts.values() if c.external_id == external_id]

    def unsubscribe(
        self,
        email: str,
        *,
        reason: str | None = None,
        mailing_id: str | None = "news-2001",
        source: str = "link",
    ) -> None:
        """As if the person clicked "unsubscribe" in a mailing: a report row, permission kept."""
        with self.sandbox.lock:
            contact = self.contact_by_email(email)
            if contact is None:
                raise KeyError(email)
            self._unsubscribe(contact, reason=reason, mailing_id=mailing_id, source=source)

    def confirm_doi(self, email: str) -> None:
        """The click in the DOI mail: permission 4 (5 when ``doiplus`` was asked). Opting in again
        also ends an earlier unsubscription."""
        with self.sandbox.lock:
            contact = self.contact_by_email(email)
            if contact is None:
                raise KeyError(email)
            contact.permission = 5 if contact.doiplus else 4
            contact.doi_pending = False
            contact.unsubscribed = False
            contact.updated = clocks.utcnow()

    def error_response(self, status: int, message: str) -> Response:
        """Maileon's error body: ``<error><message>`` in XML, ``{"error": {"message"}}`` in JSON."""
        if self._wants_json():
            return Response(
                json.dumps({"error": {"message": message}}), status=status, mimetype="application/json"
            )
        return self._answer({"message": message}, root="error", status=status)

    # -- plumbing ----------------------------------------------------------------------------

    def _route(self, rule: str, methods: list[str], view: Callable[..., Response]) -> None:
        def guarded(**kwargs: Any) -> Response:
            with self.sandbox.lock:
                try:
                    self._authorize()
                    return view(**kwargs)
                except MaileonError as exc:
                    return self.error_response(exc.status, exc.message)

        endpoint = f"maileon_{view.__name__.lstrip('_')}"
        self.app.add_url_rule(PREFIX + rule, endpoint=endpoint, view_func=guarded, methods=methods)

    def _authorize(self) -> None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "basic" or not token:
            raise MaileonError(401, "authentication required: Basic base64(api key)")
        key = None
        try:
            decoded = base64.b64decode(token, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        if decoded in self.keys:
            key = decoded
        elif self.accept_raw_key and token in self.keys:
            key = token
        entry = self.keys.get(key) if key else None
        if entry is None:
            raise MaileonError(401, "invalid API key")
        if entry.expires is not None and entry.expires <= clocks.utcnow():
            raise MaileonError(401, "API key expired")
        method = "GET" if request.method == "HEAD" else request.method
        if method not in entry.methods:
            raise MaileonError(403, f"API key lacks the {method} privilege")

    @staticmethod
    def _wants_json() -> bool:
        return has_request_context() and "json" in request.headers.get("Accept", "").lower()

    def _answer(
        self,
        data: Any,
        *,
        root: str,
        items: dict[str, str] | None = None,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> Response:
        if self._wants_json():
            body, mimetype = json.dumps(data), "application/json"
        else:
            element = _xml(root, data, items or {})
            body = '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(element, encoding="unicode")
            mimetype = XML_TYPE
        return Response(body, status=status, mimetype=mimetype, headers=headers)

    @staticmethod
    def _bare(value: Any, status: int = 201) -> Response:
        """A body that is just a value (new ids): Maileon answers them unwrapped."""
        return Response(_text(value), status=status, mimetype="text/plain")

    @staticmethod
    def _request_is_json() -> bool:
        return "json" in (request.content_type or "").lower()

    @staticmethod
    def _json_body() -> Any:
        raw = request.get_data()
        if not raw.strip():
            raise MaileonError(400, "request body is empty")
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise MaileonError(400, f"invalid JSON: {exc}") from None

    @staticmethod
    def _xml_body() -> ET.Element:
        raw = request.get_data()
        if not raw.strip():
            raise MaileonError(400, "request body is empty")
        # defusedxml is not available: ElementTree ignores external entities but expands internal
        # ones (billion laughs), so any DTD or entity declaration is refused before parsing.
        lowered = raw.lower()
        if b"<!doctype" in lowered or b"<!entity" in lowered:
            raise MaileonError(400, "DTDs and entity declarations are not allowed")
        try:
            return ET.fromstring(raw)  # noqa: S314 -- DTDs refused above
        except ET.ParseError as exc:
            raise MaileonError(400, f"invalid XML: {exc}") from None

    @staticmethod
    def _int_arg(name: str, default: int, low: int, high: int | None = None) -> int:
        raw = request.args.get(name)
        if raw is None or raw == "":
            return default
        if not INTEGER_RE.match(raw):
            raise MaileonError(400, f"{name} must be an integer but was {raw}")
        value = int(raw)
        if value < low or (high is not None and value > high):
            raise MaileonError(400, f"{name} must be between {low} and {high} but was {value}")
        return value

    @staticmethod
    def _bool_arg(name: str, default: bool = False) -> bool:
        raw = request.args.get(name)
        if raw is None or raw == "":
            return default
        if raw.lower() not in ("true", "false"):
            raise MaileonError(400, f"{name} must be true or false but was {raw}")
        return raw.lower() == "true"

    def _page(self, rows: list[Any]) -> tuple[list[Any], dict[str, str]]:
        """``page_index`` (≥ 1) and ``page_size`` (1 to 1000): the slice and the paging headers."""
        index = self._int_arg("page_index", 1, 1)
        raw_size = request.args.get("page_size", "")
        if INTEGER_RE.match(raw_size) and int(raw_size) > MAX_PAGE_SIZE:
            raise MaileonError(400, f"page_size must not exceed {MAX_PAGE_SIZE} but was {int(raw_size)}")
        size = self._int_arg("page_size", 100, 1, MAX_PAGE_SIZE)
        pages = math.ceil(len(rows) / size)
        start = (index - 1) * size
        return rows[start : start + size], {"X-Items": str(len(rows)), "X-Pages": str(pages)}

    # -- contacts: parsing and rendering ---------------------------------------------------------

    def _check_custom(self, name: str, value: Any) -> str:
        kind = self.custom_fields.get(name)
        if kind is None:
            raise MaileonError(400, f"custom field {name} does not exist (create it first)")
        if value is None or isinstance(value, dict | list):
            raise MaileonError(400, f"custom field {name}: value must not be null or an object")
        text = _text(value)
        if text and not _typed_ok(kind, value):
            raise MaileonError(400, f"custom field {name} of type {kind}: invalid value {text!r}")
        return text.lower() if kind == "boolean" else text

    @staticmethod
    def _check_standard(name: str, value: Any) -> str:
        if name in SYSTEM_FIELDS:
            raise MaileonError(400, f"standard field {name} is read-only")
        if name not in STANDARD_FIELDS:
            raise MaileonError(400, f"unknown standard field {name}")
        if isinstance(value, dict | list):
            raise MaileonError(400, f"standard field {name}: value must be a string")
        text = "" if value is None else _text(value)
        if text and name in DATE_FIELDS and not (DATE_RE.match(text) and _is_date(text)):
            raise MaileonError(400, f"standard field {name} must be YYYY-MM-DD but was {text!r}")
        return text

    def _contact_body(self) -> _ContactBody:
        body = _ContactBody()
        if self._request_is_json():
            data = self._json_body()
            if not isinstance(data, dict):
                raise MaileonError(400, "contact must be a JSON object")
            standard, custom = data.get("standard_fields") or {}, data.get("custom_fields") or {}
            if not isinstance(standard, dict) or not isinstance(custom, dict):
                raise MaileonError(400, "standard_fields and custom_fields must be objects")
            email, external_id = data.get("email"), data.get("external_id")
        else:
            root = self._xml_body()
            if root.tag != "contact":
                raise MaileonError(400, f"expected <contact> but got <{root.tag}>")
            standard, custom = (
                self._xml_fields(root, "standard_fields"),
                self._xml_fields(root, "custom_fields"),
            )
            email, external_id = _child_text(root, "email"), _child_text(root, "external_id")
        body.standard = {name: self._check_standard(name, value) for name, value in standard.items()}
        body.custom = {name: self._check_custom(name, value) for name, value in custom.items()}
        body.email = None if email is None else str(email)
        body.external_id = None if external_id is None else str(external_id)
        return body

    @staticmethod
    def _xml_fields(root: ET.Element, tag: str) -> dict[str, str]:
        fields: dict[str, str] = {}
        for item in root.findall(f"{tag}/field"):
            name = _child_text(item, "name")
            if not name:
                raise MaileonError(400, f"a field in <{tag}> has no name")
            fields[name] = _child_text(item, "value") or ""
        return fields

    def _selected_fields(self) -> tuple[list[str], list[str]]:
        standard = list(dict.fromkeys(request.args.getlist("standard_field")))
        for name in standard:
            if name not in STANDARD_FIELDS and name not in SYSTEM_FIELDS:
                raise MaileonError(400, f"unknown standard field {name}")
        return standard, list(dict.fromkeys(request.args.getlist("custom_field")))

    def _contact_data(
        self, contact: MaileonContact, standard: list[str], custom: list[str]
    ) -> dict[str, Any]:
        """Only the fields asked for; empty standard fields are null, empty custom fields are left out
        (system fields such as CHECKSUM are readable but always empty here)."""
        return {
            "id": contact.id,
            "email": contact.email,
            "external_id": contact.external_id,
            "created": _stamp(contact.created),
            "updated": _stamp(contact.updated),
            "permission": contact.permission,
            "standard_fields": {name: contact.standard.get(name) or None for name in standard},
            "custom_fields": {name: contact.custom[name] for name in custom if contact.custom.get(name)},
        }

    def _contact_answer(self, data: dict[str, Any] | list[dict[str, Any]], **kwargs: Any) -> Response:
        if self._wants_json():
            return self._answer(data, root="contact", **kwargs)

        def as_xml(one: dict[str, Any]) -> dict[str, Any]:
            fields = ("standard_fields", "custom_fields")
            return {**one, **{f: [{"name": n, "value": v} for n, v in one[f].items()] for f in fields}}

        items = {"standard_fields": "field", "custom_fields": "field", "contacts": "contact"}
        if isinstance(data, list):
            return self._answer([as_xml(one) for one in data], root="contacts", items=items, **kwargs)
        return self._answer(as_xml(data), root="contact", items=items, **kwargs)

    # -- contacts: state changes -------------------------------------------------------------------

    def _create(self, email: str, permission: int) -> MaileonContact:
        contact = MaileonContact(self._next_contact_id, email, None, permission)
        self._next_contact_id += 1
        self.contacts[contact.id] = contact
        return contact

    @staticmethod
    def _apply(contact: MaileonContact, body: _ContactBody) -> None:
        for target, changes in ((contact.standard, body.standard), (contact.custom, body.custom)):
            for name, value in changes.items():
                if value == "":
                    target.pop(name, None)
                else:
                    target[name] = value
        if body.external_id is not None:
            contact.external_id = body.external_id or None

    def _upsert(self, existing: MaileonContact | None, email: str, body: _ContactBody) -> Response:
        """``POST /contacts/email|externalid``: create (201) or, with ``sync_mode=1``, update (200).

        An existing contact's permission only leaves 1 (none); DOI/DOI+ and unsubscriptions stay: a
        plain POST does not re-subscribe anybody (only a confirmed DOI does).
        """
        permission = self._int_arg("permission", 1, 1, 6)
        sync_mode = self._int_arg("sync_mode", 2, 1, 2)
        doi = self._bool_arg("doi")
        doiplus = doi and self._bool_arg("doiplus")
        mailing = request.args.get("doimailing") or None
        if doi and mailing is not None and mailing not in self.doi_mailings:
            raise MaileonError(400, f"no DOI mailing with id or key {mailing}")
        if existing is None:
            if not EMAIL_RE.match(email):
                raise MaileonError(400, f"invalid email address {email}")
            contact = self._create(email, permission)
            contact.src = request.args.get("src")
            contact.subscription_page = request.args.get("subscription_page")
        elif sync_mode == 2:
            return Response(status=200)  # "ignore existing": nothing changes, still 2xx
        else:
            contact = existing
        before = (contact.standard.copy(), contact.custom.copy(), contact.external_id, contact.permission)
        self._apply(contact, body)
        if contact.permission == 1:
            contact.permission = permission
        if doi and contact.permission not in DOI_PERMISSIONS:
            # The DOI mail goes out asynchronously; permission changes only after the click.
            contact.doi_pending, contact.doiplus = True, doiplus
            contact.doi_mailing = mailing or self.default_doi_mailing
        if existing is None:
            return Response(status=201)
        if before != (contact.standard, contact.custom, contact.external_id, contact.permission):
            contact.updated = clocks.utcnow()
        return Response(status=200)

    def _update(self, contact: MaileonContact) -> Response:
        """``PUT``: a partial field update; ``permission`` sets the permission, except that DOI/DOI+
        is never downgraded (notes §8.7)."""
        permission = self._int_arg("permission", 0, 1, 6) if request.args.get("permission") else None
        body = self._contact_body()
        self._apply(contact, body)
        if permission is not None and contact.permission not in DOI_PERMISSIONS:
            contact.permission = permission
        contact.updated = clocks.utcnow()
        return Response(status=200)

    def _unsubscribe(
        self, contact: MaileonContact, *, reason: str | None, mailing_id: str | None, source: str
    ) -> None:
        if contact.unsubscribed:
            return  # already out: no second report row
        contact.unsubscribed = True
        contact.updated = clocks.utcnow()
        self.unsubscriptions.append(
            {
                "timestamp": clocks.utcnow(),
                "contact": {"id": contact.id, "email": contact.email, "external_id": contact.external_id},
                "mailing_id": mailing_id,
                "source": source,
                "reason": reason,
            }
        )

    def _by_email(self, email: str) -> MaileonContact:
        contact = self.contact_by_email(email)
        if contact is None:
            raise MaileonError(404, f"no contact with email {email}")
        return contact

    def _one_by_external_id(self, external_id: str) -> MaileonContact | None:
        found = self.contacts_by_external_id(external_id)
        if len(found) > 1:
            raise MaileonError(409, f"{len(found)} contacts have the external id {external_id}")
        return found[0] if found else None

    # -- routes ------------------------------------------------------------------------------------

    def _register_routes(self) -> None:
        self._route("/ping", ["GET", "POST", "PUT", "DELETE"], self._ping)
        self._route("/contacts", ["GET"], self._list_contacts)
        self._route("/contacts/count", ["GET"], self._count_contacts)
        self._route("/contacts/email/<email>", ["GET", "POST", "PUT", "DELETE"], self._contact_email)
        self._route("/contacts/email/<email>/unsubscribe", ["DELETE"], self._unsubscribe_email)
        self._route("/contacts/externalid/<eid>", ["GET", "POST", "PUT", "DELETE"], self._contact_eid)
        self._route("/contacts/externalid/<eid>/unsubscribe", ["DELETE"], self._unsubscribe_eid)
        self._route("/contacts/fields/custom", ["GET"], self._custom_fields)
        self._route("/contacts/fields/custom/<name>", ["POST", "DELETE"], self._custom_field)
        self._route("/contacts/fields/custom/<old>/<new>", ["PUT"], self._rename_custom_field)
        self._route("/mailings/<mailing>/type", ["GET"], self._mailing_type)
        self._route("/transactions/types", ["GET", "POST"], self._transaction_types)
        self._route("/transactions/types/<ref>", ["GET", "PUT", "DELETE"], self._transaction_type)
        self._route("/transactions", ["POST"], self._post_transactions)
        self._route("/reports/unsubscriptions", ["GET"], self._unsubscription_report)
        self._route("/reports/unsubscriptions/count", ["GET"], self._unsubscription_count)
        self._route("/webhooks", ["GET", "POST"], self._webhooks)
        self._route("/webhooks/<int:hook_id>", ["GET", "DELETE"], self._webhook)

    def _ping(self) -> Response:
        # Every method answers, so a client can check each privilege of its key.
        return Response(status=200)

    def _filtered_contacts(self) -> list[MaileonContact]:
        rows = sorted(self.contacts.values(), key=lambda c: c.id)
        raw = request.args.get("updated_after")
        if raw:
            try:
                after = datetime.strptime(raw, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
            except ValueError:
                raise MaileonError(400, f"updated_after must be Y-m-d H:i:s but was {raw}") from None
            rows = [c for c in rows if c.updated > after]
        return rows

    def _list_contacts(self) -> Response:
        standard, custom = self._selected_fields()
        page, headers = self._page(self._filtered_contacts())
        return self._contact_answer([self._contact_data(c, standard, custom) for c in page], headers=headers)

    def _count_contacts(self) -> Response:
        return self._answer(len(self._filtered_contacts()), root="count")

    def _contact_email(self, email: str) -> Response:
        if request.method == "POST":
            body = self._contact_body()  # the e-mail comes from the URL, not the body
            return self._upsert(self.contact_by_email(email), email, body)
        contact = self._by_email(email)
        if request.method == "PUT":
            return self._update(contact)
        if request.method == "DELETE":
            del self.contacts[contact.id]
            return Response(status=200)
        return self._contact_answer(self._contact_data(contact, *self._selected_fields()))

    def _unsubscribe_email(self, email: str) -> Response:
        contact = self._by_email(email)
        reason, mailing = request.args.get("reason"), request.args.get("mailingId")
        self._unsubscribe(contact, reason=reason, mailing_id=mailing, source="api")
        return Response(status=200)

    def _contact_eid(self, eid: str) -> Response:
        if request.method == "GET":
            found = self.contacts_by_external_id(eid)
            if not found:
                raise MaileonError(404, f"no contact with external id {eid}")
            standard, custom = self._selected_fields()
            return self._contact_answer([self._contact_data(c, standard, custom) for c in found])
        if request.method == "DELETE":  # deletes every contact with this external id
            found = self.contacts_by_external_id(eid)
            if not found:
                raise MaileonError(404, f"no contact with external id {eid}")
            for contact in found:
                del self.contacts[contact.id]
            return Response(status=200)
        existing = self._one_by_external_id(eid)
        if request.method == "PUT":
            if existing is None:
                raise MaileonError(404, f"no contact with external id {eid}")
            return self._update(existing)
        body = self._contact_body()
        body.external_id = eid
        if existing is None:
            # A new external id: the body's e-mail names the contact (created, or found by e-mail).
            if not body.email:
                raise MaileonError(400, "email is required to create a contact by external id")
            existing = self.contact_by_email(body.email)
        return self._upsert(existing, existing.email if existing else str(body.email), body)

    def _unsubscribe_eid(self, eid: str) -> Response:
        found = self.contacts_by_external_id(eid)
        if not found:
            raise MaileonError(404, f"no contact with external id {eid}")
        for contact in found:
            self._unsubscribe(contact, reason=request.args.get("reason"), mailing_id=None, source="api")
        return Response(status=200)

    # -- custom fields and mailings ------------------------------------------------------------------

    def _custom_fields(self) -> Response:
        rows = [{"name": name, "type": kind} for name, kind in self.custom_fields.items()]
        return self._answer(rows, root="custom_fields", items={"custom_fields": "custom_field"})

    def _custom_field(self, name: str) -> Response:
        if request.method == "DELETE":
            if self.custom_fields.pop(name, None) is None:
                raise MaileonError(404, f"custom field {name} does not exist")
            for contact in self.contacts.values():
                contact.custom.pop(name, None)
            return Response(status=200)
        kind = request.args.get("type") or "string"
        if kind not in CUSTOM_TYPES:
            raise MaileonError(400, f"type must be one of {', '.join(CUSTOM_TYPES)} but was {kind}")
        if name in STANDARD_FIELDS or name in SYSTEM_FIELDS or len(name) > 255:
            raise MaileonError(400, f"invalid custom field name {name}")
        if name in self.custom_fields:
            # The notes give no status for a duplicate; 400 (a validation error) is our choice.
            raise MaileonError(400, f"field already exists: {name}")
        self.custom_fields[name] = kind
        return Response(status=201)

    def _rename_custom_field(self, old: str, new: str) -> Response:
        if old not in self.custom_fields:
            raise MaileonError(404, f"custom field {old} does not exist")
        if new in self.custom_fields or new in STANDARD_FIELDS:
            raise MaileonError(400, f"field already exists: {new}")
        self.custom_fields[new] = self.custom_fields.pop(old)
        for contact in self.contacts.values():
            if old in contact.custom:
                contact.custom[new] = contact.custom.pop(old)
        return Response(status=200)

    def _mailing_type(self, mailing: str) -> Response:
        if mailing in self.doi_mailings:
            return self._answer("doi", root="type")
        if mailing in self.regular_mailings:
            return self._answer("regular", root="type")
        raise MaileonError(404, f"no mailing {mailing}")

    # -- transaction types -------------------------------------------------------------------------------

    def _type_body(self) -> dict[str, Any]:
        """A ``transaction_type`` from XML or JSON, as ``{name, description, archivingDuration,
        storeOnly, attributes: [{name, type, required}]}`` with values checked."""
        if self._request_is_json():
            data = self._json_body()
            if not isinstance(data, dict):
                raise MaileonError(400, "transaction type must be a JSON object")
            attributes = data.get("attributes") or []
            if not isinstance(attributes, list) or not all(isinstance(a, dict) for a in attributes):
                raise MaileonError(400, "attributes must be a list of objects")
        else:
            root = self._xml_body()
            if root.tag != "transaction_type":
                raise MaileonError(400, f"expected <transaction_type> but got <{root.tag}>")
            data = {
                tag: _child_text(root, tag)
                for tag in ("name", "description", "archivingDuration", "storeOnly")
            }
            attributes = [
                {tag: _child_text(a, tag) for tag in ("name", "type", "required")}
                for a in root.findall("attributes/attribute")
            ]
        name = data.get("name")
        if name is not None:
            self._check_type_name(str(name))
        parsed = []
        for attribute in attributes:
            kind = str(attribute.get("type") or "string")
            if kind not in ATTRIBUTE_TYPES:
                raise MaileonError(400, f"attribute type must be one of {', '.join(ATTRIBUTE_TYPES)}: {kind}")
            if not attribute.get("name"):
                raise MaileonError(400, "every attribute needs a name")
            required = str(attribute.get("required", False)).lower() == "true"
            parsed.append({"name": str(attribute["name"]), "type": kind, "required": required})
        if len({a["name"] for a in parsed}) != len(parsed):
            raise MaileonError(400, "attribute names must be unique")
        store_only = str(data.get("storeOnly", False)).lower() == "true"
        duration = data.get("archivingDuration")
        if duration not in (None, "") and not INTEGER_RE.match(str(duration)):
            raise MaileonError(400, f"archivingDuration must be a number of days but was {duration}")
        return {
            "name": None if name is None else str(name),
            "description": data.get("description"),
            "archivingDuration": int(duration) if duration not in (None, "") else None,
            "storeOnly": store_only,
            "attributes": parsed,
        }

    @staticmethod
    def _check_type_name(name: str) -> None:
        segments = name.split(".")
        if len(name) > 255 or not all(TYPE_SEGMENT_RE.match(s) for s in segments):
            raise MaileonError(
                400,
                f"invalid transaction type name {name!r}: letter first, then [A-Za-z0-9_], '.' between parts",
            )

    def _type_by_name(self, name: str) -> dict[str, Any] | None:
        return next((t for t in self.transaction_types.values() if t["name"] == name), None)

    def _type_ref(self, ref: Any) -> dict[str, Any] | None:
        if (isinstance(ref, int) and not isinstance(ref, bool)) or (isinstance(ref, str) and ref.isdigit()):
            return self.transaction_types.get(int(ref))
        return self._type_by_name(str(ref))

    def _type_answer(self, data: Any, **kwargs: Any) -> Response:
        items = {"transaction_types": "transaction_type", "attributes": "attribute"}
        root = "transaction_types" if isinstance(data, list) else "transaction_type"
        return self._answer(data, root=root, items=items, **kwargs)

    def _transaction_types(self) -> Response:
        if request.method == "GET":
            rows = sorted(self.transaction_types.values(), key=lambda t: t["id"])
            page, headers = self._page(rows)
            return self._type_answer(page, headers=headers)
        body = self._type_body()
        if body["name"] is None:
            raise MaileonError(400, "a transaction type needs a name")
        if self._type_by_name(body["name"]):
            raise MaileonError(409, f"a transaction type named {body['name']} already exists")
        type_id = self._next_type_id
        self._next_type_id += 1
        self.transaction_types[type_id] = {"id": type_id, **body}
        return self._bare(type_id)

    def _transaction_type(self, ref: str) -> Response:
        found = self._type_ref(ref)
        if found is None:
            raise MaileonError(404, f"no transaction type {ref}")
        if request.method == "GET":
            return self._type_answer(found)
        if request.method == "DELETE":
            del self.transaction_types[found["id"]]
            return Response(status=200)
        body = self._type_body()  # PUT: rename and add attributes, never change or drop one
        if body["name"] and body["name"] != found["name"]:
            if self._type_by_name(body["name"]):
                raise MaileonError(409, f"a transaction type named {body['name']} already exists")
            found["name"] = body["name"]
        known = {a["name"]: a for a in found["attributes"]}
        for attribute in body["attributes"]:
            old = known.get(attribute["name"])
            if old is None:
                found["attributes"].append(attribute)
            elif old != attribute:
                raise MaileonError(400, f"attribute {attribute['name']} cannot be changed, only added")
        return Response(status=200)

    # -- transactions --------------------------------------------------------------------------------------

    def _post_transactions(self) -> Response:
        if not self._request_is_json():
            raise MaileonError(415, "transactions are sent as application/json")
        ignore_invalid = self._bool_arg("ignore_invalid_transactions", True)
        generate_id = self._bool_arg("generate_transaction_id")
        # Read the whole body before refusing it: answering early would reset the client's upload.
        if len(request.get_data()) > MAX_TRANSACTIONS_BYTES:
            raise MaileonError(413, f"request body exceeds {MAX_TRANSACTIONS_BYTES} bytes")
        items = self._json_body()
        if not isinstance(items, list):
            raise MaileonError(400, "transactions must be a JSON array")
        # Check every item first: with ignore_invalid_transactions=false one bad item rejects all.
        checked = [self._check_transaction(item) for item in items]
        if not ignore_invalid:
            for number, (_, _, _, error) in enumerate(checked, start=1):
                if error:
                    raise MaileonError(400, f"transaction {number}: {error}")
        reports = []
        for item, kind, contact_ref, error in checked:
            if error:
                reports.append({"contact": contact_ref, "queued": False, "message": error})
                continue
            contact = self._transaction_contact(item)
            transaction_id = item.get("transaction_id") or (str(uuid.uuid4()) if generate_id else None)
            self.transactions.append(
                {
                    "transaction_id": transaction_id,
                    "type": kind["id"],
                    "type_name": kind["name"],
                    "contact_id": contact.id,
                    "email": contact.email,
                    "content": item.get("content") or {},
                    "received": clocks.utcnow(),
                }
            )
            contact_data = {"id": contact.id, "email": contact.email, "external_id": contact.external_id}
            reports.append(
                {"contact": contact_data, "queued": True, "transaction_id": transaction_id, "message": None}
            )
        return Response(json.dumps({"reports": reports}), status=201, mimetype="application/json")

    def _check_transaction(self, item: Any) -> tuple[Any, dict[str, Any], dict[str, Any], str | None]:
        """``(item, type, contact reference, error or None)`` without changing anything."""
        if not isinstance(item, dict):
            return item, {}, {}, "a transaction must be an object"
        imported = item.get("import")
        ref = item.get("contact")
        if isinstance(imported, dict) and isinstance(imported.get("contact"), dict):
            ref = imported["contact"]
        keys = ("id", "email", "external_id")
        ref = {k: v for k, v in ref.items() if k in keys} if isinstance(ref, dict) else {}
        kind = self._type_ref(item["type"]) if "type" in item else None  # "type" wins over "typeName"
        if kind is None and "type" not in item and "typeName" in item:
            kind = self._type_by_name(str(item["typeName"]))
        if kind is None:
            return item, {}, ref, f"transaction type {item.get('type', item.get('typeName'))} not found"
        contact_error = self._check_import(imported) if imported is not None else self._check_contact_ref(ref)
        if contact_error:
            return item, kind, ref, contact_error
        return item, kind, ref, self._check_content(kind, item.get("content"))

    def _check_import(self, imported: Any) -> str | None:
        contact = imported.get("contact") if isinstance(imported, dict) else None
        if not isinstance(contact, dict) or not EMAIL_RE.match(str(contact.get("email", ""))):
            return "import needs a contact with a valid email"
        if (
            self.contact_by_email(str(contact["email"])) is None
            and contact.get("permission") not in PERMISSIONS
        ):
            return "import needs a permission (1-6) to create the contact"
        return None

    def _check_contact_ref(self, ref: dict[str, Any]) -> str | None:
        if not ref:
            return "a transaction needs a contact (id, email or external_id) or an import"
        try:
            return None if self._resolve(ref) else f"contact not found: {json.dumps(ref)}"
        except MaileonError as exc:
            return exc.message

    def _resolve(self, ref: dict[str, Any]) -> MaileonContact | None:
        if "id" in ref:
            return self.contacts.get(int(ref["id"])) if str(ref["id"]).isdigit() else None
        if "email" in ref:
            return self.contact_by_email(str(ref["email"]))
        return self._one_by_external_id(str(ref["external_id"]))

    def _transaction_contact(self, item: dict[str, Any]) -> MaileonContact:
        imported = item.get("import")
        if imported is None:
            contact = self._resolve(item["contact"])
            assert contact is not None  # checked before
            return contact
        data = imported["contact"]
        existing = self.contact_by_email(str(data["email"]))
        return existing or self._create(str(data["email"]), int(data["permission"]))

    @staticmethod
    def _check_content(kind: dict[str, Any], content: Any) -> str | None:
        content = {} if content is None else content
        if not isinstance(content, dict):
            return "content must be an object"
        attributes = {a["name"]: a for a in kind["attributes"]}
        for name in content:
            if name not in attributes:
                return f"attribute {name} is not defined in transaction type {kind['name']}"
        for name, attribute in attributes.items():
            value = content.get(name)
            if value is None:
                if attribute["required"]:
                    return f"required attribute {name} is missing"
                continue
            if not _typed_ok(attribute["type"], value):
                return f"attribute {name} is not a valid {attribute['type']}: {value!r}"
            if attribute["type"] == "string" and not kind["storeOnly"] and len(_text(value)) > MAX_STRING:
                return f"attribute {name} exceeds {MAX_STRING} characters (the type is not storeOnly)"
        return None

    # -- unsubscription report -------------------------------------------------------------------------------

    def _report_rows(self) -> list[dict[str, Any]]:
        def ms(name: str) -> int | None:
            raw = request.args.get(name)
            if raw in (None, ""):
                return None
            if not INTEGER_RE.match(raw):
                raise MaileonError(400, f"{name} must be milliseconds since 1970 but was {raw}")
            return int(raw)

        start, end = ms("from_date"), ms("to_date")
        emails = {e.casefold() for e in request.args.getlist("emails")}
        ids, eids = set(request.args.getlist("ids")), set(request.args.getlist("eids"))
        mailings, source = set(request.args.getlist("mailing_id")), request.args.get("source")
        rows = []
        for row in sorted(self.unsubscriptions, key=lambda r: r["timestamp"]):
            at = _epoch_ms(row["timestamp"])
            if (start is not None and at < start) or (end is not None and at >= end):
                continue  # from_date inclusive, to_date exclusive
            who = row["contact"]
            if (
                (emails and str(who["email"]).casefold() not in emails)
                or (ids and str(who["id"]) not in ids)
                or (eids and str(who["external_id"]) not in eids)
                or (mailings and str(row["mailing_id"]) not in mailings)
                or (source and row["source"] != source)
            ):
                continue
            rows.append(row)
        return rows

    def _unsubscription_report(self) -> Response:
        """``GET /reports/unsubscriptions``. The envelope is not confirmed (notes §10); we answer

        ``<unsubscriptions><unsubscription><timestamp>1700000000000</timestamp><contact><id/><email/>
        <external_id/></contact><mailing_id/><source/></unsubscription></unsubscriptions>`` with the
        timestamp in epoch milliseconds (the PHP client's ``Unsubscriber::$timestamp`` is an int, and
        the filters are in ms too); in JSON a list of
        ``{"timestamp": ms, "contact": {"id", "email", "external_id"}, "mailing_id", "source"}``.
        """
        page, headers = self._page(self._report_rows())
        fields = ("contact", "mailing_id", "source")  # the reason is not part of this report
        data = [{"timestamp": _epoch_ms(row["timestamp"]), **{f: row[f] for f in fields}} for row in page]
        items = {"unsubscriptions": "unsubscription"}
        return self._answer(data, root="unsubscriptions", items=items, headers=headers)

    def _unsubscription_count(self) -> Response:
        return self._answer(len(self._report_rows()), root="count")

    # -- webhooks (registry only: nothing is delivered) ----------------------------------------------

    def _webhooks(self) -> Response:
        if request.method == "GET":
            return Response(json.dumps(list(self.webhooks.values())), mimetype="application/json")
        data = self._json_body()
        if not isinstance(data, dict) or data.get("event") not in WEBHOOK_EVENTS:
            raise MaileonError(400, f"event must be one of {', '.join(WEBHOOK_EVENTS)}")
        if not re.match(r"^https?://", str(data.get("url", ""))):
            raise MaileonError(400, "url must be an http(s) URL")
        hook_id = self._next_webhook_id
        self._next_webhook_id += 1
        self.webhooks[hook_id] = {"id": hook_id, **data}
        return self._bare(hook_id)

    def _webhook(self, hook_id: int) -> Response:
        hook = self.webhooks.get(hook_id)
        if hook is None:
            raise MaileonError(404, f"no webhook {hook_id}")
        if request.method == "DELETE":
            del self.webhooks[hook_id]
            return Response(status=200)
        return Response(json.dumps(hook), mimetype="application/json")
