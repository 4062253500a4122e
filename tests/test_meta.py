"""Meta-tests: the hook reference and the hook tests cannot drift from the contract (datasette's habit)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from leadbridge import docgen
from leadbridge.plugins import hook_names

ROOT = Path(__file__).resolve().parents[1]
HOOKS_MD = ROOT / "docs" / "hooks.md"


def test_hooks_md_is_up_to_date() -> None:
    assert HOOKS_MD.read_text() == docgen.render(), (
        "docs/hooks.md is stale: run `python -m leadbridge.docgen > docs/hooks.md`"
    )


@pytest.mark.parametrize("hook", hook_names())
def test_every_hook_has_a_heading_with_its_exact_signature(hook: str) -> None:
    headings = [line for line in HOOKS_MD.read_text().splitlines() if line.startswith("### ")]
    assert f"### `{docgen.signature(hook)}`" in headings


def test_signature_shows_types_and_firstresult_flag() -> None:
    sig = docgen.signature("upsert_contact")
    assert sig == (
        "upsert_contact(connection: ConnectionView, client: VendorClient, object_type: str, "
        "contacts: Sequence[Contact]) -> list[RecordResult]"
    )
    section = HOOKS_MD.read_text().split(f"### `{sig}`", 1)[1].split("### ", 1)[0]
    assert "*firstresult;" in section
    assert "**Returns**: one result per input" in section


def _hook_test_names() -> set[str]:
    pattern = re.compile(r"^\s*(?:async\s+)?def (test_hook_\w+)\(", re.MULTILINE)
    files = [*(ROOT / "tests").rglob("test_*.py"), *ROOT.glob("plugins/*/tests/**/test_*.py")]
    return {m for f in files for m in pattern.findall(f.read_text())}


@pytest.mark.parametrize("hook", hook_names())
def test_every_hook_has_a_test(hook: str) -> None:
    names = _hook_test_names()
    assert any(n == f"test_hook_{hook}" or n.startswith(f"test_hook_{hook}_") for n in names), (
        f"no test named test_hook_{hook} under tests/ or plugins/*/tests"
    )


@pytest.mark.parametrize("hook", hook_names())
def test_every_hook_has_a_call_site_in_core(hook: str) -> None:
    """A hook the core never calls is a promise nobody keeps (``register_webhooks`` was one).

    Per-connection hooks are called through the typed facade (:class:`leadbridge.connector.Connector`):
    it must wrap the hook by name, and some core module must call that method. Plugin-level hooks
    are called by name (``call_plugin``, the pluggy subset caller).
    """
    core = ROOT / "core" / "leadbridge"
    facade = (core / "connector.py").read_text(encoding="utf-8")
    sources = {
        p: p.read_text(encoding="utf-8")
        for p in core.rglob("*.py")
        if p.name not in ("hookspecs.py", "connector.py") and "testing" not in p.relative_to(core).parts
    }
    by_name = re.compile(rf"""(\.call_plugin|_plugin_caller)\([^;]{{0,160}}?["']{hook}["']""", re.S)
    if any(by_name.search(src) for src in sources.values()):
        return
    wrapped = re.search(rf"""def {hook}\(\s*self[^;]*?["']{hook}["']""", facade, re.S)
    assert wrapped, f"the typed facade (connector.py) does not wrap the {hook} hook"
    method = re.compile(rf"\.{hook}\b")
    callers = [p.name for p, src in sources.items() if method.search(src)]
    assert callers, f"nothing in core/leadbridge calls Connector.{hook}()"


def test_hook_list_matches_the_contract_module() -> None:
    # A helper left in hookspecs.py without the marker would silently vanish from the docs.
    from leadbridge import hookspecs

    public = {
        n
        for n, obj in vars(hookspecs).items()
        if callable(obj) and not n.startswith("_") and getattr(obj, "__module__", "") == hookspecs.__name__
    }
    assert public == set(hook_names())


DOCS = sorted((ROOT / "docs").glob("*.md"))
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
_REPO_PATH = re.compile(r"`((?:core|tests|plugins|docs|bench)/[\w./-]+\.(?:py|md|toml|json))`")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_doc_links_and_paths_exist(doc: Path) -> None:
    text = doc.read_text()
    missing = [
        target for target in _LINK.findall(text) if "://" not in target and not (doc.parent / target).exists()
    ]
    missing += [path for path in _REPO_PATH.findall(text) if not (ROOT / path).exists()]
    assert not missing, f"{doc.name} points at files that do not exist: {missing}"


def test_every_default_config_key_is_documented() -> None:
    source = (ROOT / "core/leadbridge/app.py").read_text()
    defaults = source.split("app.config.from_mapping(", 1)[1].split("\n    )", 1)[0]
    keys = re.findall(r"^\s+([A-Z][A-Z_]+)=", defaults, re.MULTILINE)
    assert len(keys) >= 5
    documented = (ROOT / "docs/configuration.md").read_text()
    assert [k for k in keys if f"`{k}`" not in documented] == []


def test_reference_links_to_the_example_connector_implementations() -> None:
    implemented = docgen.example_hooks()
    assert {"connector_info", "upsert_contact", "handle_webhook"} <= implemented <= set(hook_names())
    text = HOOKS_MD.read_text()
    for hook in implemented:
        assert f"Example: `{hook}` in the [example connector]" in text
