"""The sync engine as the panel sees it: imported lazily so the app starts even before it is installed.

Every panel action that needs the engine calls :func:`require`; when ``leadbridge.sync`` (or the one
function asked for) is missing, :class:`EngineUnavailable` becomes a clear message in the page.
"""

from __future__ import annotations

import importlib
from typing import Any


class EngineUnavailable(RuntimeError):
    """The sync engine (``leadbridge.sync``) or one of its functions is not available."""


def module() -> Any | None:
    try:
        return importlib.import_module("leadbridge.sync")
    except ImportError:
        return None


def available(name: str | None = None) -> bool:
    mod = module()
    return mod is not None and (name is None or hasattr(mod, name))


def require(name: str) -> Any:
    """The engine function ``name``; :class:`EngineUnavailable` with a readable reason otherwise."""
    mod = module()
    if mod is None:
        raise EngineUnavailable("The sync engine is unavailable (leadbridge.sync is not installed).")
    fn = getattr(mod, name, None)
    if fn is None:
        raise EngineUnavailable(f"The sync engine does not provide {name}() yet.")
    return fn
