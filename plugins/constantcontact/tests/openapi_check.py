"""Validate recorded sandbox exchanges against Constant Contact's own OpenAPI document.

The document is loaded as SOURCE.md says: ``yaml.safe_load``, then ``bytes`` → str and YAML
dates/timestamps → ISO strings, so it is plain JSON data. Requests are checked with the write
validator (no read-only properties), responses with the read validator; query parameters one by
one (csv parameters item by item). The undeclared ``cursor`` parameter of paging links is allowed.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from pathlib import Path
from typing import Any

import yaml
from openapi_schema_validator import OAS30ReadValidator, OAS30WriteValidator, oas30_format_checker

#: The vendor's document, copied into this checkout (its origin and licence: ``vendor/SOURCE.md``).
SPEC = Path(__file__).resolve().parent / "vendor" / "openapi.yaml"
UNDECLARED_PARAMS = frozenset({"cursor"})


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value


@functools.cache
def spec() -> dict[str, Any]:
    return _plain(yaml.safe_load(SPEC.read_text()))  # type: ignore[no-any-return]


def _schema(schema: dict[str, Any]) -> dict[str, Any]:
    # Relative "#/components/..." references resolve against the whole document.
    return {**schema, "components": spec()["components"]}


def _operation(method: str, path: str) -> tuple[str, dict[str, Any]]:
    rel = path.removeprefix("/v3")
    for template, ops in spec()["paths"].items():
        pattern = "^" + re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, rel) and method.lower() in ops:
            # Prefer literal paths (/contacts/sign_up_form) over templated ones (/contacts/{id}).
            literal = [t for t, o in spec()["paths"].items() if t == rel and method.lower() in o]
            if literal:
                return literal[0], spec()["paths"][literal[0]][method.lower()]
            return template, ops[method.lower()]
    raise AssertionError(f"{method} {path} is not in the OpenAPI document")


def _errors(validator_cls: Any, schema: dict[str, Any], instance: Any) -> list[str]:
    validator = validator_cls(_schema(schema), format_checker=oas30_format_checker)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(instance)]


def _coerce(value: str, schema: dict[str, Any]) -> Any:
    kind = schema.get("type")
    if kind == "integer":
        return int(value) if re.fullmatch(r"-?\d+", value) else value
    if kind == "boolean":
        return {"true": True, "false": False}.get(value, value)
    return value


def check_exchange(ex: dict[str, Any]) -> list[str]:
    """Every way ``ex`` (one recorded request and answer) departs from the document."""
    problems: list[str] = []
    where = f"{ex['method']} {ex['path']}"
    template, op = _operation(ex["method"], ex["path"])
    declared = {p["name"]: p for p in op.get("parameters", []) if p.get("in") == "query"}
    for name, value in ex["query"].items():
        if name in UNDECLARED_PARAMS:
            continue
        param = declared.get(name)
        if param is None:
            problems.append(f"{where}: query parameter {name!r} is not declared")
            continue
        schema = dict(param.get("schema") or {})
        items = value.split(",") if schema.get("format") == "csv" else [value]
        schema.pop("format", None)
        for item in items:
            problems += [
                f"{where} ?{name}={item}: {e}"
                for e in _errors(OAS30WriteValidator, schema, _coerce(item, schema))
            ]
    body_spec = (op.get("requestBody") or {}).get("content", {}).get("application/json")
    if ex["body"] is not None:
        if body_spec is None:
            problems.append(f"{where}: sends a JSON body the operation does not take")
        else:
            if ex["content_type"] != "application/json":
                problems.append(f"{where}: Content-Type {ex['content_type']}")
            problems += [
                f"{where} request {e}" for e in _errors(OAS30WriteValidator, body_spec["schema"], ex["body"])
            ]
    response = op.get("responses", {}).get(str(ex["status"]))
    if response is None:
        problems.append(f"{where}: status {ex['status']} is not declared for {template}")
    else:
        content = (response.get("content") or {}).get("application/json")
        if content is not None and ex["response"] is not None:
            problems += [
                f"{where} response {ex['status']} {e}"
                for e in _errors(OAS30ReadValidator, content["schema"], ex["response"])
            ]
    return problems
