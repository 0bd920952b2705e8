"""Compare an exported graph with the torch network it came from, and the tolerances that fail an export.

Every export compares onnxruntime with torch on random inputs at two sizes (one
not a multiple of 4) and on slices of a held-out volume, and translates that
whole volume both ways; :data:`TOLERANCES` states what fails the export (an
:class:`~imtrans_core.errors.ImtransError`). Errors are measured on the [-1, 1]
scale and reported in the target's units as well (HU for CT: 250 HU per unit;
scaled MR: 50 per unit).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.intensity import Window
from ..data.slices import window_indices
from ..inference.models import TrainedGenerator
from .graph import INPUT_NAME, OUTPUT_NAME, UNITS, WINDOWS
from .runtime import open_session
from .sample_data import SampleData, body_of, body_stacks


@dataclass(frozen=True)
class Tolerance:
    """What fails an export, on the networks' [-1, 1] scale (CT: x 250 for HU).

    ``max_abs`` bounds single voxels on the check batches (None: reported only);
    ``mean_abs`` bounds the mean absolute error on the phantom slices and over
    the translated volume, ``p999_abs`` (where given) its 99.9th percentile.
    """

    max_abs: float | None
    mean_abs: float
    p999_abs: float | None = None


#: fp32: max 1e-3 (0.25 HU), mean 2e-3 (0.5 HU); measured: max about 5e-6.
#: fp16: max 2e-2 (5 HU), mean 2e-3 (0.5 HU); measured: mean under 0.001 HU.
#: int8: mean 8e-3 (2 HU), 99.9th percentile 0.2 (50 HU), single voxels not bounded: the budget
#: the sensitivity analysis holds the graph to (:mod:`imtrans_core.onnx.sensitivity`).
TOLERANCES = {
    "fp32": Tolerance(max_abs=1e-3, mean_abs=2e-3),
    "fp16": Tolerance(max_abs=2e-2, mean_abs=2e-3),
    "int8": Tolerance(max_abs=None, mean_abs=8e-3, p999_abs=0.2),
}


@dataclass
class Measurement:
    """One comparison of the ONNX graph with torch fp32."""

    what: str  # e.g. "random 2x64x64", "phantom slices 4x256x256", "volume mr-003"
    precision: str
    max_abs: float  # [-1, 1] scale
    mean_abs: float  # [-1, 1] scale
    p999_abs: float  # [-1, 1] scale
    scale: float  # target units per [-1, 1] unit (250 for HU)
    unit: str  # "HU" or "MR units"
    limit: Tolerance
    volume: bool = False

    @property
    def ok(self) -> bool:
        if self.mean_abs > self.limit.mean_abs:
            return False
        if self.limit.p999_abs is not None and self.p999_abs > self.limit.p999_abs:
            return False
        return self.volume or self.limit.max_abs is None or self.max_abs <= self.limit.max_abs

    def describe(self) -> str:
        return (
            f"{self.what}: max {self.max_abs:.2e} ({self.max_abs * self.scale:.3g} {self.unit}), "
            f"mean {self.mean_abs:.2e} ({self.mean_abs * self.scale:.3g} {self.unit}), "
            f"99.9th percentile {self.p999_abs:.2e} ({self.p999_abs * self.scale:.3g} {self.unit})"
        )


# ----------------------------------------------------------------------------- comparisons


class Pair:
    """torch fp32 and an ONNX session side by side, both fed source units and answering target units."""

    def __init__(self, tg: TrainedGenerator, session: Any, intensity_in_graph: bool):
        self.net = tg.net
        self.session = session
        self.source, self.target = WINDOWS[tg.source], WINDOWS[tg.target]
        self.intensity_in_graph = intensity_in_graph
        self.context = tg.context

    def reference(self, raw: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            y = self.net(torch.from_numpy(np.ascontiguousarray(self.source.forward(raw), dtype=np.float32)))
        return self.target.inverse(y.float().numpy())

    def onnx(self, raw: np.ndarray) -> np.ndarray:
        x = raw if self.intensity_in_graph else self.source.forward(raw)
        y = self.session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(x, dtype=np.float32)})[0]
        return y if self.intensity_in_graph else self.target.inverse(y)

    def feed(self, raw: np.ndarray) -> np.ndarray:
        """What the graph takes for these source-unit slices."""
        return np.ascontiguousarray(
            raw if self.intensity_in_graph else self.source.forward(raw), dtype=np.float32
        )

    def compare(self, raw: np.ndarray, batch: int = 4, in_body: bool = True) -> tuple[float, float, float]:
        """Max, mean and 99.9th percentile of |onnx - torch| on the [-1, 1] scale over ``raw`` (n, C, H, W):
        in the body (:func:`~imtrans_core.onnx.sample_data.body_of`), or everywhere (``in_body=False``)."""
        half = (self.target.high - self.target.low) / 2
        parts = []
        for i in range(0, len(raw), batch):
            part = raw[i : i + batch]
            diff = np.abs(self.onnx(part) - self.reference(part)) / half
            keep = body_of(part, self.source, self.context) if in_body else np.ones((1,) * diff.ndim, bool)
            parts.append(diff[np.broadcast_to(keep, diff.shape)])
        diff = np.concatenate(parts)
        if diff.size == 0:  # no body anywhere: nothing an error could be judged on
            return 0.0, 0.0, 0.0
        return float(diff.max()), float(diff.mean()), float(np.percentile(diff, 99.9))


def _random_inputs(window: Window, rng: np.random.Generator, channels: int) -> dict[str, np.ndarray]:
    """Uniform over the source window widened by 10% each side (the graph's clipping is exercised)."""
    span = window.high - window.low
    out = {}
    for shape in ((2, channels, 64, 64), (1, channels, 50, 70)):  # 50 x 70: no multiple of 4 either side
        x = rng.uniform(window.low - 0.1 * span, window.high + 0.1 * span, size=shape).astype(np.float32)
        out["random " + "x".join(str(d) for d in (shape[0], *shape[2:]))] = x
    return out


def verify(
    tg: TrainedGenerator,
    path: Path,
    precision: str,
    intensity_in_graph: bool,
    data: SampleData | None,
    seed: int = 0,
    volume_check: bool = True,
) -> list[Measurement]:
    """Compare the ONNX file with torch: random inputs (not for int8) everywhere, then slices and one whole
    volume of ``data`` in the body."""
    pair = Pair(tg, open_session(path, providers="cpu"), intensity_in_graph)
    limit = TOLERANCES[precision]
    scale = (pair.target.high - pair.target.low) / 2
    unit = UNITS[tg.target]
    out = []
    if precision != "int8":  # noise is far outside the calibrated ranges; int8 is checked on images
        noise = _random_inputs(pair.source, np.random.default_rng(seed), 2 * tg.context + 1)
        out += [
            Measurement(what, precision, *pair.compare(x, in_body=False), scale, unit, limit)
            for what, x in noise.items()
        ]
    if data is not None:
        batch = body_stacks(data.volume, pair.source, tg.context, count=4)
        what = f"{data.volume_id} slices {batch.shape[0]}x{batch.shape[2]}x{batch.shape[3]}"
        out.append(Measurement(what, precision, *pair.compare(batch), scale, unit, limit))
    if data is not None and volume_check:
        n = len(data.volume)
        stack = data.volume[window_indices(n, np.arange(n), tg.context)]  # (n, C, H, W)
        out.append(
            Measurement(
                f"volume {data.volume_id} ({len(stack)} slices)",
                precision,
                *pair.compare(stack),
                scale,
                unit,
                limit,
                volume=True,
            )
        )
    return out
