"""How much a CT looks like a patient's: the phantom's CT measured against a real one, the same way.

Every later number (a model's MAE, a GC finding) is only as meaningful as the
phantom is patient-like, so its likeness is measured, not asserted. For one CT
and its label map the measures are:

- per structure, the median and standard deviation of HU inside the label eroded
  by ``ERODE`` voxels (partial volume at the border left out): tissue values and
  their heterogeneity (trabecular bone, fat strands in muscle);
- per structure and patient axis, the correlation of neighbouring voxels' values
  inside the eroded label: the texture of the noise (a scanner's noise is
  spatially correlated; white noise gives 0);
- the HU distribution of the body, compared between two CTs by the
  Wasserstein-1 distance (the mean shift of their quantiles, in HU). Two CTs
  rarely cover the same stretch of the body, and the mix of tissues changes fast
  along it (abdomen, pelvis, thighs), so both are cut to the same height below
  the top of the pelvic bones (the iliac crest): as far down as the shorter of
  the two reaches.

Both CTs are compared at the same voxel size: the finer one is smoothed with a
Gaussian whose FWHM makes up the difference to the coarser spacing per axis (what a
scanner's larger voxels integrate) and resampled linearly onto a grid of that
spacing; its labels are resampled by nearest neighbour.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from imtrans_core.api import Volume, body_mask, from_sitk, to_sitk

from .anatomy import LABELS

ERODE = 2  # voxels dropped at each label's border before measuring its interior
QUANTILES = 1001  # resolution of the Wasserstein-1 distance

# The same structures in the phantom's labels and in TotalSegmentator v2's (the real example CT).
PHANTOM_STRUCTURES: dict[str, tuple[int, ...]] = {
    "pelvis": (LABELS["pelvis"],),
    "sacrum": (LABELS["sacrum"],),
    "femur": (LABELS["femur_left"], LABELS["femur_right"]),
    "gluteus_maximus": (LABELS["gluteus_maximus"],),
    "gluteus_medius": (LABELS["gluteus_medius"],),
    "iliopsoas": (LABELS["iliopsoas"],),
}
TOTALSEGMENTATOR_STRUCTURES: dict[str, tuple[int, ...]] = {
    "pelvis": (77, 78),
    "sacrum": (25,),
    "femur": (75, 76),
    "gluteus_maximus": (80, 81),
    "gluteus_medius": (82, 83),
    "iliopsoas": (88, 89),
}


@dataclass
class Structure:
    """One structure's interior: its HU median and SD, and neighbour correlation per patient axis."""

    voxels: int
    median: float
    sd: float
    neighbour_correlation: dict[str, float]  # keyed by patient axis: "L-R", "P-A", "I-S"

    def as_dict(self) -> dict:
        return {
            "voxels": self.voxels,
            "median": self.median,
            "sd": self.sd,
            "neighbour_correlation": self.neighbour_correlation,
        }


def measure(ct: Volume, labels: Volume, structures: Mapping[str, Sequence[int]]) -> dict[str, Structure]:
    """Each structure's interior statistics; a structure without interior voxels is left out."""
    hu = np.asarray(ct.array, dtype=np.float64)
    axes = patient_axes(ct)
    found = {}
    for name, ids in structures.items():
        inside = interior(np.isin(labels.array, ids), ERODE)
        if inside.sum() < 2:
            continue
        values = hu[inside]
        found[name] = Structure(
            int(inside.sum()),
            float(np.median(values)),
            float(values.std()),
            {axes[a]: neighbour_correlation(hu, inside, a) for a in range(3)},
        )
    return found


def interior(mask: np.ndarray, radius: int) -> np.ndarray:
    """``mask`` eroded by a ball of ``radius`` voxels (SimpleITK's binary erosion)."""
    image = sitk.GetImageFromArray(mask.astype(np.uint8))
    return sitk.GetArrayFromImage(sitk.BinaryErode(image, [radius] * 3, sitk.sitkBall)) > 0


def neighbour_correlation(values: np.ndarray, mask: np.ndarray, axis: int) -> float:
    """Pearson correlation of each voxel with its next neighbour along ``axis``, both inside ``mask``."""
    first = [slice(None)] * values.ndim
    second = [slice(None)] * values.ndim
    first[axis], second[axis] = slice(0, -1), slice(1, None)
    both = mask[tuple(first)] & mask[tuple(second)]
    a, b = values[tuple(first)][both], values[tuple(second)][both]
    if a.size < 2 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def patient_axes(volume: Volume) -> list[str]:
    """The patient axis each array axis runs along: ``L-R``, ``P-A`` or ``I-S`` (from the direction)."""
    names = ("L-R", "P-A", "I-S")
    return [names[int(np.argmax(np.abs(np.asarray(volume.direction)[:, a])))] for a in range(3)]


def body_values(ct: Volume, rows: np.ndarray | None = None) -> np.ndarray:
    """The HU of every voxel inside the body (threshold, largest component, holes filled).

    ``rows``: a boolean per position along the inferior-superior axis to keep (all by default).
    """
    body = body_mask(ct).array > 0
    if rows is not None:
        body &= _along_body_axis(ct, rows)
    return np.asarray(ct.array, dtype=np.float64)[body]


