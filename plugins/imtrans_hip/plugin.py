"""Registers the hip datasets and the `imtrans data phantom` command."""

from __future__ import annotations

from imtrans_core import hookimpl


@hookimpl
def imtrans_register(registries) -> None:
    from . import folders, phantom

    registries.datasets.add("phantom", phantom.phantom)
    registries.datasets.add("folder", folders.folder)
    registries.datasets.add("synthrad", folders.synthrad)


@hookimpl
def imtrans_cli(cli) -> None:
    from .phantom_cmd import phantom

    data = cli.commands.get("data")
    if data is not None:
        data.add_command(phantom)
