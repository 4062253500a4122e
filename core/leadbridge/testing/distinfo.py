"""Register a connector as a real installed distribution, without pip.

The host finds connectors only through entry points (``importlib.metadata``), so a test that wants
"an installed connector" must produce the same metadata an installer would. Writing a minimal
``.dist-info`` folder next to the code is exactly that, and it disappears with the folder.
"""

from __future__ import annotations

import re
from pathlib import Path

from .. import PROJECT_NAME


def install_entry_point(
    directory: str | Path, *, dist_name: str, name: str, module: str, version: str = "0.0.0"
) -> Path:
    """Write ``<dist>-<version>.dist-info/`` declaring entry point ``name = module`` in group ``leadbridge``.

    Once ``directory`` (and the folder holding ``module``) is on ``sys.path`` or ``PYTHONPATH``,
    ``importlib.metadata`` reports the distribution and the host loads the connector like any other.
    Call :func:`importlib.invalidate_caches` after changing ``sys.path`` in a running process.

    :param directory: where to write the ``.dist-info`` folder (created when missing).
    :param dist_name: the distribution name (``leadbridge-example``).
    :param name: the entry point name, which must equal the connector's ``ConnectorInfo.name``.
    :param module: the importable module implementing the hooks (``leadbridge_example``).
    :returns: the path of the ``.dist-info`` folder.
    """
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", dist_name):
        raise ValueError(f"invalid distribution name {dist_name!r}")
    # The file-name form of a distribution name (PEP 427/491): runs of -_. become one underscore.
    stem = re.sub(r"[-_.]+", "_", dist_name)
    info = Path(directory) / f"{stem}-{version}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: {version}\n"
        "Summary: registered by leadbridge.testing.install_entry_point\n",
        encoding="utf-8",
    )
    (info / "entry_points.txt").write_text(f"[{PROJECT_NAME}]\n{name} = {module}\n", encoding="utf-8")
    (info / "top_level.txt").write_text(module.split(".")[0] + "\n", encoding="utf-8")
    (info / "INSTALLER").write_text("leadbridge.testing\n", encoding="utf-8")
    return info
