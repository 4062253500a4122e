"""'Send to PlanMill' at hook level: account by exact name, contact by email, an action per send."""

from __future__ import annotations

from leadbridge.types import Action, Company, Contact, Outcome
from leadbridge_planmill.sandbox import PlanMillSandbox
from planmill_testkit import Hooks


def _people(company: str, n: int = 3) -> list[Contact]:
    return [
        Contact(
            email=f"person{i}@newco.example",
            fields={"firstName": f"First{i}", "lastName": f"Last{i}", "title": "Buyer"},
            company=Company(name=company),
            ref=str(i),
        )
        for i in range(n)
    ]


def send(hooks: Hooks, people: list[Contact]) -> list[str]:
    """What the engine does on an explicit send: companies, then contacts, then one action each."""
    company_results = hooks("upsert_company", companies=[people[0].company])
    for person in people:
        assert person.company is not None
        person.company.remote_id = company_results[0].remote_id
    results = hooks("upsert_contact", object_type="contact", contacts=people)
    titles = []
    for person, result in zip(people, results, strict=True):
        person.remote_id = result.remote_id
        action = hooks(
            "create_action",
            action=Action(title="Core-filled title (Newco Oy)", contact=person, company=person.company),
        )
        assert action.outcome is Outcome.CREATED, action
        titles.append(action.extra["subject"])
    return titles


def test_three_contacts_of_a_new_company(hooks: Hooks, pm: PlanMillSandbox) -> None:
    accounts, contacts, actions = pm.company_count(), pm.contact_count(), len(pm.records["actions"])
    titles = send(hooks, _people("Newco Oy"))
    assert pm.company_count() == accounts + 1
    assert pm.contact_count() == contacts + 3
    assert len(pm.records["actions"]) == actions + 3
    assert titles == ["Core-filled title (Newco Oy)"] * 3  # the subject is the title the core filled
    account = pm.find("accounts", name="Newco Oy")[0]
    created = pm.find("contacts", account=account["id"])
    assert sorted(c["email"] for c in created) == [f"person{i}@newco.example" for i in range(3)]
    new_actions = [
        a for a in pm.records["actions"].values() if a.get("contact") in {c["id"] for c in created}
    ]
    assert len(new_actions) == 3

    again = hooks.new_run()
    send(again, _people("Newco Oy"))
    assert pm.company_count() == accounts + 1  # no new account
    assert pm.contact_count() == contacts + 3  # no new contact
    assert len(pm.records["actions"]) == actions + 6  # actions are events


def test_resend_without_changes_writes_nothing_but_actions(hooks: Hooks, pm: PlanMillSandbox) -> None:
    send(hooks, _people("Quiet Oy"))
    pm.reset_calls()
    results = hooks.new_run()("upsert_contact", object_type="contact", contacts=_people("Quiet Oy"))
    assert [r.outcome for r in results] == [Outcome.UNCHANGED] * 3
    assert pm.count_calls("POST", "/acme/api/1.5/") == 0
    # one account lookup for the three (reused within the run), one email lookup per contact
    assert pm.count_calls("GET", "/acme/api/1.5/accounts") == 1
    assert pm.count_calls("GET", "/acme/api/1.5/contacts") == 3
