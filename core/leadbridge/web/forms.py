"""Forms: admins create a form endpoint; its public submissions create or update a contact and trigger
the push (``trigger="form"``), as "each time a form is submitted" in the Salesforce brief."""

from __future__ import annotations

import hmac
import logging
import re

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from ..db import db, utcnow
from ..models import Contact, ContactList, Form, ListMembership, normalize_email
from ..sync import notify_contacts_changed
from .tokens import hash_token, new_token
from .util import get_or_404

bp = Blueprint("forms", __name__)
log = logging.getLogger(__name__)

FORM_FIELDS = ("first_name", "last_name", "phone", "title", "company_name")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
CONSENTS = ("single_opt_in", "double_opt_in", "confirmed")


@bp.route("/forms", methods=["GET", "POST"])
def index() -> ResponseReturnValue:
    token = None
    created = None
    if request.method == "POST":
        name = request.form.get("name", "").strip()
        list_id = request.form.get("list_id", "")
        if not name:
            flash("A form needs a name.", "error")
        elif db.session.execute(select(Form.id).where(Form.name == name)).first():
            flash(f"A form named {name} already exists.", "error")
        else:
            token, digest = new_token("lbf")
            created = Form(name=name, token_hash=digest, list_id=int(list_id) if list_id.isdigit() else None)
            db.session.add(created)
            db.session.commit()
    forms = list(db.session.execute(select(Form).order_by(Form.name)).scalars())
    lists = list(db.session.execute(select(ContactList).order_by(ContactList.name)).scalars())
    names = {lst.id: lst.name for lst in lists}
    return render_template(
        "forms/index.html", forms=forms, lists=lists, list_names=names, token=token, created=created
    )


@bp.post("/forms/<int:form_id>/delete")
def delete(form_id: int) -> ResponseReturnValue:
    form = get_or_404(Form, form_id)
    db.session.delete(form)
    db.session.commit()
    flash(f"Form {form.name} deleted; its token no longer works.", "info")
    return redirect(url_for("forms.index"))


@bp.post("/forms/<int:form_id>/submit")
def submit(form_id: int) -> ResponseReturnValue:
    """Public: create or update the contact by email (token in ``token`` or ``X-Form-Token``)."""
    form = db.session.get(Form, form_id)
    token = request.headers.get("X-Form-Token") or request.form.get("token", "")
    if form is None or not token or not hmac.compare_digest(hash_token(token), form.token_hash):
        abort(404)  # the same answer for an unknown form and a wrong token
    email = request.form.get("email", "").strip()
    if not _EMAIL.match(email):
        return jsonify(ok=False, error="a valid email is required"), 400
    key = normalize_email(email)
    contact = db.session.execute(select(Contact).where(Contact.email_key == key)).scalar_one_or_none()
    created = contact is None
    if contact is None:
        contact = Contact(consent="none", custom={}, field_changed_at={})
        contact.set_email(email)
        db.session.add(contact)
    changed_at = dict(contact.field_changed_at or {})
    now = utcnow()
    for name in FORM_FIELDS:
        value = request.form.get(name, "").strip()[:255]
        if value and getattr(contact, name) != value:
            setattr(contact, name, value)
            changed_at[name] = now.isoformat()
    consent = request.form.get("consent", "")
    if consent in CONSENTS and contact.consent != consent:
        contact.consent, contact.consent_at = consent, now
        changed_at["consent"] = now.isoformat()
    contact.deleted_at = None
    contact.field_changed_at = changed_at
    db.session.flush()
    if form.list_id is not None and db.session.get(ListMembership, (form.list_id, contact.id)) is None:
        db.session.add(
            ListMembership(
                list_id=form.list_id, contact_id=contact.id, status="subscribed", source=f"form:{form.id}"
            )
        )
    db.session.commit()
    try:
        notify_contacts_changed([contact.id], trigger="form")
    except Exception:  # the contact is stored; the scheduled sync will push it anyway
        log.exception("could not trigger the push for form %s", form.id)
    return jsonify(ok=True, contact_id=contact.id, created=created), 201 if created else 200
