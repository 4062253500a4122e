"""Explicit operations: "Send to <connector>" and "Import from <connector>".

Each comes in two forms: ``send_contacts``/``import_campaign`` run now and return the finished run
(CLI, API, tests); ``start_send``/``start_import`` queue the run and hand it to the app's executor,
returning its id at once (the panel, which then shows the run's progress from the database).
"""

from __future__ import annotations

from typing import Any

from ..db import db
from ..models import SyncRun
from ..state import get_executor
from .runner import create_run, execute


def send_contacts(
    connection_id: int, contact_ids: list[int], *, trigger: str = "send", with_action: bool = True
) -> SyncRun:
    """Push exactly these contacts now: company first, then contact, then an action.

    Each company is upserted once per run; the action (titled by the connector's ``action_title``
    setting, placeholders filled by the core) is created when ``with_action`` and the connector
    implements ``create_action``. One contact's failure never stops the others. Unchanged contacts
    cost no write but still get their action.
    """
    return execute(_queue_send(connection_id, contact_ids, trigger=trigger, with_action=with_action))


def start_send(
    connection_id: int, contact_ids: list[int], *, trigger: str = "send", with_action: bool = True
) -> int:
    """Queue :func:`send_contacts` for the executor; returns the run id."""
    run_id = _queue_send(connection_id, contact_ids, trigger=trigger, with_action=with_action)
    get_executor().submit(run_id)
    return run_id


def import_campaign(
    connection_id: int, *, list_id: int, campaign_id: str, status: str, object_type: str | None = None
) -> SyncRun:
    """Import a vendor campaign's members into hub list ``list_id`` with membership ``status``.

    Members without email are skipped (reason "no email"); the others are matched (link, then
    email), created or updated, and added to the list.
    """
    return execute(_queue_import(connection_id, list_id, campaign_id, status, object_type))


def start_import(
    connection_id: int, *, list_id: int, campaign_id: str, status: str, object_type: str | None = None
) -> int:
    """Queue :func:`import_campaign` for the executor; returns the run id."""
    run_id = _queue_import(connection_id, list_id, campaign_id, status, object_type)
    get_executor().submit(run_id)
    return run_id


def _queue_send(connection_id: int, contact_ids: list[int], *, trigger: str, with_action: bool) -> int:
    ids = [int(i) for i in contact_ids]
    return _queue(
        connection_id, trigger, "to_crm", {"mode": "send", "contact_ids": ids, "with_action": with_action}
    )


def _queue_import(
    connection_id: int, list_id: int, campaign_id: str, status: str, object_type: str | None
) -> int:
    details = {
        "mode": "import",
        "list_id": list_id,
        "campaign_id": campaign_id,
        "status": status,
        "object_type": object_type,
    }
    return _queue(connection_id, "import", "from_crm", details)


def _queue(connection_id: int, trigger: str, direction: str, details: dict[str, Any]) -> int:
    run = create_run(connection_id, trigger=trigger, direction=direction, details=details)
    db.session.commit()
    return run.id
