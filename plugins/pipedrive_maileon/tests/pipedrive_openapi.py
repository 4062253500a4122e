"""Validate sandbox exchanges against Pipedrive's own OpenAPI documents (copied to ``vendor/``, see
``vendor/SOURCE.md``): v2 for ``/api/v2/...``, v1 for ``/v1/...`` and ``/api/v1/...``.

:func:`check_exchange` raises :class:`AssertionError` naming every departure:

* the operation must be in the document (an error answer on an unknown route only has to use the error
  envelope of the notes);
* query parameters must be declared (``api_token`` excepted: the legacy query auth, notes §2.1); values
  are checked one by one (comma-separated ones item by item);
* a request the sandbox **accepted** (2xx) must satisfy the document: query values, path ids and the JSON
  body (write rules). A refused request may break it: that is why it was refused;
* a declared status: the body must satisfy its schema (read rules), and a success says ``success: true``;
  an undeclared error status: the envelopes of the developer notes (the documents declare almost no
  errors); an undeclared success status fails (``POST /persons`` must answer 200, not 201).

Where the documents and the notes disagree, the notes win (``shared/vendor-apis/pipedrive.md``); each
deviation is listed at :data:`NULLABLE` and :data:`CSV_PARAMS`.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from pathlib import Path
from typing import Any

import yaml
from openapi_schema_validator import OAS30ReadValidator, OAS30WriteValidator, oas30_format_checker

VENDOR = Path(__file__).resolve().parent / "vendor"
DOCUMENTS = {"v2": VENDOR / "pipedrive-openapi-v2.yaml", "v1": VENDOR / "pipedrive-openapi-v1.yaml"}
UNDECLARED_PARAMS = frozenset({"api_token"})

#: Notes §3.1/§3.6: lists of keys or ids are comma-separated; the v2 document declares ``include_fields``
#: and the search ``fields`` as single-value enums, so each item is checked on its own.
CSV_PARAMS = frozenset({"ids", "custom_fields", "include_fields", "fields"})

#: Properties the documents forget to mark nullable: ``next_cursor`` is null on the last page (notes §4),
#: and fields a record does not have are null in real answers (a person without organization, a deal not
#: yet won, ...). Patched into the loaded documents, requests and responses alike (PATCH may clear them).
NULLABLE = frozenset({
    "next_cursor", "org_id", "person_id", "first_name", "last_name", "job_title", "birthday", "notes",
    "postal_address", "picture_id", "marketing_status", "address", "organization", "stage_change_time",
    "won_time", "lost_time", "expected_close_date", "close_time", "lost_reason", "probability",
})  # fmt: skip

_FALSE = {"type": "boolean", "enum": [False]}
_NULL = {"enum": [None]}
#: The error envelope of notes §5.
ERROR_ENVELOPE = {
    "type": "object",
    "required": ["success", "error", "error_info", "data", "additional_data"],
    "properties": {"success": _FALSE, "error": {"type": "string"}, "error_info": {"type": "string"},
                   "data": _NULL, "additional_data": _NULL},
}  # fmt: skip
#: 401 (notes §2.1), and the 402/429 answers that add ``errorCode`` (notes §5, §6; body not confirmed).
CODED_ERROR = {
    "type": "object",
    "required": ["success", "error", "errorCode"],
    "properties": {"success": _FALSE, "error": {"type": "string"}, "errorCode": {"type": "integer"}},
}
#: v1 webhook errors (notes §3.8: ``{"status": "error", "success": false, "errors": {...}}``).
WEBHOOK_ERROR = {
    "type": "object",
    "required": ["status", "success", "errors"],
    "properties": {"status": {"enum": ["error"]}, "success": _FALSE, "errors": {"type": "object"}},
}
#: Webhook v2 payload (notes §3.8; the documents do not describe webhook payloads). ``data`` is also
#: checked against the entity's v2 schema by :func:`check_webhook_payload`.
_STR = {"type": "string"}
_UUID = {"type": "string", "format": "uuid"}
WEBHOOK_PAYLOAD = {
    "type": "object",
    "required": ["meta", "data", "previous"],
    "properties": {
        "meta": {
            "type": "object",
            "required": ["action", "entity", "entity_id", "id", "company_id", "correlation_id",
                         "is_bulk_edit", "timestamp", "type", "user_id", "version", "webhook_id",
                         "webhook_owner_id", "change_source", "permitted_user_ids", "attempt", "host"],
            "properties": {
                "action": {"enum": ["create", "change", "delete"]}, "entity": _STR,
                "entity_id": {"type": "string", "pattern": r"^\d+$"},
                "id": _UUID, "correlation_id": _UUID,
                "company_id": _STR, "user_id": _STR, "webhook_id": _STR, "webhook_owner_id": _STR,
                "is_bulk_edit": {"type": "boolean"},
                "timestamp": {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"},
                "type": {"enum": ["general"]}, "version": {"enum": ["2.0"]},
                "change_source": {"enum": ["app", "api"]},
                "permitted_user_ids": {"type": "array", "items": _STR},
                "attempt": {"type": "integer", "minimum": 1, "maximum": 4}, "host": _STR,
            },
        },
        "data": {"type": "object", "nullable": True},
        "previous": {"type": "object", "nullable": True},
    },
}  # fmt: skip


def _plain(value: Any) -> Any:
    """YAML dates and bytes → JSON strings, so the document is plain JSON data."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value


