"""Adds the ``segment`` model and ``imtrans segment train | predict | evaluate`` (the paper's §3.2 application)."""

from __future__ import annotations

from typing import Any

from imtrans_core import hookimpl


@hookimpl
def imtrans_register(registries: Any) -> None:
    registries.models.add("segment", f"{__package__}.model:SegmentationUNet")


@hookimpl
def imtrans_cli(cli: Any) -> None:
    from .cli import segment

    cli.add_command(segment)
