"""The paired test the docs' claims rest on: the exact Wilcoxon signed-rank test over subjects."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from imtrans_core.evaluation.statistics import wilcoxon_signed_rank


def _brute_force_p(diff: np.ndarray) -> float:
    """Every sign pattern of the ranks of |diff| (average ranks for ties), counted: the definition."""
    values = np.abs(diff)
    ranks = np.array([np.mean([1 + np.sum(values < v), np.sum(values <= v)]) for v in values])
    observed = ranks[diff > 0].sum()
    sums = [
        sum(r for r, s in zip(ranks, signs, strict=True) if s)
        for signs in itertools.product((0, 1), repeat=len(ranks))
    ]
    low = np.mean([s <= observed + 1e-9 for s in sums])
    high = np.mean([s >= observed - 1e-9 for s in sums])
    return min(1.0, 2 * min(low, high))


def test_five_subjects_all_better_is_p_one_sixteenth_and_six_reach_below_five_percent():
    assert wilcoxon_signed_rank([2, 3, 4, 5, 6], [1, 1, 1, 1, 1]).p == pytest.approx(2 / 32)
    six = wilcoxon_signed_rank([1, 1, 1, 1, 1, 1], [2, 3, 4, 5, 6, 7])
    assert six.p == pytest.approx(2 / 64) and six.w_plus == 0 and six.n == 6 and six.median_difference < 0


@pytest.mark.parametrize("seed", range(6))
def test_exact_p_matches_counting_every_sign_pattern_with_ties_and_zeros(seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=11).round(1)  # rounding makes tied |differences| and some zeros
    b = (a + rng.normal(0.2, 1.0, size=11)).round(1)
    b[:2] = a[:2]  # zero differences are dropped
    result = wilcoxon_signed_rank(a, b)
    diff = (a - b)[a != b]
    assert result.n == len(diff) <= 9
    assert result.p == pytest.approx(_brute_force_p(diff), abs=1e-12)


def test_symmetric_differences_give_p_one_and_equal_samples_say_so():
    assert wilcoxon_signed_rank([1, 2, 3, 4], [2, 1, 4, 3]).p == pytest.approx(1.0)
    same = wilcoxon_signed_rank([1.0, 2.0], [1.0, 2.0])
    assert same.n == 0 and same.p == 1.0


def test_bad_samples_are_refused():
    with pytest.raises(ValueError, match="paired"):
        wilcoxon_signed_rank([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="finite"):
        wilcoxon_signed_rank([1, np.nan], [1, 2])


def test_a_study_pairs_each_subject_across_variants_and_counts_seeds(load_benchmark):
    """benchmarks/seeds.py: the test pairs subject i of A with subject i of B, averaged over seeds."""
    seeds = load_benchmark("seeds")
    rng = np.random.default_rng(0)
    hard = rng.uniform(10, 40, size=8)  # subjects differ far more than the variants do

    def rows(offset: float) -> list[dict]:
        return [{"id": i, "mae": h + offset, "ssim": 0.5 - offset / 100} for i, h in enumerate(hard)]

    scores = {"a": {s: rows(-1.0 + 0.1 * k) for k, s in enumerate("012")}, "b": {s: rows(0.0) for s in "012"}}
    result = seeds.compare("a", "b", scores)
    assert result["mae"]["p"] == pytest.approx(2 / 2**8) and result["mae"]["seeds_a_lower"] == 3
    assert result["mae"]["median_difference"] == pytest.approx(-0.9)
    assert result["ssim"]["seeds_a_lower"] == 0  # a's SSIM is higher in every seed
    shuffled = {"a": {s: rows(-1.0)[::-1] for s in "012"}, "b": scores["b"]}
    assert seeds.compare("a", "b", shuffled)["mae"]["p"] > 0.05  # unpaired subjects: no effect found
