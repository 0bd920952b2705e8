"""Training speed: one CycleGAN iteration in fp32, bf16 autocast and compiled bf16, and the data pipeline's rate.

Timings on a shared 2-core machine are noisy, so variants are interleaved
(ABAB...) after a warm-up and reported as medians and as ratios to fp32 from the
same run. Achieved GFLOP/s is measured against the FLOPs torch counts for one
iteration, to show the distance to the machine's limit.

    python benchmarks/training.py            # the paper's setting: 256 x 256, ngf 64, batch 1
    python benchmarks/training.py --quick    # 128 x 128, the small preset's networks

``--compile`` (``imtrans train --compile default``) is timed after its one-off
compilation, which is reported on its own.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe_machine, print_table, results_json, write_json
from peak import timed_beside_peak

from imtrans_core.training.config import SMALL_SCALE, TrainConfig
from imtrans_core.training.distributed import Distributed
from imtrans_cyclegan.model import CycleGAN


def make_model(config: TrainConfig) -> CycleGAN:
    """The model ``imtrans train`` would train with ``config`` (its steps, without the loop around them)."""
    torch.manual_seed(config.seed)
    model = CycleGAN()
    model.setup(config, Distributed())
    return model


def unpaired_batch(size: int, batch: int) -> dict[str, torch.Tensor]:
    return {"ct": torch.rand(batch, 1, size, size) * 2 - 1, "mr": torch.rand(batch, 1, size, size) * 2 - 1}


def time_iterations(
    models: dict[str, CycleGAN], size: int, batch: int, repeats: int
) -> tuple[dict[str, list[float]], dict[str, list[float]], dict[str, float]]:
    """Interleaved iteration times per variant, the GEMM rate of its precision measured beside each
    (``peak.timed_beside_peak``), and each variant's first (warm-up, compiling) step."""
    data = unpaired_batch(size, batch)
    first = {}
    for name, model in models.items():  # warm-up: allocator, oneDNN primitive caches, compilation
        start = time.perf_counter()
        model.train_step(data)
        first[name] = time.perf_counter() - start
    times: dict[str, list[float]] = {name: [] for name in models}
    rates: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(repeats):
        for name, model in models.items():
            seconds, rate = timed_beside_peak(lambda model=model: model.train_step(data), precision(name))
            times[name].append(seconds)
            rates[name].append(rate)
    return times, rates, first


def precision(variant: str) -> str:
    """What a variant computes its convolutions in: the peak it is measured against."""
    return "fp32" if variant == "fp32" else "bf16"


def iteration_flops(model: CycleGAN, size: int, batch: int) -> int:
    with FlopCounterMode(display=False) as counter:
        model.train_step(unpaired_batch(size, batch))
    return counter.get_total_flops()


def data_rate(size: int, seconds: float = 3.0) -> float:
    """Unpaired slices per second from the cached, memory-mapped phantom pools (one process)."""
    import imtrans_core as ic
    from imtrans_core.data.slices import SliceStacks, UnpairedSlices

    source = ic.DATASETS.build(f"phantom:n_ct=4,n_mr=4,n_paired=0,size={size}")
    dataset = UnpairedSlices(
        SliceStacks(source.ct, "ct", "coronal", source.fingerprint),
        SliceStacks(source.mr, "mr", "coronal", source.fingerprint),
        size,
    )
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        dataset[count]
        count += 1
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="128 x 128 with the small preset's networks")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--json", type=Path, help="results file (default: docs/results/benchmarks/training[_quick].json)"
    )
    args = parser.parse_args()
    args.json = args.json or results_json("training", args.quick)
    cpu = SMALL_SCALE
    setting = (
        dict(gen=cpu["gen"], disc=cpu["disc"], size=128)
        if args.quick
        else dict(gen="resnet9", disc="patchgan", size=256)
    )
    size = setting.pop("size")
    variants = {
        "fp32": ("off", "off"),
        "bf16 autocast": ("bf16", "off"),
        "bf16, compiled": ("bf16", "default"),
    }
    models = {
        name: make_model(TrainConfig(**setting, amp=amp, compile=mode, size=size, pool=50))
        for name, (amp, mode) in variants.items()
    }
    flops = iteration_flops(models["fp32"], size, 1)
    times, rates, first = time_iterations(models, size, 1, args.repeats)
    fp32 = statistics.median(times["fp32"])
    rows = []
    for name, samples in times.items():
        median = statistics.median(samples)
        of_peak = statistics.median(
            flops / t / 1e9 / rate for t, rate in zip(samples, rates[name], strict=True)
        )
        rows.append(
            {
                "variant": name,
                "s_per_iter": round(median, 3),
                "vs_fp32": round(fp32 / median, 2),
                "gflop_per_s": round(flops / median / 1e9, 1),
                "of_peak": round(of_peak, 3),
                "first_step_s": round(first[name], 1),
            }
        )
    slices_per_s = data_rate(size)
    result = {
        "benchmark": "training",
        "setting": {**setting, "size": size, "batch": 1, "gflop_per_iter": round(flops / 1e9, 1)},
        "rows": rows,
        "peak_gflop_per_s": {
            p: round(
                statistics.median(r for name, rs in rates.items() if precision(name) == p for r in rs), 1
            )
            for p in sorted({precision(name) for name in rates})
        },
        "data_slices_per_s": round(slices_per_s, 1),
        "data_vs_step_rate": round(slices_per_s * statistics.median(times["bf16, compiled"]), 1),
        "machine": describe_machine(),
    }
    print_table(f"one CycleGAN iteration ({setting['gen']}, {size}x{size}, {flops / 1e9:.0f} GFLOP)", rows)
    print(
        f"data pipeline: {slices_per_s:.0f} slices/s in one process, "
        f"{result['data_vs_step_rate']}x what a compiled bf16 training step consumes"
    )
    write_json(args.json, result)


if __name__ == "__main__":
    main()
