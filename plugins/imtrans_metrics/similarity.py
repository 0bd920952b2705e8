"""Intensity similarity between a synthetic and a reference image: MAE, PSNR, SSIM, mutual information.

MAE and PSNR are the paper's measures against a registered ground-truth CT (Hiasa et al. 2018,
§3.1, Table 1); mutual information is its measure when no paired CT exists (§3.1, Fig. 4, MI
between synthetic CT and the source MR); SSIM completes the SynthRAD2023 protocol. Each has a
plain function (``mae(pred, ref, mask=None)``) and a registry factory (``mae_factory``) that
returns a :class:`~imtrans_metrics.base.Metric`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any, Literal

import numpy as np

from imtrans_core.api import ImtransError, SpecError

from .base import Metric, Scale, check_axis, check_pair, check_scale, spec_name, to_scale, value_range

RangeScale = Literal["paper", "synthrad"]
Protocol = Literal["wang", "synthrad2023"]

# ----------------------------------------------------------------------------- MAE and PSNR


def mae(pred: Any, ref: Any, mask: Any = None, scale: Scale = "paper") -> float:
    """Mean absolute error inside ``mask``, after putting both images on ``scale``."""
    pred, ref, mask = check_pair(pred, ref, mask)
    return float(np.mean(np.abs(to_scale(pred[mask], scale) - to_scale(ref[mask], scale))))


def psnr(pred: Any, ref: Any, mask: Any = None, scale: RangeScale = "paper") -> float:
    """Peak signal-to-noise ratio in dB: ``20 log10(peak / sqrt(MSE))``, inf when MSE is 0.

    The peak is the scale's data range: 255 for ``paper`` (exactly the paper's formula, §3.1),
    4024 for ``synthrad`` (SynthRAD2023's population range). The MSE is taken inside ``mask``.
    """
    lo, hi = value_range(scale)
    pred, ref, mask = check_pair(pred, ref, mask)
    mse = float(np.mean((to_scale(pred[mask], scale) - to_scale(ref[mask], scale)) ** 2))
    return math.inf if mse == 0.0 else 20.0 * math.log10((hi - lo) / math.sqrt(mse))


def mae_factory(scale: Scale = "paper") -> Metric:
    """Mean absolute error; scale=paper ([-150,350] HU -> [0,255]), hu, or synthrad (HU clipped to [-1024,3000])."""
    check_scale(scale)
    unit = "a.u." if scale == "paper" else "HU"
    return Metric(spec_name("mae", mae_factory, scale=scale), partial(mae, scale=scale), False, unit)


def psnr_factory(scale: RangeScale = "paper") -> Metric:
    """Peak signal-to-noise ratio [dB]; scale=paper (peak 255, the paper's) or synthrad (range 4024)."""
    value_range(scale)
    return Metric(spec_name("psnr", psnr_factory, scale=scale), partial(psnr, scale=scale), True, "dB")


# ----------------------------------------------------------------------------- SSIM

# Wang et al. 2004: an 11-tap Gaussian window with sigma 1.5 and K1 = 0.01, K2 = 0.03. The
# window is truncated at 3.5 sigma (radius 5), as in scikit-image's ``gaussian_weights=True``.
_K1, _K2 = 0.01, 0.03
_GAUSSIAN = np.exp(-0.5 * (np.arange(-5, 6) / 1.5) ** 2)
_GAUSSIAN /= _GAUSSIAN.sum()


def ssim_map(pred: Any, ref: Any, scale: RangeScale = "paper", axis: int | None = None) -> np.ndarray:
    """The local SSIM of every voxel (Wang et al. 2004), a float64 array of the images' shape.

    Both images are put on ``scale`` and shifted to start at 0 (``synthrad``: HU + 1024, as
    SynthRAD2023 does, since SSIM's luminance term assumes non-negative values); the data range
    L is 255 (``paper``) or 4024 (``synthrad``), C1 = (0.01 L)², C2 = (0.03 L)². Local means,
    variances and the covariance are Gaussian-weighted (sigma 1.5, 11 taps) population moments,
    as in Wang et al.; borders are mirrored (numpy's ``symmetric`` padding, scipy's ``reflect``).

    ``axis=None`` spreads the window over every axis (a 3-D Gaussian on volumes, like
    scikit-image and SynthRAD2023); ``axis=k`` treats the images as a stack of 2-D slices
    across axis ``k`` (the window never crosses slices, as in slice-wise 2-D evaluation).
    """
    pred, ref, _ = check_pair(pred, ref)
    return _ssim_map(pred, ref, scale, check_axis(axis, pred.ndim))


def ssim(
    pred: Any,
    ref: Any,
    mask: Any = None,
    scale: RangeScale = "paper",
    axis: int | None = None,
    protocol: Protocol = "wang",
) -> float:
    """Structural similarity: the mean of :func:`ssim_map` over the voxels inside ``mask``.

    The map is computed on the whole images and only averaged inside the mask (every mask voxel
    weighs the same, so with ``axis=k`` a slice counts in proportion to its mask voxels).
    ``protocol="synthrad2023"`` is the challenge's score instead (:func:`ssim_synthrad2023`).
    """
    if protocol == "synthrad2023":
        if scale != "synthrad" or axis is not None:
            raise SpecError("ssim: protocol=synthrad2023 is 3-D on the synthrad scale; drop scale and axis")
        return ssim_synthrad2023(pred, ref, mask)
    pred, ref, mask = check_pair(pred, ref, mask)
    ssim_of = _ssim_map(pred, ref, scale, check_axis(axis, pred.ndim))
    if not np.isfinite(ssim_of[mask]).all():
        raise ImtransError(
            "pred or ref has NaN or infinite values next to the mask, which the SSIM window reaches; fix them"
        )
    return float(np.mean(ssim_of[mask]))


def ssim_factory(scale: RangeScale = "paper", axis: int | None = None, protocol: Protocol = "wang") -> Metric:
    """Structural similarity (Wang 2004, Gaussian sigma 1.5); scale=paper or synthrad; axis=k scores 2-D slices across k.

    ``protocol=synthrad2023`` (with ``scale=synthrad``): the SynthRAD2023 challenge's score, exactly.
    """
    value_range(scale)
    if protocol not in ("wang", "synthrad2023"):
        raise SpecError(f"ssim: protocol must be wang or synthrad2023, got {protocol!r}")
    if protocol == "synthrad2023" and (scale != "synthrad" or axis is not None):
        raise SpecError("ssim: protocol=synthrad2023 needs scale=synthrad and no axis (it is 3-D)")
    name = spec_name("ssim", ssim_factory, scale=scale, axis=axis, protocol=protocol)
    return Metric(name, partial(ssim, scale=scale, axis=axis, protocol=protocol), True, "")


# SynthRAD2023's evaluation (github.com/SynthRAD2023/metrics, functions/image_metrics.py, the
# version with ImageMetrics.ssim(gt, pred, mask)) calls scikit-image's structural_similarity with
# its defaults: a 7-voxel uniform window in every axis, sample covariance, K1 0.01, K2 0.03.
_WINDOW = 7


def ssim_synthrad2023(pred: Any, ref: Any, mask: Any = None) -> float:
    """SSIM as the SynthRAD2023 challenge computes it, in float64.

    Both images clipped to [-1024, 3000] HU; voxels outside ``mask`` set to -1024 in both;
    shifted by +1024; scikit-image's ``structural_similarity`` with ``data_range=4024`` and
    its defaults (7 x 7 x 7 uniform window, sample covariance N/(N-1), mirrored borders);
    the map cropped by 3 voxels on every side and averaged over the cropped mask's voxels
    (over the whole cropped map without a mask). The challenge's code runs on float32
    arrays, so its results can differ from this in the sixth decimal.
    """
    pred, ref, mask = check_pair(pred, ref, mask)
    if min(pred.shape) < _WINDOW:
        raise ImtransError(
            f"SynthRAD2023's SSIM needs at least {_WINDOW} voxels along every axis, got {pred.shape}"
        )
    lo, hi = value_range("synthrad")
    x = np.where(mask, np.clip(pred, lo, hi), lo) - lo
    y = np.where(mask, np.clip(ref, lo, hi), lo) - lo
    n = _WINDOW**x.ndim
    box = np.full(_WINDOW, 1.0 / _WINDOW)
    ssim_of = _local_ssim(x, y, lambda a: _smooth(a, list(range(x.ndim)), box), hi - lo, n / (n - 1))
    inner = tuple(slice(_WINDOW // 2, s - _WINDOW // 2) for s in x.shape)
    return float(np.mean(ssim_of[inner][mask[inner]], dtype=np.float64))


def _ssim_map(x: np.ndarray, y: np.ndarray, scale: RangeScale, axis: int | None) -> np.ndarray:
    lo, hi = value_range(scale)
    x, y = to_scale(x, scale) - lo, to_scale(y, scale) - lo
    axes = [a for a in range(x.ndim) if a != axis]
    return _local_ssim(x, y, lambda a: _smooth(a, axes, _GAUSSIAN), hi - lo)


def _local_ssim(
    x: np.ndarray,
    y: np.ndarray,
    mean: Callable[[np.ndarray], np.ndarray],
    data_range: float,
    cov_norm: float = 1.0,
) -> np.ndarray:
    """Wang et al.'s SSIM at every voxel, local moments by ``mean``; ``cov_norm`` N/(N-1) for sample moments."""
    mu_x, mu_y = mean(x), mean(y)
    var_x = (mean(x * x) - mu_x**2) * cov_norm
    var_y = (mean(y * y) - mu_y**2) * cov_norm
    cov = (mean(x * y) - mu_x * mu_y) * cov_norm
    c1, c2 = (_K1 * data_range) ** 2, (_K2 * data_range) ** 2
    return ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))


def _smooth(x: np.ndarray, axes: list[int], taps: np.ndarray) -> np.ndarray:
    """Separable filtering of ``x`` along ``axes`` by symmetric ``taps``, borders mirrored (scipy's 'reflect').

    The taps are symmetric, so mirror-image pairs are added before weighting: half the
    multiplications, about twice as fast on a CT volume.
    """
    r = len(taps) // 2
    for ax in axes:
        width = [(r, r) if a == ax else (0, 0) for a in range(x.ndim)]
        padded = np.moveaxis(np.pad(x, width, mode="symmetric"), ax, 0)  # a view: filter along axis 0
        n = x.shape[ax]
        out = taps[r] * padded[r : r + n]
        pair = np.empty_like(out)
        for t in range(r):
            np.add(padded[t : t + n], padded[2 * r - t : 2 * r - t + n], out=pair)
            pair *= taps[t]
            out += pair
        x = np.moveaxis(out, 0, ax)
    return x


# ----------------------------------------------------------------------------- mutual information


def mi(
    a: Any,
    b: Any,
    mask: Any = None,
    bins: int = 32,
    normalized: bool = False,
    axis: int | None = None,
    ranges: tuple[tuple[float, float], tuple[float, float]] | None = None,
) -> float:
    """Mutual information of two images in nats, from their joint histogram inside ``mask``.

    MI = H(A) + H(B) - H(A, B), with plug-in entropies of ``bins`` x ``bins`` equal-width bins.
    Each image's bins span ``ranges`` (one ``(lo, hi)`` per image; values beyond them go to the
    edge bins) or, by default, its min..max inside the mask. The plug-in estimate is biased
    upwards by about (bins - 1)² / (2 N) for N voxels.

    ``normalized=True`` gives Studholme's NMI = (H(A) + H(B)) / H(A, B), from 1 (independent)
    to 2 (one determines the other), as scikit-image's ``normalized_mutual_information``.

    ``axis=k`` computes it per 2-D slice across axis ``k`` (slices without mask voxels are
    skipped) and returns the mean over slices, as the paper's Fig. 4 does; the bins stay those
    of the whole images, so the slices are scored on one grid.
    """
    _check_bins(bins)
    a, b, mask = check_pair(a, b, mask)
    axis = check_axis(axis, a.ndim)
    ia = _bin_index(a, mask, bins, ranges[0] if ranges else None)
    ib = _bin_index(b, mask, bins, ranges[1] if ranges else None)
    codes = (ia * bins + ib)[mask]
    if axis is None:
        n_slices = 1
    else:
        n_slices = a.shape[axis]
        shape = [1] * a.ndim
        shape[axis] = n_slices
        slice_of = np.broadcast_to(np.arange(n_slices).reshape(shape), a.shape)
        codes = codes + slice_of[mask] * bins * bins
    counts = np.bincount(codes, minlength=n_slices * bins * bins).reshape(n_slices, bins, bins)
    counts = counts[counts.sum(axis=(1, 2)) > 0].astype(np.float64)
    joint = counts / counts.sum(axis=(1, 2), keepdims=True)
    h_a, h_b = _entropy(joint.sum(axis=2), (1,)), _entropy(joint.sum(axis=1), (1,))
    h_ab = _entropy(joint, (1, 2))
    if normalized:
        scores = np.divide(h_a + h_b, h_ab, out=np.ones_like(h_ab), where=h_ab > 0)
    else:
        scores = np.maximum(h_a + h_b - h_ab, 0.0)  # rounding can leave -1e-16 for independent images
    return float(np.mean(scores))


def mi_factory(bins: int = 32, normalized: bool = False, axis: int | None = None) -> Metric:
    """Mutual information [nats] from a bins x bins joint histogram; normalized=true gives NMI in [1,2]; axis=k averages 2-D slices."""
    _check_bins(bins)
    name = spec_name("mi", mi_factory, bins=bins, normalized=normalized, axis=axis)
    fn = partial(mi, bins=bins, normalized=normalized, axis=axis)
    return Metric(name, fn, True, "" if normalized else "nats")


def _check_bins(bins: int) -> None:
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2:
        raise SpecError(f"bins must be an integer of at least 2, got {bins!r}")


def _bin_index(x: np.ndarray, mask: np.ndarray, bins: int, span: tuple[float, float] | None) -> np.ndarray:
    """The histogram bin (0..bins-1) of every voxel; the top edge belongs to the last bin."""
    if span is None:
        lo, hi = float(x[mask].min()), float(x[mask].max())
    else:
        lo, hi = (float(v) for v in span)
        if not hi > lo:
            raise ValueError(f"a histogram range must have lo < hi, got ({lo}, {hi})")
    if hi == lo:  # a constant image: one occupied bin
        return np.zeros(x.shape, dtype=np.intp)
    index = np.floor((x - lo) * (bins / (hi - lo)))
    # voxels outside the mask may hold NaN or inf: any bin will do, the mask drops them
    return np.clip(np.nan_to_num(index), 0, bins - 1).astype(np.intp)


def _entropy(p: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """Shannon entropy in nats of the distributions ``p`` (summing to 1 over ``axes``); 0 log 0 = 0."""
    return -np.sum(p * np.log(np.where(p > 0, p, 1.0)), axis=axes)
