"""Test-session setup for the core suite: the example connector becomes an installed connector.

It is registered like a real distribution (a ``.dist-info`` in a temporary folder on ``sys.path``),
exported through ``PYTHONPATH`` so CLI subprocesses find it too, and gone when the session ends, so a
normal ``leadbridge demo`` never sees it. The kit's ``sandbox`` and ``connection`` fixtures use it
(every installed connector stays loaded); a module overrides ``connection_plugin`` or
``leadbridge_connector`` to choose another.
"""

from __future__ import annotations

import importlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
from leadbridge.testing import install_entry_point

pytest_plugins = ["pytester"]  # the kit's own tests run the conformance suite in a subprocess

EXAMPLE_ROOT = Path(__file__).parent / "example_connector"
_DIST_DIR = Path(tempfile.mkdtemp(prefix="leadbridge-example-dist-"))

install_entry_point(
    _DIST_DIR, dist_name="leadbridge-example", name="example", module="leadbridge_example", version="0.1.0"
)
for _path in (str(_DIST_DIR), str(EXAMPLE_ROOT)):
    if _path not in sys.path:
        sys.path.append(_path)
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(_DIST_DIR), str(EXAMPLE_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
)
importlib.invalidate_caches()


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_DIST_DIR, ignore_errors=True)


@pytest.fixture
def connection_plugin(leadbridge_connector: str | None) -> str:
    """``sandbox`` and ``connection`` use the example connector unless a test chose a connector."""
    return leadbridge_connector or "example"
