"""Contacts, companies and lists: search, filters, keyset pages, the contact page, "Send to" with
checkbox selection, and "Import from <connector>" into a list."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from leadbridge.db import db
from leadbridge.models import Company, Connection, Contact, ContactList, Link, ListMembership, SyncRun
from leadbridge.sync import start_send, wait_for_runs


@pytest.fixture
def people(app_ctx: Flask) -> list[int]:
    """120 contacts (ids ascending), a company and two lists."""
    acme = Company(name="Acme Oy", name_key="acme oy", custom={}, field_changed_at={})
    db.session.add(acme)
    news, vip = ContactList(name="Newsletter"), ContactList(name="VIP")
    db.session.add_all([news, vip])
    db.session.flush()
    ids = []
    for i in range(120):
        c = Contact(
            first_name="Aino" if i % 2 else "Mikko",
            last_name=f"Virtanen{i:03d}",
            status="lead" if i % 3 else "customer",
            company_id=acme.id if i < 10 else None,
            company_name="Acme Oy" if i < 10 else None,
            consent="none",
            custom={},
            field_changed_at={},
        )
        c.set_email(f"person{i:03d}@example.com")
        db.session.add(c)
        db.session.flush()
        ids.append(c.id)
        if i % 4 == 0:
            db.session.add(ListMembership(list_id=news.id, contact_id=c.id, status="subscribed"))
    db.session.commit()
    return ids


def _ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'name="contact_ids" value="(\d+)"', html)]


def test_contacts_page_newest_first_with_keyset_pages(logged_in: FlaskClient, people: list[int], url) -> None:
    first = logged_in.get(url("contacts.index")).get_data(as_text=True)
    assert "120 contacts in the hub" in first
    page1 = _ids(first)
    assert page1 == sorted(people, reverse=True)[:50]
    older = re.search(r'href="(/contacts\?before=\d+)"', first).group(1)
    page2 = _ids(logged_in.get(older).get_data(as_text=True))
    assert page2 == sorted(people, reverse=True)[50:100]
    page3_html = logged_in.get(url("contacts.index", before=page2[-1])).get_data(as_text=True)
    assert _ids(page3_html) == sorted(people, reverse=True)[100:]
    assert 'href="/contacts?before=' not in page3_html  # no older page
    newer = re.search(r'href="(/contacts\?after=\d+)"', page3_html).group(1)
    assert _ids(logged_in.get(newer).get_data(as_text=True)) == page2


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"q": "person007"}, 1),
        ({"q": "PERSON00"}, 10),
        ({"q": "virtanen01"}, 10),
        ({"q": "Aino"}, 50),
        ({"status": "customer"}, 40),
        ({"q": "nobody"}, 0),
    ],
)
def test_search_and_filters(
    logged_in: FlaskClient, people: list[int], url, query: dict[str, str], expected: int
) -> None:
    html = logged_in.get(url("contacts.index", **query)).get_data(as_text=True)
    assert len(_ids(html)) == expected
    if not expected:
        assert "No contacts found" in html


def test_filter_by_list_and_company(logged_in: FlaskClient, people: list[int], url) -> None:
    news = db.session.query(ContactList).filter_by(name="Newsletter").one()
    acme = db.session.query(Company).one()
    assert len(_ids(logged_in.get(url("contacts.index", list=news.id)).get_data(as_text=True))) == 30
    html = logged_in.get(url("contacts.index", company=acme.id)).get_data(as_text=True)
    assert len(_ids(html)) == 10 and "at Acme Oy" in html
    assert (
        logged_in.get(url("contacts.company", company_id=acme.id))
        .headers["Location"]
        .endswith(f"/contacts?company={acme.id}")
    )


def test_deleted_contacts_are_hidden(logged_in: FlaskClient, people: list[int], url) -> None:
    from leadbridge.db import utcnow

    db.session.get(Contact, people[-1]).deleted_at = utcnow()
    db.session.commit()
    assert people[-1] not in _ids(logged_in.get(url("contacts.index")).get_data(as_text=True))


def test_companies_page(logged_in: FlaskClient, people: list[int], url) -> None:
    html = logged_in.get(url("contacts.companies")).get_data(as_text=True)
    assert "Acme Oy" in html and '<td class="num">10</td>' in html
    assert "No companies found" in logged_in.get(url("contacts.companies", q="zzz")).get_data(as_text=True)
    assert "Acme Oy" in logged_in.get(url("contacts.companies", q="ACME")).get_data(as_text=True)


def test_contact_page_shows_links_history_and_send_buttons(
    app: Flask, logged_in: FlaskClient, csrf: str, connection: Connection, people: list[int], url
) -> None:
    contact_id = people[0]
    logged_in.post(url("mapping.defaults", conn_id=connection.id), data={"csrf_token": csrf})
    html = logged_in.get(url("contacts.show", contact_id=contact_id)).get_data(as_text=True)
    assert "Not linked to any CRM record yet" in html and "No sync has touched this contact" in html
    assert f"Send to {connection.name}" in html and "Newsletter" in html
    response = logged_in.post(
        url("contacts.send"),
        data={
            "csrf_token": csrf,
            "connection_id": connection.id,
            "contact_ids": [contact_id],
            "back": url("contacts.show", contact_id=contact_id),
        },
    )
    assert response.status_code == 302
    run = _finished_job(app, response)
    assert run.status == "succeeded"
    page = logged_in.get(response.headers["Location"]).get_data(as_text=True)
    assert "Done." in page and "CRM: 3 created" in page  # company, contact, action
    assert f'href="/runs/{run.id}"' in page and f'href="/contacts/{contact_id}"' in page  # the way back
    fragment = logged_in.get(response.headers["Location"], headers={"HX-Request": "true"})
    fragment = fragment.get_data(as_text=True)
    assert fragment.startswith('<div id="job"') and "hx-get" not in fragment
    db.session.rollback()  # end the read snapshot: see what the request committed
    link = db.session.query(Link).filter_by(hub_id=contact_id, hub_kind="contact").one()
    html = logged_in.get(url("contacts.show", contact_id=contact_id)).get_data(as_text=True)
    assert link.remote_id in html and connection.name in html
    assert f'href="/runs/{run.id}"' in html and "badge-created" in html


def test_send_selected_contacts_from_the_list(
    app: Flask, logged_in: FlaskClient, csrf: str, connection: Connection, people: list[int], sandbox, url
) -> None:
    html = logged_in.get(url("contacts.index")).get_data(as_text=True)
    assert "data-selection-bar" in html and f"Send to {connection.name}" in html
    chosen = people[-3:]  # without a company
    logged_in.post(url("mapping.defaults", conn_id=connection.id), data={"csrf_token": csrf})
    response = logged_in.post(
        url("contacts.send"), data={"csrf_token": csrf, "connection_id": connection.id, "contact_ids": chosen}
    )
    run = _finished_job(app, response)
    assert run.trigger == "send" and run.counts["crm"]["created"] == 6  # 3 contacts + 3 actions
    assert len(sandbox.contacts) == 3


def test_send_refuses_empty_selection_and_disabled_connection(
    logged_in: FlaskClient, csrf: str, make_connection, people: list[int], url
) -> None:
    off = make_connection(enabled=False)
    nothing = logged_in.post(url("contacts.send"), data={"csrf_token": csrf, "connection_id": off.id})
    assert "Select at least one contact" in logged_in.get(nothing.headers["Location"]).get_data(as_text=True)
    disabled = logged_in.post(
        url("contacts.send"), data={"csrf_token": csrf, "connection_id": off.id, "contact_ids": [people[0]]}
    )
    assert "is disabled" in logged_in.get(disabled.headers["Location"]).get_data(as_text=True)
    assert db.session.query(SyncRun).count() == 0
    assert logged_in.get("/jobs/unknown").status_code == 404
    assert logged_in.get(url("contacts.job", job_id=999999)).status_code == 404


def test_a_failed_send_looks_failed(
    app: Flask, logged_in: FlaskClient, csrf: str, connection: Connection, people: list[int], url
) -> None:
    """The connection is disabled after the send was queued: the run fails, and the page says so."""
    logged_in.post(url("mapping.defaults", conn_id=connection.id), data={"csrf_token": csrf})
    run_id = start_send(connection.id, people[:2])
    wait_for_runs(app, timeout=60)  # the thread executor ran it; now make a second one fail
    connection = db.session.get(Connection, connection.id)
    connection.enabled = False
    db.session.commit()
    failed_id = start_send(connection.id, people[:2])
    wait_for_runs(app, timeout=60)
    ok = logged_in.get(url("contacts.job", job_id=run_id)).get_data(as_text=True)
    bad = logged_in.get(url("contacts.job", job_id=failed_id)).get_data(as_text=True)
    assert "Done." in ok and "failed" not in ok
    assert "Sending 2 contacts to" in bad and "failed: connection" in bad and "is disabled" in bad
    assert "Done." not in bad and 'data-status="failed"' in bad


def test_a_send_stopped_by_the_vendor_quota_looks_paused_not_failed(
    app: Flask, logged_in: FlaskClient, csrf: str, connection: Connection, people: list[int], sandbox, url
) -> None:
    logged_in.post(url("mapping.defaults", conn_id=connection.id), data={"csrf_token": csrf})
    sandbox.fail_next(429, body={"error": "quota_exceeded"}, times=10, path_prefix="/api/contacts")
    run_id = start_send(connection.id, people[:2])
    wait_for_runs(app, timeout=60)
    page = logged_in.get(url("contacts.job", job_id=run_id)).get_data(as_text=True)
    assert 'data-status="paused"' in page
    assert (
        "paused until" in page and "daily quota used up" in page and "Start it again after that time" in page
    )
    assert "failed" not in page and "Done." not in page


def test_lists_create_and_show_members(logged_in: FlaskClient, csrf: str, people: list[int], url) -> None:
    html = logged_in.get(url("contacts.lists")).get_data(as_text=True)
    assert "Newsletter" in html and '<td class="num">30</td>' in html
    created = logged_in.post(url("contacts.create_list"), data={"csrf_token": csrf, "name": "Webinar"})
    assert created.status_code == 302
    lst = db.session.query(ContactList).filter_by(name="Webinar").one()
    assert created.headers["Location"].endswith(url("contacts.list_show", list_id=lst.id))
    assert "This list is empty" in logged_in.get(created.headers["Location"]).get_data(as_text=True)
    dup = logged_in.post(url("contacts.create_list"), data={"csrf_token": csrf, "name": "Webinar"})
    assert "already exists" in logged_in.get(dup.headers["Location"]).get_data(as_text=True)
    news = db.session.query(ContactList).filter_by(name="Newsletter").one()
    page = logged_in.get(url("contacts.list_show", list_id=news.id)).get_data(as_text=True)
    assert "30 members" in page and len(_ids(page)) == 30 and "subscribed" in page


def test_import_a_campaign_into_a_list(
    app: Flask, logged_in: FlaskClient, csrf: str, connection: Connection, sandbox, url
) -> None:
    sandbox.seed_demo()
    lst = ContactList(name="Webinar")
    db.session.add(lst)
    db.session.commit()
    page = logged_in.get(url("contacts.list_show", list_id=lst.id)).get_data(as_text=True)
    form_url = url("contacts.import_list", list_id=lst.id, conn_id=connection.id)
    assert f'href="{form_url}"' in page and f"Import from {connection.name}" in page
    form = logged_in.get(form_url).get_data(as_text=True)
    campaign = re.search(r'<option value="([^"]+)">Spring webinar \((\d+) members\)', form)
    assert campaign
    missing = logged_in.post(form_url, data={"csrf_token": csrf, "campaign_id": "", "status": "x"})
    assert missing.headers["Location"].endswith(form_url)
    response = logged_in.post(
        form_url, data={"csrf_token": csrf, "campaign_id": campaign.group(1), "status": "registered"}
    )
    run = _finished_job(app, response)
    assert run.status == "succeeded"
    page = logged_in.get(response.headers["Location"]).get_data(as_text=True)
    back = url("contacts.list_show", list_id=lst.id)
    assert "Importing into Webinar from" in page and f'href="{back}"' in page
    members = db.session.query(ListMembership).filter_by(list_id=lst.id).all()
    assert len(members) == int(campaign.group(2)) and {m.status for m in members} == {"registered"}
    assert run.trigger == "import"


def test_import_is_only_offered_for_connectors_with_campaigns(
    logged_in: FlaskClient, connection: Connection, url
) -> None:
    lst = ContactList(name="L")
    db.session.add(lst)
    db.session.commit()
    assert logged_in.get(url("contacts.import_list", list_id=lst.id, conn_id=999)).status_code == 404


def _finished_job(app: Flask, response: Any) -> SyncRun:
    """The run behind a job page redirect, once the executor has finished it."""
    location = response.headers["Location"]
    match = re.search(r"/jobs/(\d+)", location)
    assert match, location
    wait_for_runs(app, timeout=60)
    db.session.rollback()  # a fresh snapshot: the run was written by another session
    run = db.session.get(SyncRun, int(match.group(1)))
    assert run is not None and run.status not in ("queued", "running")
    return run
