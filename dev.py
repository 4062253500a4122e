#!/usr/bin/env python3
"""One-step set-up for a fresh machine that has only Python 3.11+ and pip.

    python3 dev.py demo    # install (first time), then start leadbridge with sandboxes and demo data
    python3 dev.py test    # install (first time), then run the whole test suite

Everything is installed into ./.venv from the lock file (uv.lock) with uv, which is itself
installed into that venv with pip. Extra arguments go to the command (e.g. ``dev.py test -k planmill``).
``test`` runs one pytest-xdist worker per core on machines with more than one (``-n 0`` for one).
Stdlib only, on purpose: it runs before anything is installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
UV_VERSION = "0.13.9"


def run(*args: str | os.PathLike[str], **kw: object) -> None:
    print("+", " ".join(str(a) for a in args), flush=True)
    subprocess.run([str(a) for a in args], check=True, cwd=ROOT, **kw)  # type: ignore[call-overload]


def install() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - this file runs before anything checks the version
        sys.exit("leadbridge needs Python 3.11 or newer")
    if not (BIN / "python").exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    if not (BIN / "uv").exists():
        run(BIN / "python", "-m", "pip", "install", "--quiet", f"uv=={UV_VERSION}")
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(VENV)}
    # --frozen: exactly the versions in uv.lock; every workspace member (core + plugins/*) editable.
    run(BIN / "uv", "sync", "--frozen", "--all-packages", "--quiet", env=env)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"demo", "test", "install"}:
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    install()
    if command == "install":
        return 0
    if command == "demo":
        os.execv(BIN / "leadbridge", [str(BIN / "leadbridge"), "demo", *rest])  # noqa: S606 - fixed argv
    return subprocess.call([str(BIN / "pytest"), *parallel(rest), *rest], cwd=ROOT)


def parallel(args: list[str]) -> list[str]:
    """pytest-xdist options: one worker per core when there is more than one (each worker has its
    own databases and ports), unless the caller chose (``-n N``, ``-p no:xdist``)."""
    cores = os.cpu_count() or 1
    chose = any(a == "-n" or a.startswith(("-n", "--numprocesses")) or a == "no:xdist" for a in args)
    if cores < 2 or chose:
        return []
    return ["-n", str(min(cores, 8)), "--dist", "worksteal"]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
