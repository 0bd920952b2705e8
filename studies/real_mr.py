"""The real MRs of ``../shared/data/real`` through phantom-trained models: own grid, HU, anatomy in place.

No real MR here has a CT of the same patient, so what can be checked is what a
user sees. For each real MR, translated as ``imtrans translate`` does (onto the
model's input contract and back) and as ``--no-resample`` does (slices of the
input's own grid):

* the output's grid is the input's (shape, spacing, origin, direction) and its
  values are HU in the model's window;
* in the prostate T2 (axial, 0.5 x 0.5 x 3 mm), the median and SD of the HU
  in boxes placed by eye inside each femoral head (clear of its cortex), the
  bladder's urine, a rectus abdominis and the anterior subcutaneous fat
  (``REGIONS``), beside what the real pelvis CT of the same folder shows in
  those tissues (its TotalSegmentator labels; another patient), all in the
  models' window [-150, 350] HU.

The T2 goes through a model trained on the phantom's T2 (``weighting=t2``), the
abdominal T1 through one trained on its T1; both with ``--preset unpaired``,
seed 0, trained here (about 20 minutes each) unless ``--runs`` holds them. The
T2 also goes through ``--preset paired`` trained on four of the phantom's
T2/CT pairs (a few minutes), the recipe that draws the phantom T1's bone far
better than the unpaired U-Net (docs/studies/quality-variants.md): whether a value they get
wrong on the real T2 is the unpaired training's doing or the phantom's.

A picture: the T2 and its translations, axial through the femoral heads and
coronal through the right one: slices cut at the input's own 0.5 mm draw the
anatomy five times finer than the model learned it, in streaks across slices.

    python studies/real_mr.py --runs runs/real
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # the tools studies share
sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import print_table, write_json
from seeds import train_or_reuse

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "data" / "real"
PHANTOM = "phantom:n_ct=12,n_mr=12,n_paired=2,size=128"  # the small preset's pools
# Each model's run folder: its preset and its phantom
MODELS = {
    "cpu-unet-t1": ("unpaired", PHANTOM),
    "cpu-unet-t2": ("unpaired", f"{PHANTOM},weighting=t2"),
    "cpu-paired-t2": ("paired", f"{PHANTOM},weighting=t2,n_train_pairs=4"),
}
T2 = "prostatex0000_t2.nii.gz"
INPUTS = {T2: "cpu-unet-t2", "ts_example_mr_sm.nii.gz": "cpu-unet-t1"}
PAIRED = "paired model"  # the T2 through cpu-paired-t2, as `imtrans translate` does
# Boxes in the prostate T2, placed by eye, as (first, stop) voxel indices along its array's axes
# (right-to-left, posterior-to-anterior, inferior-to-superior), and the real CT's tissue to compare
REGIONS = {
    "right femoral head (inside the cortex)": (((2, 37), (165, 226), (8, 14)), "femoral head"),
    "left femoral head (inside the cortex)": (((340, 377), (205, 246), (12, 18)), "femoral head"),
    "bladder (urine)": (((150, 220), (245, 280), (13, 18)), "bladder"),
    "right rectus abdominis": (((140, 185), (322, 336), (9, 18)), "muscle"),
    "anterior subcutaneous fat": (((120, 260), (345, 362), (8, 18)), "fat"),
}
# In the real CT's TotalSegmentator labels: glutei and iliopsoas; the right femur; the bladder
REAL_CT = {"muscle": (80, 81, 82, 83, 88, 89), "femoral head": (76,), "bladder": (21,)}
AXIAL_SLICE, CORONAL_ROW = 11, 195  # the picture's planes: through both heads; through the right one
WINDOW = (-150.0, 350.0)  # the models' CT window: a synthetic CT lies within it


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs", type=Path, default=Path("runs/real"), help="Where the three models are (or go)."
    )
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "results" / "real_mr.json")
    parser.add_argument("--image", type=Path, default=REPO / "docs" / "images" / "real_mr.png")
    args = parser.parse_args()
    if not REAL.is_dir():
        sys.exit(f"error: {REAL} is absent: this study needs the real volumes (see its README)")

    import imtrans_core as ic
    from imtrans_core.data.io import read_volume
    from imtrans_core.training.config import resolve_config

    ic.plugins.load()
    runs = {}
    for model, (preset, data) in MODELS.items():
        runs[model] = args.runs / f"{model}-seed0"
        train_or_reuse(resolve_config({"data": data, "seed": 0}, None, preset), runs[model])
    results, shown = {}, {}
    for name, model in INPUTS.items():
        mr = read_volume(REAL / name, "mr")
        scts = translations(mr, runs[model], name)
        if name == T2:
            scts[PAIRED] = translations(mr, runs["cpu-paired-t2"], name, no_resample=False)["translate"]
        label = f"--preset {MODELS[model][0]}, phantom {model.rsplit('-', 1)[-1]}"
        results[name] = {"model": label, **checks(mr, scts)}
        if name == T2:
            results[name]["regions"] = regions(mr, scts)
            shown = {"mr": mr, **scts}
    print_table(
        "median (SD) HU: the T2 through its model, beside a real pelvis CT (another patient)",
        [
            {
                "region": r,
                **{
                    k: f"{v[0]:.0f} ({v[1]:.0f})" if isinstance(v, list) else f"{v:.0f}"
                    for k, v in row.items()
                },
            }
            for r, row in results[T2]["regions"].items()
        ],
    )
    boxes = {region: box for region, (box, _) in REGIONS.items()}
    write_json(args.out, {"what": __doc__.splitlines()[0], "boxes": boxes, **results})
    picture(shown, args.image)


def translations(mr: Any, run: Path, name: str, no_resample: bool = True) -> dict[str, Any]:
    """``mr`` translated by ``run``'s G_CT as ``imtrans translate`` does and, if ``no_resample``, as
    ``--no-resample`` does."""
    from imtrans_core.inference.backends import TorchBackend
    from imtrans_core.inference.translate import translate_on_grid, translate_volume

    backend = TorchBackend.from_model(run, "mr2ct", device="cpu")
    out = {"translate": translate_on_grid(mr, backend, name=name)}
    if no_resample:
        out["no-resample"] = translate_volume(mr, backend)
    return out


def checks(mr: Any, scts: dict[str, Any]) -> dict[str, Any]:
    """The grid of ``mr`` and, for each of its translations, whether it lies on it and its value range."""
    out = {"grid": list(mr.shape), "spacing_mm": [float(s) for s in mr.spacing]}
    for how, sct in scts.items():
        out[how] = {
            "same_grid": bool(sct.same_grid(mr)),
            "hu_range": [float(sct.array.min()), float(sct.array.max())],
        }
    return out


def regions(mr: Any, scts: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The T2's median signal and each translation's median and SD of HU in each of ``REGIONS``, beside
    the real pelvis CT's in that tissue."""
    reference = real_ct_values()
    out = {}
    for region, (box, tissue) in REGIONS.items():
        where = tuple(slice(*b) for b in box)
        out[region] = {"T2 signal": float(np.median(mr.array[where]))}
        out[region] |= {how: spread(sct.array[where]) for how, sct in scts.items()}
        out[region]["real CT"] = reference[tissue]
    return out


