"""Forms: the token is shown once and stored hashed; public submissions create or update the contact
by email, add it to the form's list and trigger the push."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from leadbridge.db import db
from leadbridge.models import Contact, ContactList, Form, ListMembership, SyncRun


@pytest.fixture
def form(logged_in: FlaskClient, csrf: str, app_ctx: Flask, url) -> tuple[int, str]:
    # logged_in and csrf first: flask-wtf caches the token in `g`, which app_ctx would share.
    lst = ContactList(name="Newsletter")
    db.session.add(lst)
    db.session.commit()
    response = logged_in.post(
        url("forms.index"), data={"csrf_token": csrf, "name": "Sign-up", "list_id": lst.id}
    )
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    token = re.search(r"data-copy-source>(lbf_[^<]+)<", html).group(1)
    assert "shown <b>only now</b>" in html
    row = db.session.query(Form).one()
    assert token not in row.token_hash and len(row.token_hash) == 64
    assert token not in logged_in.get(url("forms.index")).get_data(as_text=True)  # shown once
    return row.id, token


def test_submission_creates_then_updates_by_email(app: Flask, form: tuple[int, str], url) -> None:
    form_id, token = form
    public = app.test_client()
    created = public.post(
        url("forms.submit", form_id=form_id),
        data={"token": token, "email": "Aino@Example.com", "first_name": "Aino", "consent": "single_opt_in"},
    )
    assert created.status_code == 201 and created.json["created"] is True
    updated = public.post(
        url("forms.submit", form_id=form_id),
        headers={"X-Form-Token": token},
        data={"email": "aino@example.com ", "last_name": "Virtanen"},
    )
    assert updated.status_code == 200 and updated.json["contact_id"] == created.json["contact_id"]
    db.session.rollback()
    contact = db.session.query(Contact).one()
    assert (contact.first_name, contact.last_name, contact.consent) == ("Aino", "Virtanen", "single_opt_in")
    assert "last_name" in contact.field_changed_at
    membership = db.session.query(ListMembership).one()
    assert membership.contact_id == contact.id and membership.source == f"form:{form_id}"


def test_wrong_token_and_bad_email_are_refused(app: Flask, form: tuple[int, str], url) -> None:
    form_id, token = form
    public = app.test_client()
    assert (
        public.post(
            url("forms.submit", form_id=form_id), data={"token": "lbf_wrong", "email": "a@b.fi"}
        ).status_code
        == 404
    )
    assert public.post(url("forms.submit", form_id=form_id), data={"email": "a@b.fi"}).status_code == 404
    assert (
        public.post(url("forms.submit", form_id=999), data={"token": token, "email": "a@b.fi"}).status_code
        == 404
    )
    bad = public.post(url("forms.submit", form_id=form_id), data={"token": token, "email": "not-an-email"})
    assert bad.status_code == 400
    db.session.rollback()
    assert db.session.query(Contact).count() == 0


def test_submission_triggers_the_push(app: Flask, form: tuple[int, str], connection, url) -> None:
    from leadbridge.sync.notify import debouncer

    form_id, token = form
    app.test_client().post(
        url("forms.submit", form_id=form_id), data={"token": token, "email": "x@example.com"}
    )
    started = debouncer(app).flush()  # push now instead of after the debounce delay
    assert len(started) == 1
    db.session.rollback()
    run = db.session.get(SyncRun, started[0])
    assert run.trigger == "form" and run.connection_id == connection.id


def test_delete_form_kills_its_token(
    app: Flask, logged_in: FlaskClient, csrf: str, form: tuple[int, str], url
):
    form_id, token = form
    logged_in.post(url("forms.delete", form_id=form_id), data={"csrf_token": csrf})
    assert (
        app.test_client()
        .post(url("forms.submit", form_id=form_id), data={"token": token, "email": "a@b.fi"})
        .status_code
        == 404
    )


def test_form_needs_a_unique_name(logged_in: FlaskClient, csrf: str, form: tuple[int, str], url) -> None:
    html = logged_in.post(url("forms.index"), data={"csrf_token": csrf, "name": "Sign-up"}).get_data(
        as_text=True
    )
    assert "already exists" in html
