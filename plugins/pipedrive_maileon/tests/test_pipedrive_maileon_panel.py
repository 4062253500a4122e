"""An admin sets up Pipedrive → Maileon in the panel: the brief's settings, a clear refusal when the
DOI mailing is missing, the webhooks registered on save and shown, Test connection checking both
vendors."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import g, has_app_context
from leadbridge.db import db
from leadbridge.models import Connection
from sqlalchemy import select

PASSWORD = "correct horse battery staple"


@pytest.fixture
def admin(app: Any, sandbox_server: Any) -> Any:
    from leadbridge.users import create_user

    with app.app_context():
        create_user("admin", PASSWORD)
        db.session.commit()
    client = app.test_client()
    client.post(
        "/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token(client, "/login")}
    )
    return client


def token(client: Any, path: str) -> str:
    if has_app_context():  # Flask-WTF caches the token in g, which may hold the pre-login one
        g.pop("csrf_token", None)
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


def form(client: Any, path: str, sandbox: Any, server: Any, **values: str) -> dict[str, Any]:
    return {
        "csrf_token": token(client, path),
        "name": "Sales to newsletter",
        "api_token": sandbox.pipedrive.api_token,
        "maileon_api_key": sandbox.maileon.api_key,
        "initial_permission": "4",
        "doi": ["false", "true"],  # the hidden "false" and the ticked checkbox, as a browser sends
        "contacts_sync": ["false", "true"],
        "deals_sync": ["false", "true"],
        "custom_fields": "Lead source",
        "newsletter_field": "Newsletter",
        "base_url": server.url,
        "enabled": "on",
        **values,
    }


def press_test(admin: Any, conn_id: int) -> Any:
    back = f"/connections/{conn_id}/settings"
    data = {"csrf_token": token(admin, back), "back": back}
    return admin.post(f"/connections/{conn_id}/test", data=data, follow_redirects=True)


def test_an_admin_sets_up_the_connection_and_sees_its_webhooks(
    app: Any, admin: Any, sandbox: Any, sandbox_server: Any
) -> None:
    new = "/integrations/pipedrive_maileon/new"
    page = admin.get(new).get_data(as_text=True)
    labels = ["Pipedrive API token", "Maileon API key", "Initial permission", "Double opt-in plus"]
    labels += [
        "DOI process",
        "DOI mailing ID",
        "Contacts sync to Maileon",
        "Deals sync to Maileon",
        "Custom fields",
    ]
    for label in labels:
        assert label in page, label

    refused = admin.post(new, data=form(admin, new, sandbox, sandbox_server))
    assert refused.status_code == 400
    assert "DOI mailing ID: required when DOI process is on" in refused.get_data(as_text=True)

    saved = admin.post(new, data=form(admin, new, sandbox, sandbox_server, doi_mailing="doi-1001"))
    assert saved.status_code == 302, saved.get_data(as_text=True)[:3000]
    with app.app_context():
        conn = db.session.execute(select(Connection)).scalar_one()
        conn_id, secrets_in_settings = conn.id, set(conn.settings) & {"api_token", "maileon_api_key"}
    assert not secrets_in_settings  # encrypted apart, never in the plain settings
    hooks = sandbox.pipedrive.webhooks
    wanted = [("deal", "change"), ("deal", "create")] + [
        ("person", a) for a in ("change", "create", "delete")
    ]
    assert sorted((w["event_object"], w["event_action"]) for w in hooks.values()) == wanted
    settings = admin.get(f"/connections/{conn_id}/settings").get_data(as_text=True)
    assert 'data-webhooks="registered"' in settings
    assert all(str(i) in settings for i in hooks)
    assert sandbox.pipedrive.api_token not in settings and sandbox.maileon.api_key not in settings

    tested = admin.post(
        f"/connections/{conn_id}/test",
        data={
            "csrf_token": token(admin, f"/connections/{conn_id}/settings"),
            "back": f"/connections/{conn_id}/settings",
        },
        follow_redirects=True,
    )
    assert "Connection works" in tested.get_data(as_text=True)
    sandbox.maileon.doi_mailings.discard("doi-1001")
    sandbox.maileon.regular_mailings.add("doi-1001")
    tested = admin.post(
        f"/connections/{conn_id}/test",
        data={
            "csrf_token": token(admin, f"/connections/{conn_id}/settings"),
            "back": f"/connections/{conn_id}/settings",
        },
        follow_redirects=True,
    )
    text = tested.get_data(as_text=True)
    assert "Connection failed" in text and "not a DOI mailing" in text
