"""The connector test kit: pytest fixtures, the conformance suite and entry-point registration.

* :class:`ConnectorConformance` — subclass it with ``connector = "<name>"`` to run the contract checks.
* :class:`ConnectorHarness` — calls a connection's hooks like the core does, for a connector's own tests.
* :func:`install_entry_point` — make a module an installed connector without pip.
* :func:`temporary_database` — the throw-away database behind the ``leadbridge_database_url`` fixture.

The fixtures themselves (``app``, ``client``, ``sandbox``, ``connection``...) live in
:mod:`leadbridge.testing.plugin`, which pytest loads automatically through the ``pytest11`` entry point.
"""

from __future__ import annotations

from .conformance import ConnectorConformance, ConnectorHarness
from .database import temporary_database
from .distinfo import install_entry_point

__all__ = ["ConnectorConformance", "ConnectorHarness", "install_entry_point", "temporary_database"]
