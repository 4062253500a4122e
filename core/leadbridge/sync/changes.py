"""Per-field change times on hub records, for newest-wins conflict resolution.

Every update of a contact or company stamps ``field_changed_at[field]`` with the time of the change,
unless the writer set ``field_changed_at`` itself in the same flush (the sync does, with the CRM's
change time). Registered once, when :mod:`leadbridge.sync` is imported.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy import inspect as sa_inspect

from ..db import utcnow
from ..models import Company, Contact

_UNTRACKED = frozenset({"id", "created_at", "updated_at", "field_changed_at", "email_key", "name_key"})


def _stamp_changed_fields(mapper: Any, connection: Any, target: Contact | Company) -> None:
    state: Any = sa_inspect(target)
    if state.attrs.field_changed_at.history.has_changes():
        return
    now = utcnow().isoformat()
    stamps = dict(target.field_changed_at or {})
    for attr in state.mapper.column_attrs:
        key = attr.key
        if key in _UNTRACKED or not state.attrs[key].history.has_changes():
            continue
        if key == "custom":
            old = (state.attrs.custom.history.deleted or [{}])[0] or {}
            new = target.custom or {}
            for name in set(old) | set(new):
                if old.get(name) != new.get(name):
                    stamps[f"custom.{name}"] = now
            continue
        stamps[key] = now
    target.field_changed_at = stamps


def install() -> None:
    """Register the listeners (idempotent)."""
    for model in (Contact, Company):
        if not event.contains(model, "before_update", _stamp_changed_fields):
            event.listen(model, "before_update", _stamp_changed_fields)
