"""leadbridge: keep a marketing team's contacts in sync with the CRMs its sales team uses.

Plugins import :data:`hookimpl` from here to implement the hooks in :mod:`leadbridge.hookspecs`.
"""

from __future__ import annotations

import pluggy

__version__ = "0.1.0"

#: The project name pluggy markers are built from; also the entry-point group connectors register in.
PROJECT_NAME = "leadbridge"

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

__all__ = ["PROJECT_NAME", "__version__", "hookimpl"]
