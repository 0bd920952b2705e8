"""Which method for which data: every method on the phantom's three data regimes, over training seeds.

A user holds unpaired archives, a few aligned pairs, or many roughly aligned pairs. For each
regime the methods that can train on it run at the data presets' scale (128 x 128 coronal
slices, two CPU cores), each with three training seeds, and are scored on the same five
paired phantom test subjects as docs/studies/quality-variants.md's variants:

- MAE and PSNR on the paper's [0, 255] scale, SSIM, MAE in HU; SynthRAD2023's MAE, PSNR, SSIM;
- MAE in HU inside the phantom's bone, muscle and fat;
- the Dice of the paper's four structures, each synthetic CT segmented by a CT-only U-Net trained
  on labelled real CT (``imtrans segment train --channels ct``, one per seed): whether the
  synthetic CT carries the anatomy a CT tool needs (the paper's application, §3.2);
- minutes of training, and the machine.

Each cell is the mean ± SD over seeds of its mean over subjects; in each regime the best arm
(lowest MAE) is compared with the runner-up by the paired Wilcoxon test over subjects. The
baselines stand beside the arms: a constant image, the contrast prior's map, a second scan,
the noise floor. Runs are keyed by regime, arm and seed and reused when their configuration is
the same (``seeds.train_or_reuse``); each regime's results go to their own JSON.

    python benchmarks/methods.py --regime few-pairs --runs runs/methods     # about 40 min on 2 cores
    python benchmarks/methods.py --regime few-pairs --arms pix2pix          # one arm; the others stay
    python benchmarks/methods.py --regime misaligned-2mm misaligned-8mm --seeds 0
    python benchmarks/methods.py --regime few-pairs --quick --runs /tmp/mq --results /tmp/mq  # smoke test
    python benchmarks/methods.py --check   # does docs/results/ hold every cell, as defined here?
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
TEST_DATA = "phantom:n_ct=0,n_mr=0,n_paired=5,size=128"  # docs/studies/quality-variants.md's test subjects
POOLS = "phantom:n_ct=12,n_mr=12,n_paired=2,size=128"  # the unpaired preset's pools
SCORES = ("mae", "psnr", "ssim", "mae_hu", "synthrad_mae", "synthrad_psnr", "synthrad_ssim")
TISSUES = ("bone", "muscle", "fat")  # phantom label groups (bone, muscle) or labels (fat)
TESTED = ("mae", "ssim")
STRUCTURES = {"pelvis": (1,), "femur": (3, 4), "gluteus_medius": (6,), "gluteus_minimus": (7,)}  # Fig. 6
LABELLED = "phantom:n_ct=0,n_mr=0,n_paired=8,size=128,seed=1"  # the segmenter's CT: none is a test subject


def pairs(n: int, misregistration: float = 0.0) -> str:
    """The unpaired pools with ``n`` aligned training pairs (moved ``misregistration`` mm RMS apart)."""
    return f"{POOLS},n_train_pairs={n}" + (f",misregistration={misregistration:g}" if misregistration else "")


# every arm's generator: the U-Net of the best recipes (docs/studies/quality-variants.md), pix2pix's own choice too,
# so that the table compares methods, not architectures
UNET = "unet:base=32"
# regime -> arm -> (preset, options): every arm as `imtrans train --preset P OPTIONS` would train it
REGIMES: dict[str, dict[str, tuple[str, dict[str, Any]]]] = {
    "unpaired": {
        "cyclegan + GC + prior (--preset unpaired)": ("unpaired", {"data": POOLS}),
        "cut": ("small", {"model": "cut", "gen": UNET, "data": POOLS}),
        "fastcut": ("small", {"model": "fastcut", "gen": UNET, "data": POOLS}),
    },
    "few-pairs": {
        "supervised U-Net (--preset paired)": ("paired", {"data": pairs(4)}),
        "pix2pix": ("small", {"model": "pix2pix", "gen": UNET, "data": pairs(4)}),
        "hybrid: cyclegan + GC + prior + paired L1": ("unpaired", {"data": pairs(4), "loss": ["paired"]}),
    },
    **{
        f"misaligned-{mm}mm": {  # three seeds at 4 mm; one each at 2 and 8 mm will do
            "supervised U-Net (--preset paired)": ("paired", {"data": pairs(12, mm)}),
            "pix2pix": ("small", {"model": "pix2pix", "gen": UNET, "data": pairs(12, mm)}),
            "reggan (--preset misaligned)": ("misaligned", {"data": pairs(12, mm)}),
        }
        for mm in (2, 4, 8)
    },
}

# the seeds each regime's cells need: three, but one will do at 2 and 8 mm (the issue's scope)
SEEDS = {regime: [0] if regime in ("misaligned-2mm", "misaligned-8mm") else [0, 1, 2] for regime in REGIMES}


def config_of(preset: str, options: dict[str, Any], seed: int, quick: bool) -> Any:
    """The arm's training configuration for ``seed`` (``quick``: 20 iterations of 64 x 64 slices)."""
    values = {**options, "seed": seed}
    if quick:
        values.update(iters=20, size=64, data=_small(values["data"]))
    config = resolve_config(values, None, preset)
    every = max(config.iters // 4, 1)
    return resolve_config({**values, "ckpt_every": every, "sample_every": every}, None, preset)


def scores_of(run: Path, subjects: list[dict[str, Any]], segmenter: Any) -> list[dict[str, Any]]:
    """Per test subject: the run's synthetic CT scored against the real CT in the body mask, by tissue, by Dice."""
    backend = TorchBackend.from_model(run, "mr2ct", device="cpu")
    rows = []
    for subject in subjects:
        sct = translate_volume(subject["mr"], backend)
        scores = evaluate_pair(sct, subject["ct"], mask=subject["mask"])
        more = more_scores(sct, subject, segmenter)
        rows.append({"id": subject["id"], **{k: scores[k] for k in SCORES[:4]}, **more})
    return rows


def more_scores(sct: Any, subject: dict[str, Any], segmenter: Any) -> dict[str, float]:
    """SynthRAD2023's scores, the MAE in HU inside bone, muscle and fat, the Dice through ``sct`` (models and baselines)."""
    from imtrans_hip.anatomy import LABEL_GROUPS, LABELS
    from imtrans_metrics.overlap import dice

    synthrad = evaluate_pair(sct, subject["ct"], mask=subject["mask"], scale="synthrad")
    scores = {k: float(synthrad[k]) for k in SCORES[4:]}
    labels, mae_hu = subject["labels"].array, ic.METRICS.build("mae:scale=hu")
    for tissue in TISSUES:
        inside = np.isin(labels, [LABELS[n] for n in LABEL_GROUPS.get(tissue, [tissue]) if n in LABELS])
        scores[f"mae_hu_{tissue}"] = float(mae_hu(sct.array, subject["ct"].array, inside))
    overlap = dice(segmenter.segment(subject["mr"], sct).array, labels, STRUCTURES)
    scores.update({f"dice_{name}": float(value) for name, value in overlap.items()})
    scores["dice"] = float(np.mean(list(overlap.values())))
    return scores


def ct_segmenter(seed: int, runs: Path, quick: bool) -> Any:
    """The CT-only U-Net of ``seed`` (trained once into ``runs``, then reused) that segments each synthetic CT."""
    from imtrans_segment.config import SegmentConfig
    from imtrans_segment.predict import Segmenter
    from imtrans_segment.train import train as train_segmenter

    run = runs / f"segmenter-ct-seed{seed}"
    if not list((run / "checkpoints").glob("*.pt")):
        iters = 20 if quick else 600
        config = SegmentConfig(
            channels="ct",
            data=_small(LABELLED) if quick else LABELLED,
            net="unet:base=16,depth=3",
            iters=iters,
            lr=1e-3,
            dice_loss=1.0,
            size=64 if quick else 128,
            batch=4,
            log_every=50,
            ckpt_every=iters,
            seed=seed,
        )
        train_segmenter(config, out=run, progress=False)
    return Segmenter.load(run, device="cpu")


def run_regime(regime: str, args: argparse.Namespace) -> dict[str, Any]:
    """Train (or reuse) and score every arm of ``regime`` over ``args.seeds``."""
    test_data, pools = (_small(spec) if args.quick else spec for spec in (TEST_DATA, POOLS))
    subjects = [s.load() | {"id": s.id} for s in ic.DATASETS.build(test_data).paired]
    scores: dict[str, dict[str, list[dict[str, Any]]]] = {}
    minutes: dict[str, dict[str, float]] = {}
    arms = {arm: how for arm, how in REGIMES[regime].items() if not args.arms or arm in args.arms}
    seeds = args.seeds or SEEDS[regime]
    segmenters = {seed: ct_segmenter(seed, args.runs, args.quick) for seed in seeds}
    for arm, (preset, options) in arms.items():
        scores[arm], minutes[arm] = {}, {}
        for seed in seeds:
            run = args.runs / regime / f"{_slug(arm)}-seed{seed}"
            seconds = train_or_reuse(config_of(preset, options, seed, args.quick), run)
            scores[arm][str(seed)] = scores_of(run, subjects, segmenters[seed])
            minutes[arm][str(seed)] = round(seconds / 60, 2)
            mean = np.mean([row["mae_hu"] for row in scores[arm][str(seed)]])
            print(f"{regime} | {arm} | seed {seed}: MAE {mean:.1f} HU, {seconds / 60:.1f} min", flush=True)
    return {
        "regime": regime,
        "test_data": test_data,
        "arms": {
            arm: {
                "preset": REGIMES[regime][arm][0],
                "options": REGIMES[regime][arm][1],
                **over_seeds([_means(rows) for rows in scores[arm].values()]),
                "minutes": minutes[arm],
                "cpu": describe_machine()["cpu"],
                "per_seed": scores[arm],
            }
            for arm in scores
        },
        "baselines": {  # the Dice through the first seed's segmenter
            name: _means(rows)
            for name, rows in baseline_rows(
                test_data, pools, extra=lambda image, vols: more_scores(image, vols, segmenters[seeds[0]])
            ).items()
        },
        "machine": describe_machine(),
        "settings": {"seeds": seeds, "quick": args.quick},
    }


def with_earlier_arms(result: dict[str, Any], earlier: dict[str, Any] | None) -> dict[str, Any]:
    """``result`` joined with the arms of ``earlier`` (the regime's JSON) it did not train, then tested.

    An earlier arm is kept when it scored the same test subjects at the same scale with the recipe
    this script still defines, so that measuring one arm (``--arms``) never drops or retrains the
    others; the best arm is then tested against the runner-up over all of them.
    """
    regime = result["regime"]
    same_test = earlier is not None and (earlier["test_data"], earlier["settings"]["quick"]) == (
        result["test_data"],
        result["settings"]["quick"],
    )
    kept = {
        arm: measured
        for arm, measured in (earlier["arms"].items() if same_test else ())
        if arm in REGIMES[regime] and arm not in result["arms"] and _as_defined(regime, arm, measured)
    }
    arms = {
        arm: result["arms"].get(arm) or kept[arm]
        for arm in REGIMES[regime]
        if arm in result["arms"] or arm in kept
    }
    per_seed = {arm: measured["per_seed"] for arm, measured in arms.items()}
    ranked = sorted(per_seed, key=lambda arm: _mean_over_seeds(per_seed[arm], "mae"))
    return {
        **result,
        "arms": arms,
        "tests": [compare(ranked[0], ranked[1], per_seed, TESTED)] if len(ranked) > 1 else [],
        "not_measured": [arm for arm in REGIMES[regime] if arm not in arms],
    }


def _as_defined(regime: str, arm: str, measured: dict[str, Any]) -> bool:
    """Whether ``measured`` (an arm of a results JSON) trained the recipe this script defines for ``arm``."""
    preset, options = REGIMES[regime][arm]
    return (measured["preset"], measured["options"]) == (preset, json.loads(json.dumps(options)))


def _small(spec: str) -> str:
    """``spec`` at 64 x 64 (--quick)."""
    return spec.replace("size=128", "size=64")


def _slug(arm: str) -> str:
    return re.sub(r"[^0-9A-Za-z]+", "-", arm).strip("-")


def _means(rows: list[dict[str, Any]]) -> dict[str, float]:
    return {k: float(np.mean([row[k] for row in rows])) for k in rows[0] if k != "id"}


def _mean_over_seeds(per_seed: dict[str, list[dict[str, Any]]], key: str) -> float:
    return float(np.mean([_means(rows)[key] for rows in per_seed.values()]))


def problems(regime: str, result: dict[str, Any] | None) -> list[str]:
    """Where ``regime``'s results JSON falls short of this script: arms missing, seeds missing, recipes changed."""
    if result is None:
        return [f"{regime}: not measured (python benchmarks/methods.py --regime {regime})"]
    found = []
    if result["test_data"] != TEST_DATA or result["settings"]["quick"]:
        found.append(
            f"{regime}: measured on {result['test_data']}{' with --quick' if result['settings']['quick'] else ''}"
        )
    for arm in REGIMES[regime]:
        measured = result["arms"].get(arm)
        if measured is None:
            found.append(f"{regime} | {arm}: not measured")
            continue
        if not _as_defined(regime, arm, measured):
            found.append(f"{regime} | {arm}: measured as --preset {measured['preset']} {measured['options']}")
        missing = [seed for seed in SEEDS[regime] if str(seed) not in measured["per_seed"]]
        if missing:
            found.append(f"{regime} | {arm}: seed {' '.join(map(str, missing))} not measured")
    found += [f"{regime} | {arm}: no longer an arm" for arm in result["arms"] if arm not in REGIMES[regime]]
    return found


def check(results: Path) -> int:
    """Print what the committed JSON lacks, one line each; 1 when anything does."""
    found = []
    for regime in REGIMES:
        path = results / f"methods-{regime}.json"
        found += problems(regime, json.loads(path.read_text()) if path.exists() else None)
    for line in found:
        print(line)
    print(
        f"{len(found)} problem(s) in {results}/methods-*.json"
        if found
        else "every cell measured as this script defines it"
    )
    return 1 if found else 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--regime", choices=sorted(REGIMES), nargs="+", default=sorted(REGIMES))
    parser.add_argument("--runs", type=Path, default=Path("runs/methods"), help="Where the runs go.")
    parser.add_argument("--results", type=Path, default=REPO / "docs" / "results", help="Folder of the JSON.")
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=None, help="Default: 0 1 2 (0 at 2 and 8 mm)."
    )
    parser.add_argument("--arms", nargs="+", default=[], help="Only these arms of the regime (default: all).")
    parser.add_argument("--quick", action="store_true", help="20 iterations at 64 x 64: the plumbing only")
    parser.add_argument(
        "--check", action="store_true", help="Train nothing; exit 1 where the JSON lacks a cell."
    )
    args = parser.parse_args()
    if args.check:
        sys.exit(check(args.results))
    unknown = sorted(set(args.arms) - {arm for regime in args.regime for arm in REGIMES[regime]})
    if unknown:
        parser.error(f"--arms {' '.join(unknown)}: not an arm of {' '.join(args.regime)}")
    for regime in args.regime:
        started = time.perf_counter()
        path = args.results / f"methods-{regime}.json"
        result = json.loads(json.dumps(run_regime(regime, args), default=float))
        result = with_earlier_arms(result, json.loads(path.read_text()) if path.exists() else None)
        result["wall_minutes"] = round((time.perf_counter() - started) / 60, 1)
        write_json(path, result)


if __name__ == "__main__":
    main()
