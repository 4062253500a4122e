"""The core's layering: no import cycle among its modules (function-level imports counted), and
importing it does no work (``create_app`` is the only composition root)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import leadbridge

CORE = Path(leadbridge.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(CORE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    """Every core module and the core modules it imports anywhere in its body.

    ``from pkg import sub`` counts as importing ``pkg.sub`` (and ``pkg`` too when a name is not a
    submodule); a parent package imported implicitly is not counted, as Python's own cycle errors
    arise from explicit imports. Migrations are Alembic scripts, not modules of the package.
    """
    modules = {
        _module_name(p): p for p in CORE.rglob("*.py") if "migrations" not in p.relative_to(CORE).parts
    }
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base_parts = name.split(".") if is_package else name.split(".")[:-1]
                    base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                    base = ".".join(base_parts + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules]
                targets = subs + ([base] if len(subs) < len(node.names) else [])
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_graph_sees_function_level_imports() -> None:
    graph = import_graph()
    # tasks.py imports the runner only inside its Celery task function
    assert "leadbridge.sync.runner" in graph["leadbridge.tasks"]
    assert "leadbridge.state" in graph["leadbridge.sync.runner"]
    assert {"leadbridge.sync", "leadbridge.web"} <= graph["leadbridge.app"]


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_among_core_modules() -> None:
    found = cycles(import_graph())
    assert found == [], "import cycles in core/leadbridge:\n" + "\n".join(" -> ".join(c) for c in found)


def test_nothing_imports_the_composition_root() -> None:
    graph = import_graph()
    importers = sorted(m for m, deps in graph.items() if "leadbridge.app" in deps)
    # the CLI builds apps, and the test kit builds them for tests: both are entry points, not layers
    assert set(importers) <= {"leadbridge.cli", "leadbridge.testing.plugin", "leadbridge.testing.database"}


def test_importing_the_core_does_no_work() -> None:
    """Importing every module registers no change-stamp listener and builds no app or executor."""
    script = """
import importlib, pkgutil, leadbridge
from sqlalchemy import event
for info in pkgutil.walk_packages(leadbridge.__path__, "leadbridge."):
    if ".migrations" in info.name or info.name.endswith("testing.plugin"):
        continue
    importlib.import_module(info.name)
from leadbridge.models import Company, Contact
from leadbridge.sync import changes
stamp = changes._stamp_changed_fields
listening = [m.__name__ for m in (Contact, Company) if event.contains(m, "before_update", stamp)]
print("LISTENING", listening)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "LISTENING []" in out.stdout
