"""The training loop every model shares: resumable, observable, stoppable.

The engine drives a :class:`~.trainable.TrainableModel` from its current step
to ``config.iters``: one ``train_step`` per batch, the NaN stop, progress, a
checkpoint every ``ckpt_every`` iterations (atomic, the newest ``keep``), the
event hooks of ``imtrans_core.hookspecs`` and a stop between iterations when
asked (Ctrl-C, SIGTERM). A checkpoint holds the model's state, the step, the
configuration, the global torch RNG and the command's ``extras``; the data order
is a pure function of (seed, iteration), so nothing else is needed to resume a
run bit for bit after a kill.

``config`` is the command's settings: the engine reads ``iters``,
``log_every``, ``ckpt_every``, ``keep``, ``compile`` (when present) and
``to_dict()``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

import imtrans_core as ic

from ..errors import ImtransError
from ..progress import TrainingProgress
from . import checkpoint
from .trainable import TrainableModel

log = logging.getLogger("imtrans")


@dataclass
class Run:
    """What the training-event hooks receive (see ``imtrans_core.hookspecs``)."""

    dir: Path
    config: dict[str, Any]
    step: int
    is_main: bool
    networks: dict[str, nn.Module] = field(default_factory=dict, repr=False)
    sampler: Any = field(default=None, repr=False)
    model: str = ""  # the model's spec, e.g. cyclegan

    def samples(self) -> dict[str, Any]:
        """The current sample images as (H, W) float arrays in [-1, 1]."""
        return self.sampler() if self.sampler else {}


class _Meter:
    """Sums loss terms between log lines without a device sync per step."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.count, self.tick = 0, time.perf_counter()

    def add(self, terms: dict[str, torch.Tensor]) -> None:
        for name, value in terms.items():
            self.sums[name] = self.sums[name] + value if name in self.sums else value
        self.count += 1

    def flush(self) -> dict[str, float]:
        """Mean of each term since the last flush, and the iteration rate."""
        rate = self.count / (time.perf_counter() - self.tick)
        means = {name: float(value) / self.count for name, value in self.sums.items()}
        self.sums, self.count, self.tick = {}, 0, time.perf_counter()
        return {**means, "it_per_s": rate}


class Engine:
    """Trains ``model`` (already set up) in the run directory ``run_dir``; rank 0 alone writes."""

    def __init__(self, model: TrainableModel, name: str, config: Any, run_dir: Path, dist: Any):
        self.model, self.name, self.config, self.run_dir, self.dist = model, name, config, run_dir, dist
        self.step = 0
        self.extras: dict[str, Any] = {}  # saved with every checkpoint (versions, contract, ...)
        self.last: dict[str, float] = {}  # the last logged metrics

    # -- state -----------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "config": self.config.to_dict(),
            **self.model.state_dict(),
            "networks": self.model.network_specs(),
            "translators": dict(self.model.translates),
            "torch_rng": torch.get_rng_state(),
            **self.extras,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state)
        torch.set_rng_state(state["torch_rng"].cpu())  # map_location moved it to the GPU
        self.step = int(state["step"])

    def resume(self) -> bool:
        """Load the run's newest readable checkpoint, if any; whether one was found."""
        state = checkpoint.load_latest(self.run_dir, map_location=self.dist.device)
        if state is None:
            return False
        self.load_state_dict(state)
        log.info(f"resuming {self.run_dir} at iteration {self.step} of {self.config.iters}")
        return True

    def save(self) -> Path | None:
        """Checkpoint (rank 0 only) and tell the plugins."""
        if not self.dist.is_main:
            return None
        path = checkpoint.save(self.run_dir, self.step, self.state_dict(), self.config.keep)
        ic.plugins.call_each("imtrans_checkpoint_saved", run=self.run, step=self.step, path=path)
        return path

    # -- the loop ---------------------------------------------------------------

    def fit(self, batches: Iterable[dict[str, torch.Tensor]], fixed: Any = None, stop: Any = None) -> str:
        """Train until ``config.iters`` or until ``stop.requested``; returns the end status.

        ``batches`` yields iteration ``step``'s batch first; ``fixed`` is what
        the model draws sample images of. A stop request is honoured between
        iterations, so the checkpoint it leaves is as consistent as any other.
        """
        self.run = Run(
            self.run_dir,
            self.config.to_dict(),
            self.step,
            self.dist.is_main,
            self.model.networks,
            sampler=lambda: self.model.samples(fixed),
            model=self.name,
        )
        if self.step >= self.config.iters:
            return "finished"
        ic.plugins.call_each("imtrans_run_start", run=self.run)
        status = "failed"
        try:
            self._loop(batches, stop)
            self.save()
            status = "finished" if self.step >= self.config.iters else "interrupted"
        finally:
            ic.plugins.call_each("imtrans_run_end", run=self.run, status=status)
        return status

    def _loop(self, batches: Iterable[dict[str, torch.Tensor]], stop: Any) -> None:
        config, meter, first = self.config, _Meter(), self.step
        progress = TrainingProgress(
            config.iters, self.step, self.dist.is_main, label=self.model.label, terms=self.model.shown
        )
        with progress:
            for batch in batches:
                started = time.perf_counter()
                terms = self.model.train_step({k: v.to(self.dist.device) for k, v in batch.items()})
                self.step += 1
                self.run.step = self.step
                if getattr(config, "compile", "off") != "off" and self.step == first + 1:
                    log.info(f"compiled the training step in {time.perf_counter() - started:.0f} s (once)")
                self._check_finite(terms)
                meter.add(terms)
                if self.step % config.log_every == 0 or self.step == config.iters:
                    self.last = {**meter.flush(), "lr": self.model.lr()}
                    progress.update(self.step, self.last)
                    ic.plugins.call_each("imtrans_step_end", run=self.run, step=self.step, metrics=self.last)
                if self.step >= config.iters or (stop is not None and stop.requested):
                    break
                if self.step % config.ckpt_every == 0:
                    self.save()

    def _check_finite(self, terms: dict[str, torch.Tensor]) -> None:
        totals = [value for name, value in terms.items() if name.startswith("total")] or terms.values()
        if torch.isfinite(torch.as_tensor(sum(totals))):
            return
        bad = next(name for name, value in terms.items() if not math.isfinite(float(value)))
        last = checkpoint.list_checkpoints(self.run_dir)
        kept = f"the last good checkpoint is {last[-1]}" if last else "no checkpoint was written yet"
        raise ImtransError(
            f"loss '{bad}' became {float(terms[bad])} at iteration {self.step}; {kept}; "
            "try a lower --lr, --amp off, or check the data for NaNs"
        )
