"""What every metric shares: the metric object, input checks and the intensity scales.

Two evaluation protocols are supported side by side (DESIGN.md, "Facts from the field"):

* ``paper`` — Hiasa et al. 2018, §2.2 and §3.1: CT is windowed to [-150, 350] HU and mapped
  linearly to [0, 255]; MAE and PSNR (peak 255) are computed on that scale.
* ``synthrad`` — SynthRAD2023: CT is clipped to [-1024, 3000] HU; MAE is in HU, PSNR and SSIM
  use the data range 4024.

Everything is computed in float64, whatever the input type (NIfTI CT is often float32 or int16):
squared HU differences summed over millions of voxels keep their digits.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from imtrans_core.api import ImtransError, SpecError, format_value

Scale = Literal["paper", "hu", "synthrad"]

#: The paper's CT window (HU) and the value range it is mapped onto (§2.2).
PAPER_WINDOW = (-150.0, 350.0)
PAPER_PEAK = 255.0
#: SynthRAD2023's HU range; its width (4024) is the data range of PSNR and SSIM.
SYNTHRAD_RANGE = (-1024.0, 3000.0)


@dataclass(frozen=True)
class Metric:
    """A configured metric: ``metric(pred, ref, mask=None) -> float``.

    ``name`` is the shortest spec that builds the same metric again (``psnr:scale=synthrad``),
    so it can head a results table and be pasted back into a config.
    """

    name: str
    fn: Callable[..., float]
    higher_is_better: bool
    unit: str = ""

    def __call__(self, pred: Any, ref: Any, mask: Any = None) -> float:
        return float(self.fn(pred, ref, mask=mask))


def spec_name(name: str, factory: Callable, **values: Any) -> str:
    """``name`` plus the parameters that differ from the factory's defaults, as a spec."""
    params = inspect.signature(factory).parameters
    items = [f"{k}={format_value(v)}" for k, v in values.items() if v != params[k].default]
    return name + (":" + ",".join(items) if items else "")


def check_pair(pred: Any, ref: Any, mask: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``pred`` and ``ref`` as float64 arrays and ``mask`` as a boolean array, all one shape.

    ``mask`` may be any array; like SynthRAD2023 every non-zero voxel counts as inside.
    Raises :class:`ImtransError` with one line for mismatched shapes, an empty mask and
    non-finite values inside it (a NaN would otherwise silently turn every score into NaN).
    """
    pred = np.asarray(pred, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    where = " inside the mask" if mask is not None else ""
    mask = check_mask(mask, pred.shape, ref.shape)
    for label, array in (("pred", pred), ("ref", ref)):
        if not np.isfinite(array[mask]).all():
            raise ImtransError(f"{label} has NaN or infinite values{where}; fix or mask them out")
    return pred, ref, mask


def check_mask(mask: Any, pred_shape: tuple[int, ...], ref_shape: tuple[int, ...]) -> np.ndarray:
    """The boolean mask for images of these shapes (all True for ``None``), or a one-line error."""
    if pred_shape != ref_shape:
        raise ImtransError(
            f"shapes differ: pred {pred_shape} vs ref {ref_shape}; resample one onto the other's grid first"
        )
    if mask is None:
        mask = np.ones(pred_shape, dtype=bool)
    else:
        mask = np.asarray(mask)
        if mask.shape != pred_shape:
            raise ImtransError(f"mask shape {mask.shape} differs from the images' {pred_shape}")
        mask = mask != 0
    if not mask.any():
        raise ImtransError("mask is empty: nothing to score")
    return mask


def check_axis(axis: int | None, ndim: int) -> int | None:
    """``axis`` made non-negative, or a one-line error when the images have no such axis."""
    if axis is None:
        return None
    if not -ndim <= axis < ndim:
        raise ImtransError(f"axis {axis} does not exist in {ndim}-D images (use 0..{ndim - 1} or none)")
    return axis % ndim


def check_scale(scale: str, choices: tuple[str, ...] = ("paper", "hu", "synthrad")) -> str:
    """``scale`` if it is one of ``choices``; else a ``SpecError`` (a ``ValueError`` too)."""
    if scale not in choices:
        raise SpecError(f"scale {scale!r} is not offered here: expected one of {', '.join(choices)}")
    return scale


def to_scale(hu: np.ndarray, scale: Scale) -> np.ndarray:
    """CT values in HU put on a protocol's scale.

    ``paper``: clip to [-150, 350] HU, then map linearly onto [0, 255] (paper §2.2);
    ``synthrad``: clip to [-1024, 3000] HU; ``hu``: unchanged.
    """
    if check_scale(scale) == "paper":
        lo, hi = PAPER_WINDOW
        return (np.clip(hu, lo, hi) - lo) * (PAPER_PEAK / (hi - lo))
    if scale == "synthrad":
        return np.clip(hu, *SYNTHRAD_RANGE)
    return hu


def value_range(scale: Scale) -> tuple[float, float]:
    """The interval a scale's values lie in; its width is the data range (peak) of PSNR and SSIM.

    Raw HU has no fixed range, and a peak taken from each reference would make scores of
    different patients incomparable, so ``hu`` is refused here.
    """
    if check_scale(scale, ("paper", "synthrad")) == "paper":
        return 0.0, PAPER_PEAK
    return SYNTHRAD_RANGE
