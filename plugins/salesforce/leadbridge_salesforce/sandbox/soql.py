"""The SOQL subset the sandbox understands (what the connector sends, and a bit more).

``SELECT f1, f2, Rel.f FROM T [WHERE cond {AND|OR} cond ... with ( ), NOT, =, !=, <, <=, >, >=,
IN, NOT IN, LIKE, INCLUDES] [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST], ...] [LIMIT n] [OFFSET n]``.
String ``=`` and ``LIKE`` ignore case, as Salesforce's do. Unknown fields answer ``INVALID_FIELD``,
anything unparsable ``MALFORMED_QUERY``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

TOKEN = re.compile(
    r"""\s*(?:
    (?P<string>'(?:\\.|[^'\\])*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),])
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
    )""",
    re.VERBOSE,
)
_UNESCAPE = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}


class SoqlError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Query:
    fields: list[str]
    sobject: str
    where: Any = None
    order: list[tuple[str, bool, bool]] = field(default_factory=list)  # (field, descending, nulls_last)
    limit: int | None = None
    offset: int = 0


@dataclass
class Literal:
    value: Any
    kind: str


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token at: {text[pos : pos + 20]!r}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0

    def peek(self, word: str | None = None) -> bool:
        if self.i >= len(self.toks):
            return False
        kind, value = self.toks[self.i]
        return word is None or (kind in ("ident", "punct", "op") and value.upper() == word)

    def take(self, word: str | None = None) -> tuple[str, str]:
        if self.i >= len(self.toks) or (word is not None and not self.peek(word)):
            found = self.toks[self.i][1] if self.i < len(self.toks) else "end of query"
            raise SoqlError("MALFORMED_QUERY", f"expected {word or 'more'} but found {found!r}")
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def ident(self) -> str:
        kind, value = self.take()
        if kind != "ident":
            raise SoqlError("MALFORMED_QUERY", f"expected a field name, found {value!r}")
        return value

    def parse(self) -> Query:
        self.take("SELECT")
        fields = [self.ident()]
        while self.peek(","):
            self.take(",")
            fields.append(self.ident())
        self.take("FROM")
        query = Query(fields, self.ident())
        if self.peek("WHERE"):
            self.take("WHERE")
            query.where = self.expr()
        if self.peek("ORDER"):
            self.take("ORDER")
            self.take("BY")
            while True:
                name = self.ident()
                desc = False
                if self.peek("ASC") or self.peek("DESC"):
                    desc = self.take()[1].upper() == "DESC"
                nulls_last = desc
                if self.peek("NULLS"):
                    self.take("NULLS")
                    nulls_last = self.take()[1].upper() == "LAST"
                query.order.append((name, desc, nulls_last))
                if not self.peek(","):
                    break
                self.take(",")
        if self.peek("LIMIT"):
            self.take("LIMIT")
            query.limit = int(self.take()[1])
        if self.peek("OFFSET"):
            self.take("OFFSET")
            query.offset = int(self.take()[1])
            if query.offset > 2000:
                raise SoqlError("NUMBER_OUTSIDE_VALID_RANGE", "Maximum SOQL offset allowed is 2000")
        if self.i != len(self.toks):
            raise SoqlError("MALFORMED_QUERY", f"unexpected {self.toks[self.i][1]!r}")
        return query

    def expr(self) -> Any:
        node = self.term()
        while self.peek("OR"):
            self.take("OR")
            node = ("or", node, self.term())
        return node

    def term(self) -> Any:
        node = self.factor()
        while self.peek("AND"):
            self.take("AND")
            node = ("and", node, self.factor())
        return node

    def factor(self) -> Any:
        if self.peek("NOT"):
            self.take("NOT")
            return ("not", self.factor())
        if self.peek("("):
            self.take("(")
            node = self.expr()
            self.take(")")
            return node
        name = self.ident()
        if self.peek("NOT"):
            self.take("NOT")
            self.take("IN")
            return ("not", ("in", name, self.values()))
        if self.peek("IN"):
            self.take("IN")
            return ("in", name, self.values())
        if self.peek("INCLUDES"):
            self.take("INCLUDES")
            return ("includes", name, self.values())
        if self.peek("LIKE"):
            self.take("LIKE")
            return ("like", name, self.literal())
        kind, op = self.take()
        if kind != "op":
            raise SoqlError("MALFORMED_QUERY", f"expected an operator after {name}, found {op!r}")
        return ("cmp", name, "!=" if op == "<>" else op, self.literal())

    def values(self) -> list[Literal]:
        self.take("(")
        out = [self.literal()]
        while self.peek(","):
            self.take(",")
            out.append(self.literal())
        self.take(")")
        return out

    def literal(self) -> Literal:
        kind, value = self.take()
        if kind == "string":
            body = value[1:-1]
            if len(body) > MAX_STRING:
                raise SoqlError(
                    "MALFORMED_QUERY", f"strings in a WHERE clause are limited to {MAX_STRING} characters"
                )
            return Literal(re.sub(r"\\(.)", lambda m: _UNESCAPE.get(m[1], "\\" + m[1]), body), "string")
        if kind == "number":
            return Literal(float(value) if "." in value else int(value), "number")
        if kind == "datetime":
            return Literal(parse_dt(value), "datetime")
        if kind == "date":
            return Literal(value, "date")
        if kind == "ident" and value.lower() in ("true", "false"):
            return Literal(value.lower() == "true", "boolean")
        if kind == "ident" and value.lower() == "null":
            return Literal(None, "null")
        raise SoqlError("MALFORMED_QUERY", f"unexpected value {value!r}")


MAX_STATEMENT = 100_000
MAX_STRING = 4_000


def parse(text: str) -> Query:
    if len(text) > MAX_STATEMENT:
        raise SoqlError(
            "MALFORMED_QUERY", f"SOQL statements cannot be longer than {MAX_STATEMENT} characters"
        )
    return _Parser(text).parse()


def parse_dt(value: str) -> datetime:
    text = value.replace("Z", "+00:00")
    if text[-5] in "+-" and text[-3] != ":":
        text = f"{text[:-2]}:{text[-2:]}"
    return datetime.fromisoformat(text).astimezone(UTC)


Resolve = Callable[[dict[str, Any], str], tuple[Any, str]]  # (value, salesforce type)


def _norm(value: Any, sf_type: str) -> Any:
    if value is None:
        return None
    if sf_type == "datetime":
        return parse_dt(value) if isinstance(value, str) else value
    if isinstance(value, str) and sf_type not in ("date",):
        return value.lower()
    return value


def _lit(lit: Literal, sf_type: str) -> Any:
    if lit.value is None:
        return None
    if sf_type == "datetime" and lit.kind == "date":
        return parse_dt(f"{lit.value}T00:00:00Z")
    if sf_type in ("datetime", "date") and lit.kind == "string":
        raise SoqlError("MALFORMED_QUERY", "date and datetime literals must not be quoted")
    if sf_type == "boolean" and lit.kind != "boolean":
        raise SoqlError("INVALID_QUERY_FILTER_OPERATOR", "a boolean field needs true or false")
    return lit.value.lower() if isinstance(lit.value, str) and sf_type != "date" else lit.value


def _like_pattern(text: str) -> str:
    """``%`` and ``_`` are wildcards unless escaped (``\\%``, ``\\_``)."""
    out, escaped = [], False
    for ch in text:
        if escaped:
            out.append(re.escape(ch))
            escaped = False
        elif ch == "\\":
            escaped = True
        else:
            out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
    return "".join(out)


_IN_SETS: dict[tuple[int, str], tuple[Any, frozenset[Any]]] = {}


def _in_set(node: Any, sf_type: str) -> frozenset[Any]:
    """The converted ``IN`` list, computed once per parsed query (lookups test thousands of rows)."""
    key = (id(node), sf_type)
    hit = _IN_SETS.get(key)
    if hit is None or hit[0] is not node:
        if len(_IN_SETS) > 256:
            _IN_SETS.clear()
        hit = (node, frozenset(_lit(v, sf_type) for v in node[2]))
        _IN_SETS[key] = hit
    return hit[1]


def matches(node: Any, record: dict[str, Any], resolve: Resolve) -> bool:
    if node is None:
        return True
    op = node[0]
    if op == "and":
        return matches(node[1], record, resolve) and matches(node[2], record, resolve)
    if op == "or":
        return matches(node[1], record, resolve) or matches(node[2], record, resolve)
    if op == "not":
        return not matches(node[1], record, resolve)
    value, sf_type = resolve(record, node[1])
    left = _norm(value, sf_type)
    if op == "in":
        return left in _in_set(node, sf_type)
    if op == "includes":
        chosen = {v.lower() for v in str(value or "").split(";") if v}
        return any(_lit(v, sf_type) in chosen for v in node[2])
    if op == "like":
        pattern = _like_pattern(str(node[2].value).lower())
        return left is not None and re.fullmatch(pattern, str(left), re.DOTALL) is not None
    comparator, right = node[2], _lit(node[3], sf_type)
    if comparator == "=":
        return bool(left == right)
    if comparator == "!=":
        return bool(left != right)
    if left is None or right is None:
        return False
    return bool({"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[comparator])
