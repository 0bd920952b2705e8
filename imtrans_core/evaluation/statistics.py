"""Paired comparisons over test subjects: is one model's score better than another's on the same cases?

Hiasa et al. compare their arms with the Wilcoxon signed-rank test over test
subjects; a difference between two models' means says nothing without it (or
without several training seeds). The test here is exact: the p-value counts the
sign patterns of the observed ranks, so it holds for the handful of subjects a
medical test set has, with tied differences (average ranks) included.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SignedRankTest:
    """The result of :func:`wilcoxon_signed_rank` on paired scores ``a`` and ``b``."""

    n: int  # pairs with a non-zero difference (zero differences are dropped, as Wilcoxon did)
    w_plus: float  # sum of the ranks of |a - b| where a > b
    p: float  # two-sided, exact
    median_difference: float  # median of a - b over all pairs

    def summary(self) -> str:
        """One line: the median difference, W+ and p."""
        return f"median difference {self.median_difference:+.3g}, W+ {self.w_plus:g} of n={self.n}, p={self.p:.3g}"


def wilcoxon_signed_rank(a: Sequence[float], b: Sequence[float]) -> SignedRankTest:
    """Two-sided exact Wilcoxon signed-rank test of the paired samples ``a`` and ``b``.

    Ranks |a - b| over the non-zero differences (ties share their average
    rank) and compares W+, the rank sum of the positive differences, with its
    distribution when each difference's sign is a fair coin given the ranks:
    p = 2 min(P(W+ <= w), P(W+ >= w)), at most 1. With n pairs the smallest
    possible p is 2 / 2**n: five subjects can never give p < 0.05.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or not len(a):
        raise ValueError(
            f"wilcoxon_signed_rank needs two paired 1-D samples, got shapes {a.shape} and {b.shape}"
        )
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("wilcoxon_signed_rank: the scores must be finite")
    diff = a - b
    median = float(np.median(diff))
    diff = diff[diff != 0]
    if not len(diff):
        return SignedRankTest(0, 0.0, 1.0, median)
    doubled = _doubled_ranks(np.abs(diff))  # integers: average ranks of ties are halves
    w_plus2 = int(doubled[diff > 0].sum())
    null = _null_distribution(doubled)
    p = 2.0 * min(null[: w_plus2 + 1].sum(), null[w_plus2:].sum())
    return SignedRankTest(len(diff), w_plus2 / 2.0, float(min(p, 1.0)), median)


def _doubled_ranks(values: np.ndarray) -> np.ndarray:
    """Twice the average ranks (1-based) of ``values``, as integers."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values), dtype=np.int64)
    ranks[order] = np.arange(1, len(values) + 1)
    doubled = 2 * ranks
    for value in np.unique(values):
        tied = values == value
        doubled[tied] = ranks[tied].min() + ranks[tied].max()  # twice the average of a run of ranks
    return doubled


def _null_distribution(doubled: np.ndarray) -> np.ndarray:
    """P(2 W+ = s) for s = 0 .. sum(doubled), each rank's sign a fair coin."""
    probability = np.zeros(int(doubled.sum()) + 1)
    probability[0] = 1.0
    for r in doubled:
        shifted = np.zeros_like(probability)
        shifted[r:] = probability[: len(probability) - r]
        probability = 0.5 * (probability + shifted)
    return probability
