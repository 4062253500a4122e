"""The plugin manager: finds connectors through entry points and calls exactly the one that owns a connection.

Three states, never confused:

* **installed** — a distribution declares an entry point in the ``leadbridge`` group;
* **loaded** — not blocked by config, imported cleanly, valid metadata, compatible with this core
  (otherwise *blocked* or *broken*, with the reason kept for the panel and ``leadbridge plugins``);
* **enabled** — an admin's per-connection decision stored in the database, checked on every call.

One :class:`Plugins` per Flask app (in ``app.extensions["leadbridge.plugins"]``), so tests and
several apps in one process each get their own plugin set.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import metadata as importlib_metadata
from typing import Any

import pluggy
from packaging.utils import canonicalize_name

from . import PROJECT_NAME, __version__, hookspecs
from .connection_view import ConnectionView
from .connector import Connector
from .errors import ConfigError, ConnectionDisabled, NotSupported, PluginError
from .metadata import ConnectorInfo, validate_info
from .types import Direction, HubKind

log = logging.getLogger(__name__)

#: Hooks the host itself calls on a plugin without a connection.
PLUGIN_LEVEL_HOOKS = frozenset({"connector_info", "connector_sandbox"})


class PluginState(StrEnum):
    LOADED = "loaded"
    BROKEN = "broken"
    BLOCKED = "blocked"


@dataclass(slots=True)
class PluginRecord:
    """What the host knows about one installed connector."""

    name: str
    distribution: str | None
    version: str | None
    state: PluginState
    error: str | None = None
    hooks: list[str] = field(default_factory=list)
    info: ConnectorInfo | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "display_name": self.info.display_name if self.info else self.name,
            "distribution": self.distribution,
            "version": self.version,
            "state": self.state.value,
            "hooks": self.hooks,
            "error": self.error,
        }


EnabledCheck = Callable[[int], bool]


class Plugins:
    """Loads connector plugins in isolation and dispatches hook calls to the owning one."""

    def __init__(
        self,
        *,
        allow: Iterable[str] | None = None,
        block: Iterable[str] = (),
        enabled_check: EnabledCheck | None = None,
    ) -> None:
        self.pm = pluggy.PluginManager(PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.allow = set(allow) if allow is not None else None
        self.block = set(block)
        self.records: dict[str, PluginRecord] = {}
        self._enabled_check = enabled_check
        self._callers: dict[tuple[str, str], Any] = {}

    # -- loading ---------------------------------------------------------------------------

    def load_entry_points(self) -> None:
        """Import every installed connector one by one; a failure marks only that plugin broken."""
        by_name: dict[str, list[importlib_metadata.EntryPoint]] = {}
        for entry in importlib_metadata.entry_points(group=PROJECT_NAME):
            by_name.setdefault(entry.name, []).append(entry)
        for name in sorted(by_name):
            ep = by_name[name][0]  # the same distribution may be visible twice on sys.path
            dist = ep.dist
            record = PluginRecord(
                name=ep.name,
                distribution=dist.name if dist else None,
                version=dist.version if dist else None,
                state=PluginState.LOADED,
            )
            self.records[ep.name] = record
            if ep.name in self.block or (self.allow is not None and ep.name not in self.allow):
                record.state = PluginState.BLOCKED
                record.error = "blocked by configuration (LEADBRIDGE_PLUGINS_ALLOW / _BLOCK)"
                self.pm.set_blocked(ep.name)
                continue
            providers = sorted({_provider(e) for e in by_name[name]})
            if len(providers) > 1:
                # Never guess which one an admin meant: the wrong one could write to their CRM.
                listed = ", ".join(providers)
                self._mark_broken(record, f"provided by several distributions ({listed}); keep only one")
                continue
            try:
                module = ep.load()
            except Exception as exc:  # any import-time failure must not take the host down
                self._mark_broken(record, f"import failed: {type(exc).__name__}: {exc}")
                continue
            self.register(module, name=ep.name, record=record)

    def register(self, plugin: object, *, name: str, record: PluginRecord | None = None) -> PluginRecord:
        """Register one plugin object (a module or instance) and validate it; never raises."""
        if record is None:
            record = PluginRecord(name=name, distribution=None, version=None, state=PluginState.LOADED)
            self.records[name] = record
        try:
            self.pm.register(plugin, name=name)
        except Exception as exc:  # ValueError for duplicates, PluginValidationError for bad signatures
            self._mark_broken(record, f"registration failed: {exc}")
            return record
        # A cached subset caller excludes only the plugins known when it was built: rebuild them all.
        self._callers.clear()
        try:
            self._check_pending(plugin)
            info = self._plugin_caller(name, "connector_info")()
            if info is None:
                raise PluginError("does not implement connector_info()")
            record.info = validate_info(info, entry_point_name=name, core_version=__version__)
            if record.version is None:
                record.version = record.info.version
        except Exception as exc:
            self._mark_broken(record, str(exc))
            return record
        record.hooks = sorted(c.name for c in self.pm.get_hookcallers(plugin) or [])
        return record

    def _check_pending(self, plugin: object) -> None:
        """pluggy's check_pending, scoped to one plugin: a misspelled hook name is an error."""
        for caller in self.pm.get_hookcallers(plugin) or []:
            if caller.spec is None:
                for impl in caller.get_hookimpls():
                    if impl.plugin is plugin and not impl.optionalhook:
                        raise PluginError(f"unknown hook {caller.name!r} (misspelled?)")

    def _mark_broken(self, record: PluginRecord, error: str) -> None:
        log.warning("plugin %s is broken: %s", record.name, error)
        record.state = PluginState.BROKEN
        record.error = error
        plugin = self.pm.get_plugin(record.name)
        if plugin is not None:
            self.pm.unregister(plugin, name=record.name)
        self.pm.set_blocked(record.name)
        self._callers.clear()

    # -- queries ---------------------------------------------------------------------------

    def loaded(self) -> dict[str, ConnectorInfo]:
        """Metadata of every loaded connector, by name."""
        return {
            n: r.info for n, r in sorted(self.records.items()) if r.state is PluginState.LOADED and r.info
        }

    def info(self, name: str) -> ConnectorInfo:
        """The metadata of a loaded connector; :class:`PluginError` when it is not loaded."""
        record = self.records.get(name)
        if record is None:
            raise PluginError(f"connector {name!r} is not installed")
        if record.state is not PluginState.LOADED or record.info is None:
            raise PluginError(f"connector {name!r} is {record.state.value}: {record.error}")
        return record.info

    def implements(self, name: str, hook: str) -> bool:
        record = self.records.get(name)
        return bool(record and record.state is PluginState.LOADED and hook in record.hooks)

    # -- dispatch --------------------------------------------------------------------------

    def _plugin_caller(self, name: str, hook: str) -> Callable[..., Any]:
        """A caller of ``hook`` that leaves out every plugin but ``name`` (cached until the next
        registration: pluggy's subset caller would include plugins registered after it was built)."""
        key = (name, hook)
        caller = self._callers.get(key)
        if caller is None:
            others = [p for n, p in self.pm.list_name_plugin() if n != name]
            caller = self.pm.subset_hook_caller(hook, remove_plugins=others)
            self._callers[key] = caller
        return caller

    def call_plugin(self, name: str, hook: str, **kwargs: Any) -> Any:
        """Call a plugin-level hook (``connector_info``, ``connector_sandbox``) on one plugin only."""
        self.info(name)
        if not self.implements(name, hook):
            raise NotSupported(f"{name} does not implement {hook}()")
        return self._plugin_caller(name, hook)(**kwargs)

    def call(self, connection: ConnectionView, hook: str, **kwargs: Any) -> Any:
        """Call ``hook`` on the plugin that owns ``connection``, and on no other plugin.

        Checks, at call time, that the plugin is loaded and the connection is enabled, and raises
        :class:`NotSupported` when the plugin does not implement the hook (instead of returning
        ``None`` silently).
        """
        if hook in PLUGIN_LEVEL_HOOKS:
            raise ValueError(f"{hook} is plugin-level; use call_plugin()")
        self.info(connection.plugin)
        if self._enabled_check is not None and not self._enabled_check(connection.id):
            raise ConnectionDisabled(f"connection {connection.name!r} is disabled")
        if not self.implements(connection.plugin, hook):
            raise NotSupported(f"{connection.plugin} does not implement {hook}()")
        if kwargs.get("object_type") is not None:
            check_object(self.info(connection.plugin), hook, str(kwargs["object_type"]))
        return self._plugin_caller(connection.plugin, hook)(connection=connection, **kwargs)

    def connector(self, connection: ConnectionView) -> Connector:
        """The typed hooks of ``connection``'s connector (what the core calls them through)."""
        return Connector(self, connection)

    def call_optional(self, connection: ConnectionView, hook: str, **kwargs: Any) -> Any:
        """Like :meth:`call` but returns ``None`` when the plugin does not implement ``hook``."""
        if not self.implements(connection.plugin, hook):
            return None
        return self.call(connection, hook, **kwargs)


