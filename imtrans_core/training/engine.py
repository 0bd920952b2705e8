"""The training loop: CycleGAN (+ GC) as Hiasa et al. 2018, §2.2, resumable and observable.

One iteration, as the reference CycleGAN does it:

1. generators: G_CT(y), G_MR(x), the reconstructions (and identities if asked),
   loss = Eq. 6 from the generators' side with the discriminators frozen;
2. discriminators: real images against pooled synthetic ones (Eq. 1-2).

Everything a run needs to be resumed bit for bit lives in its checkpoints:
networks, optimizers, schedulers, image pools and RNG states; the data order is a
pure function of (seed, iteration), so it needs no state at all.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

import imtrans_core as ic

from ..contract import InputContract
from ..errors import ImtransError
from . import checkpoint
from .config import TrainConfig
from .distributed import Distributed
from .model import Discriminators, Generators, Objective
from .objective import compose_losses
from .pool import ImagePool
from .precision import autocast, resolve_amp
from .progress import Progress
from .rundir import RunDir
from .schedule import linear_decay, lr_factor
from .validate import discriminator_spec, generator_spec

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

    def samples(self) -> dict[str, Any]:
        """The current sample translations as (H, W) float arrays in [-1, 1]."""
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


def compiled(module: nn.Module, mode: str) -> nn.Module:
    """``module`` under ``torch.compile`` in ``mode`` (``off``: as it is).

    Only the module that runs is compiled; the networks inside keep their own
    state dicts, so checkpoints do not depend on whether a run was compiled.
    """
    return module if mode == "off" else torch.compile(module, mode=mode)


class Trainer:
    """Builds the networks, data and optimizers from a config, then trains."""

    def __init__(self, config: TrainConfig, run_dir: RunDir, dist: Distributed):
        self.config, self.run_dir, self.dist = config, run_dir, dist
        self.device = dist.device
        self.amp = resolve_amp(config.amp, self.device)
        torch.manual_seed(config.seed)
        gen, disc = (
            generator_spec(config.gen, config.context),
            discriminator_spec(config.disc, config.context),
        )
        g_ct, g_mr = (ic.GENERATORS.build(gen) for _ in range(2))
        d_ct, d_mr = (ic.DISCRIMINATORS.build(disc) for _ in range(2))
        self.generators = Generators(g_ct, g_mr).to(self.device)
        self.discriminators = Discriminators(d_ct, d_mr).to(self.device)
        self.objective = Objective.from_losses(compose_losses(config.loss, ic.LOSSES))
        self.opt_g = torch.optim.Adam(
            self.generators.parameters(), lr=config.lr, betas=(config.beta1, config.beta2)
        )
        self.opt_d = torch.optim.Adam(
            self.discriminators.parameters(), lr=config.lr, betas=(config.beta1, config.beta2)
        )
        self.sched_g = linear_decay(self.opt_g, config.iters, config.turn)
        self.sched_d = linear_decay(self.opt_d, config.iters, config.turn)
        self.pool_ct = ImagePool(config.pool, seed=config.seed * 1000 + 2 * dist.rank)
        self.pool_mr = ImagePool(config.pool, seed=config.seed * 1000 + 2 * dist.rank + 1)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp == torch.float16)
        self.contract = InputContract(config.orientation, context=config.context)  # measured by the runner
        self.g_train = compiled(dist.wrap(self.generators), config.compile)
        self.d_train = compiled(dist.wrap(self.discriminators), config.compile)
        self.step = 0

    # -- one iteration ---------------------------------------------------------

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One generator update and one discriminator update; returns the loss terms (detached).

        ``batch`` holds unpaired ``ct`` and ``mr`` slices and/or aligned
        ``pair_ct`` and ``pair_mr`` ones, as the objective reads them.
        """
        with autocast(self.device, self.amp):
            out = self.g_train(batch, identity=self.objective.wants_identity)
        self.discriminators.requires_grad_(False)  # G step: D is a fixed critic
        with autocast(self.device, self.amp):
            terms = self.objective.generator_terms(batch, out, self.discriminators)
        loss_g = self.objective.generator_loss(terms)
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler.scale(loss_g).backward()
        self.scaler.step(self.opt_g)
        d_terms = {}
        if self.objective.adversarial is not None:  # supervised only: no discriminator to train
            d_terms = self._discriminator_step(batch, out)
            self.sched_d.step()
        self.scaler.update()
        self.sched_g.step()
        self.step += 1
        all_terms = {**terms, **d_terms, "total_g": loss_g}
        return {name: value.detach() for name, value in all_terms.items()}

    def _discriminator_step(
        self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """Eq. 1-2: real slices against pooled synthetic ones; returns d_ct, d_mr and their sum."""
        ct, mr = batch["ct"], batch["mr"]
        self.discriminators.requires_grad_(True)
        fake_ct = self.pool_ct.query(out["fake_ct"].detach().float())
        fake_mr = self.pool_mr.query(out["fake_mr"].detach().float())
        with autocast(self.device, self.amp):
            pred_ct, pred_mr = self.d_train(torch.cat([ct, fake_ct]), torch.cat([mr, fake_mr]))
            d_terms = self.objective.discriminator_terms(pred_ct, pred_mr, len(ct))
        loss_d = d_terms["d_ct"] + d_terms["d_mr"]
        self.opt_d.zero_grad(set_to_none=True)
        self.scaler.scale(loss_d).backward()
        self.scaler.step(self.opt_d)
        return {**d_terms, "total_d": loss_d}

    # -- state -----------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "config": self.config.to_dict(),
            "models": {
                "g_ct": self.generators.g_ct.state_dict(),
                "g_mr": self.generators.g_mr.state_dict(),
                "d_ct": self.discriminators.d_ct.state_dict(),
                "d_mr": self.discriminators.d_mr.state_dict(),
            },
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "sched_g": self.sched_g.state_dict(),
            "sched_d": self.sched_d.state_dict(),
            "scaler": self.scaler.state_dict(),
            "pool_ct": self.pool_ct.state_dict(),
            "pool_mr": self.pool_mr.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "contract": self.contract.to_dict(),
            "versions": self.run_dir.versions,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        models = state["models"]
        self.generators.g_ct.load_state_dict(models["g_ct"])
        self.generators.g_mr.load_state_dict(models["g_mr"])
        self.discriminators.d_ct.load_state_dict(models["d_ct"])
        self.discriminators.d_mr.load_state_dict(models["d_mr"])
        for name in ("opt_g", "opt_d", "sched_g", "sched_d"):
            getattr(self, name).load_state_dict(state[name])
        if state["scaler"]:  # empty when saved without fp16 (e.g. on a CPU, now resumed on a GPU)
            self.scaler.load_state_dict(state["scaler"])
        self.pool_ct.load_state_dict(state["pool_ct"], self.device)
        self.pool_mr.load_state_dict(state["pool_mr"], self.device)
        torch.set_rng_state(state["torch_rng"].cpu())  # map_location moved it to the GPU
        self.step = int(state["step"])
        self._follow_schedule()

    def _follow_schedule(self) -> None:
        """Set the learning rates the config's schedule gives at this step.

        The optimisers saved the rate of the schedule they ran under; a run
        resumed with more ``iters`` (or another ``decay_from``) follows its new
        schedule from here on. Unchanged, this recomputes the saved value exactly.
        """
        factor = lr_factor(self.step, self.config.iters, self.config.turn)
        saved = self.opt_g.param_groups[0]["lr"]
        for optimizer, scheduler in ((self.opt_g, self.sched_g), (self.opt_d, self.sched_d)):
            for group, base in zip(optimizer.param_groups, scheduler.base_lrs, strict=True):
                group["lr"] = base * factor
        now = self.opt_g.param_groups[0]["lr"]
        if now != saved:
            log.info(
                f"learning rate at iteration {self.step}: {saved:.2e} -> {now:.2e} (the schedule of "
                f"--iters {self.config.iters}, decay from {self.config.turn})"
            )

    def save(self) -> Path | None:
        """Checkpoint (rank 0 only) and tell the plugins."""
        if not self.dist.is_main:
            return None
        path = checkpoint.save(self.run_dir.path, self.step, self.state_dict(), self.config.keep)
        ic.plugins.call_each("imtrans_checkpoint_saved", run=self.run, step=self.step, path=path)
        return path

    # -- samples ---------------------------------------------------------------

    @torch.no_grad()
    def sample_images(self, ct: torch.Tensor, mr: torch.Tensor) -> dict[str, Any]:
        """MR, synthetic CT, reconstructed MR; CT, synthetic MR, reconstructed CT (first sample's middle slice)."""
        with autocast(self.device, self.amp):
            out = self.generators({"ct": ct[:1], "mr": mr[:1]})
        images = {
            "mr": mr,
            "fake_ct": out["fake_ct"],
            "rec_mr": out["rec_mr"],
            "ct": ct,
            "fake_mr": out["fake_mr"],
            "rec_ct": out["rec_ct"],
        }
        middle = self.config.context
        return {k: v[0, middle].float().cpu().numpy() for k, v in images.items()}

    # -- the loop ---------------------------------------------------------------

    def fit(self, loader: Any, fixed: tuple[torch.Tensor, torch.Tensor], stop: Any = None) -> str:
        """Train until ``config.iters`` or until ``stop.requested``; returns the end status.

        A stop request (Ctrl-C, SIGTERM) is honoured between iterations, so the
        checkpoint it leaves is as consistent as any other.
        """
        config = self.config
        networks = {
            "g_ct": self.generators.g_ct,
            "g_mr": self.generators.g_mr,
            "d_ct": self.discriminators.d_ct,
            "d_mr": self.discriminators.d_mr,
        }
        self.run = Run(
            self.run_dir.path,
            config.to_dict(),
            self.step,
            self.dist.is_main,
            networks,
            sampler=lambda: self.sample_images(*fixed),
        )
        ic.plugins.call_each("imtrans_run_start", run=self.run)
        meter = _Meter()
        status, first = "failed", self.step
        try:
            with Progress(config.iters, self.step, enabled=self.dist.is_main) as progress:
                for batch in loader:
                    started = time.perf_counter()
                    terms = self.train_step({k: v.to(self.device) for k, v in batch.items()})
                    if config.compile != "off" and self.step == first + 1:
                        log.info(
                            f"compiled the training step in {time.perf_counter() - started:.0f} s (once)"
                        )
                    self._check_finite(terms)
                    meter.add(terms)
                    self.run.step = self.step
                    if self.step % config.log_every == 0 or self.step == config.iters:
                        metrics = {**meter.flush(), "lr": self.opt_g.param_groups[0]["lr"]}
                        progress.update(self.step, metrics)
                        ic.plugins.call_each(
                            "imtrans_step_end", run=self.run, step=self.step, metrics=metrics
                        )
                    if self.step >= config.iters or (stop is not None and stop.requested):
                        break
                    if self.step % config.ckpt_every == 0:
                        self.save()
            self.save()
            status = "finished" if self.step >= config.iters else "interrupted"
        finally:
            ic.plugins.call_each("imtrans_run_end", run=self.run, status=status)
        return status

    def _check_finite(self, terms: dict[str, torch.Tensor]) -> None:
        total = terms["total_g"] + terms.get("total_d", 0.0)
        if torch.isfinite(total):
            return
        bad = next(name for name, value in terms.items() if not math.isfinite(float(value)))
        last = checkpoint.list_checkpoints(self.run_dir.path)
        kept = f"the last good checkpoint is {last[-1]}" if last else "no checkpoint was written yet"
        raise ImtransError(
            f"loss '{bad}' became {float(terms[bad])} at iteration {self.step}; {kept}; "
            "try a lower --lr, --amp off, or check the data for NaNs"
        )
