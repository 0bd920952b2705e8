"""The paper's experiments on the phantom: Table 1, Fig. 4 and Fig. 6 of Hiasa et al. 2018.

A 2 x 2 design — a small and a large unpaired training pool, without and with
the GC loss (lambda_GC 0.3) — scaled to what two CPU cores train in about an
hour: the cpu preset's networks on 128 x 128 coronal slices. For each of the
four CycleGANs:

- Table 1: MAE and PSNR (the paper's [0, 255] scale) of synthetic CT against the
  paired phantom CT of each test subject, then mean +- SD;
- Fig. 4: mutual information between each synthetic CT and its source MR;
- Fig. 6: a two-channel U-Net (CT + synthetic MR from this run's G_MR) trained on
  labelled phantom CT, applied to test MR + synthetic CT; Dice of pelvis, femur,
  gluteus medius and gluteus minimus.

Every run uses the same test subjects and the same labelled CT; Table 1 shows a
constant image and the noise floor beside the four (``imtrans_core.demo.baseline_rows``).
Results go to ``OUT/paper.json``, a Table-1-shaped markdown table and box plots.

    python benchmarks/paper.py --out runs/paper               # about an hour on 2 idle cores
    python benchmarks/paper.py --out runs/paper-q --quick     # minutes: a smoke test
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

import imtrans_core as ic
from imtrans_core.demo import baseline_rows
from imtrans_core.evaluate import evaluate_pair, summarize
from imtrans_core.plots import box_plot
from imtrans_core.training import resolve_config, train
from imtrans_core.translate import TorchBackend, translate_volume

# The paper: 20 MR + 20 CT vs 302 MR + 613 CT volumes. Scaled by about 1/5 and 1/10.
POOLS = {"small": {"n_ct": 4, "n_mr": 4}, "large": {"n_ct": 60, "n_mr": 30}}
GC = {"w/o GC": [], "w/ GC": ["gc:0.3"]}  # --gc-spec replaces the second
STRUCTURES = {"pelvis": (1,), "femur": (3, 4), "gluteus_medius": (6,), "gluteus_minimus": (7,)}


def phantom(pool: dict[str, int], size: int, n_paired: int, seed: int = 0) -> str:
    return f"phantom:n_ct={pool['n_ct']},n_mr={pool['n_mr']},n_paired={n_paired},size={size},seed={seed}"


def run_name(pool: str, losses: list[str]) -> str:
    """The folder of one CycleGAN: its pool and its GC spec (``small-nogc``, ``large-gc-0.3-abs-true``)."""
    if not losses:
        return f"{pool}-nogc"
    return f"{pool}-" + re.sub(r"[^0-9A-Za-z.]+", "-", ",".join(losses)).strip("-")


def train_cyclegan(out: Path, pool: str, gc: str, args: argparse.Namespace) -> Path:
    """Train (or finish, or reuse) the CycleGAN of one pool and one GC setting."""
    run = out / run_name(pool, GC[gc])
    config = resolve_config(
        {
            "data": phantom(POOLS[pool], args.size, 0),
            "size": args.size,
            "iters": args.iters,
            "loss": GC[gc],
            "ckpt_every": max(args.iters // 4, 1),
            "sample_every": max(args.iters // 4, 1),
        },
        None,
        "cpu",
    )
    if (run / "config.json").exists():
        stored = json.loads((run / "config.json").read_text())
        wanted = json.loads(json.dumps(config.to_dict()))
        different = [k for k in ("data", "size", "loss") if stored.get(k) != wanted[k]]
        if different:
            sys.exit(f"error: {run} was trained with other {', '.join(different)}; pass another --out")
        if (run / "checkpoints" / f"ckpt-{args.iters:08d}.pt").exists():
            return run
    resume = run if (run / "config.json").exists() else None
    train(config if resume is None else None, out=run, resume=resume)
    return run


def synthesis_scores(run: Path, subjects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Table 1 and Fig. 4: MAE, PSNR (0-255), MI with the source MR, per test subject."""
    backend = TorchBackend.from_model(run, "mr2ct", device="cpu")
    rows = []
    for subject in subjects:
        subject["sct"] = translate_volume(subject["mr"], backend)
        scores = evaluate_pair(subject["sct"], subject["ct"], mask=subject["mask"], source=subject["mr"])
        rows.append({"id": subject["id"], **{k: scores[k] for k in ("mae", "psnr", "mi", "mae_hu")}})
    return rows


