"""The phantom beside a real pelvis CT: the figure in docs/data.md.

Top row, coronal slices through the femoral heads at one window ([-150, 350] HU)
and one scale (1.25 mm per pixel, the real CT's 3 mm voxels interpolated): the
real CT (TotalSegmentator example, a metal prosthesis in its left hip), the
phantom's CT and its T1 MR, both rendered through the whole pelvis
(``thickness=256``) so that the same anatomy is in view. Bottom row: four paired
subjects of the default data set (the paper's 76 mm slab, each archive's field of
view), CT over MR, to show how subjects vary.

    python studies/phantom_figure.py        # -> docs/images/phantom_vs_real.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "data" / "real"
WINDOW = (-150.0, 350.0)
PIXEL_MM = 1.25


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=Path, default=REAL, help="Folder with the real CT and its labels.")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images" / "phantom_vs_real.png")
    args = parser.parse_args()

    import SimpleITK as sitk

    from imtrans_core.data.io import read_volume
    from imtrans_hip import phantom as ph

    real = read_volume(args.real / "ts_example_ct.nii.gz")
    real_labels = read_volume(args.real / "ts_example_seg_fast_force_split.nii.gz")
    seed = ph.subject_seed(0, "paired", 0)
    whole = ph.render_subject(seed, slices=128, scan=ph.Scan(thickness=256.0))
    top = [
        coronal(real, heads(real_labels, (75, 76)), ct=True),
        coronal(whole["ct"], heads(whole["labels"], (3, 4)), ct=True),
        coronal(whole["mr"], heads(whole["labels"], (3, 4)), ct=False),
    ]
    bottom = []
    for i in range(4):
        s = ph.subject_seed(0, "paired", i)
        vols = ph.render_subject(s, size=128, fov=ph.fov_shift(s, "paired", ph.Scan()))
        bottom.append(np.concatenate([coronal(vols[m], None, ct=m == "ct") for m in ("ct", "mr")], axis=0))
    figure = stack([row(top), row(bottom)])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(sitk.GetImageFromArray(np.round(figure * 255).astype(np.uint8)), str(args.out))
    print(f"wrote {args.out}")


def heads(labels, femur: tuple[int, ...]) -> int:
    """The coronal index (array axis 1) through the middle of the femoral labels."""
    return int(np.median(np.nonzero(np.isin(labels.array, femur))[1]))


def coronal(volume, index: int | None, ct: bool) -> np.ndarray:
    """One coronal slice in [0, 1], superior up, the patient's right on the left, ``PIXEL_MM`` per pixel."""
    import SimpleITK as sitk

    a = np.asarray(volume.array, dtype=np.float32)
    for axis in range(3):  # identity direction: i to the patient's left, j posterior, k superior
        if np.asarray(volume.direction)[axis, axis] < 0:
            a = np.flip(a, axis)
    j = a.shape[1] // 2 if index is None else index
    if np.asarray(volume.direction)[1, 1] < 0 and index is not None:
        j = a.shape[1] - 1 - j
    sl = a[:, j, :]
    if ct:
        sl = (sl - WINDOW[0]) / (WINDOW[1] - WINDOW[0])
    else:
        sl = sl / max(float(np.percentile(a, 99.5)), 1e-6)
    sl = np.flipud(np.clip(sl, 0, 1).T)  # rows: superior first; columns: i
    zoom = [volume.spacing[2] / PIXEL_MM, volume.spacing[0] / PIXEL_MM]
    image = sitk.GetImageFromArray(sl.astype(np.float32))
    size = [max(1, round(sl.shape[1] * zoom[1])), max(1, round(sl.shape[0] * zoom[0]))]
    out = sitk.Resample(image, size, sitk.Transform(), sitk.sitkLinear, (0, 0), (1 / zoom[1], 1 / zoom[0]))
    return sitk.GetArrayFromImage(out)


def row(tiles: list[np.ndarray]) -> np.ndarray:
    height = max(t.shape[0] for t in tiles)
    padded = [np.pad(t, ((0, height - t.shape[0]), (0, 4))) for t in tiles]
    return np.concatenate(padded, axis=1)


def stack(rows: list[np.ndarray]) -> np.ndarray:
    width = max(r.shape[1] for r in rows)
    return np.concatenate([np.pad(r, ((0, 4), (0, width - r.shape[1]))) for r in rows], axis=0)


if __name__ == "__main__":
    main()
