"""``leadbridge demo --no-serve`` in a fresh instance folder, as a real subprocess."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from leadbridge.testing import install_entry_point

BROKEN_DIR = Path(__file__).parent / "broken_plugins"

pytestmark = pytest.mark.slow


def _demo(instance: Path, pythonpath: str | None, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADBRIDGE_") and k != "PYTHONPATH"}
    env["LEADBRIDGE_INSTANCE_PATH"] = str(instance)
    env.update(extra_env)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    leadbridge = str(Path(sys.executable).with_name("leadbridge"))
    done = subprocess.run([leadbridge, "demo", "--no-serve"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def _query(instance: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(instance / "leadbridge.sqlite") as raw:
        return raw.execute(sql).fetchall()


def test_demo_prints_the_admin_password_once_and_seeds_the_hub(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    first = _demo(instance, pythonpath=None)
    match = re.search(r"^Admin login: admin / (\S+)", first.stdout, re.MULTILINE)
    assert match, first.stdout
    password = match.group(1)

    second = _demo(instance, pythonpath=None)
    assert password not in second.stdout + second.stderr
    assert "Admin user exists" in second.stdout
    assert "Admin login" not in second.stdout

    ((stored_hash,),) = _query(instance, "SELECT password_hash FROM user WHERE username = 'admin'")
    assert PasswordHasher().verify(str(stored_hash), password)
    # Demo data, created once (the second run adds nothing).
    assert _query(instance, "SELECT count(*) FROM contact") == [(60,)]
    lists = dict(
        _query(
            instance,
            "SELECT l.name, count(m.contact_id) FROM contact_list l "
            "JOIN list_membership m ON m.list_id = l.id GROUP BY l.name",
        )
    )
    assert lists == {"Newsletter": 30, "Webinar 2026": 12}
    # Demo connections may point at loopback sandboxes: the operator config says so.
    assert "ALLOW_BASE_URL_OVERRIDE = True" in (instance / "leadbridge.cfg").read_text()


def test_demo_connects_the_example_and_survives_a_failing_sandbox(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install_entry_point(site, dist_name="lb-test-bad-sandbox", name="bad_sandbox", module="lb_bad_sandbox")
    install_entry_point(
        site, dist_name="lb-test-broken-import", name="broken_import", module="lb_broken_import"
    )
    # The session's PYTHONPATH (tests/conftest.py) is what makes the example connector visible; being a
    # test-only connector, the demo includes it only when asked to.
    example_path = os.environ.get("PYTHONPATH", "")
    assert "example_connector" in example_path
    instance = tmp_path / "instance"

    done = _demo(
        instance,
        pythonpath=os.pathsep.join([str(site), str(BROKEN_DIR), example_path]),
        LEADBRIDGE_DEMO_TEST_CONNECTORS="true",
    )
    lines = done.stdout.splitlines()
    example = [line for line in lines if line.startswith("ExampleCRM sandbox on http://127.0.0.1:")]
    assert len(example) == 1 and example[0].endswith("'ExampleCRM (demo)': ready"), done.stdout
    assert "Bad Sandbox: sandbox failed to start (RuntimeError: demo data file missing); skipped" in lines
    assert any(line.startswith("broken_import: broken (import failed: RuntimeError") for line in lines)

    rows = _query(
        instance,
        "SELECT plugin, enabled, state, secrets_encrypted IS NOT NULL, options FROM connection "
        "WHERE name = 'ExampleCRM (demo)'",
    )
    assert len(rows) == 1
    plugin, enabled, state, has_secrets, options = rows[0]
    assert (plugin, enabled, state, has_secrets) == ("example", 1, "ok", 1)
    assert '"base_url": "http://127.0.0.1:' in str(options)
    assert _query(instance, "SELECT count(*) FROM connection WHERE plugin = 'bad_sandbox'") == [(0,)]
