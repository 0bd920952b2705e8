"""Entry point ``cyclegan``: registers the networks and losses of Hiasa et al. 2018.

torch is imported inside the hook, not here, so that ``imtrans --help`` stays fast.
"""

from __future__ import annotations

from typing import Any

from imtrans_core import hookimpl


@hookimpl
def imtrans_register(registries: Any) -> None:
    from . import losses, networks

    registries.generators.add("resnet9", networks.resnet9)
    registries.generators.add("unet", networks.unet)
    registries.discriminators.add("patchgan", networks.patchgan)
    registries.losses.add("lsgan", losses.LSGANLoss)
    registries.losses.add("vanilla", losses.VanillaGANLoss)
    registries.losses.add("cycle", losses.CycleLoss)
    registries.losses.add("identity", losses.IdentityLoss)
    registries.losses.add("gc", losses.GradientConsistencyLoss)
    registries.losses.add("paired", losses.PairedL1Loss)
