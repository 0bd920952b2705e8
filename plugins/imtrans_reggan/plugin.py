"""Entry point ``reggan``: registers the model, its ``smooth`` loss (by reference: torch loads on use) and
its preset, ``misaligned``."""

from __future__ import annotations

from typing import Any

from imtrans_core import hookimpl


@hookimpl
def imtrans_register(registries: Any) -> None:
    registries.models.add("reggan", f"{__package__}.model:RegGAN")
    registries.losses.add("smooth", f"{__package__}.warp:SmoothnessLoss")
    registries.presets.add("misaligned", f"{__package__}.presets:misaligned")
