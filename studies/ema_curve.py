"""What ``--ema`` buys: each kept checkpoint of a run scored with its trained and its averaged weights.

The runs of ``studies/quality.py --variant ema`` keep both sets of generator
weights in every checkpoint (``models`` and ``ema``). Translation loads the
average; this scores the same checkpoints a second time with the weights as
trained, on the same test subjects, so the two columns differ by the average
alone (same run, same data order).

    python studies/quality.py --variant ema --seeds 0 1 2 --runs runs/quality
    python studies/ema_curve.py runs/quality/ema-seed0 runs/quality/ema-seed1 runs/quality/ema-seed2 \\
        --out docs/results/ema_curve.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # the tools studies share
sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import print_table, write_json
from quality import TEST_DATA, mean_of, score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="Run directories trained with --ema.")
    parser.add_argument("--out", type=Path, required=True, help="JSON to write.")
    args = parser.parse_args()

    import torch

    import imtrans_core as ic
    from imtrans_core.training.checkpoint import list_checkpoints

    ic.plugins.load()
    subjects = [s.load() | {"id": s.id} for s in ic.DATASETS.build(TEST_DATA).paired]
    runs: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        trained = Path(scratch) / "trained.pt"
        for run in args.runs:
            runs[run.name] = []
            for path in list_checkpoints(run):
                state = torch.load(path, map_location="cpu", weights_only=False)
                if "ema" not in state:
                    sys.exit(f"error: {path} holds no averaged weights: train with --ema")
                torch.save({k: v for k, v in state.items() if k != "ema"}, trained)
                row = {"iteration": int(state["step"])}
                row |= {
                    "trained": mean_of(score(trained, subjects)),
                    "averaged": mean_of(score(path, subjects)),
                }
                runs[run.name].append(row)
    iterations = [r["iteration"] for r in next(iter(runs.values()))]
    mean = [
        {
            "iteration": it,
            **{
                f"{kind} {k}": float(np.mean([rows[i][kind][k] for rows in runs.values()]))
                for kind in ("trained", "averaged")
                for k in ("mae", "ssim", "mae_bone")
            },
        }
        for i, it in enumerate(iterations)
    ]
    print_table(
        "trained against averaged weights, mean over the runs",
        [{k: f"{v:.2f}" if isinstance(v, float) else v for k, v in row.items()} for row in mean],
    )
    write_json(
        args.out, json.loads(json.dumps({"test_data": TEST_DATA, "runs": runs, "mean": mean}, default=float))
    )


if __name__ == "__main__":
    main()
