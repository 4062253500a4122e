"""Small helpers shared by the panel's blueprints."""

from __future__ import annotations

import base64
import re
from datetime import datetime
from typing import Any, TypeVar

from flask import Flask, abort, current_app, request

from .. import clock as clocks
from ..db import db
from ..metadata import ConnectorInfo
from ..models import Connection
from ..plugins import PluginState
from ..state import get_plugins

T = TypeVar("T")


def get_or_404(model: type[T], ident: Any) -> T:
    row = db.session.get(model, ident)
    if row is None:
        abort(404)
    return row


def connection_info(conn: Connection) -> ConnectorInfo | None:
    """The connector metadata of ``conn``, ``None`` when its plugin is not loaded."""
    record = get_plugins().records.get(conn.plugin)
    if record is None or record.state is not PluginState.LOADED:
        return None
    return record.info


def logo_data_url(svg: str | None) -> str | None:
    """A connector's SVG logo as a data URL for an ``<img>``: never inlined as markup, so scripts in it
    cannot run (an image-context SVG is inert)."""
    if not svg or not svg.lstrip().startswith(("<svg", "<?xml")):
        return None
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def like_escape(text: str) -> str:
    """``text`` with LIKE wildcards escaped (use with ``escape="\\"``)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def int_arg(name: str, default: int | None = None) -> int | None:
    value = request.values.get(name, "")
    return int(value) if value.strip().isdigit() else default


def humanize(dt: datetime | None) -> str:
    if dt is None:
        return "—"
    delta = clocks.utcnow() - dt
    seconds = int(delta.total_seconds())
    if seconds < 0:
        return dt.strftime("%Y-%m-%d %H:%M")
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    if seconds < 7 * 86400:
        return f"{seconds // 86400} d ago"
    return dt.strftime("%Y-%m-%d")


def duration(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return "—"
    seconds = max(0, int((end - start).total_seconds()))
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"


OUTCOMES = ("created", "updated", "skipped", "deleted", "failed")


def side_counts(counts: dict[str, dict[str, int]] | None, side: str) -> dict[str, int]:
    got = (counts or {}).get(side) or {}
    return {o: int(got.get(o, 0) or 0) for o in OUTCOMES}


def safe_next(target: str | None) -> str | None:
    """Only same-site relative paths are followed after login (no open redirect)."""
    if target and re.fullmatch(r"/(?![/\\])[^\s]*", target):
        return target
    return None


def register_filters(app: Flask) -> None:
    app.jinja_env.filters["ago"] = humanize
    app.jinja_env.filters["logo"] = logo_data_url
    app.jinja_env.globals["duration"] = duration
    app.jinja_env.globals["side_counts"] = side_counts
    app.jinja_env.globals["OUTCOMES"] = OUTCOMES


def app_config(key: str, default: Any = None) -> Any:
    return current_app.config.get(key, default)
