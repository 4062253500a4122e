"""The OpenAPI 3.1 document of ``/api/v1`` (served at ``/api/v1/openapi.json``; tests validate every
API response against it). Request-body schemas carry no ``$ref`` so the API validates bodies with them."""

from __future__ import annotations

from typing import Any

from .. import __version__

S = dict[str, Any]


def _nullable(type_: str, **kw: Any) -> S:
    return {"type": [type_, "null"], **kw}


DATETIME = _nullable("string", format="date-time")
CONTACT_FIELDS: S = {
    "email": _nullable("string", maxLength=320),
    "first_name": _nullable("string", maxLength=255),
    "last_name": _nullable("string", maxLength=255),
    "phone": _nullable("string", maxLength=64),
    "title": _nullable("string", maxLength=255),
    "company_name": _nullable("string", maxLength=255),
    "company_id": _nullable("integer"),
    "status": _nullable("string", maxLength=64),
    "score": _nullable("integer"),
    "consent": {"type": "string", "enum": ["none", "single_opt_in", "double_opt_in", "confirmed"]},
    "unsubscribed": {"type": "boolean"},
    "custom": {"type": "object"},
}
COMPANY_FIELDS: S = {
    "name": {"type": "string", "minLength": 1, "maxLength": 255},
    "domain": _nullable("string", maxLength=255),
    "phone": _nullable("string", maxLength=64),
    "custom": {"type": "object"},
}
CONTACT_INPUT: S = {"type": "object", "properties": CONTACT_FIELDS, "additionalProperties": False}
CONTACT_UPSERT: S = {
    **CONTACT_INPUT,
    "required": ["email"],
    "properties": {**CONTACT_FIELDS, "email": {"type": "string", "minLength": 3, "maxLength": 320}},
}
COMPANY_INPUT: S = {"type": "object", "properties": COMPANY_FIELDS, "additionalProperties": False}
LIST_INPUT: S = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 255},
        "description": _nullable("string"),
    },
}
MEMBERS_INPUT: S = {
    "type": "object",
    "required": ["contact_ids"],
    "additionalProperties": False,
    "properties": {
        "contact_ids": {"type": "array", "items": {"type": "integer"}, "maxItems": 1000},
        "status": {"type": "string", "maxLength": 64},
    },
}
RUN_INPUT: S = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "dry_run": {"type": "boolean"},
        "full": {"type": "boolean"},
        "direction": {"type": ["string", "null"], "enum": ["to_crm", "from_crm", "both", None]},
    },
}

COUNTS: S = {"type": "object", "additionalProperties": {"type": "integer"}}

SCHEMAS: S = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string"},
            "problems": {"type": "array", "items": {"type": "string"}},
        },
    },
    "Contact": {
        "type": "object",
        "required": ["id", "email", "consent", "unsubscribed"],
        "properties": {
            "id": {"type": "integer"},
            **CONTACT_FIELDS,
            "created_at": DATETIME,
            "updated_at": DATETIME,
        },
    },
    "Company": {
        "type": "object",
        "required": ["id", "name"],
        "properties": {
            "id": {"type": "integer"},
            **COMPANY_FIELDS,
            "name": {"type": "string"},
            "created_at": DATETIME,
            "updated_at": DATETIME,
        },
    },
    "List": {
        "type": "object",
        "required": ["id", "name", "member_count"],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "description": _nullable("string"),
            "member_count": {"type": "integer"},
        },
    },
    "Member": {
        "type": "object",
        "required": ["contact", "status"],
        "properties": {
            "contact": {"$ref": "#/components/schemas/Contact"},
            "status": {"type": "string"},
            "source": _nullable("string"),
            "added_at": DATETIME,
        },
    },
    "Connection": {
        "type": "object",
        "required": ["id", "name", "plugin", "enabled", "state"],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "plugin": {"type": "string"},
            "plugin_state": {"type": "string"},
            "enabled": {"type": "boolean"},
            "state": {"type": "string"},
            "state_message": _nullable("string"),
            "direction": {"type": "string"},
            "interval_minutes": _nullable("integer"),
            "cron": _nullable("string"),
        },
    },
    "Run": {
        "type": "object",
        "required": ["id", "connection_id", "status", "trigger", "counts"],
        "properties": {
            "id": {"type": "integer"},
            "connection_id": {"type": "integer"},
            "status": {"type": "string"},
            "trigger": {"type": "string"},
            "direction": {"type": "string"},
            "dry_run": {"type": "boolean"},
            "started_at": DATETIME,
            "finished_at": DATETIME,
            "counts": {"type": "object", "additionalProperties": COUNTS},
            "progress_done": {"type": "integer"},
            "progress_total": _nullable("integer"),
            "api_calls": {"type": "integer"},
            "error": _nullable("string"),
        },
    },
    "Record": {
        "type": "object",
        "required": ["id", "side", "outcome"],
        "properties": {
            "id": {"type": "integer"},
            "side": {"type": "string", "enum": ["crm", "hub"]},
            "object_type": {"type": "string"},
            "outcome": {"type": "string"},
            "hub_id": _nullable("integer"),
            "remote_id": _nullable("string"),
            "label": _nullable("string"),
            "reason": _nullable("string"),
            "code": _nullable("string"),
            "diff": {"type": "object"},
            "at": DATETIME,
        },
    },
    "RunStarted": {"type": "object", "required": ["run_id"], "properties": {"run_id": {"type": "integer"}}},
    "ContactInput": CONTACT_INPUT,
    "ContactUpsert": CONTACT_UPSERT,
    "CompanyInput": COMPANY_INPUT,
    "ListInput": LIST_INPUT,
    "MembersInput": MEMBERS_INPUT,
    "RunInput": RUN_INPUT,
}


