"""The presets of CycleGAN and its supervised variant: ``--preset paper``, ``small``, ``unpaired``, ``paired``.

Each is the best measured recipe for the data it is named for (docs/quality.md, the method table);
the phantom stands in for the data until ``--data`` names yours.
"""

from __future__ import annotations

from typing import Any

from imtrans_core.api import SMALL_SCALE


def paper() -> dict[str, Any]:
    """The paper's settings (Hiasa et al. 2018), every option at its default: ResNet-9 and PatchGAN, 256 x 256."""
    return {}


def small() -> dict[str, Any]:
    """The 2-CPU-core scale alone, with the default method: to try another --model in minutes."""
    return dict(SMALL_SCALE)


def unpaired() -> dict[str, Any]:
    """Unpaired CT and MR archives: CycleGAN + GC held to the contrast prior, U-Net, about 20 minutes."""
    return {
        **SMALL_SCALE,
        "gen": "unet:base=32",
        "loss": ["gc:1,abs=true", "prior:3,until=0,marrow=true"],
        "iters": 2400,
    }


def paired() -> dict[str, Any]:
    """A few registered pairs: the supervised U-Net, L1 on the pairs alone (no GAN, no cycle)."""
    return {
        **SMALL_SCALE,
        "gen": "unet:base=32",
        "loss": ["paired:1", "lsgan:0", "cycle:0"],
        "data": f"{SMALL_SCALE['data']},n_train_pairs=4",
    }
