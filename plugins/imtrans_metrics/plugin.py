"""Registers the built-in metrics: ``mae``, ``psnr``, ``ssim``, ``mi`` and ``dice``."""

from __future__ import annotations

from typing import Any

from imtrans_core import hookimpl


@hookimpl
def imtrans_register(registries: Any) -> None:
    similarity, overlap = f"{__package__}.similarity", f"{__package__}.overlap"  # imported when first used
    registries.metrics.add("mae", f"{similarity}:mae_factory")
    registries.metrics.add("psnr", f"{similarity}:psnr_factory")
    registries.metrics.add("ssim", f"{similarity}:ssim_factory")
    registries.metrics.add("mi", f"{similarity}:mi_factory")
    registries.metrics.add("dice", f"{overlap}:dice_factory")
