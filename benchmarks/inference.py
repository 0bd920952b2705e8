"""Inference speed and accuracy per slice: torch fp32 / bf16, onnxruntime and OpenVINO on the exports.

The int8 graph is the export's: the sensitivity analysis keeps in fp32 the convolutions the
accuracy budget needs (:mod:`imtrans_core.onnx.sensitivity`), so its speed is that of a file
that meets the budget on the calibration slices. OpenVINO (where installed) runs both files as
``translate`` does (:class:`~imtrans_core.onnx.openvino.OpenVinoBackend`): the fp32 one in f32 and at
its own precision (bf16 where the CPU has bf16 units), the int8 one in int8.

Each path translates the same batch of slices (a batch, because OpenVINO spreads its slices over
its streams); times are medians over interleaved rounds
(ABCD ABCD ..., after a warm-up, because a shared 2-core machine is noisy) and
reported as ratios to torch fp32 from the same run, and as the fraction of the machine's
peak (``peak.py``: the faster of a GEMM and OpenVINO's convolutions in the precision the path
computes in, measured just before the path in each round) its FLOPs reach.
Accuracy is each path's deviation from torch fp32 over one whole held-out phantom volume
(absolute HU in the body, where the MR has signal), so it means something only for a trained
model (``--model RUN``); with the default random weights it is reported but says little.

    python benchmarks/inference.py                    # full ResNet-9, 256 x 256 slices, random weights
    python benchmarks/inference.py --model runs/x     # a trained run's G_CT (speed and HU errors)
    python benchmarks/inference.py --quick            # small and fast: 128 x 128, fewer rounds
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe_machine, print_table, results_json, write_json
from peak import timed_beside_peak

import imtrans_core as ic
from imtrans_core.data.intensity import CT_WINDOW
from imtrans_core.onnx.export import export_graph, int8_budget, write_metadata
from imtrans_core.onnx.graph import INPUT_NAME, WINDOWS
from imtrans_core.onnx.openvino import available as openvino_available
from imtrans_core.onnx.providers import loadable_providers, physical_cores
from imtrans_core.onnx.rewrite import for_export
from imtrans_core.onnx.runtime import open_session
from imtrans_core.onnx.sample_data import BODY, body_of, sample_data
from imtrans_core.onnx.sensitivity import quantize_within


def torch_path(net: torch.nn.Module, bf16: bool) -> Callable[[np.ndarray], np.ndarray]:
    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return net(torch.from_numpy(x)).float().numpy()

    return run


def onnx_path(path: Path, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    session = open_session(path, "cpu", threads)
    return lambda x: session.run(None, {INPUT_NAME: x})[0]


def openvino_paths(fp32: Path, int8: Path, threads: int) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """OpenVINO on both files as ``translate`` runs them; the auto row is named for the precision it chose."""
    from imtrans_core.onnx.openvino import OpenVinoBackend

    for path in (fp32, int8):  # what the backend reads of an export's metadata
        write_metadata(path, {"direction": "mr2ct", "source": "mr", "target": "ct", "orientation": "coronal"})
    auto = OpenVinoBackend.from_file(fp32, "auto", threads)
    return {
        "openvino f32": OpenVinoBackend.from_file(fp32, "f32", threads).run,
        f"openvino auto ({auto.runs_in})": auto.run,
        "openvino int8": OpenVinoBackend.from_file(int8, "auto", threads).run,
    }


#: what each path computes its convolutions in: the peak its speed is measured against. onnxruntime
#: runs the int8 export's convolutions dequantized, in fp32 (their outputs stay float: docs/deploy.md)
PRECISION = {
    "torch fp32": "fp32",
    "torch bf16 autocast": "bf16",
    "onnxruntime fp32": "fp32",
    "onnxruntime int8": "fp32",
    "openvino f32": "fp32",
    "openvino auto (bf16)": "bf16",
    "openvino auto (f32)": "fp32",
    "openvino int8": "int8",
    "torch.compile bf16": "bf16",
}
#: slices a timed call translates
BATCH = 8


def slice_flops(net: torch.nn.Module, x: np.ndarray) -> int:
    """The FLOPs torch counts for one slice through ``net`` (2 per multiply-add)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        net(torch.from_numpy(x[:1]))
    return counter.get_total_flops()


