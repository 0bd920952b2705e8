"""The ``pix2pix`` model: Isola et al. 2017, "Image-to-image translation with conditional adversarial networks".

G_CT translates MR to CT; D_CT, a PatchGAN, judges an (MR, CT) pair stacked as channels,
so it asks whether this CT belongs to this MR, not only whether it looks like a CT. The
objective is the paper's: GAN (vanilla, binary cross-entropy) + 100 x L1 to the aligned
CT; the discriminator's loss is halved. It trains on aligned pairs alone
(``--data phantom:n_train_pairs=4``, a folder's ``pairs=``, SynthRAD's patients) and
translates MR -> CT.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

import imtrans_core as ic
from imtrans_core.api import (
    GANModel,
    Network,
    Optimizers,
    SpecError,
    autocast,
    compiled,
    compose_losses,
    discriminator_loss,
    discriminator_spec,
    generator_spec,
    middle_slices,
)


class Pix2Pix(GANModel):
    """G_CT and a conditional D_CT on aligned pairs: GAN + lambda L1 (lambda 100), Adam, linear decay."""

    shown = ("g_gan", "paired", "d")
    reads = frozenset({"gen", "disc", "loss", "ema", "compile"})
    default_losses = ("vanilla:1", "paired:100")  # the paper's objective, Eq. 4 with lambda = 100
    loss_kinds = frozenset({"adversarial", "paired"})
    single_kinds = frozenset({"adversarial"})
    translates: ClassVar[dict[str, str]] = {"mr2ct": "g_ct"}
    averaged = ("g_ct",)  # --ema
    roles: ClassVar[dict[str, str]] = {
        "g_ct": "MR -> CT",
        "d_ct": "is this CT this MR's? (MR, CT) as channels",
    }

    def resolve_networks(self, config: Any) -> dict[str, Network]:
        return {
            "g_ct": Network(ic.GENERATORS, generator_spec(config.gen, config.context)),
            "d_ct": Network(ic.DISCRIMINATORS, discriminator_spec(config.disc, config.context, images=2)),
        }

    def probe(self, networks: dict[str, nn.Module], x: torch.Tensor) -> str | None:
        y = networks["g_ct"](x)
        if tuple(y.shape) != tuple(x.shape):
            return f"the generator returns {tuple(y.shape)} for {tuple(x.shape)}"
        networks["d_ct"](torch.cat([x, y], 1))
        return None

    def check_losses(self, kinds: dict[str, str], removed: dict[str, str]) -> None:
        if not kinds:
            raise SpecError(f"--loss {' '.join(removed.values())} leaves pix2pix no loss to train with")

    def data_needs(self) -> tuple[bool, bool]:
        return False, True  # aligned pairs only

    def setup(self, config: Any, dist: Any) -> None:
        self.config, self.device = config, dist.device
        self.g_ct, self.d_ct = self.build_networks(config, self.device).values()
        losses = compose_losses(config.loss, ic.LOSSES, self)
        self.adversarial = next((loss for loss in losses.values() if loss.kind == "adversarial"), None)
        self.paired = {name: loss for name, loss in losses.items() if loss.kind == "paired"}
        self.weights = {name: loss.weight for name, loss in self.paired.items()}
        self.weights["g_gan"] = getattr(self.adversarial, "weight", 0.0)
        groups = {"g": self.g_ct.parameters(), "d": self.d_ct.parameters()}
        self.optimizers = Optimizers(config, self.device, groups)
        self.g_train = compiled(dist.wrap(self.g_ct), config.compile)
        self.d_train = compiled(dist.wrap(self.d_ct), config.compile)

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One generator update, then one discriminator update on real and synthetic (MR, CT) pairs."""
        mr, ct = batch["pair_mr"], batch["pair_ct"]
        amp = self.optimizers.amp
        with autocast(self.device, amp):
            fake = self.g_train(mr)
        terms = {}
        if self.adversarial is not None:
            self.d_ct.requires_grad_(False)  # G step: D is a fixed critic
            with autocast(self.device, amp):
                terms["g_gan"] = self.adversarial(self.d_ct(torch.cat([mr, fake], 1)), True)
        terms.update({name: loss(ct, fake) for name, loss in self.paired.items()})
        loss_g = sum(self.weights[name] * term for name, term in terms.items())
        self.optimizers.step("g", loss_g)
        self.update_averages()
        if self.adversarial is not None:
            self.d_ct.requires_grad_(True)
            pairs = torch.cat([torch.cat([mr, ct], 1), torch.cat([mr, fake.detach()], 1)])
            with autocast(self.device, amp):
                terms["d"] = discriminator_loss(self.adversarial, self.d_train(pairs), len(mr))
            self.optimizers.step("d", terms["d"])
        self.optimizers.end_iteration()
        return {name: value.detach() for name, value in {**terms, "total_g": loss_g}.items()}

    @torch.no_grad()
    def samples(self, fixed: tuple[torch.Tensor, torch.Tensor]) -> dict[str, np.ndarray]:
        """MR, synthetic CT, real CT of the first fixed pair."""
        ct, mr = fixed
        with autocast(self.device, self.optimizers.amp):
            fake = self.g_ct(mr[:1])
        return middle_slices({"mr": mr, "fake_ct": fake, "ct": ct}, self.config.context)
