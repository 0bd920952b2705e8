"""The hooks a plugin can implement: read this file top to bottom to write one.

A plugin is a module (or an object) with functions decorated by
``imtrans_core.hookimpl`` and named like the specs below. It is found through
the entry-point group ``imtrans``; the built-in plugins are listed there in
imtrans' own ``pyproject.toml`` exactly as a third party lists theirs::

    [project.entry-points.imtrans]
    mynets = "my_package.plugin"

pluggy checks that an implementation's argument names are a subset of the
spec's, and ``imtrans`` refuses an implementation whose name matches no spec.
"""

from __future__ import annotations

from typing import Any

import pluggy

PROJECT = "imtrans"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def imtrans_register(registries: Any) -> None:
    """Add entries to the registries.

    Called once per process, the first time any registry is read. ``registries`` has
    one :class:`~imtrans_core.registry.Registry` per kind as attributes: ``generators``,
    ``discriminators``, ``losses``, ``datasets``, ``metrics``, ``loggers``, ``models``
    (subclasses of :class:`imtrans_core.api.TrainableModel`) and ``presets`` (for
    ``--preset``: a function without parameters returning option values, as a config file's).
    Add with ``registries.generators.add("name", factory)`` or the decorator
    ``registries.generators.register("name")``. A name another plugin registered is an
    error (the plugin is then skipped, naming both) unless you pass ``override=True``;
    ``alias("old", "new")`` keeps a renamed entry's old name working.
    Import heavy modules (torch) inside the factories or this hook, not at the top of
    the plugin module, so that ``imtrans --help`` stays fast.
    """


@hookspec
def imtrans_cli(cli: Any) -> None:
    """Add click commands to the ``imtrans`` command group.

    ``cli`` is the root :class:`click.Group`; call ``cli.add_command(cmd)``.
    Raise :class:`~imtrans_core.errors.ImtransError` from a command for an
    error a person caused: it is printed as one line and exits with status 2.
    """


@hookspec
def imtrans_run_start(run: Any) -> None:
    """A training run starts (or resumes).

    ``run`` carries ``run.dir`` (the run directory), ``run.config`` (the
    resolved configuration as a dict), ``run.step`` (the iteration it starts
    at), ``run.is_main`` (False on every DDP rank but 0), ``run.model`` (the
    model's spec, e.g. ``cyclegan``) and ``run.networks`` (for ``cyclegan``:
    ``g_ct``, ``g_mr``, ``d_ct``, ``d_mr``; for ``segment``: ``unet``). Loggers built from ``--log``
    specs are registered on rank 0 only; other plugins see every rank.
    """


@hookspec
def imtrans_step_end(run: Any, step: int, metrics: dict[str, float]) -> None:
    """A logged training iteration ended.

    Called every ``log_every`` iterations with ``step`` (1-based count of
    iterations done) and ``metrics``: each loss term, ``lr`` and ``it_per_s``.
    ``run.samples()`` returns the latest sample images as a dict of
    ``(H, W)`` float arrays in [-1, 1] (computed only when asked).
    """


@hookspec
def imtrans_checkpoint_saved(run: Any, step: int, path: Any) -> None:
    """A checkpoint was written atomically to ``path`` (a :class:`pathlib.Path`)."""


@hookspec
def imtrans_run_end(run: Any, status: str) -> None:
    """The run ended; ``status`` is ``"finished"``, ``"interrupted"`` or ``"failed"``."""
