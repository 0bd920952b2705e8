"""Where a synthetic CT's MAE comes from: each tissue's part of it, and whether that part is bias or spread.

The body mask that the quality table scores is split into fat, muscle, bone and
the rest (skin, bladder, bowel, vessels, cartilage); a tissue's part of a
subject's MAE is its share of the mask's voxels times its own MAE, so the parts
add up to the MAE. Beside each part, the error's mean there (bias: a tissue
drawn at the wrong value) and its SD (spread: texture, noise, misplaced edges,
which no single value would fix). All on the paper's [0, 255] scale, in the
paper's window, mean over the paired test subjects of docs/studies/quality-variants.md: a
second scan of the real CT (a perfect GAN), the contrast prior's map, and the
first seed's run of each ``--variants`` (trained by ``studies/quality.py``,
found in ``--runs``).

Within one tissue, how each image follows the MR: the slope of its HU on the
MR's value, both taken as deviations from their medians in each label of that
tissue (inside it, one voxel from its edge), in HU per SD of the MR's
deviation. Between tissues a T1 is inverse to CT (fat bright, cortex dark);
within muscle, what darkens a voxel on an opposed-phase T1 (fat in it) darkens
it on CT too. The other way round, how each run's G_MR follows the CT within a
tissue: the synthetic MR (the [0, 100] scale) per SD of the CT's deviation,
beside the real MR's on that scale.

    python studies/tissues.py --runs runs/quality \\
        --variants marrow-unet-long supervised-unet-4
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # the tools studies share
sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import print_table, write_json
from quality import TEST_DATA, WINDOW, study, synthetic_cts, tissue_mask

TISSUES = ("fat", "muscle", "bone", "rest")
PAPER_SCALE = 255.0 / (WINDOW[1] - WINDOW[0])  # HU -> the paper's [0, 255]


def main() -> None:
    args, subjects, prior, runs = study(__doc__, "tissues.json")
    images = synthetic_cts(subjects, prior, runs)
    shares = np.mean([list(parts(s["ct"].array, s["ct"].array, s)[0].values()) for s in subjects], 0)
    rows, within, within_mr = {}, {}, {}
    for name, volumes in {"real CT": [s["ct"] for s in subjects], **images}.items():
        pairs = list(zip(volumes, subjects, strict=True))
        within[name] = {t: mean_slope([(hu(v), s["mr"].array, s) for v, s in pairs], t) for t in TISSUES[:2]}
        if name != "real CT":  # its parts are nought
            per_subject = [parts(v.array, s["ct"].array, s)[1] for v, s in pairs]
            rows[name] = {key: float(np.mean([p[key] for p in per_subject])) for key in per_subject[0]}
    for name, mrs in {
        "real MR": [mr_scale(s["mr"]) for s in subjects],
        **synthetic_mrs(subjects, runs),
    }.items():
        triples = [(y, hu(s["ct"]), s) for y, s in zip(mrs, subjects, strict=True)]
        within_mr[name] = {t: mean_slope(triples, t) for t in TISSUES[:2]}
    print_table(
        "each tissue's part of the MAE (bias, SD of the error) on the paper's scale, mean over the test subjects",
        [{"image": n, **{k: f"{v:.1f}" for k, v in r.items()}} for n, r in rows.items()],
    )
    for title, table in (("HU per SD of the MR's", within), ("MR units per SD of the CT's", within_mr)):
        print_table(
            f"within fat and muscle: {title} deviation from each label's median",
            [{"image": n, **{t: f"{v:+.1f}" for t, v in r.items()}} for n, r in table.items()],
        )
    write_json(
        args.out,
        {
            "test_data": TEST_DATA,
            "shares": dict(zip(TISSUES, map(float, shares), strict=True)),
            "rows": rows,
            "within": within,
            "within_mr": within_mr,
        },
    )


def synthetic_mrs(subjects: list[dict], runs: dict[str, Path]) -> dict[str, list[np.ndarray]]:
    """Each test subject's CT translated by each run's G_MR, on the [0, 100] MR scale: by table row name."""
    from imtrans_core.inference.backends import TorchBackend
    from imtrans_core.inference.translate import translate_volume

    images = {}
    for name, run in runs.items():
        backend = TorchBackend.from_model(run, "ct2mr", device="cpu")
        images[name] = [translate_volume(s["ct"], backend).array for s in subjects]
    return images


def hu(volume) -> np.ndarray:
    """A CT's voxels in the paper's window, as every score here sees them."""
    return np.clip(volume.array, *WINDOW)


def mr_scale(volume) -> np.ndarray:
    """An MR's voxels on the [0, 100] scale its translations are put on (the networks' MR scaling)."""
    from imtrans_core.data.intensity import MR_WINDOW
    from imtrans_core.data.slices import normalize

    return MR_WINDOW.inverse(normalize(volume, "mr"))


def mean_slope(triples: list[tuple[np.ndarray, np.ndarray, dict]], tissue: str) -> float:
    """The mean over subjects of :func:`slope`, from each one's (y, x, subject)."""
    return float(np.mean([slope(y, x, s, tissue) for y, x, s in triples]))


def parts(sct: np.ndarray, ct: np.ndarray, subject: dict) -> tuple[dict[str, float], dict[str, float]]:
    """A subject's tissue shares of the scored voxels, and per tissue its part of the MAE, bias and SD.

    The error is taken in the paper's window, as the MAE of the quality table;
    the parts add up to that MAE.
    """
    labels, scored = subject["labels"].array, subject["mask"].array > 0
    error = (np.clip(sct, *WINDOW) - np.clip(ct, *WINDOW)) * PAPER_SCALE
    masks = {t: tissue_mask(labels, t) & scored for t in TISSUES[:-1]}
    masks["rest"] = scored & ~np.any(list(masks.values()), axis=0)
    shares, row = {}, {"MAE": float(np.abs(error[scored]).mean())}
    for tissue, mask in masks.items():
        shares[tissue] = float(mask.sum() / scored.sum())
        inside = error[mask]
        row[f"{tissue}: part"] = shares[tissue] * float(np.abs(inside).mean())
        row[f"{tissue}: bias"] = float(inside.mean())
        row[f"{tissue}: SD"] = float(inside.std())
    return shares, row


def slope(y: np.ndarray, x: np.ndarray, subject: dict, tissue: str) -> float:
    """How ``y`` follows ``x`` inside ``tissue``: units of ``y`` per SD of ``x``, both as deviations from
    their medians in each label of the tissue (inside it, one voxel from its edge)."""
    from scipy import ndimage

    labels = subject["labels"].array
    inside = ndimage.binary_erosion(tissue_mask(labels, tissue)) & (subject["mask"].array > 0)
    dx, dy = np.zeros(inside.sum()), np.zeros(inside.sum())
    x, y = np.asarray(x, np.float64)[inside], np.asarray(y, np.float64)[inside]
    for label in np.unique(labels[inside]):
        here = labels[inside] == label
        dx[here], dy[here] = x[here] - np.median(x[here]), y[here] - np.median(y[here])
    return float(np.polyfit(dx, dy, 1)[0] * dx.std())


if __name__ == "__main__":
    main()
