"""Does a setting help? Variants of studies/quality.py compared over training seeds and test subjects.

A GAN run varies from seed to seed, and five test subjects can never give a
Wilcoxon p below 0.05, so a claim about a loss or a setting is made here: each
variant trained with the same seeds (or its finished runs reused), scored on
``--subjects`` paired phantom subjects, and every two variants compared with the
paired Wilcoxon signed-rank test over subjects (each subject's score averaged
over the seeds), as the paper compares its arms; beside it, in how many seeds
one variant's mean beat the other's. One JSON per study in docs/results/compare/.

    python studies/compare.py gc --variants nogc cpu gc-signed gc-diff --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # the tools studies share
sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe_machine, print_table, write_json
from quality import METRICS, VARIANTS, config_of, mean_of, score, train_variant
from seeds import compare, over_seeds

REPO = Path(__file__).resolve().parents[1]
TESTED = ("mae", "ssim")  # the scores each pair of variants is tested on


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("study", help="Name of the study: its JSON is docs/results/compare/STUDY.json.")
    parser.add_argument("--variants", nargs="+", required=True, choices=sorted(VARIANTS), metavar="VARIANT")
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0, 1, 2], help="Training seeds (default 0 1 2)."
    )
    parser.add_argument("--subjects", type=int, default=20, help="Paired test subjects (default 20).")
    parser.add_argument("--runs", type=Path, default=Path("runs/quality"), help="Where the runs go.")
    parser.add_argument("--results", type=Path, default=REPO / "docs" / "results" / "compare")
    args = parser.parse_args()
    if len(args.variants) < 2 or len(set(args.variants)) < len(args.variants):
        parser.error("--variants: name at least two different variants")

    import imtrans_core as ic

    ic.plugins.load()
    data = f"phantom:n_ct=0,n_mr=0,n_paired={args.subjects},size=128"
    subjects = [s.load() | {"id": s.id} for s in ic.DATASETS.build(data).paired]
    scores = {
        v: {str(seed): score_seed(v, seed, args.runs, subjects) for seed in args.seeds} for v in args.variants
    }
    result = {
        "study": args.study,
        "test_data": data,
        "seeds": args.seeds,
        "variants": {v: summarize(v, per_seed) for v, per_seed in scores.items()},
        "tests": [compare(a, b, scores, TESTED) for a, b in itertools.combinations(args.variants, 2)],
        "machine": describe_machine(),
    }
    print_table(
        f"{args.study}: mean over {len(args.seeds)} seeds of the mean over {len(subjects)} subjects",
        [
            {"variant": v, **{k: f"{s['mean'][k]:.3f}" for k in METRICS}}
            for v, s in result["variants"].items()
        ],
    )
    for t in result["tests"]:
        print(f"{t['a']} vs {t['b']}: " + "; ".join(f"{k} p={t[k]['p']:.3g}" for k in TESTED))
    write_json(args.results / f"{args.study}.json", json.loads(json.dumps(result, default=float)))


def score_seed(variant: str, seed: int, runs: Path, subjects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The finished run of ``variant`` with ``seed`` (trained if missing), scored per test subject."""
    run, _ = train_variant(variant, seed, None, runs)
    rows = score(run, subjects)
    print(f"{variant} seed {seed}: " + ", ".join(f"{k} {v:.3f}" for k, v in mean_of(rows).items()))
    return rows


def summarize(variant: str, per_seed: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Mean and SD over seeds of the subject means, and what was trained."""
    config = config_of(variant, 0, None)
    return {
        "why": VARIANTS[variant][1],
        "loss": list(config.loss),
        "gen": config.gen,
        "iters": config.iters,
        **over_seeds([mean_of(rows) for rows in per_seed.values()]),
        "per_seed": per_seed,
    }


if __name__ == "__main__":
    main()
