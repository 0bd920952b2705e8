"""Baselines on a data set's paired test subjects, beside a model's scores: one JSON for the docs.

A score means little alone. With the same metric functions and the same body
masks as ``imtrans evaluate`` (``imtrans_core.demo.baseline_rows``), this scores

- **constant image**: one value everywhere, the median HU of the real CT in the mask
  (what a model that learned nothing but the mean tissue would write);
- **contrast prior**: each MR value mapped in inverse rank onto the CT values of the
  unpaired pools of ``--pools`` (the small preset's by default), no network: what
  ``--loss prior`` warm-starts from, and what an unpaired model must beat;
- **tissue means**: the same subject's CT rendered again with each tissue flat at its
  mean HU (exact boundaries and blur; no texture, grain or noise): what a perfect
  tissue classifier writes from an MR. Phantom data only;
- **second scan**: the same subject scanned again (``repeat=1``: anatomy, texture and
  blur exact, the noise and grain drawn anew): what a perfect GAN scores. Phantom data only;
- **noise floor**: the same subject's CT rendered again without quantum noise (the
  anatomy, texture and scanner blur are all correct; only the noise, which no model
  can predict from an MR, differs). Phantom data only;

each image but the constant one also with its MAE inside the phantom's bone, muscle and
fat (``--data``; as ``quality.py`` scores a model), and, with ``--demo``, the scores
``imtrans demo`` wrote (``DEMO/scores.json``: its model's and these baselines', on the
demo's own data set).

    imtrans demo --out runs/demo
    python studies/baselines.py --demo runs/demo --out docs/results/demo.json
    python studies/baselines.py --data phantom:n_ct=0,n_mr=0,n_paired=5,size=128 \\
        --out docs/results/baselines.json   # the test subjects of docs/studies/quality-variants.md and reproduction.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # the tools studies share
sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe_machine, print_table, write_json


def main() -> None:
    from imtrans_core.training.config import SMALL_SCALE

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--demo", type=Path, help="The folder `imtrans demo --out` wrote.")
    source.add_argument("--data", help="A phantom data spec whose paired subjects to score.")
    parser.add_argument(
        "--pools",
        default=SMALL_SCALE["data"],
        help="The data whose unpaired pools fit the contrast prior.",
    )
    parser.add_argument("--out", type=Path, required=True, help="JSON to write.")
    args = parser.parse_args()

    from imtrans_core.demo import baseline_rows
    from imtrans_hip import phantom as ph

    demo = json.loads((args.demo / "scores.json").read_text()) if args.demo else None
    spec = demo["data"] if demo else args.data
    # the demo scored them beside its model
    rows = demo["baselines"] if demo else baseline_rows(spec, args.pools, extra=tissue_errors_of)
    if demo:
        rows["demo model"] = demo["subjects"]
    from imtrans_core.evaluation.report import summarize

    result = {
        "data": spec,
        "phantom": ph.PHANTOM_VERSION,
        "iterations": demo["iterations"] if demo else None,
        "preset": demo.get("preset") if demo else None,
        "seconds": demo.get("seconds") if demo else None,
        "machine": describe_machine(),
        "rows": rows,
        "means": {name: summarize(r) for name, r in rows.items()},
    }
    table = [
        {"variant": name, **{k: f"{m[k][0]:.3f}" for k in ("mae", "psnr", "ssim", "mae_hu")}}
        for name, m in result["means"].items()
    ]
    print_table(f"{spec}: baselines", table)
    write_json(args.out, json.loads(json.dumps(result, default=float)))


def tissue_errors_of(image, volumes) -> dict[str, float]:
    """The MAE of a reference image inside the phantom's bone, muscle and fat, as quality.py scores a model."""
    from quality import tissue_errors

    return tissue_errors({"sct": image, "ct": volumes["ct"], "labels": volumes["labels"]})


if __name__ == "__main__":
    main()
