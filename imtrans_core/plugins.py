"""Finding and loading plugins with pluggy.

Every plugin, built-in or third-party, is an entry point in the group
``imtrans``. Loading is lazy (the first registry read triggers it) and
forgiving: a plugin that fails to import, or whose ``imtrans_register`` hook
fails (a duplicate name, say), is reported once with its distribution name and
skipped, and whatever it had registered is rolled back.

Switches for people debugging:

``IMTRANS_PLUGINS=a,b``          load only these entry points / distributions
``IMTRANS_DISABLE_PLUGINS=a,b``  never load these
``IMTRANS_TRACE_PLUGINS=1``      print every hook call to stderr
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from types import SimpleNamespace
from typing import Any

import pluggy

from . import hookspecs
from .registry import Registry

log = logging.getLogger("imtrans")

BUILTIN_DIST = "imtrans"


@dataclass(frozen=True)
class PluginSource:
    """Where a loaded plugin came from."""

    name: str  # the entry point's name, used as the plugin's name
    dist: str
    version: str


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that was skipped, and why (one line)."""

    name: str
    dist: str
    error: str

    def message(self) -> str:
        return f"plugin '{self.name}' from distribution '{self.dist}' was skipped: {self.error}"


def _csv_env(var: str) -> set[str]:
    return {item.strip() for item in os.environ.get(var, "").split(",") if item.strip()}


