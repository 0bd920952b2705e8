"""Which convolutions an int8 graph keeps in fp32: decided by measuring, against an accuracy budget.

The first convolution, which reads the image, always stays in fp32: OpenVINO's CPU plugin
has no int8 kernel for it (a graph with it quantized does not compile), and it is one of many.
Every other convolution is quantized alone (the rest fp32) and the graph's error against the fp32
graph measured on the calibration slices: that is its sensitivity. The most sensitive are then
kept in fp32, one more at a time, until the graph with all the others in int8 meets the budget
(mean and 99.9th percentile of the absolute error). The normalisations and the tanh are never
quantized (:data:`~imtrans_core.onnx.quantize.INT8_OPERATORS`); calibration runs once and every
trial reuses its ranges.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .graph import INPUT_NAME
from .quantize import conv_names, to_int8

TRIAL_BATCHES = 8  # what each trial measures on: enough slices for a 99.9th percentile of many voxels


@dataclass(frozen=True)
class Error:
    """|int8 - fp32| over a set of slices, in the graph's output units (or the most it may be: a budget)."""

    mean_abs: float
    p999_abs: float

    def within(self, budget: Error) -> bool:
        return self.mean_abs <= budget.mean_abs and self.p999_abs <= budget.p999_abs

    def over(self, budget: Error) -> float:
        """How far past the budget, as the larger of the two ratios (1 = at the budget)."""
        return max(self.mean_abs / budget.mean_abs, self.p999_abs / budget.p999_abs)


@dataclass
class Int8Plan:
    """What :func:`quantize_within` chose and measured."""

    budget: Error  # what it aimed at
    convolutions: list[str]  # every one, input to output
    keep_float: list[str]  # those left in fp32: the first, then the most sensitive first
    error: Error  # the written graph's, on the trial slices
    all_int8: Error  # every convolution but the first quantized
    sensitivity: dict[str, Error] = field(default_factory=dict)  # each convolution quantized alone
    trials: int = 0

    def summary(self) -> dict[str, object]:
        return {
            "budget": vars(self.budget),
            "convolutions": len(self.convolutions),
            "fp32_convolutions": self.keep_float,
            "error": vars(self.error),
            "all_int8_error": vars(self.all_int8),
            "sensitivity": {name: vars(e) for name, e in self.sensitivity.items()},
            "trials": self.trials,
        }


def quantize_within(
    src: Path,
    dst: Path,
    batches: list[np.ndarray],
    budget: Error,
    method: str = "percentile",
    where: list[np.ndarray] | None = None,
) -> Int8Plan:
    """Write to ``dst`` the int8 graph of ``src`` with the fewest fp32 convolutions that meets ``budget``.

    ``batches`` (graph inputs) calibrate; at most ``TRIAL_BATCHES`` of them, spread over the list,
    measure each trial (a trial costs a pass over them). ``budget`` is in the graph's output units,
    over the voxels ``where`` marks (one boolean mask per batch, broadcast to its output; default all).
    """
    from .runtime import open_session

    step = -(-len(batches) // TRIAL_BATCHES)  # ceil: every step-th batch, TRIAL_BATCHES at most
    checked = list(zip(batches, where or [np.ones((), bool)] * len(batches), strict=True))[::step]
    reference = _outputs(open_session(src, providers="cpu"), checked)
    with tempfile.TemporaryDirectory(prefix="imtrans-int8-plan-") as tmp:
        ranges, trial_path = Path(tmp) / "ranges.json", Path(tmp) / "trial.onnx"
        trials = 0

        def measure(keep_float: list[str], only: list[str] | None = None) -> Error:
            nonlocal trials
            trials += 1
            to_int8(src, trial_path, batches, method, keep_float=keep_float, only=only, ranges=ranges)
            return _error(_outputs(open_session(trial_path, providers="cpu"), checked), reference)

        convs = conv_names(src)
        first, rest = convs[:1], convs[1:]
        all_int8 = measure(first)
        plan = Int8Plan(budget, convs, first, all_int8, all_int8)
        if not all_int8.within(budget):
            plan.sensitivity = {name: measure(first, only=[name]) for name in rest}
            ranked = sorted(rest, key=lambda name: plan.sensitivity[name].over(budget), reverse=True)
            for count in range(1, len(ranked) + 1):
                plan.keep_float = first + ranked[:count]
                plan.error = measure(plan.keep_float)
                if plan.error.within(budget):
                    break
        plan.trials = trials
        shutil.copyfile(trial_path, dst)
    return plan


def _outputs(session: object, checked: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """The graph's outputs for each (batch, mask), where the mask holds."""
    outputs = [(session.run(None, {INPUT_NAME: batch})[0], keep) for batch, keep in checked]  # type: ignore[attr-defined]
    return np.concatenate([y[np.broadcast_to(keep, y.shape)] for y, keep in outputs])


def _error(got: np.ndarray, reference: np.ndarray) -> Error:
    diff = np.abs(got - reference)
    return Error(float(diff.mean()), float(np.percentile(diff, 99.9)))
