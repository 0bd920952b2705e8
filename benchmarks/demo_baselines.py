"""The demo's scores beside two baselines on the same test subjects, as one JSON for the docs.

A score means little alone: next to the demo's synthetic CT (``DEMO/scores.json``,
written by ``imtrans demo``) this scores, with the same metric functions and the
same body masks,

- **constant**: one value everywhere, the median HU of the real CT in the mask
  (what a model that learned nothing but the mean tissue would write);
- **noise floor**: the same subject's CT rendered again without quantum noise (the
  anatomy, texture and scanner blur are all correct; only the noise, which no model
  can predict from an MR, differs).

    imtrans demo --out runs/demo
    python benchmarks/demo_baselines.py runs/demo --out docs/results/demo.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import print_table, write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("demo", type=Path, help="The folder `imtrans demo --out` wrote.")
    parser.add_argument("--out", type=Path, required=True, help="JSON to write.")
    args = parser.parse_args()

    import imtrans_core as ic
    from imtrans_core.evaluate import evaluate_pair, summarize
    from imtrans_hip import phantom as ph

    demo = json.loads((args.demo / "scores.json").read_text())
    spec = demo["data"]
    quiet = ic.DATASETS.build(f"{spec},ct_noise=0")
    rows: dict[str, list[dict]] = {"constant": [], "noise floor": []}
    for subject, without_noise in zip(ic.DATASETS.build(spec).paired, quiet.paired, strict=True):
        vols = subject.load()
        ct, mask = vols["ct"], vols["mask"]
        constant = ct.with_array(np.full(ct.shape, np.median(ct.array[mask.array > 0]), np.float32))
        for name, image in (("constant", constant), ("noise floor", without_noise.load()["ct"])):
            rows[name].append({"id": subject.id, **evaluate_pair(image, ct, mask=mask, source=vols["mr"])})
    rows["demo model"] = demo["subjects"]
    result = {
        "data": spec,
        "phantom": ph.PHANTOM_VERSION,
        "iterations": demo["iterations"],
        "rows": rows,
        "means": {name: summarize(r) for name, r in rows.items()},
    }
    table = [
        {"variant": name, **{k: f"{m[k][0]:.3f}" for k in ("mae", "psnr", "ssim", "mae_hu")}}
        for name, m in result["means"].items()
    ]
    print_table(f"demo ({spec}) and baselines", table)
    write_json(args.out, json.loads(json.dumps(result, default=float)))


if __name__ == "__main__":
    main()
