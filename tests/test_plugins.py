"""The plugin manager against real entry points: broken, blocked, loaded, enabled, and owner-only dispatch.

Every plugin here is registered the way an installer would (a ``.dist-info`` on ``sys.path`` written by
``install_entry_point``); the plugins themselves live in tests/broken_plugins/.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from leadbridge.app import get_plugins
from leadbridge.cli import main
from leadbridge.connections import client_for, create_connection, view
from leadbridge.db import db
from leadbridge.errors import ConnectionDisabled, NotSupported, PluginError
from leadbridge.metadata import (
    AuthKind,
    ConnectorInfo,
    ObjectSpec,
    RateLimit,
    Setting,
    SettingType,
    validate_info,
)
from leadbridge.models import Connection
from leadbridge.plugins import Plugins, PluginState
from leadbridge.sandbox import SandboxServer
from leadbridge.testing import install_entry_point
from leadbridge.types import Action, Contact, Direction, HubKind, Outcome
from sqlalchemy import update

BROKEN_DIR = Path(__file__).parent / "broken_plugins"
CONTACT = ObjectSpec("contact", "Contacts", HubKind.CONTACT, frozenset({Direction.BOTH}))


def valid_info(**overrides: Any) -> ConnectorInfo:
    """Metadata that passes validation, unless ``overrides`` break it."""
    values: dict[str, Any] = {
        "name": "valid",
        "display_name": "Valid",
        "description": "",
        "version": "1.0",
        "auth_kind": AuthKind.NONE,
        "settings": (),
        "objects": (CONTACT,),
    }
    return ConnectorInfo(**{**values, **overrides})


#: entry point name -> module in tests/broken_plugins
TEST_PLUGINS = {
    "broken_import": "lb_broken_import",
    "bad_metadata": "lb_bad_metadata",
    "name_mismatch": "lb_name_mismatch",
    "incompatible": "lb_incompatible",
    "misspelled": "lb_misspelled",
    "bad_signature": "lb_bad_signature",
    "recorder": "lb_recorder",
}
BROKEN = {
    "broken_import": "import failed: RuntimeError: vendor SDK missing: cannot import acme_sdk",
    "bad_metadata": "a connector must declare at least one object",
    "name_mismatch": "connector name 'some_other_name' differs from its entry point 'name_mismatch'",
    "incompatible": "needs leadbridge>=99, this is",
    "misspelled": "unknown hook 'upsert_contcat' (misspelled?)",
    "bad_signature": "Argument(s) {'dry_run'} are declared in the hookimpl but can not be found",
}


def install_test_plugins(site: Path) -> None:
    """Write a dist-info for every test plugin into ``site``."""
    for name, module in TEST_PLUGINS.items():
        install_entry_point(site, dist_name=f"lb-test-{name}", name=name, module=module, version="1.2.3")


@pytest.fixture(autouse=True)
def test_plugins_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """All test plugins installed for the test (autouse, so it precedes the ``app`` fixture)."""
    site = tmp_path / "site"
    install_test_plugins(site)
    monkeypatch.syspath_prepend(str(BROKEN_DIR))
    monkeypatch.syspath_prepend(str(site))  # also invalidates importlib's caches
    return site


@pytest.fixture
def recorder() -> Iterator[list[tuple[str, int, Any]]]:
    import lb_recorder  # importable once the fixture above put tests/broken_plugins on sys.path

    lb_recorder.CALLS.clear()
    yield lb_recorder.CALLS
    lb_recorder.CALLS.clear()


def load(**kwargs: Any) -> Plugins:
    plugins = Plugins(**kwargs)
    plugins.load_entry_points()
    return plugins


# -- loading ----------------------------------------------------------------------------------------


def test_import_error_marks_only_that_plugin_broken() -> None:
    plugins = load()
    record = plugins.records["broken_import"]
    assert record.state is PluginState.BROKEN
    assert record.error == BROKEN["broken_import"]
    assert record.distribution == "lb-test-broken_import"
    # The rest keep working.
    assert plugins.records["recorder"].state is PluginState.LOADED
    assert "recorder" in plugins.loaded()
    assert "broken_import" not in plugins.loaded()


@pytest.mark.parametrize("name", sorted(set(BROKEN) - {"broken_import"}))
def test_invalid_plugins_are_broken_with_the_reason(name: str) -> None:
    plugins = load()
    record = plugins.records[name]
    assert record.state is PluginState.BROKEN
    assert record.error is not None and BROKEN[name] in record.error
    assert record.hooks == []
    assert not plugins.implements(name, "connector_info")
    with pytest.raises(PluginError, match="broken"):
        plugins.info(name)
    # Its hooks are gone from the manager: nothing can reach it by accident.
    assert plugins.pm.get_plugin(name) is None
    assert plugins.pm.is_blocked(name)


def test_misspelled_hook_is_not_callable() -> None:
    plugins = load()
    caller = getattr(plugins.pm.hook, "upsert_contcat", None)
    assert caller is None or caller.get_hookimpls() == []


def test_allow_list_blocks_everything_else_without_importing_it() -> None:
    plugins = load(allow=["recorder"])
    assert plugins.records["recorder"].state is PluginState.LOADED
    for name in BROKEN:
        record = plugins.records[name]
        # Blocked wins over broken: a blocked plugin's code is never imported.
        assert record.state is PluginState.BLOCKED, name
        assert record.error is not None and "blocked by configuration" in record.error
    assert list(plugins.loaded()) == ["recorder"]


def test_block_list_blocks_a_working_plugin() -> None:
    plugins = load(block=["recorder"])
    assert plugins.records["recorder"].state is PluginState.BLOCKED
    assert "recorder" not in plugins.loaded()
    with pytest.raises(PluginError, match="blocked"):
        plugins.info("recorder")
    assert plugins.records["broken_import"].state is PluginState.BROKEN


def test_block_list_from_app_config(tmp_path: Path) -> None:
    from leadbridge.app import create_app

    app = create_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.sqlite'}",
            "PLUGINS_BLOCK": "recorder, misspelled",
        }
    )
    records = get_plugins(app).records
    assert records["recorder"].state is PluginState.BLOCKED
    assert records["misspelled"].state is PluginState.BLOCKED
    assert records["broken_import"].state is PluginState.BROKEN


def test_plugin_level_calls_reach_the_named_plugin_whatever_the_load_order() -> None:
    # Regression: a caller cached while loading "bad_metadata" must not answer for plugins loaded later.
    plugins = load()
    loaded = plugins.loaded()
    assert len(loaded) >= 2
    for name in loaded:
        assert plugins.call_plugin(name, "connector_info").name == name


def test_two_distributions_claiming_one_name_are_broken_not_guessed(test_plugins_installed: Path) -> None:
    install_entry_point(
        test_plugins_installed, dist_name="lb-test-recorder-fork", name="recorder", module="lb_recorder"
    )
    plugins = load()
    record = plugins.records["recorder"]
    assert record.state is PluginState.BROKEN
    assert record.error == (
        "provided by several distributions (lb-test-recorder, lb-test-recorder-fork); keep only one"
    )
    assert "recorder" not in plugins.loaded()


def test_one_distribution_visible_twice_loads_once(test_plugins_installed: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    install_entry_point(
        again, dist_name="lb-test-recorder", name="recorder", module="lb_recorder", version="1.2.3"
    )
    sys.path.append(str(again))
    try:
        plugins = load()
    finally:
        sys.path.remove(str(again))
    assert plugins.records["recorder"].state is PluginState.LOADED


@pytest.mark.parametrize(
    "overrides, error",
    [
        ({"display_name": " "}, "display_name must not be empty"),
        ({"objects": (CONTACT, CONTACT)}, "object names must be unique"),
        ({"objects": (replace(CONTACT, batch_size=0),)}, "object 'contact': batch_size must be at least 1"),
        ({"objects": (replace(CONTACT, directions=frozenset()),)}, "object 'contact' declares no direction"),
        ({"settings": (Setting("a", "A"), Setting("a", "A again"))}, "settings names must be unique"),
        ({"settings": (Setting("mode", "Mode", SettingType.CHOICE),)}, "choice setting 'mode' has no"),
        ({"settings": (Setting("host", "Host", pattern="([a-z"),)}, "setting 'host': pattern is not a valid"),
        ({"rate_limits": (RateLimit(0, 1.0),)}, "rate limits must be positive"),
        ({"requires_core": "~~1"}, "requires_core '~~1' is not a version specifier"),
        ({"default_interval_minutes": 0}, "default_interval_minutes must be at least 1"),
        ({"name": "Bad-Name"}, "must match"),
    ],
)
def test_invalid_metadata_is_explained(overrides: dict[str, Any], error: str) -> None:
    info = valid_info(**overrides)
    with pytest.raises(PluginError, match=re.escape(error)):
        validate_info(info, entry_point_name=info.name, core_version="0.1.0")


def test_valid_metadata_passes() -> None:
    info = valid_info()
    assert validate_info(info, entry_point_name="valid", core_version="0.1.0") is info


# -- installed / loaded / enabled -------------------------------------------------------------------


def _recorder_connection(enabled: bool) -> Connection:
    conn = create_connection("recorder", "Recorder", {}, enabled=enabled)
    db.session.commit()
    return conn


def _set_enabled(conn_id: int, enabled: bool) -> None:
    db.session.execute(update(Connection).where(Connection.id == conn_id).values(enabled=enabled))
    db.session.commit()


def test_installed_loaded_and_enabled_are_distinct(app: Flask, recorder: list[Any]) -> None:
    installed = {ep.name for ep in importlib_metadata.entry_points(group="leadbridge")}
    assert set(TEST_PLUGINS) <= installed
    plugins = get_plugins(app)
    assert "recorder" in plugins.loaded()
    assert not set(BROKEN) & set(plugins.loaded())
    with app.app_context():
        conn = _recorder_connection(enabled=False)
        cv = view(conn)
        contact = Contact(email="a@example.com", ref="1")
        with pytest.raises(ConnectionDisabled):
            plugins.call(cv, "upsert_contact", client=None, object_type="contact", contacts=[contact])
        assert recorder == []

        _set_enabled(conn.id, True)  # the same view: enablement is read at call time, not from the view
        results = plugins.call(cv, "upsert_contact", client=None, object_type="contact", contacts=[contact])
        assert [r.outcome for r in results] == [Outcome.CREATED]
        assert recorder == [("upsert_contact", conn.id, ["a@example.com"])]

        _set_enabled(conn.id, False)
        with pytest.raises(ConnectionDisabled):
            plugins.call(cv, "upsert_contact", client=None, object_type="contact", contacts=[contact])
        assert len(recorder) == 1


def test_call_reaches_only_the_owning_plugin(app: Flask, recorder: list[Any]) -> None:
    plugins = get_plugins(app)
    assert {"example", "recorder"} <= set(plugins.loaded()), "the example connector must be installed"
    sandbox = plugins.call_plugin("example", "connector_sandbox")
    with SandboxServer(sandbox) as server, app.app_context():
        settings, secrets = sandbox.connection_settings(server.url)
        example = create_connection(
            "example", "Example", {**settings, **secrets}, enabled=True, options={"base_url": server.url}
        )
        mine = _recorder_connection(enabled=True)
        db.session.commit()

        # The recorder's connection: the example sandbox sees nothing.
        plugins.call(
            view(mine),
            "upsert_contact",
            client=None,
            object_type="contact",
            contacts=[Contact(email="only-recorder@example.com", ref="1")],
        )
        assert recorder == [("upsert_contact", mine.id, ["only-recorder@example.com"])]
        assert sandbox.count_calls() == 0

        # The example's connection: the recorder sees nothing; the sandbox got the contact.
        client = client_for(example)
        results = plugins.call(
            view(example),
            "upsert_contact",
            client=client,
            object_type="contact",
            contacts=[
                Contact(
                    email="only-example@example.com",
                    fields=_required_fields(plugins, example, client),
                    ref="2",
                )
            ],
        )
        assert [r.outcome for r in results] == [Outcome.CREATED], results
        assert sandbox.contact_count() == 1
        assert sandbox.count_calls("POST") >= 1
        assert len(recorder) == 1


def _required_fields(plugins: Plugins, conn: Connection, client: Any) -> dict[str, Any]:
    """Values for the example's required fields other than the email (so the create is accepted)."""
    fields = plugins.call(view(conn), "field_types", client=client, object_type="contact")
    return {f.name: "Test" for f in fields if f.required and f.hub_field != "email"}


