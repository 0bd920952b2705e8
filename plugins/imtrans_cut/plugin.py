"""Entry point ``cut``: registers ``cut``, ``fastcut`` and the ``patchnce`` loss by reference (torch loads on use)."""

from __future__ import annotations

from typing import Any

from imtrans_core import hookimpl


@hookimpl
def imtrans_register(registries: Any) -> None:
    registries.models.add("cut", f"{__package__}.model:CUT")
    registries.models.add("fastcut", f"{__package__}.model:FastCUT")
    registries.losses.add("patchnce", f"{__package__}.patchnce:PatchNCELoss")
