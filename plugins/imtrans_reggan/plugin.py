"""Entry point ``reggan``: registers the model and its ``smooth`` loss by reference (torch loads on use)."""

from __future__ import annotations

from typing import Any

from imtrans_core import hookimpl


@hookimpl
def imtrans_register(registries: Any) -> None:
    registries.models.add("reggan", f"{__package__}.model:RegGAN")
    registries.losses.add("smooth", f"{__package__}.warp:SmoothnessLoss")
