"""The toolkit's answer readers against real HTTP answers in vendors' error envelopes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from flask import Response
from leadbridge.errors import TransientError
from leadbridge.http import VendorClient
from leadbridge.http.redact import known_secrets
from leadbridge.sandbox import Sandbox, SandboxServer
from leadbridge.toolkit.answers import error_parts, json_body

BODIES: dict[str, tuple[str, str]] = {
    "object": (json.dumps({"error": {"message": "Email is invalid", "code": "E_EMAIL"}}), "application/json"),
    "list": (json.dumps([{"errorCode": "DUPLICATE_VALUE", "message": "duplicate"}]), "application/json"),
    "html": ("<html><body>502 Bad Gateway</body></html>", "text/html"),
    "echo": (json.dumps({"detail": "bad key sk-live-123456"}), "application/json"),
}


class Answers(Sandbox):
    name = "answers"

    def setup_routes(self) -> None:
        @self.app.get("/answer/<kind>")
        def answer(kind: str) -> Any:
            body, mime = BODIES[kind]
            return Response(body, status=400, mimetype=mime)


@pytest.fixture()
def base() -> Iterator[str]:
    with SandboxServer(Answers()) as server:
        yield server.url


def fetch(base: str, kind: str) -> requests.Response:
    return requests.get(f"{base}/answer/{kind}", timeout=5)


def test_message_and_code_are_found_along_the_named_paths(base: str) -> None:
    paths = {"message": [["error", "message"]], "code": [["error", "code"]]}
    assert error_parts(fetch(base, "object"), **paths) == ("Email is invalid", "E_EMAIL")
    listed = error_parts(fetch(base, "list"), message=[[0, "message"]], code=[[0, "errorCode"]])
    assert listed == ("duplicate", "DUPLICATE_VALUE")


def test_a_body_that_is_not_json_gives_its_text_and_no_code(base: str) -> None:
    message, code = error_parts(fetch(base, "html"))
    assert "502 Bad Gateway" in message and code is None


def test_a_secret_the_vendor_echoes_is_redacted(base: str) -> None:
    known_secrets.add("sk-live-123456")
    message, _ = error_parts(fetch(base, "echo"))
    assert "sk-live-123456" not in message and "bad key" in message


def test_a_success_answer_that_is_not_json_is_a_transient_failure(base: str) -> None:
    client = VendorClient("https://vendor.example.com/", override=base)
    response = client.get("answer/html", ok_statuses=frozenset({400}))
    with pytest.raises(TransientError, match="not JSON"):
        json_body(response)
