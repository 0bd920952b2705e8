"""Which convolutions an int8 graph keeps in fp32: decided by measuring, against an accuracy budget.

The first convolution, which reads the image, always stays in fp32: OpenVINO's CPU plugin
has no int8 kernel for it (a graph with it quantized does not compile), and it is one of many.
Every other convolution is quantized alone (the rest fp32) and the graph's error against the fp32
graph measured on the calibration slices: that is its sensitivity. The most sensitive are then
kept in fp32, one more at a time, until the graph with all the others in int8 meets the budget
(mean and 99.9th percentile of the absolute error). With percentile calibration each step tries
the :data:`PERCENTILES` in turn and stops at the first that meets the budget: which share of an
activation's range to clip trades rounding against clipping, and the best share differs by model.
The normalisations and the tanh are never quantized (:data:`~imtrans_core.onnx.quantize.INT8_OPERATORS`);
calibration runs once per percentile and every trial reuses its ranges.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .graph import INPUT_NAME
from .quantize import conv_names, to_int8

TRIAL_BATCHES = 8  # what each trial measures on: enough slices for a 99.9th percentile of many voxels

#: the calibration percentiles each step tries, in this order (the first also ranks the sensitivities);
#: which one wins differs by model (docs/deploy.md, int8)
PERCENTILES = (99.999, 99.99, 99.9999)


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


@dataclass(frozen=True)
class Step:
    """One graph the analysis tried: the convolutions it kept in fp32, its calibration percentile, its error."""

    keep_float: tuple[str, ...]
    percentile: float | None
    error: Error


@dataclass
class Int8Plan:
    """What :func:`quantize_within` chose and measured."""

    budget: Error  # what it aimed at
    convolutions: list[str]  # every one, input to output
    keep_float: list[str]  # those left in fp32: the first, then the most sensitive first
    error: Error  # the written graph's, on the trial slices
    percentile: float | None  # the written graph's calibration percentile (None: another method)
    sensitivity: dict[str, Error]  # each convolution quantized alone (empty when all in int8 met the budget)
    steps: list[Step]  # every graph tried but the sensitivities', in turn; the last is the one written

    @property
    def all_int8(self) -> Error:
        """Every convolution but the first quantized, at the first percentile."""
        return self.steps[0].error

    @property
    def trials(self) -> int:
        return len(self.steps) + len(self.sensitivity)

    def summary(self) -> dict[str, object]:
        return {
            "budget": vars(self.budget),
            "convolutions": len(self.convolutions),
            "fp32_convolutions": self.keep_float,
            "error": vars(self.error),
            "percentile": self.percentile,
            "all_int8_error": vars(self.all_int8),
            "sensitivity": {name: vars(e) for name, e in self.sensitivity.items()},
            "steps": [
                {"fp32_convolutions": len(s.keep_float), "percentile": s.percentile, **vars(s.error)}
                for s in self.steps
            ],
            "trials": self.trials,
        }


def quantize_within(
    src: Path,
    dst: Path,
    batches: list[np.ndarray],
    budget: Error,
    method: str = "percentile",
    where: list[np.ndarray] | None = None,
    percentiles: tuple[float, ...] = PERCENTILES,
) -> Int8Plan:
    """Write to ``dst`` the int8 graph of ``src`` with the fewest fp32 convolutions that meets ``budget``.

    ``batches`` (graph inputs) calibrate; at most ``TRIAL_BATCHES`` of them, spread over the list,
    measure each trial (a trial costs a pass over them). ``budget`` is in the graph's output units,
    over the voxels ``where`` marks (one boolean mask per batch, broadcast to its output; default all).
    ``percentiles`` are tried at each step with ``method="percentile"``; the sensitivities are
    measured at the first of them.
    """
    from .runtime import open_session

    stride = -(-len(batches) // TRIAL_BATCHES)  # ceil: every stride-th batch, TRIAL_BATCHES at most
    checked = list(zip(batches, where or [np.ones((), bool)] * len(batches), strict=True))[::stride]
    reference = _outputs(open_session(src, providers="cpu"), checked)
    candidates: tuple[float | None, ...] = percentiles if method == "percentile" else (None,)
    if not candidates:
        raise ValueError("quantize_within needs at least one percentile to try")
    steps: list[Step] = []
    with tempfile.TemporaryDirectory(prefix="imtrans-int8-plan-") as tmp:
        trial_path = Path(tmp) / "trial.onnx"

        def measure(keep_float: list[str], percentile: float | None, only: list[str] | None = None) -> Error:
            ranges = Path(tmp) / f"ranges-{percentile}.json"  # one calibration per percentile
            level = PERCENTILES[0] if percentile is None else percentile  # other methods ignore it
            to_int8(src, trial_path, batches, method, level, keep_float=keep_float, only=only, ranges=ranges)
            return _error(_outputs(open_session(trial_path, providers="cpu"), checked), reference)

        def attempt(keep_float: list[str]) -> Step:
            """Each percentile in turn until one meets the budget; the last one tried stays in the trial file."""
            for percentile in candidates:
                steps.append(Step(tuple(keep_float), percentile, measure(keep_float, percentile)))
                if steps[-1].error.within(budget):
                    break
            return steps[-1]

        convs = conv_names(src)
        first, rest = convs[:1], convs[1:]
        chosen, sensitivity = attempt(first), {}
        if not chosen.error.within(budget):
            sensitivity = {name: measure(first, candidates[0], only=[name]) for name in rest}
            ranked = sorted(rest, key=lambda name: sensitivity[name].over(budget), reverse=True)
            for count in range(1, len(ranked) + 1):
                chosen = attempt(first + ranked[:count])
                if chosen.error.within(budget):
                    break
        shutil.copyfile(trial_path, dst)
    return Int8Plan(
        budget, convs, list(chosen.keep_float), chosen.error, chosen.percentile, sensitivity, steps
    )


def _outputs(session: object, checked: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """The graph's outputs for each (batch, mask), where the mask holds."""
    outputs = [(session.run(None, {INPUT_NAME: batch})[0], keep) for batch, keep in checked]  # type: ignore[attr-defined]
    return np.concatenate([y[np.broadcast_to(keep, y.shape)] for y, keep in outputs])


def _error(got: np.ndarray, reference: np.ndarray) -> Error:
    diff = np.abs(got - reference)
    return Error(float(diff.mean()), float(np.percentile(diff, 99.9)))
