"""Browser tests: the app as a real HTTP server on loopback, driven by Debian's headless Chromium.

Without ``/usr/bin/chromium`` (or Playwright) the tests skip, unless ``LEADBRIDGE_REQUIRE_BROWSER=1``
(CI) makes that a failure.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

CHROMIUM = os.environ.get("LEADBRIDGE_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def _unavailable(reason: str) -> None:
    if os.environ.get("LEADBRIDGE_REQUIRE_BROWSER"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed")
    if not os.path.exists(CHROMIUM):
        _unavailable(f"{CHROMIUM} not found (apt-get install chromium)")
    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield instance
        instance.close()


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    """``app`` served by werkzeug on 127.0.0.1 (random port) in a thread."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    app.config["HUB_URL"] = url
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield url
    server.shutdown()
    thread.join(10)
    from leadbridge.sync import wait_for_runs

    wait_for_runs(app, timeout=30)


@pytest.fixture
def page(browser: Any, live_server: str) -> Iterator[Any]:
    context = browser.new_context(
        base_url=live_server, viewport={"width": 1360, "height": 860}, accept_downloads=True
    )
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    errors: list[str] = []
    # HTTP error statuses (a refused login answers 401) are expected; script and CSP errors are not.
    tab.on(
        "console",
        lambda msg: (
            errors.append(msg.text)
            if msg.type == "error" and not msg.text.startswith("Failed to load resource")
            else None
        ),
    )
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    context.close()
    # A CSP violation or a script error is a bug even when the flow still passed.
    assert not errors, errors


@pytest.fixture
def shot(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``shot(page, name)``: save a full-page screenshot of a main screen.

    Into docs/screenshots/ when ``LEADBRIDGE_SCREENSHOTS=1`` (to refresh the docs), else into a
    temporary folder, so an ordinary test run leaves the work tree clean.
    """
    import os

    refresh_docs = os.environ.get("LEADBRIDGE_SCREENSHOTS") == "1"
    folder = SCREENSHOTS if refresh_docs else tmp_path_factory.mktemp("shots")

    def save(page: Any, name: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        page.evaluate("window.scrollTo(0, 0)")  # the sticky sidebar would follow an #anchor scroll
        # Full page, cut at 1800 px so long record lists stay readable.
        height = min(1800, int(page.evaluate("document.documentElement.scrollHeight")))
        page.screenshot(
            path=str(folder / f"{name}.png"),
            full_page=True,
            clip={"x": 0, "y": 0, "width": 1360, "height": height},
        )

    return save