def time_paths(
    paths: dict[str, Callable], x: np.ndarray, rounds: int, flops: int
) -> tuple[dict[str, float], dict[str, float], dict[str, list[float]]]:
    """Each path's median milliseconds per slice and median fraction of peak, and the peaks measured.

    Interleaved rounds after one warm-up call each. Within a round the peak of a path's precision
    (:data:`PRECISION`) is measured just before the path runs, and its fraction of peak is its rate
    over that one: this VM's speed can change severalfold within minutes, so a peak measured once,
    before or after the timings, is no ceiling for them.
    """
    for run in paths.values():
        run(x)
    times: dict[str, list[float]] = {name: [] for name in paths}
    fractions: dict[str, list[float]] = {name: [] for name in paths}
    rates: dict[str, list[float]] = {PRECISION[name]: [] for name in paths}
    for _ in range(rounds):
        for name, run in paths.items():
            seconds, peak = timed_beside_peak(lambda run=run: run(x), PRECISION[name])
            ms = seconds * 1000 / len(x)
            times[name].append(ms)
            fractions[name].append(flops / (ms / 1000) / 1e9 / peak)
            rates[PRECISION[name]].append(peak)
    median = statistics.median
    return {n: median(t) for n, t in times.items()}, {n: median(f) for n, f in fractions.items()}, rates


def volume_errors(
    paths: dict[str, Callable], stack: np.ndarray, batch: int = 4
) -> dict[str, dict[str, float]]:
    """Each path against torch fp32 over a whole stack (n, 1, H, W) of MR in [-1, 1]: :func:`hu_errors`."""
    outputs = {}
    for name, run in paths.items():
        parts = [run(np.ascontiguousarray(stack[i : i + batch])) for i in range(0, len(stack), batch)]
        outputs[name] = np.concatenate(parts)
    return hu_errors(outputs, stack)


