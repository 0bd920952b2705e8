"""One whole volume through the whole `imtrans translate` command, per backend: wall time, memory, HU error.

What a user waits for: the command from start-up to the written file (imports,
reading, slicing, the network, writing), each backend in its own process, in
interleaved rounds (A B C ... A B C ...) so that the machine's drift hits every
backend alike; the median per backend and its ratio to torch fp32. Every
output is compared with torch fp32's (mean and max |HU| in the body of the MR).
The model is a trained run (``--model``; the errors of reduced precision depend
on trained weights) or a random paper-size ResNet-9; it is exported to ONNX once in
fp32 and once in static int8 (calibrated on the run's data), and both files run
with onnxruntime and OpenVINO. The commands share a cache of their own: OpenVINO
compiles each file in the first round and loads it from the cache in the others.

    python benchmarks/volume.py --model RUN            # a trained run's G_CT, 256 x 38 x 256 MR
    python benchmarks/volume.py --quick                # 128 x 128 in-plane, random cpu-preset generator
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe_machine, print_table, results_json, write_json

# name: (the file it runs: the run, the fp32 or the int8 ONNX export; options of imtrans translate)
BACKENDS: dict[str, tuple[str, list[str]]] = {
    "torch fp32": ("run", ["--backend", "torch"]),
    "torch bf16": ("run", ["--backend", "torch", "--amp", "bf16"]),
    "onnxruntime fp32": ("onnx", ["--backend", "onnx"]),
    "openvino f32": ("onnx", ["--backend", "openvino", "--precision", "f32"]),
    "openvino auto (bf16 on AMX)": ("onnx", ["--backend", "openvino", "--precision", "auto"]),
    "onnxruntime int8 (int8 export)": ("int8", ["--backend", "onnx"]),
    "openvino int8 (int8 export)": ("int8", ["--backend", "openvino", "--precision", "auto"]),
}

#: the row of what ``--backend auto`` runs for an .onnx file, by its choice (imtrans_core.onnx.choose.auto_backend)
AUTO_ROWS = {"openvino": "openvino auto (bf16 on AMX)", "onnx": "onnxruntime fp32"}


def run_command(command: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    """Wall seconds and peak resident memory (MB) of one command, run in a child process (``env``: its
    environment, default this one's)."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(child.pid, 0)  # this child's own resource usage
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(command)}\n{child.stderr.read().decode()[-2000:]}")
    return {"seconds": seconds, "peak_mb": usage.ru_maxrss / 1024}


def folder(work: Path, name: str) -> Path:
    """Where backend ``name`` writes its translation."""
    return work / "".join(c if c.isalnum() else "-" for c in name)


def prepare(args: argparse.Namespace, work: Path) -> tuple[dict[str, Path], Path]:
    """The files each backend runs (a checkpoint, given or random, and its fp32 ONNX export; the int8
    one is :func:`export_int8`'s), and a phantom MR volume on disk."""
    import torch

    import imtrans_core as ic
    from imtrans_core.data.io import write_volume
    from imtrans_core.onnx.export import export_model

    model = Path(args.model) if args.model else work / "random.pt"
    if not args.model:
        torch.manual_seed(0)
        gen = "resnet9:ngf=32,n_blocks=6" if args.quick else "resnet9"
        net = ic.GENERATORS.build(gen)
        config = {"gen": gen, "orientation": "coronal"}
        torch.save({"models": {"g_ct": net.state_dict()}, "config": config, "step": 0}, model)
    files = {"run": model, "onnx": work / "g_ct.onnx", "int8": work / "g_ct-int8.onnx"}
    export_model(model, files["onnx"], direction="mr2ct", verify_model=False)
    size = 128 if args.quick else 256
    volume = work / "mr.nii.gz"
    write_volume(
        ic.DATASETS.build(f"phantom:n_ct=0,n_mr=0,n_paired=1,size={size}").paired[0].load()["mr"], volume
    )
    return files, volume


