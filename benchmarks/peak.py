"""The machine's limit: the best rate of each precision's dense kernels on the threads a benchmark uses.

A speed means little without the ceiling it runs under. Two kernels measure it, and the peak is
the faster: a square GEMM of 2048 by torch's BLAS (oneDNN, MKL): fp32, bf16 (native only with
bf16 units; else emulated, and the rate says so) and int8 (``torch._int_mm``: VNNI or AMX where
the CPU has them); and, where OpenVINO is installed, a chain of the 3 x 3 convolutions that hold
most of a ResNet generator's work (256 channels at 64 x 64), compiled by OpenVINO in that
precision. The second is there because the first is no ceiling for OpenVINO's convolutions: the
GEMM reorders its operands on every call, and on AMX ``torch._int_mm`` stays far below what
OpenVINO's int8 convolutions reach (docs/benchmarks.md).
The benchmarks divide what a path achieves by the peak of the precision it computes in.

    python benchmarks/peak.py          # prints the rates and writes docs/results/benchmarks/peak-CLASS.json
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe_machine, print_table, results_json, write_json

PRECISIONS = ("fp32", "bf16", "int8")


def gemm_rate(precision: str, n: int = 2048, repeats: int = 5) -> float:
    """The best of ``repeats`` n x n x n GEMMs in ``precision``, in GFLOP/s (int8: GOP/s, 2 per multiply-add)."""
    if precision == "int8":
        a, b = (torch.randint(-127, 128, (n, n), dtype=torch.int8) for _ in range(2))
        run = lambda: torch._int_mm(a, b)  # noqa: E731
    else:
        dtype = torch.float32 if precision == "fp32" else torch.bfloat16
        a, b = (torch.randn(n, n).to(dtype) for _ in range(2))
        run = lambda: torch.mm(a, b)  # noqa: E731
    run()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return 2 * n**3 / best / 1e9


#: the convolutions of :func:`conv_rate`: a ResNet block's 3 x 3, ``channels`` in and out at ``side`` x ``side``
CHAIN = {"layers": 8, "channels": 256, "side": 64}


def conv_rate(precision: str, threads: int, repeats: int = 2) -> float | None:
    """GFLOP/s (int8: GOP/s) of OpenVINO running :data:`CHAIN` in ``precision``, one slice per request
    on each of its streams (as the ``openvino`` backend runs); None without OpenVINO, and for bf16 on
    a CPU without bf16 units (OpenVINO would run f32). Compiled, timed and released on the OpenVINO
    thread (``imtrans_core.onnx.openvino`` says why)."""
    from imtrans_core.cpu import cpu_has_fast_bf16
    from imtrans_core.onnx.openvino import available, on_openvino_thread

    if not available() or (precision == "bf16" and not cpu_has_fast_bf16()):
        return None
    return on_openvino_thread(_chain_rate, precision, threads, repeats)


def _chain_rate(precision: str, threads: int, repeats: int) -> float:
    import numpy as np
    import openvino as ov
    from openvino import opset13 as ops

    layers, channels, side = CHAIN["layers"], CHAIN["channels"], CHAIN["side"]
    rng = np.random.default_rng(0)
    x = ops.parameter([1, channels, side, side], np.float32)
    h = x
    for _ in range(layers):
        weight = rng.integers(-127, 128, (channels, channels, 3, 3)).astype(np.int8)
        if precision == "int8":  # the QDQ pattern OpenVINO runs as an int8 convolution
            h = ops.fake_quantize(h, 0.0, 4.0, 0.0, 4.0, 256)
            w = ops.multiply(ops.convert(ops.constant(weight), np.float32), np.float32(1e-4))
        else:
            w = ops.constant(weight.astype(np.float32) * np.float32(1e-4))
        h = ops.relu(ops.convolution(h, w, [1, 1], [1, 1], [1, 1], [1, 1]))
    config: dict[str, object] = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "THROUGHPUT"}
    if precision != "int8":
        config["INFERENCE_PRECISION_HINT"] = "f32" if precision == "fp32" else "bf16"
    compiled = ov.Core().compile_model(ov.Model([h], [x]), "CPU", config)
    requests = [
        compiled.create_infer_request()
        for _ in range(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
    ]
    data = rng.random((1, channels, side, side), dtype=np.float32)
    best = float("inf")
    for _ in range(repeats + 1):  # the first call warms the kernels up
        started = time.perf_counter()
        for request in requests:
            request.start_async({0: data})
        for request in requests:
            request.wait()
        best = min(best, time.perf_counter() - started)
    slices = len(requests)
    requests.clear()  # the requests before the compiled model, as OpenVINO frees them
    del compiled
    return 2 * layers * channels**2 * 9 * side**2 * slices / best / 1e9


def peak_rate(precision: str, threads: int) -> float:
    """The faster of :func:`gemm_rate` and :func:`conv_rate` (GFLOP/s): the ceiling of ``precision``."""
    return max(gemm_rate(precision, repeats=2), conv_rate(precision, threads) or 0.0)


def timed_beside_peak(run: Callable[[], object], precision: str) -> tuple[float, float]:
    """The seconds ``run()`` takes, and the peak of ``precision`` measured just before it (GFLOP/s).

    A shared VM's speed can change severalfold within minutes, so a fraction of peak means something only when
    the two are measured together: the benchmarks take the peak beside every timing.
    """
    rate = peak_rate(precision, torch.get_num_threads())
    started = time.perf_counter()
    run()
    return time.perf_counter() - started, rate


def peaks(threads: int, precisions: tuple[str, ...] = PRECISIONS) -> dict[str, float]:
    """GFLOP/s of each precision on ``threads`` threads (torch's thread count is restored afterwards)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return {precision: round(gemm_rate(precision), 1) for precision in precisions}
    finally:
        torch.set_num_threads(before)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    gemm = peaks(args.threads)
    rows = []
    for precision, rate in gemm.items():
        conv = conv_rate(precision, args.threads, repeats=5)
        row = {
            "precision": precision,
            "gflop_per_s": rate,
            "peak_gflop_per_s": round(max(rate, conv or 0.0), 1),
        }
        if conv:
            row["conv_gflop_per_s"] = round(conv, 1)
        rows.append(row)
    for row in rows:
        row["vs_fp32"] = round(row["peak_gflop_per_s"] / rows[0]["peak_gflop_per_s"], 2)
    machine = describe_machine()
    print_table(
        f"GEMM 2048 and OpenVINO's 3 x 3 convolutions, {args.threads} threads, {machine['cpu']} "
        f"({' '.join(machine['cpu_flags'])})",
        rows,
    )
    write_json(
        results_json("peak", quick=False),
        {"benchmark": "peak", "machine": {**machine, "threads": args.threads}, "chain": CHAIN, "rows": rows},
    )


if __name__ == "__main__":
    main()
