"""The ``reggan`` model: Kong et al. 2021, "Breaking the dilemma of medical image-to-image translation".

Pairs of one patient's MR and CT are rarely aligned voxel for voxel; pix2pix's L1 then
teaches the generator to blur. RegGAN lets a registration network R move the synthetic CT
onto the real one before the L1 ("correction" loss, lambda 20), with a smoothness term on
R's displacement field (lambda 10) and the adversarial term (least squares, lambda 1) on the
synthetic CT as it is. G_CT and R are updated together by one loss; D_CT judges real CTs
against pooled synthetic ones. Only G_CT translates: R is a training aid.
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
    discriminator_loss,
    discriminator_spec,
    generator_spec,
    middle_slices,
)

from .warp import warp

# each logged term's loss kind
KIND_OF = {"paired": "paired", "smooth": "deformation", "g_gan": "adversarial"}


class Registered(nn.Module):
    """G_CT and R in one forward pass: the synthetic CT, R's field, and the synthetic CT moved onto the real one."""

    def __init__(self, generator: nn.Module, registration: nn.Module):
        super().__init__()
        self.g, self.r = generator, registration

    def forward(self, mr: torch.Tensor, ct: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        fake = self.g(mr)
        flow = self.r(torch.cat([fake, ct], 1)).float()
        return fake, flow, warp(fake, flow)


class RegGAN(GANModel):
    """G_CT, a registration network R and D_CT on (roughly) aligned pairs: L1 after registration, smoothness, GAN."""

    shown = ("g_gan", "paired", "smooth", "d")
    reads = frozenset({"gen", "disc", "loss", "pool", "ema", "compile"})
    default_losses = ("lsgan:1", "paired:20", "smooth:10")  # the paper's Adv, Corr and Smooth lambdas
    loss_kinds = frozenset({"adversarial", "paired", "deformation"})
    single_kinds = frozenset({"adversarial", "paired", "deformation"})
    translates: ClassVar[dict[str, str]] = {"mr2ct": "g_ct"}
    averaged = ("g_ct",)  # --ema
    roles: ClassVar[dict[str, str]] = {
        "g_ct": "MR -> CT",
        "r": "registration: (synthetic CT, CT) -> displacement field",
        "d_ct": "real or synthetic CT",
    }

    def __init__(self, registration: str = "unet:base=16,depth=3,norm=none"):
        self.registration = registration  # a generator spec; its channels and output follow from the data

    def resolve_networks(self, config: Any) -> dict[str, Network]:
        stack = 2 * config.context + 1
        return {
            "g_ct": Network(ic.GENERATORS, generator_spec(config.gen, config.context)),
            "r": Network(ic.GENERATORS, self._registration_spec(2 * stack)),
            "d_ct": Network(ic.DISCRIMINATORS, discriminator_spec(config.disc, config.context)),
        }

    def _registration_spec(self, in_ch: int) -> ic.Spec:
        given = ic.GENERATORS.resolve(self.registration)
        fixed = {"in_ch": in_ch, "out_ch": 2} | ({"final": "none"} if "final" in given.kwargs else {})
        return ic.GENERATORS.resolve(self.registration, **fixed)

    def probe(self, networks: dict[str, nn.Module], x: torch.Tensor) -> str | None:
        y = networks["g_ct"](x)
        if tuple(y.shape) != tuple(x.shape):
            return f"the generator returns {tuple(y.shape)} for {tuple(x.shape)}"
        flow = networks["r"](torch.cat([y, x], 1))
        if tuple(flow.shape) != (len(x), 2, *x.shape[2:]):
            return f"the registration network returns {tuple(flow.shape)}, not a 2-channel field of the slice's size"
        networks["d_ct"](y)
        return None

    def check_losses(self, kinds: dict[str, str], removed: dict[str, str]) -> None:
        if "paired" not in kinds.values():
            raise SpecError(
                f"--loss {removed.get('paired', '')} leaves reggan without its correction loss (L1 after "
                "registration); give another weight instead of 0"
            )

    def data_needs(self) -> tuple[bool, bool]:
        return False, True  # one patient's MR and CT, aligned or roughly so

    def setup(self, config: Any, dist: Any) -> None:
        self.config, self.device = config, dist.device
        self.g_ct, self.r, self.d_ct = self.build_networks(config, self.device).values()
        self.registered = Registered(self.g_ct, self.r)
        losses = compose_losses(config.loss, ic.LOSSES, self)
        self.terms = {loss.kind: loss for loss in losses.values()}
        groups = {"g": self.g_ct.parameters(), "r": self.r.parameters(), "d": self.d_ct.parameters()}
        self.optimizers = Optimizers(config, self.device, groups)
        self.pool = ImagePool(config.pool, seed=config.seed * 1000 + dist.rank)
        self.g_train = compiled(dist.wrap(self.registered), config.compile)
        self.d_train = compiled(dist.wrap(self.d_ct), config.compile)

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One update of G_CT and R together, then one of D_CT."""
        mr, ct = batch["pair_mr"], batch["pair_ct"]
        amp, adversarial = self.optimizers.amp, self.terms.get("adversarial")
        with autocast(self.device, amp):
            fake, flow, moved = self.g_train(mr, ct)
        terms = {"paired": self.terms["paired"](ct, moved)}
        if "deformation" in self.terms:
            terms["smooth"] = self.terms["deformation"](flow)
        if adversarial is not None:
            self.d_ct.requires_grad_(False)
            with autocast(self.device, amp):
                terms["g_gan"] = adversarial(self.d_ct(fake), True)
        loss_g = sum(self.terms[KIND_OF[name]].weight * value for name, value in terms.items())
        self.optimizers.step(("g", "r"), loss_g)
        self.update_averages()
        if adversarial is not None:
            self.d_ct.requires_grad_(True)
            pooled = self.pool.query(fake.detach().float())
            with autocast(self.device, amp):
                terms["d"] = discriminator_loss(adversarial, self.d_train(torch.cat([ct, pooled])), len(ct))
            self.optimizers.step("d", terms["d"])
        self.optimizers.end_iteration()
        return {name: value.detach() for name, value in {**terms, "total_g": loss_g}.items()}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "pool": self.pool.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.pool.load_state_dict(state["pool"], self.device)

    @torch.no_grad()
    def samples(self, fixed: tuple[torch.Tensor, torch.Tensor]) -> dict[str, np.ndarray]:
        """MR, synthetic CT, the synthetic CT registered onto the real CT, the real CT."""
        ct, mr = fixed
        with autocast(self.device, self.optimizers.amp):
            fake, _, moved = self.registered(mr[:1], ct[:1])
        return middle_slices({"mr": mr, "fake_ct": fake, "registered": moved, "ct": ct}, self.config.context)
