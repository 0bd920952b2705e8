"""Registers the procedural hip phantom (a dataset) and the `imtrans data phantom` command."""

from __future__ import annotations

from imtrans_core import hookimpl


@hookimpl
def imtrans_register(registries) -> None:
    registries.datasets.add("phantom", f"{__package__}.phantom:phantom")  # imported when first used


@hookimpl
def imtrans_cli(cli) -> None:
    from .phantom_cmd import phantom

    data = cli.commands.get("data")
    if data is not None:
        data.add_command(phantom)