def segmentation_scores(
    run: Path, out: Path, subjects: list[dict[str, Any]], args: argparse.Namespace
) -> list[dict]:
    """Fig. 6: Dice of the two-channel U-Net through this run's synthetic images."""
    from imtrans_metrics.overlap import dice
    from imtrans_segment.engine import SegmentConfig
    from imtrans_segment.engine import train as train_segmenter
    from imtrans_segment.predict import Segmenter

    seg_run = out / f"seg-{run.name}"
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
        )
        train_segmenter(config, out=seg_run, progress=False)
    segmenter = Segmenter.load(seg_run, device="cpu")
    rows = []
    for subject in subjects:
        labels = segmenter.segment(subject["mr"], subject["sct"]).array
        scores = dice(labels, subject["labels"].array, STRUCTURES)
        rows.append({"id": subject["id"], **{f"dice_{k}": v for k, v in scores.items()}})
    return rows


def table_one(results: dict[str, list[dict[str, Any]]]) -> str:
    """Markdown shaped like the paper's Table 1 (rows: subjects, then mean +- SD)."""
    names = list(results)
    lines = ["| | | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for metric, label in (("mae", "MAE"), ("psnr", "PSNR")):
        ids = [row["id"] for row in next(iter(results.values()))]
        for i, subject in enumerate(ids):
            cells = [f"{results[n][i][metric]:.3f}" for n in names]
            lines.append(f"| {label if i == 0 else ''} | {subject} | " + " | ".join(cells) + " |")
        stats = [summarize(results[n])[metric] for n in names]
        lines.append("| | mean ± SD | " + " | ".join(f"{m:.3f} ± {s:.3f}" for m, s in stats) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("runs/paper"))
    parser.add_argument("--iters", type=int, default=2500, help="CycleGAN iterations per run")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--test", type=int, default=5, help="paired test subjects")
    parser.add_argument("--labelled", type=int, default=8, help="labelled CT volumes for the U-Net")
    parser.add_argument("--seg-iters", type=int, default=600)
    parser.add_argument(
        "--gc-spec", default="gc:0.3", help="the GC loss of the 'w/ GC' runs, e.g. gc:0.3,abs=true"
    )
    parser.add_argument("--quick", action="store_true", help="a few iterations of everything (smoke test)")
    args = parser.parse_args()
    GC["w/ GC"] = [args.gc_spec]
    if args.quick:
        args.iters, args.seg_iters, args.test, args.labelled, args.size = 20, 20, 2, 2, 64
    args.out.mkdir(parents=True, exist_ok=True)
    test_source = ic.DATASETS.build(phantom({"n_ct": 0, "n_mr": 0}, args.size, args.test))
    subjects = [s.load() | {"id": s.id} for s in test_source.paired]
    synthesis, segmentation, seconds = {}, {}, {}
    for pool in POOLS:
        for gc in GC:
            name = f"{pool} {gc}"
            start = time.perf_counter()
            run = train_cyclegan(args.out, pool, gc, args)
            synthesis[name] = synthesis_scores(run, subjects)
            segmentation[name] = segmentation_scores(run, args.out, subjects, args)
            seconds[name] = round(time.perf_counter() - start, 1)
            mean = summarize(synthesis[name])
            print(
                f"{name}: MAE {mean['mae'][0]:.2f}, PSNR {mean['psnr'][0]:.2f}, MI {mean['mi'][0]:.3f} "
                f"({seconds[name]:.0f} s)",
                flush=True,
            )
    baselines = baseline_rows(phantom({"n_ct": 0, "n_mr": 0}, args.size, args.test))
    markdown = table_one({**synthesis, **baselines})
    print(markdown)
    box_plot(
        synthesis, ["mae", "psnr", "mi"], args.out / "synthesis.png", title="synthetic CT (Table 1, Fig. 4)"
    )
    dice_keys = [f"dice_{k}" for k in STRUCTURES]
    box_plot(segmentation, dice_keys, args.out / "dice.png", title="segmentation through synthesis (Fig. 6)")
    summary = {
        "settings": {
            **vars(args),
            "out": str(args.out),
            "pools": POOLS,
            "preset": "cpu",
            "phantom": phantom_version(),
        },
        "synthesis": synthesis,
        "baselines": baselines,
        "segmentation": segmentation,
        "means": {n: {**summarize(synthesis[n]), **summarize(segmentation[n])} for n in synthesis},
        "seconds": seconds,
        "table1_markdown": markdown,
        "machine": describe_machine(),
    }
    write_json(args.out / "paper.json", json.loads(json.dumps(summary, default=_plain)))


def phantom_version() -> str:
    """The phantom's version: its voxels, and so every score here, change with it."""
    from imtrans_hip.phantom import PHANTOM_VERSION

    return PHANTOM_VERSION


def _plain(value: Any) -> Any:
    return float(value) if isinstance(value, np.floating) else str(value)


if __name__ == "__main__":
    main()
