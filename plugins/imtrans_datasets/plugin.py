"""Entry point ``datasets``: registers ``folder`` and ``synthrad`` by reference (SimpleITK loads when one is built)."""

from __future__ import annotations

from typing import Any

from imtrans_core import hookimpl


@hookimpl
def imtrans_register(registries: Any) -> None:
    registries.datasets.add("folder", f"{__package__}.folders:folder")
    registries.datasets.add("synthrad", f"{__package__}.folders:synthrad")