def _patch_nullable(node: Any) -> None:
    if isinstance(node, dict):
        for name, prop in (node.get("properties") or {}).items():
            if name in NULLABLE and isinstance(prop, dict):
                prop["nullable"] = True
        for value in node.values():
            _patch_nullable(value)
    elif isinstance(node, list):
        for value in node:
            _patch_nullable(value)


@functools.cache
def document(version: str) -> dict[str, Any]:
    """The parsed document (``"v2"`` or ``"v1"``), parsed once per process."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    spec = _plain(yaml.load(DOCUMENTS[version].read_text(encoding="utf-8"), Loader=loader))
    _patch_nullable(spec)
    return spec  # type: ignore[no-any-return]


def split_path(path: str) -> tuple[str, str]:
    """``/api/v2/persons/1`` → ``("v2", "/persons/1")``."""
    for prefix, version in (("/api/v2", "v2"), ("/api/v1", "v1"), ("/v1", "v1")):
        if path.startswith(prefix + "/"):
            return version, path[len(prefix) :]
    raise AssertionError(f"{path} is not a Pipedrive API path")


def operation(method: str, path: str) -> tuple[str, str, dict[str, Any]] | None:
    """``(version, template, operation)`` for a concrete path, literal templates first."""
    version, rel = split_path(path)
    paths = document(version)["paths"]
    if rel in paths and method.lower() in paths[rel]:
        return version, rel, paths[rel][method.lower()]
    for template, ops in paths.items():
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, rel) and method.lower() in ops:
            return version, template, ops[method.lower()]
    return None


def token_cost(method: str, path: str) -> int | None:
    """The ``x-token-cost`` the document declares for an operation (``None``: none declared)."""
    found = operation(method, path)
    return None if found is None else found[2].get("x-token-cost")


@functools.cache
def _validator(version: str, pointer: tuple[str, ...], write: bool) -> Any:
    if pointer[0] == "#own":
        schema = globals()[pointer[1]]  # one of the notes' schemas above
    else:
        schema = document(version)
        for step in pointer:
            schema = schema[int(step)] if isinstance(schema, list) else schema[step]
    cls = OAS30WriteValidator if write else OAS30ReadValidator
    # Relative "#/components/..." references resolve against the whole document.
    return cls({**schema, "components": document(version)["components"]}, format_checker=oas30_format_checker)


def _errors(version: str, pointer: tuple[str, ...], instance: Any, *, write: bool = False) -> list[str]:
    validator = _validator(version, pointer, write)
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
        for e in validator.iter_errors(instance)
    ]


def _coerce(value: str, schema: dict[str, Any]) -> Any:
    kind = schema.get("type")
    if kind == "integer":
        return int(value) if re.fullmatch(r"-?\d+", value) else value
    if kind == "number":
        return float(value) if re.fullmatch(r"-?\d+(\.\d+)?", value) else value
    if kind == "boolean":
        return {"true": True, "false": False}.get(value, value)
    return value


def _param_problems(version: str, op_pointer: tuple[str, ...], op: dict[str, Any], where: str, location: str,
                    values: dict[str, str]) -> list[str]:  # fmt: skip
    problems: list[str] = []
    declared = {p["name"]: (i, p) for i, p in enumerate(op.get("parameters", [])) if p.get("in") == location}
    for name, value in values.items():
        if name in UNDECLARED_PARAMS and location == "query":
            continue
        if name not in declared:
            problems.append(f"{where}: {location} parameter {name!r} is not declared")
            continue
        index, param = declared[name]
        items = str(value).split(",") if name in CSV_PARAMS else [str(value)]
        pointer = (*op_pointer, "parameters", str(index), "schema")
        for item in items:
            coerced = _coerce(item, param.get("schema") or {})
            problems += [
                f"{where} {location} {name}={item}: {e}"
                for e in _errors(version, pointer, coerced, write=True)
            ]
    return problems


def check_exchange(method: str, path: str, query: dict[str, str], request_json: Any, status: int,
                   response_json: Any) -> None:  # fmt: skip
    """Raise :class:`AssertionError` listing every way this exchange departs from the documents."""
    where = f"{method.upper()} {path}"
    found = operation(method, path)
    version = split_path(path)[0]
    problems: list[str] = []
    if found is None:
        if status < 400:
            raise AssertionError(
                f"{where}: answered {status} but the operation is not in the {version} document"
            )
        problems += [
            f"{where} {status} {e}"
            for e in _errors(version, ("#own", _error_schema(None, status)), response_json)
        ]
        _raise(problems)
        return
    version, template, op = found
    op_pointer = ("paths", template, method.lower())
    accepted = 200 <= status < 300
    query_problems = _param_problems(version, op_pointer, op, where, "query", query)
    undeclared = [p for p in query_problems if "is not declared" in p]
    problems += undeclared if not accepted else query_problems
    if accepted:
        names = re.findall(r"\{([^}]+)\}", template)
        values = re.match(
            "^" + re.sub(r"\\\{[^}]+\\\}", "([^/]+)", re.escape(template)) + "$", split_path(path)[1]
        )
        assert values is not None
        problems += _param_problems(
            version, op_pointer, op, where, "path", dict(zip(names, values.groups(), strict=True))
        )
    body = (op.get("requestBody") or {}).get("content", {}).get("application/json")
    if request_json is not None:
        if body is None:
            problems.append(f"{where}: sends a JSON body the operation does not take")
        elif accepted:
            pointer = (*op_pointer, "requestBody", "content", "application/json", "schema")
            problems += [
                f"{where} request body {e}" for e in _errors(version, pointer, request_json, write=True)
            ]
    declared = op.get("responses", {}).get(str(status))
    if declared is None:
        if accepted or status < 400:
            problems.append(
                f"{where}: status {status} is not declared for {template} (only {sorted(op['responses'])})"
            )
        else:
            own = ("#own", _error_schema(template if version == "v1" else None, status))
            problems += [f"{where} {status} {e}" for e in _errors(version, own, response_json)]
    else:
        content = (declared.get("content") or {}).get("application/json")
        if content is not None:
            pointer = (*op_pointer, "responses", str(status), "content", "application/json", "schema")
            problems += [f"{where} response {status} {e}" for e in _errors(version, pointer, response_json)]
        if accepted and not (isinstance(response_json, dict) and response_json.get("success") is True):
            problems.append(f"{where}: a success answer without success: true")
    _raise(problems)


def check_webhook_payload(payload: Any) -> None:
    """A webhook v2 payload as the notes describe it; its ``data`` as the entity's v2 GET answers it."""
    problems = [f"webhook payload {e}" for e in _errors("v2", ("#own", "WEBHOOK_PAYLOAD"), payload)]
    entity = (payload.get("meta") or {}).get("entity") if isinstance(payload, dict) else None
    for part in ("data", "previous"):
        record = payload.get(part) if isinstance(payload, dict) else None
        if entity and record and (part == "data" or payload["meta"]["action"] == "delete"):
            plural = {"person": "persons", "organization": "organizations", "deal": "deals"}[entity]
            pointer = (
                "paths",
                f"/{plural}/{{id}}",
                "get",
                "responses",
                "200",
                "content",
                "application/json",
                "schema",
            )
            problems += [
                f"webhook {part} {e}" for e in _errors("v2", pointer, {"success": True, "data": record})
            ]
    _raise(problems)


def _error_schema(v1_template: str | None, status: int) -> str:
    if status in (401, 402, 429):
        return "CODED_ERROR"
    if v1_template is not None and v1_template.startswith("/webhooks"):
        return "WEBHOOK_ERROR"
    return "ERROR_ENVELOPE"


def _raise(problems: list[str]) -> None:
    if problems:
        raise AssertionError("OpenAPI check failed:\n  " + "\n  ".join(problems))