def _along_body_axis(volume: Volume, rows: np.ndarray) -> np.ndarray:
    """``rows`` (one value per position along the inferior-superior axis) shaped to broadcast over ``volume``."""
    shape = [1, 1, 1]
    shape[patient_axes(volume).index("I-S")] = -1
    return rows.reshape(shape)


def _keep_rows(labels: Volume, rows: np.ndarray) -> Volume:
    """``labels`` with every position along the inferior-superior axis outside ``rows`` cleared."""
    kept = np.where(_along_body_axis(labels, rows), labels.array, 0)
    return labels.with_array(kept.astype(labels.array.dtype))


def below_crest(ct: Volume, labels: Volume, pelvis: Sequence[int]) -> np.ndarray:
    """Distance (mm) of each position along the inferior-superior axis below the top of the pelvis label.

    Negative above the iliac crest. Positions are taken from the grid's world
    coordinates, so a flipped axis measures the same.
    """
    axis = patient_axes(ct).index("I-S")
    height = (
        np.asarray(ct.origin)
        + np.outer(np.arange(ct.shape[axis]) * ct.spacing[axis], np.asarray(ct.direction)[:, axis])
    )[:, 2]
    present = np.isin(labels.array, list(pelvis)).any(axis=tuple(a for a in range(3) if a != axis))
    if not present.any():
        raise ValueError("no pelvis voxels in the labels: cannot place the iliac crest")
    return height[present].max() - height


def wasserstein1(a: np.ndarray, b: np.ndarray) -> float:
    """Wasserstein-1 distance of two samples: the mean absolute difference of their quantiles."""
    q = np.linspace(0.0, 1.0, QUANTILES)
    return float(np.mean(np.abs(np.quantile(a, q) - np.quantile(b, q))))


def at_spacing(ct: Volume, labels: Volume, spacing: Sequence[float]) -> tuple[Volume, Volume]:
    """``ct`` and ``labels`` on a grid of ``spacing`` mm, as a scanner with those voxels would see them.

    The CT is smoothed per axis by a Gaussian of FWHM sqrt(target^2 - current^2) (a
    voxel of the current size already integrates that much) and resampled
    linearly; labels by nearest neighbour. Axes already at or above the target
    spacing are only resampled.
    """
    image = sitk.Cast(to_sitk(ct), sitk.sitkFloat32)
    fwhm = [np.sqrt(max(t * t - s * s, 0.0)) for t, s in zip(spacing, ct.spacing, strict=True)]
    variance = [(f / 2.3548) ** 2 for f in fwhm]
    smooth = sitk.DiscreteGaussian(image, variance, 64, 0.01, True)
    size = [max(1, round(n * s / t)) for n, s, t in zip(ct.shape, ct.spacing, spacing, strict=True)]
    grid = sitk.Image([int(n) for n in size], sitk.sitkUInt8)
    grid.SetSpacing([float(t) for t in spacing])
    grid.SetDirection(image.GetDirection())
    # Keep the volume's extent: the first new voxel's centre sits half a new voxel in from the old edge.
    start = np.asarray(ct.origin) + np.asarray(ct.direction) @ (
        (np.asarray(spacing, dtype=float) - np.asarray(ct.spacing)) / 2.0
    )
    grid.SetOrigin([float(v) for v in start])
    resampled = sitk.Resample(smooth, grid, sitk.Transform(), sitk.sitkLinear, -1024.0, sitk.sitkFloat32)
    nearest = sitk.Resample(to_sitk(labels), grid, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    return from_sitk(resampled, "ct"), from_sitk(nearest, "labels")


def compare(
    phantom: tuple[Volume, Volume],
    real: tuple[Volume, Volume],
    real_structures: Mapping[str, Sequence[int]] = TOTALSEGMENTATOR_STRUCTURES,
    spacing: Sequence[float] | None = None,
) -> dict:
    """The measures of a phantom (CT, labels) beside a real CT's, at the real CT's voxel size by default.

    Both are measured over the same height below the iliac crest (as far as the
    shorter reaches). Returns JSON-ready values: per structure both sides'
    statistics, and the Wasserstein-1 distance between the two bodies' HU
    distributions.
    """
    spacing = tuple(real[0].spacing) if spacing is None else tuple(spacing)
    phantom = at_spacing(*phantom, spacing)
    depth_ours = below_crest(*phantom, PHANTOM_STRUCTURES["pelvis"])
    depth_theirs = below_crest(*real, real_structures["pelvis"])
    reach = min(depth_ours.max(), depth_theirs.max())
    rows_ours = (depth_ours >= 0) & (depth_ours <= reach)
    rows_theirs = (depth_theirs >= 0) & (depth_theirs <= reach)
    ours = measure(phantom[0], _keep_rows(phantom[1], rows_ours), PHANTOM_STRUCTURES)
    theirs = measure(real[0], _keep_rows(real[1], rows_theirs), real_structures)
    return {
        "spacing_mm": list(spacing),
        "structures": {
            name: {"phantom": ours[name].as_dict(), "real": theirs[name].as_dict()}
            for name in PHANTOM_STRUCTURES
            if name in ours and name in theirs
        },
        "body_mm_below_crest": float(reach),
        "body_wasserstein1_hu": wasserstein1(
            body_values(phantom[0], rows_ours), body_values(real[0], rows_theirs)
        ),
    }
