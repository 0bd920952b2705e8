"""Registers the built-in metrics: ``mae``, ``psnr``, ``ssim``, ``mi`` and ``dice``."""

from __future__ import annotations

from typing import Any

from imtrans_core import hookimpl


@hookimpl
def imtrans_register(registries: Any) -> None:
    from . import overlap, similarity

    registries.metrics.add("mae", similarity.mae_factory)
    registries.metrics.add("psnr", similarity.psnr_factory)
    registries.metrics.add("ssim", similarity.ssim_factory)
    registries.metrics.add("mi", similarity.mi_factory)
    registries.metrics.add("dice", overlap.dice_factory)
