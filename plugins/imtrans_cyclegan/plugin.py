"""Entry point ``cyclegan``: registers the model, networks, losses and presets of Hiasa et al. 2018.

Registered by reference (``"module:name"``): torch is imported when a network or
loss is first used, not when plugins load, so ``imtrans --help`` stays fast.
"""

from __future__ import annotations

from typing import Any

from imtrans_core import hookimpl


@hookimpl
def imtrans_register(registries: Any) -> None:
    networks, losses = f"{__package__}.networks", f"{__package__}.losses"
    registries.models.add("cyclegan", f"{__package__}.model:CycleGAN")
    registries.generators.add("resnet9", f"{networks}:resnet9")
    registries.generators.add("unet", f"{networks}:unet")
    registries.discriminators.add("patchgan", f"{networks}:patchgan")
    registries.losses.add("lsgan", f"{losses}:LSGANLoss")
    registries.losses.add("vanilla", f"{losses}:VanillaGANLoss")
    registries.losses.add("cycle", f"{losses}:CycleLoss")
    registries.losses.add("identity", f"{losses}:IdentityLoss")
    registries.losses.add("gc", f"{losses}:GradientConsistencyLoss")
    registries.losses.add("paired", f"{losses}:PairedL1Loss")
    registries.losses.add("hist", f"{losses}:IntensityDistributionLoss")
    registries.losses.add("mind", f"{losses}:SelfSimilarityLoss")
    registries.losses.add("prior", f"{losses}:ContrastPriorLoss")
    for preset in ("paper", "unpaired", "paired", "small"):
        registries.presets.add(preset, f"{__package__}.presets:{preset}")
    for old, new in (("cpu", "small"), ("cpu-unet", "unpaired"), ("cpu-paired", "paired")):  # earlier names
        registries.presets.alias(old, new)
