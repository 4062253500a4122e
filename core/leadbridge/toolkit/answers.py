"""Reading vendors' answers: JSON bodies, and the message and code inside an error body.

Vendors wrap errors in their own envelopes (``{"error": {"message": …}}``, ``[{"errorCode": …}]``,
``{"errors": [{"error_message": …}]}``); a connector's ``classify_error`` names where its vendor
puts them and gets both back, never an exception from a body that is not JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import requests

from ..errors import TransientError
from ..http.redact import known_secrets, redact_text

MAX_MESSAGE = 300


def json_body(response: requests.Response) -> Any:
    """The answer's JSON. A success answer that is not JSON (a proxy's HTML page, a truncated
    body) is a transient failure: the vendor did not say what it did."""
    try:
        return response.json()
    except ValueError:
        where = urlsplit(response.request.url or "").path
        raise TransientError(
            f"{response.request.method} {where} answered with something that is not JSON"
        ) from None


def error_body(response: requests.Response) -> Any:
    """The error answer's JSON, or ``None`` when it is not JSON (an HTML error page)."""
    try:
        return response.json()
    except ValueError:
        return None


def dig(body: Any, path: Sequence[str | int]) -> Any:
    """``body[path[0]][path[1]]…``, ``None`` as soon as a step is missing (lists take an index)."""
    for step in path:
        if isinstance(step, int) and isinstance(body, list):
            body = body[step] if -len(body) <= step < len(body) else None
        elif isinstance(step, str) and isinstance(body, dict):
            body = body.get(step)
        else:
            return None
    return body


def error_parts(
    response: requests.Response,
    *,
    message: Sequence[Sequence[str | int]] = (("message",), ("error",), ("error_description",)),
    code: Sequence[Sequence[str | int]] = (("code",), ("errorCode",), ("error",)),
) -> tuple[str, str | None]:
    """The ``(message, code)`` of an error answer: the first of the ``message`` / ``code`` paths
    that holds a value. The message falls back to the body's first characters, redacted, and is
    cut at :data:`MAX_MESSAGE` (vendors echo the request; secrets never reach a log)."""
    body = error_body(response)
    found_message = next((v for p in message if isinstance(v := dig(body, p), str | int) and v != ""), None)
    found_code = next((v for p in code if isinstance(v := dig(body, p), str | int) and v != ""), None)
    text = str(found_message) if found_message is not None else response.text.strip()
    text = redact_text(text[:MAX_MESSAGE], known_secrets.snapshot()) or f"HTTP {response.status_code}"
    return text, str(found_code) if found_code is not None else None
