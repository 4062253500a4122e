"""The sync engine: pull, push, both; explicit sends and imports; run logs and their CSV export.

Public API (other parts of leadbridge code against these names):

* :func:`run_sync` — one sync of a connection now (synchronous); :func:`start_run` — in the background.
* :func:`send_contacts` — "Send to <connector>"; :func:`import_campaign` — "Import from <connector>";
  :func:`start_send`, :func:`start_import` — the same, queued for the app's executor.
* :func:`export_run_csv` — a run's records as spreadsheet-safe CSV.
* :func:`notify_contacts_changed` — debounced push after a form or API change.
* :func:`default_mappings`, :func:`validate_mapping` — field mappings from presets / checked when saved.
* :func:`accept_webhook` — verify a delivery and keep its events for a background run
  (``POST /webhooks/<connection id>``); :func:`receive_webhook` — the same, applied at once.
"""

from __future__ import annotations

from flask import Flask

from ..state import EXECUTOR_KEY
from . import changes
from .actions import import_campaign, send_contacts, start_import, start_send
from .executors import choose_executor
from .export import export_run_csv, export_runs_csv
from .mappings import default_mappings, validate_mapping
from .notify import notify_contacts_changed
from .runner import execute, resolve_connection, run_sync, start_run, wait_for_runs
from .webhooks import accept_webhook, receive_webhook


def init_app(app: Flask) -> None:
    """Wire the engine into ``app``: its run executor, and the per-field change stamps on hub
    records, so every write through this app (panel, API, forms, CLI) feeds newest-wins merges."""
    changes.install()
    app.extensions[EXECUTOR_KEY] = choose_executor(app)


__all__ = [
    "accept_webhook",
    "default_mappings",
    "execute",
    "export_run_csv",
    "export_runs_csv",
    "import_campaign",
    "init_app",
    "notify_contacts_changed",
    "receive_webhook",
    "resolve_connection",
    "run_sync",
    "send_contacts",
    "start_import",
    "start_run",
    "start_send",
    "validate_mapping",
    "wait_for_runs",
]
