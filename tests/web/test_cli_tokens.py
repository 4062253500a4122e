"""``leadbridge tokens create|list|revoke``: a token printed once works against the API."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskCliRunner
from leadbridge.cli import main


def test_tokens_cli_create_use_list_revoke(app: Flask, admin: int, cli_runner: FlaskCliRunner, url) -> None:
    created = cli_runner.invoke(main, ["tokens", "create", "nightly export"])
    assert created.exit_code == 0, created.output
    token = created.output.strip()
    assert token.startswith("lb_")
    client = app.test_client()
    assert (
        client.get(url("api.contacts_list"), headers={"Authorization": f"Bearer {token}"}).status_code == 200
    )
    listed = cli_runner.invoke(main, ["tokens", "list"])
    assert "nightly export" in listed.output and token not in listed.output
    token_id = listed.output.split()[0]
    assert cli_runner.invoke(main, ["tokens", "revoke", token_id]).exit_code == 0
    assert (
        client.get(url("api.contacts_list"), headers={"Authorization": f"Bearer {token}"}).status_code == 401
    )
    assert cli_runner.invoke(main, ["tokens", "revoke", token_id]).exit_code == 2
    assert cli_runner.invoke(main, ["tokens", "create", "x", "--user", "nobody"]).exit_code == 2
