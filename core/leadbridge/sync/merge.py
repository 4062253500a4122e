"""Three-way field merge between a hub record, a CRM record and what both last agreed on.

``Link.last_values`` holds, per remote field, the value (in the remote field's canonical form) both
sides had after the last sync. Comparing each side with it tells *which side changed*:

* only the CRM changed → pull it (subject to direction and write policy);
* only the hub changed → push it; what did not change is not sent (zero writes when nothing did);
* both changed a two-way field to different values → a conflict, judged by the connection's rule
  (newest per-field change time, or a fixed winner) and logged with both values.

This is also the loop guard: a value the sync wrote is recorded as agreed, so it is never seen as a
change and never bounces back.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .. import clock as clocks
from ..fieldtypes import ConversionError, is_empty, validate
from ..models import Company, Contact
from ..types import WritePolicy
from .hubfields import get_value, set_value
from .mappings import FieldRule, to_hub, to_remote

EMAIL_KEY = "__email__"
COMPANY_KEY = "__company__"
NAME_KEY = "__name__"


def fingerprint(values: dict[str, Any]) -> str:
    """A stable hash of the agreed values (cheap "did anything change" checks and audits)."""
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()


def judge(policy: str, hub_time: datetime | None, crm_time: datetime | None) -> str:
    """Who wins a conflict: ``"hub"`` or ``"crm"``. Ties and unknown times go to the hub."""
    if policy in ("hub", "crm"):
        return policy
    if crm_time is None:
        return "hub"
    if hub_time is None:
        return "crm"
    return "crm" if crm_time > hub_time else "hub"


def hub_change_time(record: Contact | Company, hub_field: str) -> datetime | None:
    stamp = (record.field_changed_at or {}).get(hub_field)
    if stamp:
        parsed = datetime.fromisoformat(stamp)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return record.updated_at


def _safe_remote(rule: FieldRule, value: Any) -> Any:
    try:
        return to_remote(rule, value)
    except ConversionError:
        return None


@dataclass(slots=True)
class PullMerge:
    """The outcome of merging one CRM record into a hub record."""

    diff: dict[str, list[Any]] = field(default_factory=dict)
    last: dict[str, Any] = field(default_factory=dict)
    conflicts: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    changed_at: dict[str, str] = field(default_factory=dict)


def merge_pull(
    rules: list[FieldRule],
    hub: Contact | Company,
    incoming: dict[str, Any],
    last: dict[str, Any],
    *,
    created: bool,
    policy: str,
    remote_time: datetime | None,
    linked: bool = False,
) -> PullMerge:
    """Apply the CRM's changed values to ``hub`` (in place) where direction and write policy allow.

    ``linked``: the record was synced before, so a field missing from ``last`` was agreed empty.
    """
    result = PullMerge(last=dict(last))
    stamp = (remote_time or clocks.utcnow()).isoformat()
    for rule in rules:
        if not rule.pulls() or rule.remote_field not in incoming:
            continue
        rf = rule.remote_field
        try:
            remote_val = validate(incoming[rf], rule.remote_type)
        except ConversionError as exc:
            result.errors.append(f"{rf}: {exc.message}")
            continue
        seen = rf in last or linked
        if seen and last.get(rf) == remote_val:
            continue  # the CRM did not change it
        hub_old = get_value(hub, rule.hub_field)
        hub_as_remote = _safe_remote(rule, hub_old)
        result.last[rf] = remote_val
        if hub_as_remote == remote_val:
            continue  # both sides already agree
        try:
            new_value = to_hub(rule, remote_val)
        except ConversionError as exc:
            result.errors.append(f"{rf}: {exc.message}")
            continue
        if not seen and not created and is_empty(remote_val) and not is_empty(hub_old):
            continue  # first match: a field the CRM never had does not wipe the hub's value (it is pushed)
        if not created and rule.write_policy == WritePolicy.NEVER:
            continue
        if not created and rule.write_policy == WritePolicy.IF_EMPTY and not is_empty(hub_old):
            continue
        hub_changed = not is_empty(hub_old) and (not seen or hub_as_remote != last.get(rf))
        if rule.two_way and not created and hub_changed:
            winner = judge(policy, hub_change_time(hub, rule.hub_field), remote_time)
            if seen:  # a real conflict: both changed since the last sync
                result.conflicts[rule.hub_field] = {"hub": hub_old, "crm": new_value, "winner": winner}
            if winner == "hub":
                continue  # last now holds the CRM value, so the push sends the hub's
        set_value(hub, rule.hub_field, new_value)
        result.diff[rule.hub_field] = [hub_old, new_value]
        result.changed_at[rule.hub_field] = stamp
    return result


def _unknown_options(rule: FieldRule, value: Any) -> list[str]:
    """Options the CRM field does not offer (caught before sending, with advice, not by the vendor)."""
    if not rule.choices or value is None:
        return []
    values = value if isinstance(value, list) else [value]
    return [repr(v) for v in values if str(v) not in rule.choices]


@dataclass(slots=True)
class PushPlan:
    """What one hub record would send to the CRM."""

    fields: dict[str, Any] = field(default_factory=dict)
    diff: dict[str, list[Any]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    #: the code of the first error (``type_mismatch``, ``invalid_option``)
    code: str | None = None

    def agreed(self, last: dict[str, Any]) -> dict[str, Any]:
        merged = dict(last)
        merged.update(self.fields)
        return merged


def plan_push(
    rules: list[FieldRule],
    hub: Contact | Company,
    last: dict[str, Any],
    *,
    create: bool,
    force: bool = False,
    labels: dict[str, str] | None = None,
) -> PushPlan:
    """The fields to send: all writable ones on create, only the hub's changes on update.

    ``force`` sends every mapped field that the write policy allows, changed or not.
    """
    plan = PushPlan()
    for rule in rules:
        if not rule.pushes():
            continue
        rf = rule.remote_field
        try:
            value = to_remote(rule, get_value(hub, rule.hub_field))
        except ConversionError as exc:
            plan.errors.append(f"{rule.hub_field} → {rf}: {exc.message}")
            plan.code = plan.code or "type_mismatch"
            continue
        unknown = _unknown_options(rule, value)
        if unknown:
            plan.errors.append(
                f"{rule.hub_field} → {rf}: {', '.join(unknown)} not an option in the CRM;"
                " extend the value map"
            )
            plan.code = plan.code or "invalid_option"
            continue
        if create:
            if is_empty(value):
                if rule.required:
                    plan.missing.append((labels or {}).get(rf, rf))
                continue
        else:
            if rule.write_policy == WritePolicy.NEVER:
                continue
            if rule.write_policy == WritePolicy.IF_EMPTY and not is_empty(last.get(rf)):
                continue
            if not force and rf in last and last[rf] == value:
                continue  # unchanged since the last sync: not sent
            if not force and rf not in last and is_empty(value):
                continue
        plan.fields[rf] = value
        plan.diff[rule.hub_field] = [last.get(rf), value]
    return plan
