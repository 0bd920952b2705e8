"""Registries: one object per kind of component, filled by plugins.

Modelled on timm's ``register_model`` / ``create_model`` / ``list_models``, but
with the state in one object per kind (``GENERATORS``, ``LOSSES``, ...). A
factory is a plain function or class whose typed keyword arguments and defaults
*are* its documentation: ``build("resnet9:ngf=32")`` validates the spec against
that signature and calls it.

Plugins add entries from their ``imtrans_register`` hook; the registries ask
the plugin manager to load plugins the first time they are read, so importing
``imtrans_core`` stays cheap. A factory may be registered as a reference,
``"package.module:name"``, imported the first time that entry is used (its
signature read, or built): registering the built-ins then imports neither
torch nor SimpleITK, and ``imtrans --help`` answers at once.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import inspect
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from . import spec as specs
from .declared import Declared, declared
from .errors import ImtransWarning, RegistryError, SpecError


@dataclass
class Entry:
    """One registered factory (or a ``"module:name"`` reference to it) and where it came from."""

    name: str
    target: Callable[..., Any] | str
    plugin: str
    version: str

    @property
    def factory(self) -> Callable[..., Any]:
        """The factory itself, imported on first use when registered by reference."""
        if isinstance(self.target, str):
            module, _, attr = self.target.partition(":")
            try:
                factory = getattr(importlib.import_module(module), attr, None)
            except ImportError as err:
                raise RegistryError(
                    f"'{self.name}' of plugin '{self.plugin}': cannot import {module} ({err}); "
                    "reinstall the plugin or its dependencies"
                ) from err
            if not callable(factory):
                raise RegistryError(f"'{self.name}' of plugin '{self.plugin}': {self.target} is not callable")
            self.target = factory
        return self.target

    @property
    def _declared(self) -> Declared | None:
        """The factory as its source declares it, while it is an unimported reference."""
        return declared(self.target) if isinstance(self.target, str) else None

    @property
    def signature(self) -> inspect.Signature:
        """The factory's signature: read from its source while it is a reference (no import), else inspected."""
        found = self._declared
        return found.signature if found is not None else specs.signature(self.factory)

    @property
    def summary(self) -> str:
        """The first line of the factory's docstring (from its source while it is a reference)."""
        found = self._declared
        doc = (found.doc if found is not None else self.factory.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""


@dataclass(frozen=True)
class Info:
    """What ``imtrans plugins`` shows for one name."""

    kind: str
    name: str
    params: dict[str, Any]
    signature: str
    summary: str
    plugin: str
    version: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "params": {k: (None if v is _REQUIRED else v) for k, v in self.params.items()},
            "signature": self.signature,
            "summary": self.summary,
            "plugin": self.plugin,
            "version": self.version,
        }


class _Required:
    def __repr__(self) -> str:
        return "<required>"


_REQUIRED = _Required()


