"""Does an int8 graph calibrated on a few volumes hold on the volumes it never saw, and on how many must it be calibrated?

The int8 export calibrates activation ranges on slices of the run's MR pool. This study keeps
the convolutions an int8 export left in fp32 and its calibration percentile (``--int8 FILE``'s
metadata) and calibrates the same graph on slices of the pool's first two volumes and then of
all twelve, as the export did before and does now
(:data:`imtrans_core.onnx.sample_data.CALIBRATION_VOLUMES`), and translates
five volumes with each, against the fp32 graph (mean, 99.9th percentile and max |HU| in the body):
two of the pool (unseen by the first calibration, seen by the second), and two paired test
subjects and a training pair, which neither calibration saw.

    imtrans export runs/paper-sup --precision int8 --out runs/paper-sup-int8.onnx
    python studies/int8_calibration.py --model runs/paper-sup --int8 runs/paper-sup-int8.onnx
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from machine import describe_machine, print_table, write_json  # noqa: E402

import imtrans_core as ic  # noqa: E402
from imtrans_core.data.intensity import MR_WINDOW, MRScaling  # noqa: E402
from imtrans_core.data.slices import Plane, to_slices  # noqa: E402
from imtrans_core.inference.translate import translate_volume  # noqa: E402
from imtrans_core.onnx.choose import make_backend  # noqa: E402
from imtrans_core.onnx.export import export_model  # noqa: E402
from imtrans_core.onnx.exported import read_metadata  # noqa: E402
from imtrans_core.onnx.quantize import to_int8  # noqa: E402
from imtrans_core.onnx.sample_data import BODY  # noqa: E402

DATA = "phantom:n_ct=12,n_mr=12,n_paired=2,size=256,n_train_pairs=12"  # docs/benchmarks.md's recipe
SLICES = 32  # as the export


def scaled(volume) -> np.ndarray:
    mr = np.asarray(volume.array, dtype=np.float32)
    return mr * MRScaling().scale_of(mr)


def calibration_batches(pool, indices: list[int]) -> list[np.ndarray]:
    """``SLICES`` body slices spread over the pool volumes ``indices``, as graph inputs."""
    slices = []
    for i in indices:
        stack = to_slices(scaled(pool[i]), Plane.of(pool[i], "coronal"))
        body = np.flatnonzero((MR_WINDOW.forward(stack) > BODY).mean(axis=(1, 2)) >= 0.05)
        slices += [stack[j] for j in body]
    picks = np.linspace(0, len(slices) - 1, SLICES).round().astype(int)
    return [np.ascontiguousarray(MR_WINDOW.forward(slices[k])[None, None], dtype=np.float32) for k in picks]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, help="the run (docs/benchmarks.md's paper-size recipe)")
    parser.add_argument(
        "--int8", required=True, type=Path, help="its int8 export: the convolutions kept in fp32"
    )
    parser.add_argument("--json", type=Path, default=ROOT / "docs" / "results" / "int8_calibration.json")
    args = parser.parse_args()
    plan = read_metadata(args.int8)["quantization"]
    keep = plan["fp32_convolutions"]
    if plan["calibration"] != "percentile" or plan.get("outputs") != "float":
        sys.exit(
            f"{args.int8}: not a percentile-calibrated export with float outputs; this study repeats "
            "the export's quantization, whose convolutions' names must match"
        )
    percentile = plan["percentile"]
    source = ic.DATASETS.build(DATA)
    volumes = {
        "pool mr-0002": source.mr[2],
        "pool mr-0005": source.mr[5],
        "test subject 0": source.paired[0].load()["mr"],
        "test subject 1": source.paired[1].load()["mr"],
        "training pair 0": source.train_pairs[0].load()["mr"],
    }
    pools = {"first two volumes": [0, 1], "all twelve volumes": list(range(12))}
    rows = []
    with tempfile.TemporaryDirectory(prefix="imtrans-calibration-") as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        export_model(args.model, fp32, verify_model=False)  # the graph and the metadata translate needs
        reference = make_backend(fp32, backend="onnx")
        truth = {name: translate_volume(v, reference).array for name, v in volumes.items()}
        for pool_name, indices in pools.items():
            graph = Path(tmp) / "int8.onnx"
            to_int8(
                fp32, graph, calibration_batches(source.mr, indices), percentile=percentile, keep_float=keep
            )
            backend = make_backend(graph, backend="onnx")
            for name, volume in volumes.items():
                body = MR_WINDOW.forward(scaled(volume)) > BODY
                diff = np.abs(translate_volume(volume, backend).array - truth[name])[body]
                rows.append(
                    {
                        "calibrated on": pool_name,
                        "volume": name,
                        "mean_hu": round(float(diff.mean()), 2),
                        "p999_hu": round(float(np.percentile(diff, 99.9)), 1),
                        "max_hu": round(float(diff.max()), 1),
                    }
                )
    title = f"int8 against fp32, {len(keep)} convolutions kept in fp32, percentile {percentile:g}, |HU| in the body"
    print_table(title, rows)
    write_json(
        args.json,
        {
            "study": "int8_calibration",
            "model": args.model,
            "fp32_convolutions": keep,
            "percentile": percentile,
            "rows": rows,
            "machine": describe_machine(),
        },
    )


if __name__ == "__main__":
    main()
