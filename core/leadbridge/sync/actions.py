"""Explicit operations: "Send to <connector>" and "Import from <connector>"."""

from __future__ import annotations

from ..db import db
from ..models import SyncRun
from .runner import create_run, execute


def send_contacts(
    connection_id: int, contact_ids: list[int], *, trigger: str = "send", with_action: bool = True
) -> SyncRun:
    """Push exactly these contacts now: company first, then contact, then an action.

    Each company is upserted once per run; the action (titled by the connector's ``action_title``
    setting, ``{company}`` replaced) is created when ``with_action`` and the connector implements
    ``create_action``. One contact's failure never stops the others. Unchanged contacts cost no
    write but still get their action.
    """
    run = create_run(
        connection_id,
        trigger=trigger,
        direction="to_crm",
        details={"mode": "send", "contact_ids": [int(i) for i in contact_ids], "with_action": with_action},
    )
    db.session.commit()
    return execute(run.id)


def import_campaign(
    connection_id: int, *, list_id: int, campaign_id: str, status: str, object_type: str | None = None
) -> SyncRun:
    """Import a vendor campaign's members into hub list ``list_id`` with membership ``status``.

    Members without email are skipped (reason "no email"); the others are matched (link, then
    email), created or updated, and added to the list.
    """
    run = create_run(
        connection_id,
        trigger="import",
        direction="from_crm",
        details={
            "mode": "import",
            "list_id": list_id,
            "campaign_id": campaign_id,
            "status": status,
            "object_type": object_type,
        },
    )
    db.session.commit()
    return execute(run.id)
