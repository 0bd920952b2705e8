"""Training speed: one CycleGAN iteration in fp32 vs bf16 autocast, and the data pipeline's rate.

Timings on a shared 2-core machine are noisy, so variants are interleaved
(ABAB...) after a warm-up and reported as medians and as ratios to fp32 from the
same run. Achieved GFLOP/s is measured against the FLOPs torch counts for one
iteration, to show the distance to the machine's limit.

    python benchmarks/training.py            # the paper's setting: 256 x 256, ngf 64, batch 1
    python benchmarks/training.py --quick    # 128 x 128, the cpu preset's networks
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe_machine, print_table, write_json

from imtrans_core.training.config import PRESETS, TrainConfig
from imtrans_core.training.distributed import Distributed
from imtrans_core.training.engine import Trainer
from imtrans_core.training.rundir import RunDir


def make_trainer(config: TrainConfig) -> Trainer:
    return Trainer(config, RunDir(Path(tempfile.mkdtemp()), config), Distributed())


def time_iterations(
    trainers: dict[str, Trainer], size: int, batch: int, repeats: int
) -> dict[str, list[float]]:
    ct, mr = torch.rand(batch, 1, size, size) * 2 - 1, torch.rand(batch, 1, size, size) * 2 - 1
    for trainer in trainers.values():  # warm-up: allocator, oneDNN primitive caches
        trainer.train_step(ct, mr)
    times: dict[str, list[float]] = {name: [] for name in trainers}
    for _ in range(repeats):
        for name, trainer in trainers.items():
            start = time.perf_counter()
            trainer.train_step(ct, mr)
            times[name].append(time.perf_counter() - start)
    return times


def iteration_flops(trainer: Trainer, size: int, batch: int) -> int:
    ct, mr = torch.rand(batch, 1, size, size), torch.rand(batch, 1, size, size)
    with FlopCounterMode(display=False) as counter:
        trainer.train_step(ct, mr)
    return counter.get_total_flops()


def data_rate(size: int, seconds: float = 3.0) -> float:
    """Unpaired slices per second from the cached, memory-mapped phantom pools (one process)."""
    import imtrans_core as ic
    from imtrans_core.slices import SliceStacks, UnpairedSlices

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
    parser.add_argument("--quick", action="store_true", help="128 x 128 with the cpu preset's networks")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "training.json")
    args = parser.parse_args()
    cpu = PRESETS["cpu"]
    setting = (
        dict(gen=cpu["gen"], disc=cpu["disc"], size=128)
        if args.quick
        else dict(gen="resnet9", disc="patchgan", size=256)
    )
    size = setting.pop("size")
    trainers = {
        amp: make_trainer(TrainConfig(**setting, amp=amp, size=size, pool=50)) for amp in ("off", "bf16")
    }
    flops = iteration_flops(trainers["off"], size, 1)
    times = time_iterations(trainers, size, 1, args.repeats)
    fp32 = statistics.median(times["off"])
    rows = []
    for amp, samples in times.items():
        median = statistics.median(samples)
        rows.append(
            {
                "variant": "fp32" if amp == "off" else "bf16 autocast",
                "s_per_iter": round(median, 3),
                "vs_fp32": round(fp32 / median, 2),
                "gflop_per_s": round(flops / median / 1e9, 1),
            }
        )
    slices_per_s = data_rate(size)
    result = {
        "benchmark": "training",
        "setting": {**setting, "size": size, "batch": 1, "gflop_per_iter": round(flops / 1e9, 1)},
        "rows": rows,
        "data_slices_per_s": round(slices_per_s, 1),
        "data_vs_step_rate": round(slices_per_s * statistics.median(times["bf16"]), 1),
        "machine": describe_machine(),
    }
    print_table(f"one CycleGAN iteration ({setting['gen']}, {size}x{size}, {flops / 1e9:.0f} GFLOP)", rows)
    print(
        f"data pipeline: {slices_per_s:.0f} slices/s in one process, "
        f"{result['data_vs_step_rate']}x what a bf16 training step consumes"
    )
    write_json(args.json, result)


if __name__ == "__main__":
    main()
