"""Score one synthetic volume against its reference, as the paper does (Hiasa et al. 2018, §3.1)
and as SynthRAD2023 does.

* ``paper`` protocol: both CTs windowed to [-150, 350] HU and mapped onto [0, 255] (§2.2); MAE
  and PSNR = 20 log10(255 / sqrt(MSE)) on that scale, SSIM on it too, plus the MAE in plain HU
  (``mae_hu``; a synthetic CT lives within [-150, 350] HU, so this one also counts what the window
  cannot represent: air and cortical bone of the real CT).
* ``synthrad`` protocol, as the SynthRAD2023 challenge's evaluation code computes it
  (github.com/SynthRAD2023/metrics, ``image_metrics.py`` with ``ImageMetrics.ssim(gt, pred,
  mask)``): MAE in HU, unclipped, in the mask; PSNR after clipping both to [-1024, 3000] HU
  with data range 4024, in the mask; SSIM of scikit-image with its defaults on the volumes
  clipped the same way with everything outside the mask set to -1024 HU (see
  ``imtrans_metrics.similarity.ssim_synthrad2023``). ``both`` reports the two side by side.

Every metric comes from the ``METRICS`` registry (the ``imtrans_metrics`` plugin). Without a
mask the whole volume counts; with one only its non-zero voxels (the paper leaves out the
region outside the common field of view, Fig. 3); ``mask="fov"`` takes the voxels where the
reference CT is not padding (-1024 HU, what ``imtrans register`` writes outside the CT).

Unpaired evaluation (the second experiment, Fig. 4): mutual information between the synthetic
volume and its *source* (``mi``), as the mean over the slices of the model's plane
("mean of each slice of MI"): coronal slices are taken across ``volume.axis_of(1)``.
"""

from __future__ import annotations

import math

import numpy as np

from .. import defaults
from ..choices import SCALES, SCORE_ORIENTATIONS
from ..data.intensity import CT_PADDING
from ..data.preprocess import resample_to_grid
from ..data.volume import Volume
from ..defaults import PROTOCOLS
from ..errors import ImtransError

LABELS = {key: label for rows in PROTOCOLS.values() for key, _, label in rows} | {defaults.MI: "MI [nats]"}


# What names a row rather than scores it.
INFO_KEYS = ("id", "pred", "ref", "mask", "source", "voxels", "baseline")


def metric_keys(scale: str, mi: bool = False) -> list[str]:
    """The row keys a protocol reports, in table order."""
    return [key for key, _, _ in protocol_rows(scale)] + (["mi"] if mi else [])


def evaluate_pair(
    pred: Volume,
    ref: Volume | None = None,
    mask: Volume | str | None = None,
    source: Volume | None = None,
    scale: str = "paper",
    mi_bins: int = 32,
    orientation: str = "coronal",
    resample: bool = False,
) -> dict[str, float]:
    """Scores of a synthetic volume ``pred`` against ``ref`` (paired) and/or its ``source`` (MI).

    ``mask``: a label volume on ``ref``'s grid (non-zero = scored), ``"fov"`` (where ``ref`` is not
    -1024 HU padding) or None (everything). ``orientation`` picks the MI slicing axis (``none``:
    one 3-D histogram). Volumes on different grids are an error unless ``resample``: then
    ``pred`` (and ``source``, ``mask``) are resampled onto ``ref``'s grid and voxels outside
    ``pred``'s field of view are left out. Also returns ``voxels``, the number scored.
    """
    import imtrans_core as ic

    if ref is None and source is None:
        raise ImtransError(
            "nothing to compare the prediction with — give REF (a real CT) and/or --source (its MR)"
        )
    protocol = protocol_rows(scale)
    if orientation not in SCORE_ORIENTATIONS:
        raise ImtransError(f"--orientation {orientation}: choose {', '.join(SCORE_ORIENTATIONS)}")
    grid = ref if ref is not None else pred
    pred = _on_grid(pred, grid, "PRED", resample, "linear")
    region = np.isfinite(pred.array)  # False only outside a resampled PRED's field of view
    if not region.all():  # SSIM's window reaches past the mask: air there, as SynthRAD2023 pads
        pred = pred.with_array(np.where(region, pred.array, CT_PADDING).astype(np.float32))
    inside, mask_name = _mask_region(mask, ref, grid, resample)
    region &= inside
    if source is not None:
        source = _on_grid(source, grid, "--source", resample, "linear")
    region_mi = region
    if source is not None and not np.isfinite(source.array).all():
        region_mi = region & np.isfinite(source.array)
        source = source.with_array(np.nan_to_num(source.array, nan=0.0))
    if not region.any() or not region_mi.any():
        where = f"{mask_name} is empty" if mask_name else f"{_name(pred)} has no voxel inside {_name(grid)}"
        raise ImtransError(f"{where}: nothing to score — check the mask belongs to {_name(grid)}")
    scores: dict[str, float] = {}
    if ref is not None:
        for key, spec, _ in protocol:
            scores[key] = ic.METRICS.build(spec)(pred.array, ref.array, region)
    if source is not None:
        axis = SCORE_ORIENTATIONS[orientation]
        spec = f"{defaults.MI}:bins={mi_bins}" + ("" if axis is None else f",axis={pred.axis_of(axis)}")
        scores["mi"] = ic.METRICS.build(spec)(pred.array, source.array, region_mi)
    scores["voxels"] = int(region.sum())
    return scores