def test_not_supported_when_the_owner_lacks_the_hook(app: Flask, recorder: list[Any]) -> None:
    plugins = get_plugins(app)
    with app.app_context():
        cv = view(_recorder_connection(enabled=True))
        action = Action(title="Called", contact=Contact(email="a@example.com", remote_id="rec-0"))
        with pytest.raises(NotSupported, match="recorder does not implement create_action"):
            plugins.call(cv, "create_action", client=None, action=action)
        assert plugins.call_optional(cv, "create_action", client=None, action=action) is None
        with pytest.raises(ValueError, match="plugin-level"):
            plugins.call(cv, "connector_info")
    assert recorder == []


# -- listing ----------------------------------------------------------------------------------------


def test_plugins_json_lists_every_installed_plugin(app: Flask) -> None:
    result = app.test_cli_runner().invoke(main, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    for name, error in BROKEN.items():
        assert rows[name]["state"] == "broken"
        assert error in rows[name]["error"]
        assert rows[name]["distribution"] == f"lb-test-{name}"
        assert rows[name]["version"] == "1.2.3"
    assert app.test_cli_runner().invoke(main, ["plugins", "--check"]).exit_code == 1  # some are broken
    assert rows["recorder"] == {
        "name": "recorder",
        "display_name": "Recorder",
        "distribution": "lb-test-recorder",
        "version": "1.2.3",
        "state": "loaded",
        "hooks": ["api_base_url", "connector_info", "field_types", "upsert_contact"],
        "error": None,
    }


# -- acceptance: a broken plugin shows as broken while the app runs ---------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _leadbridge() -> str:
    return str(Path(sys.executable).with_name("leadbridge"))


@pytest.mark.slow
def test_broken_plugin_shows_as_broken_while_the_app_runs(
    test_plugins_installed: Path, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADBRIDGE_")}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(test_plugins_installed), str(BROKEN_DIR), os.environ.get("PYTHONPATH", "")) if p
    )
    env["LEADBRIDGE_INSTANCE_PATH"] = str(tmp_path / "instance")
    port = _free_port()
    proc = subprocess.Popen(
        [_leadbridge(), "serve", "--no-scheduler", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        health = None
        for _ in range(300):  # wait for the server to listen (bounded; no timing is asserted)
            if proc.poll() is not None:
                pytest.fail(f"leadbridge serve exited with {proc.returncode}:\n{proc.stdout.read()}")  # type: ignore[union-attr]
            try:
                health = requests.get(f"http://127.0.0.1:{port}/health", timeout=5)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        assert health is not None, "the server never answered"
        assert health.status_code == 200
        states = health.json()["plugins"]
        assert states["broken_import"] == "broken"
        assert states["misspelled"] == "broken"
        assert states["recorder"] == "loaded"

        listed = subprocess.run(
            [_leadbridge(), "plugins", "--json"], env=env, capture_output=True, text=True, check=True
        )
        rows = {row["name"]: row for row in json.loads(listed.stdout)}
        assert rows["broken_import"]["state"] == "broken"
        assert rows["broken_import"]["error"] == BROKEN["broken_import"]
        assert rows["recorder"]["state"] == "loaded"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout:
            proc.stdout.close()


def test_the_core_refuses_an_object_the_connector_did_not_declare(app_ctx, connection, sandbox) -> None:
    """``object_type`` is checked once, in ``Plugins.call``: unknown, wrong kind or wrong direction
    never reach the connector (no vendor call is made)."""
    from leadbridge.connections import client_for, view
    from leadbridge.errors import ConfigError
    from leadbridge.state import get_plugins

    plugins, cv, client = get_plugins(), view(connection), client_for(connection)
    sandbox.reset_calls()
    with pytest.raises(ConfigError, match="has no object 'Deal'"):
        plugins.call(cv, "fetch_contacts", client=client, object_type="Deal", since=None, cursor=None)
    with pytest.raises(ConfigError, match="company is not a contact object"):
        plugins.call(cv, "upsert_contact", client=client, object_type="company", contacts=[])
    with pytest.raises(ConfigError, match="contact is not a company object"):
        plugins.call(cv, "fetch_companies", client=client, object_type="contact", since=None, cursor=None)
    assert sandbox.count_calls() == 0
    page = plugins.call(cv, "fetch_contacts", client=client, object_type="contact", since=None, cursor=None)
    assert page is not None
