"""The ``cyclegan`` model: CycleGAN (+ GC) as Hiasa et al. 2018, §2.2, one iteration at a time.

One iteration, as the reference CycleGAN does it:

1. generators: G_CT(y), G_MR(x), the reconstructions (and identities if asked),
   loss = Eq. 6 from the generators' side with the discriminators frozen;
2. discriminators: real images against pooled synthetic ones (Eq. 1-2).

Everything resuming bit for bit needs is in ``state_dict``: networks,
optimizers, schedulers and image pools (the engine adds the step and the RNG).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

import imtrans_core as ic
from imtrans_core.api import (
    GANModel,
    ImagePool,
    Network,
    Optimizers,
    SpecError,
    autocast,
    compiled,
    compose_losses,
    discriminator_spec,
    generator_spec,
    middle_slices,
)

from .objective import KINDS, Discriminators, Generators, Objective


class CycleGAN(GANModel):
    """CycleGAN (+ GC): G_CT, G_MR, D_CT, D_MR and the objective of Eq. 6 (--loss), Adam, linear decay."""

    shown = ("g_ct", "g_mr", "cycle", "gc", "mind", "hist", "paired", "d_ct", "d_mr")
    reads = frozenset({"gen", "disc", "loss", "pool", "pairing", "ema", "compile"})
    default_losses = ("lsgan:1", "cycle:3")  # Zhu et al.'s CycleGAN with the paper's weights
    loss_kinds = frozenset(KINDS)
    single_kinds = frozenset({"adversarial"})  # the discriminators train on exactly one
    translates: ClassVar[dict[str, str]] = {"mr2ct": "g_ct", "ct2mr": "g_mr"}
    averaged = ("g_ct", "g_mr")
    roles: ClassVar[dict[str, str]] = {
        "g_ct": "MR -> CT",
        "g_mr": "CT -> MR",
        "d_ct": "real or synthetic CT",
        "d_mr": "real or synthetic MR",
    }

    def resolve_networks(self, config: Any) -> dict[str, Network]:
        gen = Network(ic.GENERATORS, generator_spec(config.gen, config.context))
        disc = Network(ic.DISCRIMINATORS, discriminator_spec(config.disc, config.context))
        return {"g_ct": gen, "g_mr": gen, "d_ct": disc, "d_mr": disc}

    def probe(self, networks: dict[str, nn.Module], x: torch.Tensor) -> str | None:
        y = networks["g_ct"](x)
        if tuple(y.shape) != tuple(x.shape):
            return f"the generator returns {tuple(y.shape)} for {tuple(x.shape)}"
        networks["d_ct"](y)
        return None

    def check_losses(self, kinds: dict[str, str], removed: dict[str, str]) -> None:
        """Without an adversarial term only supervised training (a paired term) makes sense."""
        if "adversarial" not in kinds.values() and "paired" not in kinds.values():
            raise SpecError(
                f"--loss {removed.get('adversarial', '')} leaves no adversarial loss, and unpaired training "
                "needs one; to change it give another (e.g. --loss vanilla) instead of a weight of 0, "
                "or add --loss paired for supervised training on aligned pairs"
            )

    def setup(self, config: Any, dist: Any) -> None:
        self.config, self.device = config, dist.device
        nets = self.build_networks(config, self.device)
        self.generators = Generators(nets["g_ct"], nets["g_mr"])
        self.discriminators = Discriminators(nets["d_ct"], nets["d_mr"])
        self.objective = Objective.from_losses(compose_losses(config.loss, ic.LOSSES, self))
        groups = {"g": self.generators.parameters(), "d": self.discriminators.parameters()}
        self.optimizers = Optimizers(config, self.device, groups)
        self.amp = self.optimizers.amp
        self.pool_ct = ImagePool(config.pool, seed=config.seed * 1000 + 2 * dist.rank)
        self.pool_mr = ImagePool(config.pool, seed=config.seed * 1000 + 2 * dist.rank + 1)
        self.g_train = compiled(dist.wrap(self.generators), config.compile)
        self.d_train = compiled(dist.wrap(self.discriminators), config.compile)

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
        loss_g = self.objective.generator_loss(terms, step=self.optimizers.done)
        self.optimizers.step("g", loss_g)
        self.update_averages()
        d_terms = {}
        if self.objective.adversarial is not None:  # supervised only: no discriminator to train
            d_terms = self._discriminator_step(batch, out)
        self.optimizers.end_iteration()
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
        self.optimizers.step("d", loss_d)
        return {**d_terms, "total_d": loss_d}

    # -- state -----------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "pool_ct": self.pool_ct.state_dict(),
            "pool_mr": self.pool_mr.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.pool_ct.load_state_dict(state["pool_ct"], self.device)
        self.pool_mr.load_state_dict(state["pool_mr"], self.device)

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
        return middle_slices(images, self.config.context)
