"""Where does an fp32 training step of the 2-core presets spend its time, and what makes it faster?

CPUs without bf16 units (AVX2-only, AVX-512 without BF16) train in fp32 (``--amp auto``). This
study times one CycleGAN iteration (the paper's objective) with the ``unpaired`` preset's networks
(U-Net base 32 + PatchGAN ndf 32, 128 x 128, batch 1) in fp32 as the trainer runs it, against the same with the networks and
inputs in channels-last memory format, and on one thread instead of two (how well the step
scales over the cores); variants interleaved after a warm-up, medians. A profile of the default
step says which operators hold the time.

    python studies/training_fp32.py                 # docs/results/training_fp32-CLASS.json
    python studies/training_fp32.py --repeats 20
    python studies/training_fp32.py --cap avx2      # emulated on a newer CPU: training_fp32-CLASS-as-avx2.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from machine import ISA_CAPS, describe_machine, print_table, results_path, run_capped, write_json  # noqa: E402
from training import make_model, unpaired_batch  # noqa: E402

from imtrans_core.training.config import TrainConfig, preset_options  # noqa: E402

SIZE = 128


def unpaired_model(channels_last: bool):
    """The unpaired preset's CycleGAN in fp32, its networks in channels-last format if asked."""
    preset = preset_options("unpaired")
    model = make_model(TrainConfig(gen=preset["gen"], disc=preset["disc"], size=SIZE, amp="off", pool=50))
    if channels_last:
        for nets in (model.generators, model.discriminators):
            nets.to(memory_format=torch.channels_last)
    return model


def batch(channels_last: bool) -> dict[str, torch.Tensor]:
    data = unpaired_batch(SIZE, 1)
    form = torch.channels_last if channels_last else torch.contiguous_format
    return {k: v.contiguous(memory_format=form) for k, v in data.items()}


#: variant -> (channels-last, threads)
VARIANTS = {"fp32 (as trained)": (False, 2), "fp32 channels-last": (True, 2), "fp32, one thread": (False, 1)}


def time_variants(repeats: int) -> dict[str, list[float]]:
    models = {name: unpaired_model(last) for name, (last, _) in VARIANTS.items()}
    inputs = {name: batch(last) for name, (last, _) in VARIANTS.items()}
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for rep in range(repeats + 2):  # two warm-up rounds: allocator, oneDNN primitive caches
        for name, (_, threads) in VARIANTS.items():
            torch.set_num_threads(threads)
            start = time.perf_counter()
            models[name].train_step(inputs[name])
            if rep >= 2:
                times[name].append(time.perf_counter() - start)
    torch.set_num_threads(2)
    return times


def profile(steps: int = 5) -> list[dict[str, float]]:
    """The operators holding the default step's time (self CPU time, share of the total)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    model, data = unpaired_model(False), batch(False)
    model.train_step(data)
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            model.train_step(data)
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:12]
    return [{"op": e.key, "share": round(e.self_cpu_time_total / total, 3)} for e in top]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--json", type=Path, help="default: docs/results/training_fp32-CLASS[-as-CAP].json")
    parser.add_argument("--cap", choices=sorted(ISA_CAPS), help="emulate this instruction set (machine.py)")
    args = parser.parse_args()
    run_capped(args.cap)
    torch.manual_seed(0)
    times = time_variants(args.repeats)
    base = statistics.median(times["fp32 (as trained)"])
    rows = [
        {
            "variant": name,
            "s_per_iter": round(statistics.median(samples), 4),
            "vs_default": round(base / statistics.median(samples), 2),
        }
        for name, samples in times.items()
    ]
    ops = profile()
    print_table(f"one fp32 iteration of the unpaired preset's networks, {SIZE} x {SIZE}", rows)
    print_table("where the default step's time goes (self CPU time)", ops)
    out = args.json or results_path("training_fp32", args.cap, ROOT / "docs" / "results")
    write_json(
        out,
        {
            "study": "training_fp32",
            "rows": rows,
            "times": times,
            "profile": ops,
            "machine": describe_machine(),
        },
    )


if __name__ == "__main__":
    main()