def hu_errors(outputs: dict[str, np.ndarray], stack: np.ndarray) -> dict[str, dict[str, float]]:
    """Each output (the network's, in [-1, 1]) against torch fp32's, in the body of the MR ``stack`` (as the
    export's budget is judged: :func:`~imtrans_core.onnx.sample_data.body_of`): mean / p99 / p99.9 / max |HU|."""
    hus = {name: CT_WINDOW.inverse(output) for name, output in outputs.items()}
    body = np.broadcast_to(stack > BODY, hus["torch fp32"].shape)
    out = {}
    for name, hu in hus.items():
        diff = np.abs(hu - hus["torch fp32"])[body]
        out[name] = {
            "mean_hu": float(diff.mean()),
            "p99_hu": float(np.percentile(diff, 99)),
            "p999_hu": float(np.percentile(diff, 99.9)),
            "max_hu": float(diff.max()),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="128 x 128 slices, ngf 32, fewer rounds")
    parser.add_argument(
        "--model", type=Path, default=None, help="a run directory or checkpoint (default: random weights)"
    )
    parser.add_argument("--size", type=int, default=None, help="slice side (default 256; 128 with --quick)")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds (default 7; 3 with --quick)")
    parser.add_argument(
        "--threads", type=int, default=None, help="threads for every path (default: physical cores)"
    )
    parser.add_argument(
        "--compile", action="store_true", help="also time torch.compile + bf16 (compiling takes ~30 s)"
    )
    parser.add_argument(
        "--out", type=Path, help="results file (default: docs/results/benchmarks/inference[_quick].json)"
    )
    args = parser.parse_args()
    args.out = args.out or results_json("inference", args.quick)
    size = args.size or (128 if args.quick else 256)
    rounds = args.rounds or (3 if args.quick else 7)
    threads = args.threads or physical_cores()
    torch.set_num_threads(threads)
    torch.manual_seed(0)

    if args.model is not None:
        from imtrans_core.inference.models import load_generator

        generator = load_generator(args.model, "mr2ct")
        net, spec, trained = generator.net, generator.spec, True
    else:
        spec = "resnet9:ngf=32,n_blocks=6" if args.quick else "resnet9"
        net, trained = ic.GENERATORS.build(spec).eval(), False
        spec = str(ic.GENERATORS.resolve(spec))
    phantom = f"phantom:n_ct=1,n_mr={4 if args.quick else 10},n_paired=0,size={size},slices={12 if args.quick else 38}"
    data = sample_data(phantom, "mr", "coronal", n_slices=16 if args.quick else 32)
    to_net = WINDOWS["mr"].forward
    stack = np.ascontiguousarray(to_net(data.volume)[:, None], dtype=np.float32)
    x = np.ascontiguousarray(stack[len(stack) // 2 - BATCH // 2 :][:BATCH])  # from the middle of the body

    with tempfile.TemporaryDirectory(prefix="imtrans-bench-") as tmp:
        fp32, int8 = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        export_graph(for_export(net), fp32)  # the graph the export writes
        started = time.perf_counter()
        batches = [np.ascontiguousarray(to_net(s)[None], dtype=np.float32) for s in data.calibration]
        body = [body_of(s[None], WINDOWS["mr"], 0) for s in data.calibration]
        plan = quantize_within(fp32, int8, batches, int8_budget(), where=body)  # as the export does
        quantize_s = time.perf_counter() - started
        paths: dict[str, Callable] = {
            "torch fp32": torch_path(net, bf16=False),
            "torch bf16 autocast": torch_path(net, bf16=True),
            "onnxruntime fp32": onnx_path(fp32, threads),
            "onnxruntime int8": onnx_path(int8, threads),
        }
        if openvino_available():
            paths |= openvino_paths(fp32, int8, threads)
        if args.compile:
            compiled = torch.compile(net)
            paths["torch.compile bf16"] = torch_path(compiled, bf16=True)
            paths["torch.compile bf16"](x)  # compile outside the timing
        flops = slice_flops(net, x)
        ms, of_peak, rates = time_paths(paths, x, rounds, flops)
        errors = volume_errors(paths, stack)
    achieved = {name: flops / (ms[name] / 1000) / 1e9 for name in paths}

    base = ms["torch fp32"]
    rows = [
        {
            "variant": name,
            "ms / slice": f"{ms[name]:.1f}",
            "vs torch fp32": f"{base / ms[name]:.2f}x",
            "GFLOP/s": f"{achieved[name]:.0f}",
            "of peak": f"{of_peak[name]:.0%}",
            "mean |HU| vs fp32 (body)": f"{errors[name]['mean_hu']:.3f}",
            "p99 |HU|": f"{errors[name]['p99_hu']:.2f}",
            "p99.9 |HU|": f"{errors[name]['p999_hu']:.2f}",
        }
        for name in paths
    ]
    weights = "trained" if trained else "random weights: HU errors are not representative"
    print_table(f"{spec}, batches of {BATCH} at {size} x {size}, {threads} threads ({weights})", rows)
    result = {
        "benchmark": "inference",
        "machine": {
            **describe_machine(),
            "physical_cores": physical_cores(),
            "threads": threads,
            "onnxruntime_providers": loadable_providers(),
        },
        "generator": spec,
        "trained": trained,
        "model": str(args.model) if args.model else None,
        "size": size,
        "batch": BATCH,
        "rounds": rounds,
        "held_out_volume": data.volume_id,
        "gflop_per_slice": flops / 1e9,
        "peak_gflop_per_s": {p: round(statistics.median(r), 1) for p, r in rates.items()},
        "peak_gflop_per_s_by_round": {p: [round(v, 1) for v in r] for p, r in rates.items()},
        "quantize_seconds": round(quantize_s, 1),
        "int8_plan": plan.summary(),
        "rows": [
            {
                "variant": name,
                "ms_per_slice": ms[name],
                "vs_fp32": base / ms[name],
                "gflop_per_s": achieved[name],
                "of_peak": of_peak[name],
                **errors[name],
            }
            for name in paths
        ],
    }
    write_json(args.out, result)


if __name__ == "__main__":
    main()
