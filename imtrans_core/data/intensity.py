"""Intensity windows: HU or MR values <-> the networks' [-1, 1], and back.

The paper (Sec. 2.2) maps CT [-150, 350] HU and MR [0, 100] to [0, 255]; the generators end in
tanh, so here the same windows map to [-1, 1] and :func:`paper_scale` gives the paper's [0, 255]
for evaluation (PSNR = 20 log10(255 / sqrt(MSE)) on that scale).

Values outside a window are clipped on the way in, so the way back cannot recover them: the
inverse of a clipped value is the window's bound (a CT voxel of 1000 HU comes back as 350 HU).
The inverse also clips its input to [-1, 1], so a translation never leaves the window.

MR has no standard unit, so before its window each MR volume is scaled by :class:`MRScaling`
(robust percentile -> 100); the scale factor is returned so a synthetic MR can be put back on
its source's scale.

Everything works on numpy arrays and torch tensors alike (integer input becomes float32).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ImtransError

Array = Any  # numpy.ndarray or torch.Tensor; torch is never imported here


@dataclass(frozen=True)
class Window:
    """The linear map that sends ``[low, high]`` to ``[-1, 1]``, clipping outside it."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not self.high > self.low:
            raise ValueError(f"window needs low < high, got [{self.low}, {self.high}]")

    def forward(self, x: Array) -> Array:
        """Clip to ``[low, high]``, then map linearly to ``[-1, 1]``."""
        return (_clip(_float(x), self.low, self.high) - self.low) * (2.0 / (self.high - self.low)) - 1.0

    def inverse(self, y: Array) -> Array:
        """Clip to ``[-1, 1]``, then map back to ``[low, high]``."""
        return (_clip(_float(y), -1.0, 1.0) + 1.0) * ((self.high - self.low) / 2.0) + self.low


CT_WINDOW = Window(-150.0, 350.0)  # HU, the paper's window
CT_PADDING = -1024.0  # HU of air: what resampling and registration write outside a CT's field of view
MR_WINDOW = Window(0.0, 100.0)  # after MRScaling


def paper_scale(hu: Array) -> Array:
    """CT in HU -> the paper's [0, 255] scale ([-150, 350] HU, clipped), on which MAE and PSNR are reported."""
    return (CT_WINDOW.forward(hu) + 1.0) * 127.5


@dataclass(frozen=True)
class MRScaling:
    """Per-volume MR scaling: the ``percentile`` of the foreground becomes ``target``, then ``window``.

    The percentile is taken over voxels > 0 only. MR background is air at about 0 and its share
    of the volume depends on the field of view, so including it would move the percentile with
    the FOV; a high percentile of the foreground tracks the bright tissue (fat in T1) instead.
    Voxels above the percentile end up above ``target`` and are clipped by the window.
    """

    percentile: float = 99.5
    target: float = 100.0
    window: Window = MR_WINDOW

    def scale_of(self, x: Array) -> float:
        """The factor that maps this volume's foreground percentile to ``target``."""
        values = _numpy(x)
        foreground = values[values > 0]
        if foreground.size == 0:
            raise ImtransError(
                "MR volume has no voxel above 0, so it has no intensity scale — check that it is an MR image"
            )
        return self.target / float(np.percentile(foreground, self.percentile))

    def forward(self, x: Array, scale: float | None = None) -> tuple[Array, float]:
        """``(x * scale)`` windowed to [-1, 1], and the scale used (computed from ``x`` when not given)."""
        scale = self.scale_of(x) if scale is None else float(scale)
        return self.window.forward(_float(x) * scale), scale

    def inverse(self, y: Array, scale: float) -> Array:
        """[-1, 1] back to the source volume's MR values, given the scale :meth:`forward` returned."""
        return self.window.inverse(y) / scale


def _float(x: Array) -> Array:
    """Floating point as it comes; integers (and Python numbers) as float32."""
    if hasattr(x, "is_floating_point"):  # torch.Tensor
        return x if x.is_floating_point() else x.float()
    x = np.asarray(x)
    return x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float32)


def _clip(x: Array, low: float, high: float) -> Array:
    return x.clamp(low, high) if hasattr(x, "clamp") else np.clip(x, low, high)


def _numpy(x: Array) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