def _ref(name: str) -> S:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: S, description: str = "OK") -> S:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _page(item: str) -> S:
    return {
        "type": "object",
        "required": ["items", "next_cursor"],
        "properties": {"items": {"type": "array", "items": _ref(item)}, "next_cursor": _nullable("string")},
    }


ERR = {
    "400": _json(_ref("Error"), "Invalid request"),
    "401": _json(_ref("Error"), "Missing or wrong bearer token"),
}
NOT_FOUND = {"404": _json(_ref("Error"), "Not found")}


def _body(name: str) -> S:
    return {"required": True, "content": {"application/json": {"schema": _ref(name)}}}


def _id(name: str) -> S:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}


def _q(name: str, type_: str = "string", **kw: Any) -> S:
    return {"name": name, "in": "query", "required": False, "schema": {"type": type_, **kw}}


PAGING = [_q("cursor"), _q("limit", "integer", minimum=1, maximum=500)]


def _op(
    summary: str, responses: S, *, params: list[S] | None = None, body: str | None = None, op_id: str
) -> S:
    op: S = {"summary": summary, "operationId": op_id, "responses": {**responses, **ERR}}
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = _body(body)
    return op


def document() -> S:
    """The OpenAPI 3.1 document."""
    paths: S = {
        "/contacts": {
            "get": _op(
                "Search contacts (email/name prefix), newest first",
                {"200": _json(_page("Contact"))},
                params=[_q("q"), _q("status"), _q("list", "integer"), _q("company", "integer"), *PAGING],
                op_id="listContacts",
            ),
            "post": _op(
                "Create a contact",
                {"201": _json(_ref("Contact"), "Created"), "409": _json(_ref("Error"), "Email already used")},
                body="ContactInput",
                op_id="createContact",
            ),
        },
        "/contacts/upsert": {
            "post": _op(
                "Create or update a contact by email",
                {"200": _json(_ref("Contact"), "Updated"), "201": _json(_ref("Contact"), "Created")},
                body="ContactUpsert",
                op_id="upsertContact",
            ),
        },
        "/contacts/{contact_id}": {
            "parameters": [_id("contact_id")],
            "get": _op("Get a contact", {"200": _json(_ref("Contact")), **NOT_FOUND}, op_id="getContact"),
            "patch": _op(
                "Update a contact",
                {
                    "200": _json(_ref("Contact")),
                    **NOT_FOUND,
                    "409": _json(_ref("Error"), "Email already used"),
                },
                body="ContactInput",
                op_id="updateContact",
            ),
            "delete": _op(
                "Delete a contact (the delete policy decides what the CRMs do)",
                {"204": {"description": "Deleted"}, **NOT_FOUND},
                op_id="deleteContact",
            ),
        },
        "/companies": {
            "get": _op(
                "Search companies by name prefix",
                {"200": _json(_page("Company"))},
                params=[_q("q"), *PAGING],
                op_id="listCompanies",
            ),
            "post": _op(
                "Create a company",
                {"201": _json(_ref("Company"), "Created")},
                body="CompanyInput",
                op_id="createCompany",
            ),
        },
        "/companies/{company_id}": {
            "parameters": [_id("company_id")],
            "get": _op("Get a company", {"200": _json(_ref("Company")), **NOT_FOUND}, op_id="getCompany"),
            "patch": _op(
                "Update a company",
                {"200": _json(_ref("Company")), **NOT_FOUND},
                body="CompanyInput",
                op_id="updateCompany",
            ),
            "delete": _op(
                "Delete a company", {"204": {"description": "Deleted"}, **NOT_FOUND}, op_id="deleteCompany"
            ),
        },
        "/lists": {
            "get": _op(
                "All lists", {"200": _json({"type": "array", "items": _ref("List")})}, op_id="listLists"
            ),
            "post": _op(
                "Create a list",
                {"201": _json(_ref("List"), "Created"), "409": _json(_ref("Error"), "Name already used")},
                body="ListInput",
                op_id="createList",
            ),
        },
        "/lists/{list_id}": {
            "parameters": [_id("list_id")],
            "get": _op("Get a list", {"200": _json(_ref("List")), **NOT_FOUND}, op_id="getList"),
        },
        "/lists/{list_id}/members": {
            "parameters": [_id("list_id")],
            "get": _op(
                "A list's members",
                {"200": _json(_page("Member")), **NOT_FOUND},
                params=PAGING,
                op_id="listMembers",
            ),
            "post": _op(
                "Add contacts to a list",
                {"200": _json(_ref("List")), **NOT_FOUND},
                body="MembersInput",
                op_id="addMembers",
            ),
        },
        "/lists/{list_id}/members/{contact_id}": {
            "parameters": [_id("list_id"), _id("contact_id")],
            "delete": _op(
                "Remove a contact from a list",
                {"204": {"description": "Removed"}, **NOT_FOUND},
                op_id="removeMember",
            ),
        },
        "/connections": {
            "get": _op(
                "Connections and their state",
                {"200": _json({"type": "array", "items": _ref("Connection")})},
                op_id="listConnections",
            ),
        },
        "/connections/{connection_id}": {
            "parameters": [_id("connection_id")],
            "get": _op(
                "One connection", {"200": _json(_ref("Connection")), **NOT_FOUND}, op_id="getConnection"
            ),
        },
        "/connections/{connection_id}/runs": {
            "parameters": [_id("connection_id")],
            "post": _op(
                "Start a sync or a dry run in the background",
                {
                    "202": _json(_ref("RunStarted"), "Started"),
                    **NOT_FOUND,
                    "409": _json(_ref("Error"), "Connection disabled"),
                    "503": _json(_ref("Error"), "Sync engine unavailable"),
                },
                body="RunInput",
                op_id="startRun",
            ),
        },
        "/runs": {
            "get": _op(
                "Runs, newest first",
                {"200": _json(_page("Run"))},
                params=[_q("connection", "integer"), _q("status"), *PAGING],
                op_id="listRuns",
            ),
        },
        "/runs/{run_id}": {
            "parameters": [_id("run_id")],
            "get": _op("One run with its counts", {"200": _json(_ref("Run")), **NOT_FOUND}, op_id="getRun"),
        },
        "/runs/{run_id}/records": {
            "parameters": [_id("run_id")],
            "get": _op(
                "A run's records",
                {"200": _json(_page("Record")), **NOT_FOUND},
                params=[_q("side", enum=["crm", "hub"]), _q("outcome"), *PAGING],
                op_id="listRecords",
            ),
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "leadbridge API",
            "version": __version__,
            "description": "Contacts, companies, lists, connections and sync runs of a leadbridge hub. "
            "Authenticate with `Authorization: Bearer <token>` (create tokens in "
            "Settings → API tokens).",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
