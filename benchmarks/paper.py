"""The paper's experiments on the phantom, over training seeds: Table 1, Fig. 4 and Fig. 6 of Hiasa et al. 2018.

A 2 x 2 design — a small and a large unpaired training pool, without and with
the GC loss (lambda_GC 0.3) — scaled to two CPU cores: the small preset's networks
on 128 x 128 coronal slices. For each arm and each training seed:

- Table 1: MAE and PSNR (the paper's [0, 255] scale) and SSIM of synthetic CT
  against the paired phantom CT of each test subject;
- Fig. 4: mutual information between each synthetic CT and its source MR;
- Fig. 6: a two-channel U-Net (CT + synthetic MR from this run's G_MR) trained on
  labelled phantom CT, applied to test MR + synthetic CT; Dice of pelvis, femur,
  gluteus medius and gluteus minimus.

Each arm is summarised as mean +- SD over seeds of its mean over subjects; GC
against no GC in each pool, and the large pool against the small one, are
compared with the paper's paired Wilcoxon signed-rank test over subjects (each
subject's score averaged over the seeds). A constant image, the tissue means
and the noise floor stand beside the arms (``imtrans_core.demo.baseline_rows``).
Every run folder is keyed by its pool, GC spec and seed, and one trained with
other settings is refused. The JSON goes to ``--results``; ``python
benchmarks/tables.py`` writes docs/reproduction.md's tables from it.

    python benchmarks/paper.py --seeds 0 1 2 --runs runs/paper     # hours on 2 idle cores
    python benchmarks/paper.py --quick --runs /tmp/pq --results /tmp/pq/paper.json   # a smoke test
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe_machine, write_json
from seeds import compare, over_seeds, train_or_reuse

import imtrans_core as ic
from imtrans_core.demo import baseline_rows
from imtrans_core.evaluation.scoring import evaluate_pair
from imtrans_core.inference.backends import TorchBackend
from imtrans_core.inference.translate import translate_volume
from imtrans_core.training import resolve_config

REPO = Path(__file__).resolve().parents[1]
# The paper: 20 MR + 20 CT vs 302 MR + 613 CT volumes. Scaled by about 1/5 and 1/10.
POOLS = {"small": {"n_ct": 4, "n_mr": 4}, "large": {"n_ct": 60, "n_mr": 30}}
QUICK_POOLS = {"small": {"n_ct": 2, "n_mr": 2}, "large": {"n_ct": 4, "n_mr": 3}}  # --quick: plumbing only
STRUCTURES = {"pelvis": (1,), "femur": (3, 4), "gluteus_medius": (6,), "gluteus_minimus": (7,)}
SYNTHESIS = ("mae", "psnr", "ssim", "mae_hu", "mi")
TESTED = ("mae", "psnr", "mi", *(f"dice_{k}" for k in STRUCTURES))


def phantom(pool: dict[str, int], size: int, n_paired: int, seed: int = 0) -> str:
    return f"phantom:n_ct={pool['n_ct']},n_mr={pool['n_mr']},n_paired={n_paired},size={size},seed={seed}"


def run_name(pool: str, losses: list[str], seed: int) -> str:
    """The folder of one CycleGAN: pool, GC spec and seed (``small-nogc-seed0``, ``large-gc-0.3-abs-true-seed2``)."""
    if not losses:
        return f"{pool}-nogc-seed{seed}"
    return f"{pool}-" + re.sub(r"[^0-9A-Za-z.]+", "-", ",".join(losses)).strip("-") + f"-seed{seed}"


def arms(gc_specs: list[str]) -> dict[str, tuple[str, list[str]]]:
    """Arm name -> (pool, losses): each pool without GC and with each GC spec."""
    settings = {"w/o GC": [], **{f"w/ {spec}": [spec] for spec in gc_specs}}
    return {f"{pool} {gc}": (pool, losses) for pool in POOLS for gc, losses in settings.items()}


def train_cyclegan(pool: str, losses: list[str], seed: int, args: argparse.Namespace) -> Path:
    """Train (or finish, or reuse) the CycleGAN of one pool, GC setting and seed."""
    run = args.runs / run_name(pool, losses, seed)
    config = resolve_config(
        {
            "data": phantom(args.pools[pool], args.size, 0),
            "size": args.size,
            "iters": args.iters,
            "loss": losses,
            "seed": seed,
            "ckpt_every": max(args.iters // 4, 1),
            "sample_every": max(args.iters // 4, 1),
        },
        None,
        "small",
    )
    train_or_reuse(config, run)
    return run


def synthesis_scores(run: Path, subjects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Table 1 and Fig. 4: MAE, PSNR (0-255), SSIM, MAE in HU, MI with the source MR, per test subject."""
    backend = TorchBackend.from_model(run, "mr2ct", device="cpu")
    rows = []
    for subject in subjects:
        subject["sct"] = translate_volume(subject["mr"], backend)
        scores = evaluate_pair(subject["sct"], subject["ct"], mask=subject["mask"], source=subject["mr"])
        rows.append({"id": subject["id"], **{k: scores[k] for k in SYNTHESIS}})
    return rows


