"""Helpers the panel tests import (a uniquely named module: ``conftest`` is ambiguous across folders)."""

from __future__ import annotations

import re

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(html: str | bytes) -> str:
    """The CSRF token of a rendered form."""
    text = html.decode() if isinstance(html, bytes) else html
    match = _CSRF.search(text)
    assert match, "no CSRF token in the page"
    return match.group(1)