def _natural_key(name: str) -> list[Any]:
    """Sort ``resnet9`` before ``resnet18``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


class Registry:
    """Named factories of one kind (``generator``, ``loss``, ...).

    ``loader`` is called once before the first read; the plugin manager passes
    the function that runs every plugin's ``imtrans_register`` hook.
    """

    def __init__(self, kind: str, plural: str | None = None, loader: Callable[[], None] | None = None):
        self.kind = kind
        self.plural = plural or kind + "s"
        self._entries: dict[str, Entry] = {}
        # old name -> (the name it became, the plugin that keeps the old name)
        self._aliases: dict[str, tuple[str, str]] = {}
        self._loader = loader
        self._provider: tuple[str, str] = ("__main__", "")
        self.skipped: Callable[[], list[str]] = list  # the plugin system's: plugins the environment kept out

    # -- filling ---------------------------------------------------------------

    def register(self, name: str | None = None, *, override: bool = False) -> Callable[[Callable], Callable]:
        """Decorator: file the factory under ``name`` (default: its own name)."""

        def decorate(factory: Callable) -> Callable:
            self.add(name or factory.__name__, factory, override=override)
            return factory

        return decorate

    def add(self, name: str, factory: Callable[..., Any] | str, *, override: bool = False) -> None:
        """File ``factory`` (or ``"package.module:name"``, imported when first used) under ``name``.

        A clash is an error naming both plugins.
        """
        if not re.fullmatch(r"[A-Za-z_][\w.\-]*", name):
            raise RegistryError(f"cannot register {self.kind} {name!r}: names are letters, digits, _ . -")
        reference = isinstance(factory, str) and re.fullmatch(r"[\w.]+:\w+", factory)
        if not (callable(factory) or reference):
            raise RegistryError(
                f"cannot register {self.kind} '{name}': {factory!r} is neither callable nor 'module:name'"
            )
        plugin, version = self._provider
        if name in self._aliases:
            raise RegistryError(
                f"cannot register {self.kind} '{name}' (plugin '{plugin}'): plugin '{self._aliases[name][1]}' "
                f"keeps it as the old name of '{self._aliases[name][0]}'"
            )
        old = self._entries.get(name)
        if old is not None and not override:
            raise RegistryError(
                f"{self.kind} '{name}' is registered twice: by plugin '{old.plugin}' "
                f"({_where(old.target)}) and by plugin '{plugin}' ({_where(factory)}); "
                "remove one, or register the new one with override=True"
            )
        self._entries[name] = Entry(name, factory, plugin, version)

    def alias(self, old: str, new: str) -> None:
        """Keep ``old``, an earlier release's name, working as ``new``: it builds ``new`` and warns what it became.

        Old names are not listed by :meth:`names`; :meth:`aliases` lists them.
        """
        if not re.fullmatch(r"[A-Za-z_][\w.\-]*", old):
            raise RegistryError(f"cannot alias {self.kind} {old!r}: names are letters, digits, _ . -")
        plugin = self._provider[0]
        taken = self._entries[old].plugin if old in self._entries else self._aliases.get(old, ("", ""))[1]
        if taken:
            raise RegistryError(
                f"{self.kind} '{old}' cannot be an old name of '{new}' (plugin '{plugin}'): "
                f"plugin '{taken}' already uses that name"
            )
        self._aliases[old] = (new, plugin)

    def providing(self, plugin: str, version: str = "") -> _Providing:
        """Context in which ``add`` records ``plugin`` as the provider."""
        return _Providing(self, (plugin, version))

    # -- reading ---------------------------------------------------------------

    def names(self, pattern: str = "*") -> list[str]:
        """Registered names matching a shell-style wildcard, naturally sorted."""
        self._ensure_loaded()
        return sorted(fnmatch.filter(self._entries, pattern), key=_natural_key)

    def aliases(self) -> dict[str, str]:
        """Old names (:meth:`alias`) and the names they became."""
        self._ensure_loaded()
        return {old: new for old, (new, _) in sorted(self._aliases.items())}

    def renamed(self, name: str) -> str | None:
        """What ``name`` became, where it is an old name; else None."""
        self._ensure_loaded()
        return self._aliases[name][0] if name in self._aliases else None

    def __contains__(self, name: object) -> bool:
        self._ensure_loaded()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._ensure_loaded()
        return len(self._entries)

    def get(self, name: str) -> Callable[..., Any]:
        """The factory registered under ``name``."""
        self._ensure_loaded()
        return self._entry(name).factory

    def info(self, name: str) -> Info:
        """Signature, defaults, summary and providing plugin of one entry."""
        self._ensure_loaded()
        entry = self._entry(name)
        sig = entry.signature
        params = {
            p.name: (_REQUIRED if p.default is p.empty else p.default)
            for p in sig.parameters.values()
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        }
        return Info(
            self.kind,
            name,
            params,
            specs.describe_params(sig),
            entry.summary,
            entry.plugin,
            entry.version,
        )

    def resolve(self, spec: str | specs.Spec, **overrides: Any) -> specs.Spec:
        """The spec with every parameter typed and defaults filled in (what configs store)."""
        self._ensure_loaded()
        parsed = specs.parse(spec) if isinstance(spec, str) else spec
        new = self.renamed(parsed.name)
        if new is not None:
            warnings.warn(
                f"{self.kind} '{parsed.name}' is an old name: it is '{new}' now", ImtransWarning, stacklevel=2
            )
            parsed = replace(parsed, name=new)
        return specs.bind(self._entry(parsed.name).signature, parsed, self.kind, **overrides)

    def build(self, spec: str | specs.Spec, **overrides: Any) -> Any:
        """Build from a spec string; keyword ``overrides`` win over the spec's values.

        A factory rejects a bad value by raising :class:`SpecError` (the message
        gets the resolved spec in front); any other exception is a bug in the
        factory and propagates untouched, traceback and all.
        """
        resolved = self.resolve(spec, **overrides)
        factory = self.get(resolved.name)
        try:
            return factory(**resolved.kwargs)
        except SpecError as err:
            raise SpecError(f"{self.kind} '{resolved}': {err}") from err

    # -- the plugin manager's ----------------------------------------------------

    def clear(self) -> None:
        """Forget every entry and old name."""
        self._entries.clear()
        self._aliases.clear()

    def snapshot(self) -> tuple[dict[str, Entry], dict[str, tuple[str, str]]]:
        """The entries and old names as they are: :meth:`restore` returns to them (a failed plugin's rollback)."""
        return dict(self._entries), dict(self._aliases)

    def restore(self, snapshot: tuple[dict[str, Entry], dict[str, tuple[str, str]]]) -> None:
        self._entries, self._aliases = dict(snapshot[0]), dict(snapshot[1])

    # -- internals -------------------------------------------------------------

    def _entry(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            raise RegistryError(self.unknown(name)) from None

    def unknown(self, name: str) -> str:
        """Why ``name`` is not here: the close names, every known one, the plugins the environment switched off."""
        known = self.names()
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        listing = ", ".join(known) if known else "none (is a plugin missing? see 'imtrans plugins')"
        return f"unknown {self.kind} '{name}'{hint} known: {listing}{self.missing_hint()}"

    def missing_hint(self) -> str:
        """``; plugin(s) a, b switched off by IMTRANS_...`` when the environment kept plugins out, else ''."""
        skipped = self.skipped()
        return f"; switched off by the environment: {', '.join(skipped)}" if skipped else ""

    def _ensure_loaded(self) -> None:
        loader, self._loader = self._loader, None
        if loader is not None:
            loader()

    def __repr__(self) -> str:
        return f"<Registry {self.plural}: {len(self._entries)} entries>"


class _Providing:
    def __init__(self, registry: Registry, provider: tuple[str, str]):
        self.registry, self.provider, self.saved = registry, provider, registry._provider

    def __enter__(self) -> Registry:
        self.saved, self.registry._provider = self.registry._provider, self.provider
        return self.registry

    def __exit__(self, *exc: object) -> None:
        self.registry._provider = self.saved


def _where(factory: Callable | str) -> str:
    if isinstance(factory, str):
        return factory.replace(":", ".")
    module = getattr(factory, "__module__", "?")
    return f"{module}.{getattr(factory, '__qualname__', factory)}"
