"""The machine's limit: the GEMM rate of each precision on the threads a benchmark uses.

A speed means little without the ceiling it runs under. A square GEMM of 2048 is what the
CPU's BLAS (oneDNN, MKL) runs nearest its peak: fp32, bf16 (native only with bf16 units; else
emulated, and the rate says so) and int8 (``torch._int_mm``: VNNI or AMX where the CPU has them).
The benchmarks divide what a path achieves by the rate of the precision it computes in.

    python benchmarks/peak.py          # prints the rates and writes docs/results/benchmarks/peak-CLASS.json
"""

from __future__ import annotations

import argparse
import sys
import time
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
    rates = peaks(args.threads)
    machine = describe_machine()
    rows = [
        {"precision": p, "gflop_per_s": rate, "vs_fp32": rate / rates["fp32"]} for p, rate in rates.items()
    ]
    print_table(
        f"GEMM 2048, {args.threads} threads, {machine['cpu']} ({' '.join(machine['cpu_flags'])})", rows
    )
    write_json(
        results_json("peak", quick=False),
        {"benchmark": "peak", "machine": {**machine, "threads": args.threads}, "rows": rows},
    )


if __name__ == "__main__":
    main()
