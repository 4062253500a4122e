"""The sandbox toolkit over real loopback HTTP: the OAuth server, the record store, JSON errors."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import jsonify, request
from leadbridge.sandbox import Sandbox, SandboxServer
from leadbridge.sandboxkit.oauth import OAuthServer
from leadbridge.sandboxkit.records import RecordStore

REDIRECT = "http://127.0.0.1:9/callback"


class Vendor(Sandbox):
    name = "kit"

    def __init__(self) -> None:
        self.when = datetime(2026, 1, 1, tzinfo=UTC)
        self.people = RecordStore(lambda: self.when)
        self.auth = OAuthServer(lambda: self.when.timestamp(), lambda: self.token_generation, prefix="/oauth")
        self.auth.register_app("app", "s3cret-value", client_credentials=True)
        super().__init__()

    def setup_routes(self) -> None:
        self.auth.install(self.app)

        @self.app.get("/api/people")
        def people() -> Any:
            if self.auth.check_access(request.headers.get("Authorization", "")[7:]) is None:
                return self.error_response(401, "invalid_token", "expired")
            page, cursor = self.people.page(cursor=request.args.get("cursor"), limit=2)
            return jsonify(data=[r.as_json() for r in page], next_cursor=cursor)


@pytest.fixture()
def vendor() -> Iterator[tuple[Vendor, str]]:
    sandbox = Vendor()
    with SandboxServer(sandbox) as server:
        yield sandbox, server.url


def token(base: str, **form: str) -> requests.Response:
    return requests.post(f"{base}/oauth/token", data=form, auth=("app", "s3cret-value"), timeout=5)


def test_client_credentials_then_a_rotating_refresh(vendor: Any) -> None:
    sandbox, base = vendor
    first = token(base, grant_type="client_credentials", scope="offline_access").json()
    assert (
        requests.get(
            f"{base}/api/people", headers={"Authorization": f"Bearer {first['access_token']}"}, timeout=5
        ).status_code
        == 200
    )
    second = token(base, grant_type="refresh_token", refresh_token=first["refresh_token"]).json()
    assert second["refresh_token"] != first["refresh_token"]
    reused = token(base, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    sandbox.when += timedelta(seconds=sandbox.auth.access_lifetime + 1)
    expired = requests.get(
        f"{base}/api/people", headers={"Authorization": f"Bearer {second['access_token']}"}, timeout=5
    )
    assert expired.status_code == 401


def test_authorization_code_with_pkce_and_revocation(vendor: Any) -> None:
    sandbox, base = vendor
    verifier = "v" * 50
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = {
        "client_id": "app",
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "state": "xyz",
        "scope": "offline_access",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    answer = requests.get(f"{base}/oauth/authorize", params=query, allow_redirects=False, timeout=5)
    sent = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert sent["state"] == ["xyz"]
    wrong = token(
        base,
        grant_type="authorization_code",
        code=sent["code"][0],
        redirect_uri=REDIRECT,
        code_verifier="x" * 50,
    )
    assert wrong.status_code == 400 and "PKCE" in wrong.json()["error_description"]
    answer = requests.get(f"{base}/oauth/authorize", params=query, allow_redirects=False, timeout=5)
    code = parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]
    grant = token(
        base, grant_type="authorization_code", code=code, redirect_uri=REDIRECT, code_verifier=verifier
    )
    refresh = grant.json()["refresh_token"]
    revoked = requests.post(
        f"{base}/oauth/revoke", data={"token": refresh}, auth=("app", "s3cret-value"), timeout=5
    )
    assert revoked.status_code == 200
    assert token(base, grant_type="refresh_token", refresh_token=refresh).json()["error"] == "invalid_grant"
    assert sandbox.auth.live_access_tokens() == {}  # the grant's access token ended with it


def test_the_record_store_pages_by_modification_and_sees_changes_once(vendor: Any) -> None:
    sandbox, base = vendor
    for i in range(5):
        sandbox.people.add({"n": i})
        sandbox.when += timedelta(seconds=1)
    bearer = {
        "Authorization": f"Bearer {token(base, grant_type='client_credentials').json()['access_token']}"
    }
    first = requests.get(f"{base}/api/people", headers=bearer, timeout=5).json()
    rec = sandbox.people.live(first["data"][0]["id"])
    assert rec is not None and sandbox.people.change(rec, {"n": 99})  # moves behind the cursor
    assert not sandbox.people.change(rec, {"n": 99})  # no change, no new stamp
    seen = [r["n"] for r in first["data"]]
    cursor = first["next_cursor"]
    while cursor:
        page = requests.get(f"{base}/api/people", params={"cursor": cursor}, headers=bearer, timeout=5).json()
        seen += [r["n"] for r in page["data"]]
        cursor = page["next_cursor"]
    assert seen == [0, 1, 2, 3, 4, 99]


def test_unknown_routes_and_methods_answer_json_in_the_vendor_envelope(vendor: Any) -> None:
    _sandbox, base = vendor
    missing = requests.get(f"{base}/api/nothing", timeout=5)
    assert missing.status_code == 404 and missing.json()["error"] == "NOT_FOUND"
    wrong = requests.delete(f"{base}/api/people", timeout=5)
    assert wrong.status_code == 405 and wrong.json()["error"] == "METHOD_NOT_ALLOWED"
