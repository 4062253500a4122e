"""The connector's requests against PlanMill's RAML: every path exists and every query parameter is
declared for that resource (resource types resolved) or listed among the filters of the resource's
``/meta`` sample (the RAML defers to it: "see <resource>/meta for a full set of query parameters"),
so no undocumented filter is relied upon."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from leadbridge.types import Action, Company, Contact
from leadbridge_planmill.sandbox import PlanMillSandbox
from planmill_testkit import VENDOR_DOCS, Hooks, spec_file

RAML = VENDOR_DOCS / "planmill1_5.loadable.raml"


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!include", lambda loader, node: None)


@pytest.fixture(scope="module")
def raml() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.load(RAML.read_text(encoding="utf-8"), Loader=_Loader)
    return doc


def _params(raml: dict[str, Any], node: dict[str, Any], method: str) -> set[str]:
    names: set[str] = set()
    op = node.get(method) or node.get(f"{method}?") or {}
    names |= {str(k).rstrip("?") for k in ((op or {}).get("queryParameters") or {})}
    rtype = node.get("type")
    if isinstance(rtype, dict):
        rtype = next(iter(rtype))
    if isinstance(rtype, str):
        names |= _params(raml, raml["resourceTypes"][rtype], method)
    return names


META = {
    "accounts": "account_meta1_5.sample",
    "contacts": "contact_meta1_5.sample",
    "actions": "action_meta1_5.sample",
}


def _meta_filters(api_path: str) -> set[str]:
    resource = api_path.strip("/").split("/")[0]
    if resource not in META or api_path.strip("/") != resource:
        return set()
    return {str(f["name"]) for f in spec_file(META[resource])["filters"]}


def _resource(raml: dict[str, Any], path: str) -> dict[str, Any]:
    node: dict[str, Any] = raml
    for segment in path.strip("/").split("/"):
        key = f"/{segment}"
        if key not in node:
            key = next((k for k in node if isinstance(k, str) and re.fullmatch(r"/\{\w+\}", k)), key)
        assert key in node, f"{path}: no RAML resource for {segment!r}"
        node = node[key]
    return node


def test_every_request_is_declared_in_planmills_raml(hooks: Hooks, pm: PlanMillSandbox, raml) -> None:
    campaign = pm.add_campaign("RAML campaign", [3574])
    hooks("field_types", object_type="contact")
    hooks("list_campaigns")
    page = hooks("fetch_campaign_members", campaign_id=str(campaign), cursor=None)
    hooks("fetch_contacts", object_type="contact", since=None, cursor=None)
    hooks("fetch_companies", since=None, cursor=None)
    (company,) = hooks("upsert_company", companies=[Company(name="Raml Oy")])
    person = Contact(
        email="raml@example.com",
        fields={"lastName": "Raml"},
        company=Company(name="Raml Oy", remote_id=company.remote_id),
    )
    (result,) = hooks("upsert_contact", object_type="contact", contacts=[person])
    person.remote_id = result.remote_id
    hooks("create_action", action=Action(title="t", contact=person))
    hooks("delete_contacts", object_type="contact", remote_ids=[page.items[0].remote_id])
    checked = 0
    for method, path, query, _ in pm.requests:
        api_path = path.split("/api/1.5", 1)[1] if "/api/1.5" in path else None
        if api_path is None:
            continue
        node = _resource(raml, api_path)
        declared = _params(raml, node, method.lower()) | _meta_filters(api_path)
        assert set(query) <= declared, f"{method} {api_path}: undeclared {set(query) - declared}"
        checked += 1
    assert checked >= 10
