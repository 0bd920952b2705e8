"""One whole volume through `translate`, per backend: wall time and peak memory.

Each backend runs in its own process (peak resident memory is per process) on the
same phantom MR (256 x 38 x 256 by default, coronal: 38 slices of 256 x 256), with
the same generator exported once to ONNX. Ratios are to torch fp32 of the same run.

    python benchmarks/volume.py                 # full ResNet-9, random weights
    python benchmarks/volume.py --model runs/x  # a trained run's G_CT
    python benchmarks/volume.py --quick         # 128 x 128 in-plane, the cpu preset's generator
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe_machine, print_table, write_json

BACKENDS = {
    "torch fp32": {"backend": "torch", "amp": "off"},
    "torch bf16": {"backend": "torch", "amp": "bf16"},
    "onnxruntime fp32": {"backend": "onnx", "amp": "off"},
}


def child(model: str, volume: str, backend: str, amp: str) -> None:
    """Translate once in this process; print seconds and peak RSS as JSON."""
    from imtrans_core.io import read_volume
    from imtrans_core.translate import make_backend, translate_volume

    mr = read_volume(volume, modality="mr")
    runner = make_backend(model, "mr2ct", backend, "cpu", amp)
    start = time.perf_counter()
    translate_volume(mr, runner, batch=8)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb}))


def prepare(args: argparse.Namespace, work: Path) -> tuple[Path, Path, Path]:
    """A checkpoint (given or random), its ONNX export, and a phantom MR volume on disk."""
    import torch

    import imtrans_core as ic
    from imtrans_core.export import export_model
    from imtrans_core.io import write_volume

    model = Path(args.model) if args.model else work / "random.pt"
    if not args.model:
        torch.manual_seed(0)
        gen = "resnet9:ngf=32,n_blocks=6" if args.quick else "resnet9"
        net = ic.GENERATORS.build(gen)
        config = {"gen": gen, "orientation": "coronal"}
        torch.save({"models": {"g_ct": net.state_dict()}, "config": config, "step": 0}, model)
    onnx = work / "g_ct.onnx"
    export_model(model, onnx, direction="mr2ct", verify_model=False)
    size = 128 if args.quick else 256
    spec = f"phantom:n_ct=0,n_mr=0,n_paired=1,size={size}"
    volume = work / "mr.nii.gz"
    write_volume(ic.DATASETS.build(spec).paired[0].load()["mr"], volume)
    return model, onnx, volume


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", help="a run directory or checkpoint (default: random weights)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "volume.json")
    parser.add_argument(
        "--child", nargs=4, metavar=("MODEL", "VOLUME", "BACKEND", "AMP"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        model, onnx, volume = prepare(args, Path(tmp))
        measured = {}
        for name, options in BACKENDS.items():
            target = onnx if options["backend"] == "onnx" else model
            command = [
                sys.executable,
                __file__,
                "--child",
                str(target),
                str(volume),
                options["backend"],
                options["amp"],
            ]
            out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            measured[name] = json.loads(out.strip().splitlines()[-1])
    base = measured["torch fp32"]["seconds"]
    rows = [
        {
            "variant": name,
            "seconds": round(m["seconds"], 2),
            "vs_fp32": round(base / m["seconds"], 2),
            "peak_mb": round(m["peak_mb"]),
        }
        for name, m in measured.items()
    ]
    side = 128 if args.quick else 256
    print_table(f"one phantom volume through translate (38 coronal slices of {side} x {side})", rows)
    write_json(
        args.json,
        {"benchmark": "volume", "model": args.model or "random", "rows": rows, "machine": describe_machine()},
    )


if __name__ == "__main__":
    main()
