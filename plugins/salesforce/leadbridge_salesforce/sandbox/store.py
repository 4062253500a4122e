"""The sandbox org's records and the write rules Salesforce enforces on them."""

from __future__ import annotations

import copy
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from leadbridge import clock as clocks

from .ids import PREFIXES, make_id
from .schema import OBJECTS, RELATIONSHIPS, fields_of
from .soql import SoqlError, parse, parse_dt

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
ID = re.compile(r"^[a-zA-Z0-9]{15}([a-zA-Z0-9]{3})?$")


def sf_time(moment: datetime) -> str:
    """``2025-05-20T20:49:32.000+0000``: how Salesforce writes datetimes."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


class ApiError(Exception):
    """One refused record: ``errors`` are ``{"message", "errorCode", "fields"}`` items."""

    def __init__(
        self, status: int, code: str, message: str, fields: list[str] | None = None, **extra: Any
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error: dict[str, Any] = {"message": message, "errorCode": code, "fields": fields or [], **extra}

    @property
    def code(self) -> str:
        return str(self.error["errorCode"])

    def single(self) -> list[dict[str, Any]]:
        return [self.error]

    def item(self) -> dict[str, Any]:
        """Inside collections: ``statusCode`` instead of ``errorCode``, no duplicate details."""
        return {"statusCode": self.code, "message": self.error["message"], "fields": self.error["fields"]}


Validation = Callable[[str, dict[str, Any]], str | None]


class Store:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.records: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in OBJECTS}
        self.counter = 1000
        self.clock_offset = timedelta()
        self.hidden: dict[str, set[str]] = {}
        self.duplicate_rule = False
        self.duplicate_allow_save = False
        #: what the duplicate rule compares (case-insensitively); the standard rules use Email
        self.duplicate_rule_fields: tuple[str, ...] = ("Email",)
        self.validation_rules: dict[str, Validation] = {}

    # -- time and schema -----------------------------------------------------------------------

    def now(self) -> datetime:
        return clocks.utcnow() + self.clock_offset

    def describe_fields(self, sobject: str) -> list[dict[str, Any]]:
        hidden = self.hidden.get(sobject, set())
        return [f for f in fields_of(sobject) if f["name"] not in hidden]

    def field(self, sobject: str, name: str) -> dict[str, Any] | None:
        for f in self.describe_fields(sobject):
            if f["name"].lower() == name.lower():
                return f
        return None

    def known(self, sobject: str) -> None:
        if sobject not in OBJECTS:
            raise ApiError(
                404, "NOT_FOUND", f"The requested resource does not exist: sObject type '{sobject}'"
            )

    # -- reads ---------------------------------------------------------------------------------

    def get(self, sobject: str, record_id: str, *, deleted: bool = False) -> dict[str, Any] | None:
        rec = self.records.get(sobject, {}).get(self.canonical(record_id))
        if rec is None or (rec["IsDeleted"] and not deleted):
            return None
        return rec

    def canonical(self, record_id: str) -> str:
        if len(record_id) == 15:
            for rid in self._all_ids():
                if rid[:15] == record_id:
                    return rid
        return record_id

    def _all_ids(self) -> list[str]:
        return [rid for recs in self.records.values() for rid in recs]

    def find_any(self, record_id: str) -> tuple[str, dict[str, Any]] | None:
        for sobject, prefix in PREFIXES.items():
            if record_id.startswith(prefix) and sobject in self.records:
                rec = self.get(sobject, record_id)
                return (sobject, rec) if rec else None
        return None

    def resolve(self, sobject: str) -> Callable[[dict[str, Any], str], tuple[Any, str]]:
        def resolve(record: dict[str, Any], path: str) -> tuple[Any, str]:
            if "." in path:
                rel, name = path.split(".", 1)
                key = RELATIONSHIPS.get((sobject, rel))
                if key is None:
                    raise SoqlError("INVALID_FIELD", f"Didn't understand relationship '{rel}' in field path")
                target_id = record.get(key)
                found = self.find_any(str(target_id)) if target_id else None
                target_type = found[0] if found else self._rel_type(sobject, key)
                f = self.field(target_type, name)
                if f is None:
                    raise SoqlError("INVALID_FIELD", f"No such column '{name}' on entity '{target_type}'")
                return (found[1].get(f["name"]) if found else None), f["type"]
            f = self.field(sobject, path)
            if f is None:
                raise SoqlError(
                    "INVALID_FIELD",
                    f"No such column '{path}' on entity '{sobject}'. If you are attempting to use a custom "
                    "field, be sure to append the '__c' after the custom field name.",
                )
            return record.get(f["name"]), f["type"]

        return resolve

    def _rel_type(self, sobject: str, key: str) -> str:
        f = self.field(sobject, key)
        targets = (f or {}).get("referenceTo") or ["Account"]
        return str(targets[0])

    def run_query(self, text: str, *, include_deleted: bool) -> list[dict[str, Any]]:
        query = parse(text)
        if query.sobject not in OBJECTS:
            raise SoqlError("INVALID_TYPE", f"sObject type '{query.sobject}' is not supported.")
        resolve = self.resolve(query.sobject)
        dummy: dict[str, Any] = {}
        for name in query.fields + [o[0] for o in query.order]:
            resolve(dummy, name)  # unknown fields fail even when no row matches
        self._check_where(query.where, resolve)
        with self.lock:
            rows = [r for r in self.records[query.sobject].values() if include_deleted or not r["IsDeleted"]]
            rows = [r for r in rows if _matches(query.where, r, resolve)]
            for name, desc, nulls_last in reversed(query.order):
                rows.sort(key=partial(_row_key, resolve, name), reverse=desc)
                present = [r for r in rows if resolve(r, name)[0] is not None]
                absent = [r for r in rows if resolve(r, name)[0] is None]
                rows = present + absent if nulls_last else absent + present
            rows = rows[query.offset :]
            if query.limit is not None:
                rows = rows[: query.limit]
            return [self.shape(query.sobject, r, query.fields, resolve) for r in rows]

    def _check_where(self, node: Any, resolve: Callable[[dict[str, Any], str], tuple[Any, str]]) -> None:
        if node is None:
            return
        if node[0] in ("and", "or"):
            self._check_where(node[1], resolve)
            self._check_where(node[2], resolve)
        elif node[0] == "not":
            self._check_where(node[1], resolve)
        else:
            resolve({}, node[1])

    def shape(
        self,
        sobject: str,
        record: dict[str, Any],
        fields: list[str],
        resolve: Callable[[dict[str, Any], str], tuple[Any, str]],
    ) -> dict[str, Any]:
        out: dict[str, Any] = {"attributes": self.attributes(sobject, record["Id"])}
        for path in fields:
            if "." in path:
                rel, name = path.split(".", 1)
                key = RELATIONSHIPS[(sobject, rel)]
                found = self.find_any(str(record.get(key))) if record.get(key) else None
                if found is None:
                    out[rel] = None
                    continue
                nested = out.get(rel) or {"attributes": self.attributes(found[0], found[1]["Id"])}
                f = self.field(found[0], name)
                nested[f["name"] if f else name] = found[1].get(f["name"] if f else name)
                out[rel] = nested
            else:
                f = self.field(sobject, path)
                assert f is not None
                out[f["name"]] = record.get(f["name"])
        return out

    @staticmethod
    def attributes(sobject: str, record_id: str, version: str = "66.0") -> dict[str, str]:
        return {"type": sobject, "url": f"/services/data/v{version}/sobjects/{sobject}/{record_id}"}

    # -- writes --------------------------------------------------------------------------------

    def new_id(self, sobject: str) -> str:
        self.counter += 1
        return make_id(sobject, self.counter)

    def save(
        self,
        sobject: str,
        body: dict[str, Any],
        record_id: str | None = None,
        *,
        allow_duplicates: bool = False,
    ) -> tuple[str, bool]:
        """Create (no ``record_id``) or update; return ``(id, created)`` or raise :class:`ApiError`."""
        with self.lock:
            self.known(sobject)
            values = {k: v for k, v in body.items() if k not in ("attributes", "Id")}
            existing = None
            if record_id is not None:
                if not ID.match(record_id):
                    raise ApiError(
                        400, "MALFORMED_ID", f"{sobject} ID: id value of incorrect type: {record_id}", ["Id"]
                    )
                deleted = self.get(sobject, record_id, deleted=True)
                if deleted is not None and deleted["IsDeleted"]:
                    raise ApiError(400, "ENTITY_IS_DELETED", "entity is deleted")
                existing = self.get(sobject, record_id)
                if existing is None:
                    raise ApiError(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
            clean = self._check_fields(sobject, values, creating=existing is None)
            if existing is not None and sobject == "Lead" and existing.get("IsConverted"):
                raise ApiError(400, "CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead")
            merged = {**(existing or {}), **clean}
            missing = [n for n in OBJECTS[sobject]["required"] if merged.get(n) in (None, "")]
            if missing:
                raise ApiError(
                    400,
                    "REQUIRED_FIELD_MISSING",
                    f"Required fields are missing: [{', '.join(missing)}]",
                    missing,
                )
            self._check_references(sobject, merged)
            self._check_unique(sobject, merged, existing)
            if sobject in self.validation_rules:
                problem = self.validation_rules[sobject](sobject, merged)
                if problem:
                    raise ApiError(400, "FIELD_CUSTOM_VALIDATION_EXCEPTION", problem)
            if existing is None and self.duplicate_rule and not allow_duplicates:
                self._check_duplicate_rule(sobject, merged)
            stamp = sf_time(self.now())
            if existing is None:
                new_id = self.new_id(sobject)
                record = self._defaults(sobject)
                record.update(clean)
                record.update(
                    {
                        "Id": new_id,
                        "CreatedDate": stamp,
                        "LastModifiedDate": stamp,
                        "SystemModstamp": stamp,
                        "IsDeleted": False,
                    }
                )
                self.records[sobject][new_id] = record
                return new_id, True
            existing.update(clean)
            existing["LastModifiedDate"] = existing["SystemModstamp"] = stamp
            return existing["Id"], False

    def _defaults(self, sobject: str) -> dict[str, Any]:
        record: dict[str, Any] = {}
        for f in fields_of(sobject):
            if f["type"] == "boolean":
                record[f["name"]] = False
            elif f["type"] == "picklist" and f["defaultedOnCreate"] and f["picklistValues"]:
                record[f["name"]] = (
                    f["picklistValues"][0]["value"]
                    if f["name"] != "Status" or sobject != "Task"
                    else "Not Started"
                )
            else:
                record[f["name"]] = None
        if sobject == "Task":
            record["Priority"] = "Normal"
        return record

    def _check_fields(self, sobject: str, values: dict[str, Any], *, creating: bool) -> dict[str, Any]:
        clean: dict[str, Any] = {}
        for name, value in values.items():
            f = self.field(sobject, name)
            if f is None:
                raise ApiError(
                    400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {sobject}", [name]
                )
            if not (f["createable"] if creating else f["updateable"]):
                verb = "create" if creating else "update"
                raise ApiError(
                    400,
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to {verb} fields: {f['name']}. "
                    "Please check the security settings of this field and verify that it is read/write "
                    "for your profile or permission set.",
                    [f["name"]],
                )
            value = self._check_value(sobject, f, value)
            clean[f["name"]] = value
        return clean

    def _check_value(self, sobject: str, f: dict[str, Any], value: Any) -> Any:
        name, kind = f["name"], f["type"]
        if value is None or value == "":
            return None
        if kind == "boolean":
            if not isinstance(value, bool):
                raise ApiError(
                    400, "JSON_PARSER_ERROR", f"Cannot deserialize instance of boolean from {value!r}", [name]
                )
            return value
        if kind in ("int", "double", "currency", "percent"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                try:
                    value = float(value) if kind != "int" else int(value)
                except (TypeError, ValueError):
                    raise ApiError(
                        400, "JSON_PARSER_ERROR", f"Cannot deserialize {value!r} as a number", [name]
                    ) from None
            return value
        if kind == "date":
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(value)):
                raise ApiError(
                    400, "JSON_PARSER_ERROR", f"Cannot deserialize date from value {value!r}", [name]
                )
            return str(value)
        if kind == "datetime":
            try:
                return sf_time(parse_dt(str(value)))
            except ValueError:
                raise ApiError(
                    400, "JSON_PARSER_ERROR", f"Cannot deserialize datetime from {value!r}", [name]
                ) from None
        if not isinstance(value, str):
            raise ApiError(
                400, "JSON_PARSER_ERROR", f"Cannot deserialize instance of string from {value!r}", [name]
            )
        if kind == "email" and not EMAIL.match(value):
            raise ApiError(
                400, "INVALID_EMAIL_ADDRESS", f"{f['label']}: invalid email address: {value}", [name]
            )
        if f["length"] and len(value) > f["length"]:
            raise ApiError(
                400,
                "STRING_TOO_LONG",
                f"{f['label']}: data value too large: {value[:40]} (max length={f['length']})",
                [name],
            )
        if kind == "picklist" and f["restrictedPicklist"]:
            allowed = {p["value"] for p in f["picklistValues"]}
            if value not in allowed:
                raise ApiError(
                    400,
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    f"{f['label']}: bad value for restricted picklist field: {value}",
                    [name],
                )
        return value

    def _check_references(self, sobject: str, merged: dict[str, Any]) -> None:
        for f in self.describe_fields(sobject):
            if f["type"] != "reference" or not merged.get(f["name"]) or not f["createable"]:
                continue
            rid = str(merged[f["name"]])
            if not ID.match(rid):
                raise ApiError(
                    400, "MALFORMED_ID", f"{f['label']}: id value of incorrect type: {rid}", [f["name"]]
                )
            found = self.find_any(rid)
            if found is None:
                raise ApiError(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [f["name"]])
            if found[0] not in f["referenceTo"]:
                raise ApiError(
                    400,
                    "FIELD_INTEGRITY_EXCEPTION",
                    f"{f['label']} ID: id value of incorrect type: {rid}",
                    [f["name"]],
                )
        if sobject == "Task" and str(merged.get("WhoId") or "").startswith("00Q") and merged.get("WhatId"):
            raise ApiError(
                400,
                "FIELD_INTEGRITY_EXCEPTION",
                "Related To ID: You can't associate a lead with another record.",
                ["WhatId"],
            )
        if sobject == "CampaignMember" and not (merged.get("LeadId") or merged.get("ContactId")):
            raise ApiError(
                400,
                "REQUIRED_FIELD_MISSING",
                "Required fields are missing: [LeadId or ContactId]",
                ["LeadId", "ContactId"],
            )

    def _check_unique(self, sobject: str, merged: dict[str, Any], existing: dict[str, Any] | None) -> None:
        def others() -> list[dict[str, Any]]:
            return [r for r in self.records[sobject].values() if not r["IsDeleted"] and r is not existing]

        for f in fields_of(sobject):
            if f["unique"] and merged.get(f["name"]):
                value = str(merged[f["name"]]).lower()
                clash = next((r for r in others() if str(r.get(f["name"]) or "").lower() == value), None)
                if clash is not None:
                    raise ApiError(
                        400,
                        "DUPLICATE_VALUE",
                        f"duplicate value found: {f['name']} duplicates value "
                        f"on record with id: {clash['Id']}",
                        [f["name"]],
                    )
        if sobject == "CampaignMember":
            person = merged.get("LeadId") or merged.get("ContactId")
            for r in others():
                if (
                    r["CampaignId"] == merged.get("CampaignId")
                    and (r.get("LeadId") or r.get("ContactId")) == person
                ):
                    raise ApiError(400, "DUPLICATE_VALUE", "Already a campaign member.")

    def _check_duplicate_rule(self, sobject: str, merged: dict[str, Any]) -> None:
        """The standard duplicate rules: a Lead or Contact whose email another Lead/Contact has."""
        fields = self.duplicate_rule_fields
        if sobject not in ("Lead", "Contact") or not all(merged.get(f) for f in fields):
            return
        wanted = [str(merged[f]).lower() for f in fields]
        matches = [
            (kind, r)
            for kind in ("Contact", "Lead")
            for r in self.records[kind].values()
            if not r["IsDeleted"]
            and [str(r.get(f) or "").lower() for f in fields] == wanted
            and not (kind == "Lead" and r.get("IsConverted"))
        ]
        if not matches:
            return
        result = {
            "allowSave": self.duplicate_allow_save,
            "duplicateRule": f"Standard_{sobject}_Duplicate_Rule",
            "duplicateRuleEntityType": sobject,
            "errorMessage": "Use one of these records?",
            "matchResults": [
                {
                    "entityType": kind,
                    "errors": [],
                    "matchEngine": "ExactMatchEngine",
                    "matchRecords": [
                        {
                            "additionalInformation": [],
                            "fieldDiffs": [],
                            "matchConfidence": 100.0,
                            "record": {"attributes": self.attributes(kind, r["Id"]), "Id": r["Id"]},
                        }
                    ],
                    "rule": f"Standard_{kind}_Match_Rule_v1_1",
                    "size": 1,
                    "success": True,
                }
                for kind, r in matches
            ],
        }
        # Real answers spell the key "duplicateResut".
        raise ApiError(400, "DUPLICATES_DETECTED", "Use one of these records?", duplicateResut=result)

    def delete(self, sobject: str, record_id: str) -> None:
        with self.lock:
            if not ID.match(record_id):
                raise ApiError(400, "MALFORMED_ID", f"malformed id {record_id}")
            rec = self.get(sobject, record_id, deleted=True)
            if rec is None:
                raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
            if rec["IsDeleted"]:
                raise ApiError(400, "ENTITY_IS_DELETED", "entity is deleted")
            rec["IsDeleted"] = True
            rec["SystemModstamp"] = rec["LastModifiedDate"] = sf_time(self.now())

    def snapshot(self) -> dict[str, dict[str, dict[str, Any]]]:
        with self.lock:
            return copy.deepcopy(self.records)

    def restore(self, records: dict[str, dict[str, dict[str, Any]]]) -> None:
        with self.lock:
            self.records = records

    def convert_lead(self, lead_id: str) -> tuple[str, str]:
        """Lead conversion as the UI does it: a new Account and Contact; the lead turns read-only."""
        with self.lock:
            lead = self.get("Lead", lead_id)
            assert lead is not None and not lead["IsConverted"]
            account_id, _ = self.save("Account", {"Name": lead["Company"]}, allow_duplicates=True)
            contact_id, _ = self.save(
                "Contact",
                {
                    "FirstName": lead.get("FirstName"),
                    "LastName": lead["LastName"],
                    "Email": lead.get("Email"),
                    "AccountId": account_id,
                },
                allow_duplicates=True,
            )
            stamp = sf_time(self.now())
            lead.update(
                {
                    "IsConverted": True,
                    "ConvertedContactId": contact_id,
                    "ConvertedAccountId": account_id,
                    "Status": "Closed - Converted",
                    "SystemModstamp": stamp,
                    "LastModifiedDate": stamp,
                }
            )
            return contact_id, account_id


def _matches(
    node: Any, record: dict[str, Any], resolve: Callable[[dict[str, Any], str], tuple[Any, str]]
) -> bool:
    from .soql import matches

    return matches(node, record, resolve)


def _row_key(
    resolve: Callable[[dict[str, Any], str], tuple[Any, str]], name: str, row: dict[str, Any]
) -> Any:
    return _sort_key(resolve(row, name))


def _sort_key(pair: tuple[Any, str]) -> Any:
    value, kind = pair
    if value is None:
        return (0, "")
    if kind == "datetime":
        return (1, parse_dt(value).timestamp())
    if isinstance(value, bool | int | float):
        return (1, float(value))
    return (1, str(value).lower())
