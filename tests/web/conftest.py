"""Fixtures for the panel and API tests: an admin, a logged-in client, CSRF tokens, URLs by endpoint.

Build every URL with the ``url`` fixture (``url("runs.show", run_id=1)``): the route meta-test reads
those endpoint names to prove every route has a test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask, url_for
from flask.testing import FlaskClient
from panel_helpers import PASSWORD, csrf_from


@pytest.fixture
def url(app: Flask) -> Callable[..., str]:
    def build(endpoint: str, **values: Any) -> str:
        with app.test_request_context():
            return url_for(endpoint, **values)

    return build


@pytest.fixture
def admin(app: Flask) -> int:
    from leadbridge.db import db
    from leadbridge.users import create_user

    with app.app_context():
        user = create_user("admin", PASSWORD)
        db.session.commit()
        return user.id


@pytest.fixture
def logged_in(client: FlaskClient, admin: int, url: Callable[..., str]) -> FlaskClient:
    page = client.get(url("auth.login"))
    response = client.post(
        url("auth.login"),
        data={"username": "admin", "password": PASSWORD, "csrf_token": csrf_from(page.data)},
    )
    assert response.status_code == 302, response.data
    return client


@pytest.fixture
def csrf(logged_in: FlaskClient, url: Callable[..., str]) -> str:
    """A valid CSRF token of the logged-in session."""
    return csrf_from(logged_in.get(url("settings.tokens")).data)


@pytest.fixture(autouse=True)
def _settle_background_work(app: Flask) -> Any:
    """After each test: finish panel jobs and push what the debounced form/API push still holds,
    so no background thread touches the test database after it is gone."""
    yield
    from leadbridge.sync import wait_for_runs
    from leadbridge.sync.notify import DEBOUNCER_KEY

    wait_for_runs(app, timeout=60)
    pending = app.extensions.get(DEBOUNCER_KEY)
    if pending is not None:
        pending.flush()
    wait_for_runs(app, timeout=60)