#: Hooks taking an ``object_type``: the kind of object each accepts and the direction it needs.
OBJECT_HOOKS: dict[str, tuple[HubKind | None, Direction | None]] = {
    "field_types": (None, None),
    "fetch_contacts": (HubKind.CONTACT, Direction.FROM_CRM),
    "upsert_contact": (HubKind.CONTACT, Direction.TO_CRM),
    "delete_contacts": (HubKind.CONTACT, Direction.TO_CRM),
    "fetch_companies": (HubKind.COMPANY, Direction.FROM_CRM),
    "upsert_company": (HubKind.COMPANY, Direction.TO_CRM),
    "fetch_campaign_members": (HubKind.CONTACT, Direction.FROM_CRM),
}


def check_object(info: ConnectorInfo, hook: str, object_type: str) -> None:
    """Refuse an ``object_type`` the connector did not declare, of the wrong kind for ``hook``, or
    one that does not flow the way the hook moves data (the core checks it once, for every connector).

    :raises ConfigError: saying what is wrong; nothing reaches the connector.
    """
    rule = OBJECT_HOOKS.get(hook)
    if rule is None:
        return
    spec = next((o for o in info.objects if o.name == object_type), None)
    if spec is None:
        names = ", ".join(o.name for o in info.objects)
        raise ConfigError(f"{info.display_name} has no object {object_type!r} (it has: {names})")
    kind, flow = rule
    if kind is not None and spec.hub_kind is not kind:
        raise ConfigError(f"{info.display_name} {object_type} is not a {kind.value} object ({hook})")
    if flow is not None and not any(d.includes(flow) for d in spec.directions):
        what = "written to" if flow is Direction.TO_CRM else "read from"
        raise ConfigError(f"{info.display_name} {object_type} records are never {what} {info.display_name}")


def _provider(ep: importlib_metadata.EntryPoint) -> str:
    """The canonical name of the distribution declaring ``ep`` (its target when unknown)."""
    return canonicalize_name(ep.dist.name) if ep.dist else ep.value


def hook_names() -> list[str]:
    """Every hook of the contract, in definition order."""
    return [
        name
        for name, obj in vars(hookspecs).items()
        if callable(obj) and hasattr(obj, f"{PROJECT_NAME}_spec")
    ]
