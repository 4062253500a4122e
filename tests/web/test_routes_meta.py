"""Meta-test: every route of the app has a test. Panel tests build URLs with ``url("<endpoint>")``;
API tests call ``api.call("<method>", "<template>")``; this walks ``app.url_map`` and fails for any
route no test names."""

from __future__ import annotations

import re
from pathlib import Path

from flask import Flask

TESTS = Path(__file__).resolve().parents[1]
#: Routes other suites own (the connector kit tests /health).
COVERED_ELSEWHERE = {"static"}


def _sources() -> str:
    return "\n".join(
        p.read_text()
        for p in [*TESTS.joinpath("web").glob("test_*.py"), *TESTS.joinpath("browser").glob("test_*.py")]
    )


def test_every_route_has_a_test(app: Flask) -> None:
    text = _sources()
    panel = set(re.findall(r'url\(\s*"([\w.]+)"', text))
    api_calls = set(re.findall(r'\.call\(\s*"(\w+)",\s*"([^"]+)"', text))
    missing = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in COVERED_ELSEWHERE:
            continue
        if rule.endpoint.startswith("api.") and rule.endpoint != "api.openapi_json":
            template = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule.removeprefix("/api/v1"))
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                if (method.lower(), template) not in api_calls:
                    missing.append(f"{method} {rule.rule}")
        elif rule.endpoint not in panel:
            missing.append(f"{rule.endpoint} ({rule.rule})")
    assert not missing, "routes without a test: " + ", ".join(missing)
