"""Where a CPU has no bf16 units training runs in fp32: what makes that step faster?

The small-scale presets' CycleGAN iteration (U-Net or ResNet generators, 128 x 128, batch 1)
in fp32 as it trains today, against the same with the networks and batches in channels-last
memory format, and compiled (``--compile default``). Interleaved rounds after a warm-up step
each (compiling happens there), the median per variant and its ratio to today's fp32, one run.
A variant reaches the product only if it wins on the CPUs that run fp32.

    python studies/fp32_step.py --out docs/results/fp32_step-CLASS.json   # CLASS: this CPU's (printed)
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from machine import describe_machine, print_table, write_json
from training import iteration_flops, make_model, time_iterations

from imtrans_core.training.config import SMALL_SCALE, TrainConfig

GENERATORS = {"unet (--preset unpaired)": "unet:base=32", "resnet9 (--preset small)": SMALL_SCALE["gen"]}


class ChannelsLast:
    """A model whose networks and batches are in channels-last memory format."""

    def __init__(self, model: object) -> None:
        self.model = model
        for net in model.built.values():  # type: ignore[attr-defined]
            net.to(memory_format=torch.channels_last)

    def train_step(self, batch: dict[str, torch.Tensor]) -> object:
        batch = {k: v.contiguous(memory_format=torch.channels_last) for k, v in batch.items()}
        return self.model.train_step(batch)  # type: ignore[attr-defined]


def variants(gen: str) -> dict[str, object]:
    base = dict(gen=gen, disc=SMALL_SCALE["disc"], size=128, pool=50, amp="off")
    return {
        "fp32": make_model(TrainConfig(**base)),
        "fp32, channels-last": ChannelsLast(make_model(TrainConfig(**base))),
        "fp32, compiled": make_model(TrainConfig(**base, compile="default")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    rows = []
    for label, gen in GENERATORS.items():
        models = variants(gen)
        flops = iteration_flops(models["fp32"], 128, 1)
        times, first = time_iterations(models, 128, 1, args.repeats)
        fp32 = statistics.median(times["fp32"])
        for name, samples in times.items():
            median = statistics.median(samples)
            rows.append(
                {
                    "generator": label,
                    "variant": name,
                    "s_per_iter": round(median, 3),
                    "vs_fp32": round(fp32 / median, 2),
                    "gflop_per_s": round(flops / median / 1e9, 1),
                    "first_step_s": round(first[name], 1),
                }
            )
    print_table("one fp32 CycleGAN iteration at the small scale, 128 x 128", rows)
    write_json(
        args.out, {"study": "fp32_step", "repeats": args.repeats, "rows": rows, "machine": describe_machine()}
    )


if __name__ == "__main__":
    main()
