"""Which MR voxels should the contrast prior rank? Its map scored with the body taken three ways.

``--loss prior`` and the ``contrast prior`` baseline rank every MR value above the
air's -1 on the [-1, 1] scale, which takes in the noise of the MR's background
around the body (its values reach -0.9 and beyond). This fits the map again on
the small preset's pools with the MR's body found as it should be, the voxels above
a threshold plus everything they enclose (the dark cortex, gas and urine inside
stay in; only the background connected to the volume's border goes), and scores
each map as ``studies/baselines.py`` does, on the same five test subjects
(docs/studies/quality-variants.md, cause 10).

    python studies/prior_mask.py --out docs/results/prior_mask.json
"""

from __future__ import annotations

import argparse
import json
import sys
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # the tools studies share
sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import print_table, write_json
from quality import TEST_DATA

THRESHOLDS = (-0.9, -0.8)  # on the MR's [-1, 1] scale: the background's noise lies mostly below -0.9


def enclosed_body(scaled: np.ndarray, above: float) -> np.ndarray:
    """Voxels above ``above`` and all they enclose: everything but the low region reaching the border."""
    from scipy import ndimage

    labels, _ = ndimage.label(scaled <= above)
    border = np.unique(np.concatenate([np.moveaxis(labels, axis, 0)[[0, -1]].ravel() for axis in range(3)]))
    return ~np.isin(labels, border[border > 0])


def main() -> None:
    from imtrans_core.training.config import SMALL_SCALE

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pools", default=SMALL_SCALE["data"], help="Data whose pools fit the map.")
    parser.add_argument("--out", type=Path, required=True, help="JSON to write.")
    args = parser.parse_args()

    import imtrans_core as ic
    from imtrans_core.demo import contrast_prior_map
    from imtrans_core.evaluation.report import summarize
    from imtrans_core.evaluation.scoring import evaluate_pair

    ic.plugins.load()
    bodies = {"above -0.98 (as --loss prior)": None}
    bodies |= {f"above {t} and what it encloses": partial(enclosed_body, above=t) for t in THRESHOLDS}
    subjects = [s.load() | {"id": s.id} for s in ic.DATASETS.build(TEST_DATA).paired]
    rows: dict[str, list[dict]] = {}
    for name, body in bodies.items():
        prior = contrast_prior_map(args.pools, mr_body=body)
        rows[name] = [
            {"id": s["id"], **evaluate_pair(prior(s["mr"]), s["ct"], mask=s["mask"], source=s["mr"])}
            for s in subjects
        ]
    means = {name: summarize(r) for name, r in rows.items()}
    print_table(
        "the contrast prior's map by the MR body it ranks",
        [{"body": n, **{k: f"{m[k][0]:.2f}" for k in ("mae", "ssim", "mae_hu")}} for n, m in means.items()],
    )
    result = {"pools": args.pools, "data": TEST_DATA, "rows": rows, "means": means}
    write_json(args.out, json.loads(json.dumps(result, default=float)))


if __name__ == "__main__":
    main()