class PluginSystem:
    """The plugin manager together with the registries it fills."""

    def __init__(self, registries: dict[str, Registry]):
        self.registries = registries
        self.pm: pluggy.PluginManager | None = None
        self.sources: dict[str, PluginSource] = {}
        self.failures: list[PluginFailure] = []
        self.skipped: list[str] = []  # entry points kept out by IMTRANS_PLUGINS / IMTRANS_DISABLE_PLUGINS
        self._extra: list[tuple[Any, PluginSource]] = []

    # -- public ---------------------------------------------------------------

    @property
    def manager(self) -> pluggy.PluginManager:
        """The loaded plugin manager (loads plugins on first use)."""
        if self.pm is None:
            self.load()
        assert self.pm is not None
        return self.pm

    @property
    def hook(self) -> Any:
        return self.manager.hook

    def call_each(self, hook_name: str, **kwargs: Any) -> list[Any]:
        """Call one hook plugin by plugin, so that one failing plugin cannot stop the others.

        A failure is logged once as a warning naming the plugin; used for hooks
        whose callers must survive a broken plugin (the CLI, loggers).
        """
        results = []
        for impl in getattr(self.manager.hook, hook_name).get_hookimpls():
            try:
                results.append(impl.function(**{k: kwargs[k] for k in impl.argnames}))
            except Exception as err:
                if os.environ.get("IMTRANS_DEBUG"):
                    raise
                log.warning(f"plugin '{impl.plugin_name}' failed in {hook_name}: {_one_line(err)}")
        return results

    def add_plugin(self, plugin: Any, name: str, dist: str = "__main__", version: str = "") -> None:
        """Register a plugin object by hand (tests, notebooks); before or after loading."""
        source = PluginSource(name, dist, version)
        if self.pm is None:
            self._extra.append((plugin, source))
        else:
            self._register_plugin(plugin, source)

    def load(self, entry_points: Iterable[metadata.EntryPoint] | None = None) -> None:
        """Load the entry points of group ``imtrans`` and run their register hooks."""
        for registry in self.registries.values():  # whichever registry asked, load once for all
            registry._loader = None
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        if os.environ.get("IMTRANS_TRACE_PLUGINS"):
            self.pm.trace.root.setwriter(lambda text: sys.stderr.write(text))
            self.pm.enable_tracing()
        for ep in _ordered(entry_points if entry_points is not None else _group_entry_points()):
            self._load_entry_point(ep)
        for plugin, source in self._extra:
            self._register_plugin(plugin, source)
        for failure in self.failures:
            log.warning(failure.message())

    def reset(self) -> None:
        """Forget every loaded plugin and registry entry; the next read loads afresh."""
        self.pm = None
        self.sources.clear()
        self.failures.clear()
        self.skipped.clear()
        self._extra.clear()
        for registry in self.registries.values():
            registry.clear()
            registry._loader = self.load
            registry.skipped = self._skipped

    # -- internals ------------------------------------------------------------

    def _skipped(self) -> list[str]:
        if self.pm is None:
            self.load()
        return list(self.skipped)

    def _load_entry_point(self, ep: metadata.EntryPoint) -> None:
        dist = ep.dist.name if ep.dist is not None else "?"
        version = ep.dist.version if ep.dist is not None else ""
        only, blocked = _csv_env("IMTRANS_PLUGINS"), _csv_env("IMTRANS_DISABLE_PLUGINS")
        if {ep.name, dist} & blocked:
            self.skipped.append(f"plugin '{ep.name}' (IMTRANS_DISABLE_PLUGINS)")
            return
        if only and not {ep.name, dist} & only:
            if dist == "imtrans":  # a built-in: what a core default may need
                self.skipped.append(f"plugin '{ep.name}' (not in IMTRANS_PLUGINS)")
            return
        try:
            plugin = ep.load()
        except Exception as err:  # a broken plugin must not take the CLI down
            self._fail(ep.name, dist, f"import of {ep.value} failed: {_one_line(err)}")
            return
        self._register_plugin(plugin, PluginSource(ep.name, dist, version))

    def _register_plugin(self, plugin: Any, source: PluginSource) -> None:
        assert self.pm is not None
        try:
            self.pm.register(plugin, name=source.name)
            self.pm.check_pending()
        except (ValueError, pluggy.PluginValidationError) as err:
            if self.pm.is_registered(plugin):
                self.pm.unregister(plugin)
            self._fail(source.name, source.dist, _one_line(err))
            return
        impl = next((i for i in self.pm.hook.imtrans_register.get_hookimpls() if i.plugin is plugin), None)
        if impl is not None and not self._run_register(impl, source):
            self.pm.unregister(plugin)
            return
        self.sources[source.name] = source

    def _run_register(self, impl: pluggy.HookImpl, source: PluginSource) -> bool:
        """Run one plugin's register hook with its name as provider; roll back on error."""
        saved = {kind: reg.snapshot() for kind, reg in self.registries.items()}
        namespace = SimpleNamespace(**{reg.plural: reg for reg in self.registries.values()})
        providers = [reg.providing(source.name, source.version) for reg in self.registries.values()]
        try:
            for provider in providers:
                provider.__enter__()
            impl.function(registries=namespace)
            return True
        except Exception as err:
            for kind, snapshot in saved.items():
                self.registries[kind].restore(snapshot)
            self._fail(source.name, source.dist, _one_line(err))
            if os.environ.get("IMTRANS_DEBUG"):
                traceback.print_exc()
            return False
        finally:
            for provider in providers:
                provider.__exit__(None, None, None)

    def _fail(self, name: str, dist: str, error: str) -> None:
        self.failures.append(PluginFailure(name, dist, error))


def _group_entry_points() -> list[metadata.EntryPoint]:
    return list(metadata.entry_points(group=hookspecs.PROJECT))


def _ordered(eps: Iterable[metadata.EntryPoint]) -> list[metadata.EntryPoint]:
    """Built-ins first (so a third party cannot silently shadow them), then by name."""

    def key(ep: metadata.EntryPoint) -> tuple[bool, str, str]:
        dist = ep.dist.name if ep.dist is not None else ""
        return (dist != BUILTIN_DIST, dist, ep.name)

    unique: dict[tuple[str, str], metadata.EntryPoint] = {}
    for ep in eps:  # the same distribution may be seen twice on sys.path
        unique.setdefault((ep.dist.name if ep.dist else "", ep.name), ep)
    return sorted(unique.values(), key=key)


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