def spread(hu: np.ndarray) -> list[float]:
    """Median and SD of the values ``hu``, in the models' window."""
    inside = np.clip(hu, *WINDOW)
    return [float(np.median(inside)), float(inside.std())]


def real_ct_values() -> dict[str, list[float]]:
    """What the real pelvis CT shows (TotalSegmentator labels eroded by a voxel; fat by its HU): median, SD.

    The femoral head: the top 15 mm of the right femur (the left holds a
    prosthesis). Fat: body voxels from -200 to -30 HU.
    """
    from scipy import ndimage

    from imtrans_core.data.io import read_volume
    from imtrans_core.data.preprocess import body_mask

    ct = read_volume(REAL / "ts_example_ct.nii.gz", "ct")
    labels = read_volume(REAL / "ts_example_seg_fast_force_split.nii.gz", "labels").array
    values = {}
    for region, ids in REAL_CT.items():
        mask = ndimage.binary_erosion(np.isin(labels, ids))
        if region == "femoral head":
            mask &= top_of(mask, ct, 15.0)
        values[region] = spread(ct.array[mask])
    values["fat"] = spread(ct.array[(body_mask(ct).array > 0) & (ct.array >= -200) & (ct.array <= -30)])
    return values


def top_of(mask: np.ndarray, volume: Any, mm: float) -> np.ndarray:
    """Where within ``mm`` of ``mask``'s most superior voxel (along the patient's inferior-superior axis)."""
    axis = volume.axis_of(2)
    position = np.arange(volume.shape[axis]) * volume.spacing[axis] * np.sign(volume.direction[2, axis])
    height = np.expand_dims(position, [a for a in range(3) if a != axis])
    top = np.where(mask, height, -np.inf).max()
    return np.broadcast_to(height >= top - mm, mask.shape)


def picture(shown: dict[str, Any], path: Path) -> None:
    """The T2 and its translations: axial through both femoral heads, coronal through the right one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mr = shown["mr"]
    columns = [
        ("T2 (real)", mr, (0, float(np.percentile(mr.array, 99.5)))),
        ("imtrans translate", shown["translate"], WINDOW),
        ("--no-resample", shown["no-resample"], WINDOW),
        ("imtrans translate, paired model", shown[PAIRED], WINDOW),
    ]
    fig, axes = plt.subplots(2, 4, figsize=(16, 6.5), height_ratios=[3, 1.4])
    for col, (title, volume, (low, high)) in enumerate(columns):
        axial = volume.array[:, :, AXIAL_SLICE].T  # anterior down, the patient's right on the left
        coronal = volume.array[:, CORONAL_ROW, :].T[::-1]  # superior up
        axes[0, col].imshow(axial, cmap="gray", vmin=low, vmax=high)
        axes[1, col].imshow(coronal, cmap="gray", vmin=low, vmax=high, aspect=mr.spacing[2] / mr.spacing[0])
        axes[0, col].set_title(title)
        for ax in axes[:, col]:
            ax.set_axis_off()
    fig.suptitle(
        f"prostate T2 (PROSTATEx 0000) through phantom T2 models: axial slice {AXIAL_SLICE}, "
        f"coronal row {CORONAL_ROW}; CT in HU {WINDOW[0]:.0f}..{WINDOW[1]:.0f}"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)


if __name__ == "__main__":
    main()
