"""What a synthetic CT draws across the boundaries between fat and muscle: mean HU by distance from them.

An opposed-phase T1 draws a dark line along every fat/water boundary (fat and
water cancel in a voxel that holds both), and a dark line is what cortical bone
looks like on T1. This measures whether a model turns that line into a bright,
bone-like rim on the CT: on the paired test subjects of docs/studies/quality-variants.md, every
voxel of fat or muscle within ``REACH`` voxels of the other is binned by its
signed distance to it (negative in fat, positive in muscle), and each image's
mean HU per bin is written beside the real CT's: the real CT, a second scan of
it, the contrast prior's map, and the first seed's run of each ``--variants``
(trained by ``studies/quality.py``, found in ``--runs``).

    python studies/boundaries.py --runs runs/quality \\
        --variants prior-unet-hold3-long prior-unet-hold3 supervised-unet-4
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # the tools studies share
sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import print_table, write_json
from quality import TEST_DATA, WINDOW, study, synthetic_cts, tissue_mask

REACH = 3  # voxels on each side of the boundary


def main() -> None:
    args, subjects, prior, runs = study(__doc__, "boundaries.json")
    images = {"real CT": [s["ct"] for s in subjects], **synthetic_cts(subjects, prior, runs)}
    distances = [d for d in range(-REACH, REACH + 1) if d]
    rows = {
        name: np.mean([profile(v.array, s["labels"].array) for v, s in zip(vols, subjects, strict=True)], 0)
        for name, vols in images.items()
    }
    result = {
        "test_data": TEST_DATA,
        "distances": distances,
        "rows": {name: [float(x) for x in row] for name, row in rows.items()},
    }
    print_table(
        "mean HU by signed distance from the fat/muscle boundary (voxels; - fat, + muscle)",
        [
            {"image": name, **{str(d): f"{x:.1f}" for d, x in zip(distances, row, strict=True)}}
            for name, row in rows.items()
        ],
    )
    write_json(args.out, result)


def profile(hu: np.ndarray, labels: np.ndarray) -> list[float]:
    """Mean of ``hu`` (clipped to the paper's window) over fat and muscle voxels by signed distance to the other."""
    from scipy import ndimage

    fat, muscle = tissue_mask(labels, "fat"), tissue_mask(labels, "muscle")
    signed = np.where(fat, -ndimage.distance_transform_edt(~muscle), ndimage.distance_transform_edt(~fat))
    signed = np.round(signed).astype(int)
    hu = np.clip(hu, *WINDOW)
    near = fat | muscle
    return [float(hu[near & (signed == d)].mean()) for d in range(-REACH, REACH + 1) if d]


if __name__ == "__main__":
    main()