def segmentation_scores(
    run: Path, seed: int, subjects: list[dict[str, Any]], args: argparse.Namespace
) -> list[dict]:
    """Fig. 6: Dice of the two-channel U-Net (trained with ``seed``) through this run's synthetic images."""
    from imtrans_metrics.overlap import dice
    from imtrans_segment.config import SegmentConfig
    from imtrans_segment.predict import Segmenter
    from imtrans_segment.train import train as train_segmenter

    seg_run = args.runs / f"seg-{run.name}"
    if not (seg_run / "segment.json").exists() or not list((seg_run / "checkpoints").glob("*.pt")):
        config = SegmentConfig(
            cyclegan=str(run),
            data=phantom({"n_ct": 0, "n_mr": 0}, args.size, args.labelled, seed=1),
            net="unet:base=16,depth=3",
            iters=args.seg_iters,
            lr=1e-3,
            dice_loss=1.0,
            size=args.size,
            batch=4,
            log_every=50,
            ckpt_every=args.seg_iters,
            seed=seed,
        )
        train_segmenter(config, out=seg_run, progress=False)
    segmenter = Segmenter.load(seg_run, device="cpu")
    rows = []
    for subject in subjects:
        labels = segmenter.segment(subject["mr"], subject["sct"]).array
        scores = dice(labels, subject["labels"].array, STRUCTURES)
        rows.append({"id": subject["id"], **{f"dice_{k}": v for k, v in scores.items()}})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=Path, default=Path("runs/paper"), help="Where the runs go.")
    parser.add_argument("--results", type=Path, default=REPO / "docs" / "results" / "reproduction.json")
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0, 1, 2], help="Training seeds (default 0 1 2)."
    )
    parser.add_argument("--iters", type=int, default=1200, help="CycleGAN iterations per run")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--test", type=int, default=12, help="paired test subjects (6 at least for p < 0.05)")
    parser.add_argument("--labelled", type=int, default=8, help="labelled CT volumes for the U-Net")
    parser.add_argument("--seg-iters", type=int, default=600)
    parser.add_argument(
        "--gc-spec",
        nargs="+",
        default=["gc:0.3"],
        help="the GC loss of each 'w/ GC' arm, e.g. gc:0.3,abs=false",
    )
    parser.add_argument("--quick", action="store_true", help="a few iterations of everything (smoke test)")
    args = parser.parse_args()
    if args.quick:
        args.iters, args.seg_iters, args.test, args.labelled, args.size = 20, 20, 2, 2, 64
    args.pools = QUICK_POOLS if args.quick else POOLS
    test_data = phantom({"n_ct": 0, "n_mr": 0}, args.size, args.test)
    subjects = [s.load() | {"id": s.id} for s in ic.DATASETS.build(test_data).paired]
    scores: dict[str, dict[str, list[dict[str, Any]]]] = {}
    seconds: dict[str, dict[str, float]] = {}
    for name, (pool, losses) in arms(args.gc_spec).items():
        scores[name], seconds[name] = {}, {}
        for seed in args.seeds:
            start = time.perf_counter()
            run = train_cyclegan(pool, losses, seed, args)
            synthesis = synthesis_scores(run, subjects)
            segmentation = segmentation_scores(run, seed, subjects, args)
            scores[name][str(seed)] = [{**a, **b} for a, b in zip(synthesis, segmentation, strict=True)]
            seconds[name][str(seed)] = round(time.perf_counter() - start, 1)
            means = _means(scores[name][str(seed)])
            print(
                f"{name} seed {seed}: MAE {means['mae']:.2f}, PSNR {means['psnr']:.2f}, MI {means['mi']:.3f}"
            )
    result = {
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "phantom": phantom_version(),
        "test_data": test_data,
        "arms": {name: _summary(per_seed, seconds[name]) for name, per_seed in scores.items()},
        "baselines": {name: _means(rows) for name, rows in baseline_rows(test_data).items()},
        "tests": comparisons(scores, args.gc_spec),
        "machine": describe_machine(),
    }
    write_json(args.results, json.loads(json.dumps(result, default=float)))


def comparisons(scores: dict[str, Any], gc_specs: list[str]) -> list[dict[str, Any]]:
    """The paper's questions: GC against none in each pool; the large pool against the small one."""
    settings = ["w/o GC", *(f"w/ {spec}" for spec in gc_specs)]
    pairs = [(f"{pool} {gc}", f"{pool} w/o GC") for pool in POOLS for gc in settings[1:]]
    pairs += [(f"large {gc}", f"small {gc}") for gc in settings]
    return [compare(a, b, scores, TESTED) for a, b in pairs]


def _means(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Mean over subjects of each score."""
    return {k: float(np.mean([row[k] for row in rows])) for k in rows[0] if k != "id"}


def _summary(per_seed: dict[str, list[dict[str, Any]]], seconds: dict[str, float]) -> dict[str, Any]:
    return {
        **over_seeds([_means(rows) for rows in per_seed.values()]),
        "per_seed": per_seed,
        "seconds": seconds,
    }


def phantom_version() -> str:
    """The phantom's version: its voxels, and so every score here, change with it."""
    from imtrans_hip.phantom import PHANTOM_VERSION

    return PHANTOM_VERSION


if __name__ == "__main__":
    main()
