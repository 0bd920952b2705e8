"""The ``cyclegan`` model: CycleGAN (+ GC) as Hiasa et al. 2018, §2.2, one iteration at a time.

One iteration, as the reference CycleGAN does it:

1. generators: G_CT(y), G_MR(x), the reconstructions (and identities if asked),
   loss = Eq. 6 from the generators' side with the discriminators frozen;
2. discriminators: real images against pooled synthetic ones (Eq. 1-2).

Everything resuming bit for bit needs is in ``state_dict``: networks,
optimizers, schedulers and image pools (the engine adds the step and the RNG).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from torch import nn

import imtrans_core as ic

from ..progress import MAIN_TERMS
from .config import TrainConfig
from .ema import WeightAverage
from .model import Discriminators, Generators, Objective
from .objective import compose_losses
from .pool import ImagePool
from .precision import autocast, resolve_amp
from .schedule import linear_decay, lr_factor
from .trainable import TrainableModel
from .validate import discriminator_spec, generator_spec

log = logging.getLogger("imtrans")


def compiled(module: nn.Module, mode: str) -> nn.Module:
    """``module`` under ``torch.compile`` in ``mode`` (``off``: as it is).

    Only the module that runs is compiled; the networks inside keep their own
    state dicts, so checkpoints do not depend on whether a run was compiled.
    """
    return module if mode == "off" else torch.compile(module, mode=mode)


class CycleGAN(TrainableModel):
    """CycleGAN (+ GC): G_CT, G_MR, D_CT, D_MR and the objective of Eq. 6 (--loss), Adam, linear decay."""

    shown = MAIN_TERMS
    features = frozenset({"ema"})

    def setup(self, config: TrainConfig, dist: Any) -> None:
        self.config, self.device = config, dist.device
        self.amp = resolve_amp(config.amp, self.device)
        disc = discriminator_spec(config.disc, config.context)
        gen = generator_spec(config.gen, config.context)
        g_ct, g_mr = (ic.GENERATORS.build(gen) for _ in range(2))
        self.specs = {"g_ct": str(gen), "g_mr": str(gen), "d_ct": str(disc), "d_mr": str(disc)}
        d_ct, d_mr = (ic.DISCRIMINATORS.build(disc) for _ in range(2))
        self.generators = Generators(g_ct, g_mr).to(self.device)
        self.average = WeightAverage(self.generators, config.ema) if config.ema else None
        self.discriminators = Discriminators(d_ct, d_mr).to(self.device)
        self.objective = Objective.from_losses(compose_losses(config.loss, ic.LOSSES))
        betas = (config.beta1, config.beta2)
        self.opt_g = torch.optim.Adam(self.generators.parameters(), lr=config.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.discriminators.parameters(), lr=config.lr, betas=betas)
        self.sched_g = linear_decay(self.opt_g, config.iters, config.turn)
        self.sched_d = linear_decay(self.opt_d, config.iters, config.turn)
        self.pool_ct = ImagePool(config.pool, seed=config.seed * 1000 + 2 * dist.rank)
        self.pool_mr = ImagePool(config.pool, seed=config.seed * 1000 + 2 * dist.rank + 1)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp == torch.float16)
        self.g_train = compiled(dist.wrap(self.generators), config.compile)
        self.d_train = compiled(dist.wrap(self.discriminators), config.compile)

    @property
    def networks(self) -> dict[str, nn.Module]:
        g, d = self.generators, self.discriminators
        return {"g_ct": g.g_ct, "g_mr": g.g_mr, "d_ct": d.d_ct, "d_mr": d.d_mr}

    def network_specs(self) -> dict[str, str]:
        return dict(self.specs)

    def observe_data(self, stacks: list[Any]) -> None:
        """Fit the terms that are fitted to the training data (the contrast prior) on its CT and MR values."""
        if not self.objective.prior:
            return
        ct, mr = (np.concatenate([s.values() for s in stacks if s.modality == m]) for m in ("ct", "mr"))
        for loss in self.objective.prior.values():
            loss.fit(ct, mr)
            loss.to(self.device)

    def data_needs(self) -> tuple[bool, bool]:
        return self.objective.uses_unpaired, self.objective.uses_pairs

    def lr(self) -> float:
        return self.opt_g.param_groups[0]["lr"]

    # -- one iteration ---------------------------------------------------------

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One generator update and one discriminator update; returns the loss terms (detached).

        ``batch`` holds unpaired ``ct`` and ``mr`` slices and/or aligned
        ``pair_ct`` and ``pair_mr`` ones, as the objective reads them.
        """
        with autocast(self.device, self.amp):
            out = self.g_train(
                batch, identity=self.objective.wants_identity, cycle_noise=self.objective.cycle_noise
            )
        self.discriminators.requires_grad_(False)  # G step: D is a fixed critic
        with autocast(self.device, self.amp):
            terms = self.objective.generator_terms(batch, out, self.discriminators)
        loss_g = self.objective.generator_loss(terms, step=self.sched_g.last_epoch)  # iterations done
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler.scale(loss_g).backward()
        self.scaler.step(self.opt_g)
        if self.average is not None:
            self.average.update(self.generators, self.sched_g.last_epoch + 1)
        d_terms = {}
        if self.objective.adversarial is not None:  # supervised only: no discriminator to train
            d_terms = self._discriminator_step(batch, out)
            self.sched_d.step()
        self.scaler.update()
        self.sched_g.step()
        all_terms = {**terms, **d_terms, "total_g": loss_g}
        return {name: value.detach() for name, value in all_terms.items()}

    def _discriminator_step(
        self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """Eq. 1-2: real slices against pooled synthetic ones; returns d_ct, d_mr and their sum."""
        ct, mr = (
            self.objective.seen_as_real(batch["ct"], "ct"),
            self.objective.seen_as_real(batch["mr"], "mr"),
        )
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
            "models": {name: net.state_dict() for name, net in self.networks.items()},
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "sched_g": self.sched_g.state_dict(),
            "sched_d": self.sched_d.state_dict(),
            "scaler": self.scaler.state_dict(),
            "pool_ct": self.pool_ct.state_dict(),
            "pool_mr": self.pool_mr.state_dict(),
            **({"ema": self.averaged_models()} if self.average is not None else {}),
        }

    def averaged_models(self) -> dict[str, dict[str, torch.Tensor]]:
        """The averaged generators' weights (--ema), by the names of ``state_dict()["models"]``."""
        average = self.average.module
        return {"g_ct": average.g_ct.state_dict(), "g_mr": average.g_mr.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, net in self.networks.items():
            net.load_state_dict(state["models"][name])
        if self.average is not None:
            for name, weights in state["ema"].items():
                getattr(self.average.module, name).load_state_dict(weights)
        for name in ("opt_g", "opt_d", "sched_g", "sched_d"):
            getattr(self, name).load_state_dict(state[name])
        if state["scaler"]:  # empty when saved without fp16 (e.g. on a CPU, now resumed on a GPU)
            self.scaler.load_state_dict(state["scaler"])
        self.pool_ct.load_state_dict(state["pool_ct"], self.device)
        self.pool_mr.load_state_dict(state["pool_mr"], self.device)
        self._follow_schedule(int(state["step"]))

    def _follow_schedule(self, step: int) -> None:
        """Set the learning rates the config's schedule gives at ``step``.

        The optimisers saved the rate of the schedule they ran under; a run
        resumed with more ``iters`` (or another ``decay_from``) follows its new
        schedule from here on. Unchanged, this recomputes the saved value exactly.
        """
        factor = lr_factor(step, self.config.iters, self.config.turn)
        saved = self.lr()
        for optimizer, scheduler in ((self.opt_g, self.sched_g), (self.opt_d, self.sched_d)):
            for group, base in zip(optimizer.param_groups, scheduler.base_lrs, strict=True):
                group["lr"] = base * factor
        if self.lr() != saved:
            log.info(
                f"learning rate at iteration {step}: {saved:.2e} -> {self.lr():.2e} (the schedule of "
                f"--iters {self.config.iters}, decay from {self.config.turn})"
            )

    # -- samples ---------------------------------------------------------------

    @torch.no_grad()
    def samples(self, fixed: tuple[torch.Tensor, torch.Tensor]) -> dict[str, np.ndarray]:
        """MR, synthetic CT, reconstructed MR; CT, synthetic MR, reconstructed CT (first sample's middle slice)."""
        ct, mr = fixed
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
