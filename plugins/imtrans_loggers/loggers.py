"""Loggers receive the training-event hooks (see ``imtrans_core.hookspecs``).

Each is a small object whose methods are hook implementations; the training
run registers the loggers it was asked for with the plugin manager for its
duration, on rank 0 only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from imtrans_core import hookimpl
from imtrans_core.api import truncate_metrics

PER_ROW = 3  # cyclegan's samples: MR, synthetic CT, reconstructed MR / CT, synthetic MR, reconstructed CT


class JsonlLogger:
    """One JSON object per log interval in RUN/metrics.jsonl: iter, each loss term, lr, it/s."""

    def __init__(self, filename: str = "metrics.jsonl"):
        self.filename = filename

    @hookimpl
    def imtrans_run_start(self, run: Any) -> None:
        truncate_metrics(Path(run.dir) / self.filename, run.step)

    @hookimpl
    def imtrans_step_end(self, run: Any, step: int, metrics: dict[str, float]) -> None:
        with open(Path(run.dir) / self.filename, "a") as handle:
            handle.write(json.dumps({"iter": step, **metrics}) + "\n")


class SampleLogger:
    """PNG grids in RUN/samples/ of the model's sample images (cyclegan: MR | synthetic CT | reconstructed MR
    over CT | synthetic MR | reconstructed CT)."""

    def __init__(self, every: int = 0):
        self.every = every  # 0: the run's sample_every
        self.interval, self.done = 1, 0

    @hookimpl
    def imtrans_run_start(self, run: Any) -> None:
        self.interval = self.every or int(run.config.get("sample_every", 1000))
        self.done = run.step // self.interval

    @hookimpl
    def imtrans_step_end(self, run: Any, step: int, metrics: dict[str, float]) -> None:
        if step // self.interval > self.done:  # a multiple of the interval was passed since the last grid
            self.done = step // self.interval
            self.write(run, step)

    @hookimpl
    def imtrans_run_end(self, run: Any, status: str) -> None:
        if status == "finished":
            self.write(run, run.step)

    @staticmethod
    def write(run: Any, step: int) -> Path:
        return write_grid(run.samples(), Path(run.dir) / "samples" / f"iter-{step:08d}.png")


def write_grid(images: dict[str, np.ndarray], path: Path) -> Path:
    """Tile (H, W) images in [-1, 1], in their order, ``PER_ROW`` to a row, and write an 8-bit PNG."""
    import SimpleITK as sitk

    tiles = list(images.values())
    tiles += [np.full_like(tiles[0], -1.0)] * (-len(tiles) % PER_ROW)  # black fills the last row
    rows = [np.concatenate(tiles[i : i + PER_ROW], axis=1) for i in range(0, len(tiles), PER_ROW)]
    grid = np.concatenate(rows, axis=0)
    pixels = np.clip((grid + 1.0) * 127.5, 0, 255).round().astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(sitk.GetImageFromArray(pixels), str(path))
    return path


class TensorBoardLogger:
    """Scalars (every loss term, lr) and sample images in TensorBoard (needs the tensorboard package)."""

    def __init__(self, logdir: str = ""):
        from torch.utils.tensorboard import SummaryWriter  # fails clearly without tensorboard

        self.logdir, self.writer_class, self.writer = logdir, SummaryWriter, None

    @hookimpl
    def imtrans_run_start(self, run: Any) -> None:
        self.writer = self.writer_class(
            self.logdir or str(Path(run.dir) / "tensorboard"), purge_step=run.step
        )

    @hookimpl
    def imtrans_step_end(self, run: Any, step: int, metrics: dict[str, float]) -> None:
        for name, value in metrics.items():
            self.writer.add_scalar(name, value, step)

    @hookimpl
    def imtrans_run_end(self, run: Any, status: str) -> None:
        if self.writer is not None:
            self.writer.close()
