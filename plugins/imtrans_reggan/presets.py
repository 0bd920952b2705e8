"""RegGAN's preset: ``--preset misaligned``, the best measured recipe for many roughly aligned pairs."""

from __future__ import annotations

from typing import Any

from imtrans_core.api import SMALL_SCALE


def misaligned() -> dict[str, Any]:
    """Many roughly aligned pairs: RegGAN registers its output onto the CT before the L1 (12 pairs, 4 mm)."""
    return {
        **SMALL_SCALE,
        "model": "reggan",
        "gen": "unet:base=32",
        "data": f"{SMALL_SCALE['data']},n_train_pairs=12,misregistration=4",
    }