def export_int8(files: dict[str, Path]) -> dict[str, float]:
    """``imtrans export --precision int8`` of the run, as a user runs it (calibrated on the run's data):
    its wall seconds and peak memory, calibration and sensitivity analysis included."""
    command = [sys.executable, "-m", "imtrans_core", "export", str(files["run"]), "--precision", "int8"]
    return run_command([*command, "--out", str(files["int8"]), "--no-verify"])


def errors(outputs: dict[str, Path], volume: Path) -> dict[str, dict[str, float]]:
    """Mean and max |HU| of each output against torch fp32's in the body, as the export judges int8."""
    from imtrans_core.data.intensity import MR_WINDOW, MRScaling
    from imtrans_core.data.io import read_volume
    from imtrans_core.onnx.sample_data import BODY

    mr = np.asarray(read_volume(volume).array, dtype=np.float32)
    body = MR_WINDOW.forward(mr * MRScaling().scale_of(mr)) > BODY
    reference = read_volume(outputs["torch fp32"]).array[body]
    result = {}
    for name, path in outputs.items():
        diff = np.abs(read_volume(path).array[body] - reference)
        result[name] = {"mean_hu": float(diff.mean()), "max_hu": float(diff.max())}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", help="a run directory or checkpoint (default: random weights)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is reported")
    parser.add_argument(
        "--json", type=Path, help="results file (default: docs/results/benchmarks/volume[_quick].json)"
    )
    parser.add_argument("--prepare-into", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.json = args.json or results_json("volume", args.quick)
    if args.prepare_into:
        files, volume = prepare(args, args.prepare_into)
        print(json.dumps({"files": {k: str(p) for k, p in files.items()}, "volume": str(volume)}))
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        # the commands' own cache: OpenVINO compiles in the first round and loads it after, as for a user
        os.environ["IMTRANS_CACHE"] = str(work / "cache")
        # prepared in a child: a process forked from one holding torch starts with its peak memory
        again = (["--model", args.model] if args.model else []) + (["--quick"] if args.quick else [])
        prepare_command = [sys.executable, __file__, *again, "--prepare-into", tmp]
        prepared = subprocess.run(prepare_command, capture_output=True, text=True, check=True)
        made = json.loads(prepared.stdout.strip().splitlines()[-1])
        files, volume = {k: Path(p) for k, p in made["files"].items()}, Path(made["volume"])
        int8_export = export_int8(files)
        print(f"int8 export: {int8_export['seconds']:.0f} s, peak memory {int8_export['peak_mb']:.0f} MB")
        from imtrans_core.onnx.exported import read_metadata

        int8_plan = read_metadata(files["int8"])["quantization"]  # which convolutions stayed fp32, and why
        times: dict[str, list[dict[str, float]]] = {name: [] for name in BACKENDS}
        for _ in range(args.rounds):
            for name, (runs, options) in BACKENDS.items():
                command = [sys.executable, "-m", "imtrans_core", "translate", str(files[runs])]
                times[name].append(
                    run_command([*command, str(volume), "--out", str(folder(work, name)), *options])
                )
        error = errors({name: folder(work, name) / "mr.nii.gz" for name in BACKENDS}, volume)
    base = float(np.median([t["seconds"] for t in times["torch fp32"]]))
    rows = []
    for name, measured in times.items():
        seconds = float(np.median([t["seconds"] for t in measured]))
        rows.append(
            {
                "variant": name,
                "seconds": round(seconds, 2),
                "vs_fp32": round(base / seconds, 2),
                "peak_mb": round(float(np.median([t["peak_mb"] for t in measured]))),
                "mean_hu": round(error[name]["mean_hu"], 3),
                "max_hu": round(error[name]["max_hu"], 1),
            }
        )
    side = 128 if args.quick else 256
    print_table(f"imtrans translate, one phantom MR of 38 coronal slices of {side} x {side}", rows)
    write_json(
        args.json,
        {
            "benchmark": "volume",
            "model": args.model or "random",
            "volume": f"{side} x 38 x {side}",
            "rounds": args.rounds,
            "int8_plan": int8_plan,
            "int8_export": {key: round(value, 1) for key, value in int8_export.items()},
            "rows": rows,
            "times": times,
            "machine": describe_machine(),
        },
    )


if __name__ == "__main__":
    main()