def _mask_region(
    mask: Volume | str | None, ref: Volume | None, grid: Volume, resample: bool
) -> tuple[np.ndarray, str]:
    """Where to score on ``grid`` (inside the mask volume, REF's FOV, or everywhere) and the mask's name."""
    if isinstance(mask, str):
        if mask != "fov" or ref is None:
            raise ImtransError(f"--mask {mask}: give a mask volume, or 'fov' together with REF")
        return ref.array != CT_PADDING, "the FOV mask (REF != -1024 HU)"
    if mask is not None:
        mask = _on_grid(mask, grid, "--mask", resample, "nearest", default=0.0)
        return mask.array != 0, _name(mask)
    return np.ones(grid.shape, dtype=bool), ""


def constant_baseline(
    ref: Volume, mask: Volume | str | None = None, scale: str = "paper", resample: bool = False
) -> dict[str, float]:
    """The scores of a constant image, REF's median HU inside the mask: the least a model must beat.

    A synthetic CT that has learned nothing but the typical tissue value scores
    this; a score near it means the model has not learned the anatomy, however
    good the number looks alone.
    """
    region, _ = _mask_region(mask, ref, ref, resample)
    level = float(np.median(ref.array[region])) if region.any() else 0.0
    constant = ref.with_array(np.full(ref.shape, level, dtype=np.float32))
    scores = evaluate_pair(constant, ref, mask, scale=scale, resample=resample)
    return {k: v for k, v in scores.items() if k != "voxels"}


def require_metrics(scale: str, mi: bool, command: str) -> None:
    """Refuse ``command`` in one line, before any work, when a metric it reports is not registered."""
    import imtrans_core as ic

    specs = [spec for _, spec, _ in protocol_rows(scale)] + ([defaults.MI] if mi else [])
    defaults.require(ic.METRICS, specs, command)


def protocol_rows(scale: str) -> list[tuple[str, str, str]]:
    """The (row key, metric spec, column label) rows of ``--scale`` (``both``: the paper's, then SynthRAD's)."""
    if scale not in SCALES:
        raise ImtransError(f"--scale {scale}: choose {', '.join(SCALES)}")
    return PROTOCOLS["paper"] + PROTOCOLS["synthrad"] if scale == "both" else PROTOCOLS[scale]


def _on_grid(
    volume: Volume, grid: Volume, role: str, resample: bool, interpolator: str, default: float = math.nan
) -> Volume:
    """``volume`` itself when it is on ``grid``; resampled onto it with ``resample``; else a one-line error."""
    if volume.same_grid(grid):
        return volume
    if not resample:
        raise ImtransError(
            f"{role} {_name(volume)} is not on the grid of {_name(grid)} ({volume.grid_difference(grid)}) — "
            "pass --resample to resample it onto that grid"
        )

    moved = resample_to_grid(volume, grid, interpolator=interpolator, default=default)
    moved.meta = dict(volume.meta)
    return moved


def _name(volume: Volume) -> str:
    return str(volume.meta.get("path", f"a volume of shape {volume.shape}"))
