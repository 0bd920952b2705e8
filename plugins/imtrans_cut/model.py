"""The ``cut`` and ``fastcut`` models: Park et al. 2020, "Contrastive learning for unpaired image-to-image translation".

One generator, G_CT (MR -> CT), and one discriminator, D_CT; no second generator and no
cycle. What keeps the synthetic CT tied to its MR is PatchNCE (:mod:`.patchnce`): each
patch of G_CT(MR), encoded by G_CT's own encoder, must match the MR's patch at the same
place rather than the MR's other patches. ``cut`` adds the identity NCE on CTs
(G_CT(CT) against CT) and averages the two; ``fastcut`` drops it, weighs NCE 10x and asks
G_CT to commute with a horizontal flip. GAN: least squares, the discriminator halved, no
image pool (the reference's settings).
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


class Contrastive(nn.Module):
    """G_CT and its PatchNCE terms in one forward pass (one pass a step is what DDP synchronises)."""

    def __init__(self, generator: nn.Module, nce: nn.Module, identity: bool):
        super().__init__()
        self.g, self.nce, self.identity = generator, nce, identity
        self.layers = generator.feature_layers

    def forward(
        self, mr: torch.Tensor, ct: torch.Tensor, flip: bool
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """G_CT(MR) (mirrored left-right when ``flip``) and the NCE terms: ``nce``, and ``nce_idt`` with identity."""
        source = torch.cat([mr, ct]) if self.identity else mr
        out = self.g(source.flip(3) if flip else source)
        terms = {"nce": self._nce(mr, out[: len(mr)], flip)}
        if self.identity:
            terms["nce_idt"] = self._nce(ct, out[len(mr) :], flip)
        return out[: len(mr)], terms

    def _nce(self, source: torch.Tensor, output: torch.Tensor, flip: bool) -> torch.Tensor:
        queries = self.g.encode(output, self.layers)
        if flip:  # back to the source's orientation: G_CT must commute with the mirror
            queries = [query.flip(3) for query in queries]
        return self.nce(self.g.encode(source, self.layers), queries)


class CUT(GANModel):
    """CUT: G_CT, D_CT and PatchNCE over G_CT's encoder layers on unpaired MR and CT; MR -> CT."""

    shown = ("g_gan", "nce", "nce_idt", "d")
    reads = frozenset({"gen", "disc", "loss", "pairing", "ema", "compile"})
    default_losses: tuple[str, ...] = ("lsgan:1", "patchnce:1")
    loss_kinds = frozenset({"adversarial", "feature"})
    single_kinds = frozenset({"adversarial", "feature"})
    translates: ClassVar[dict[str, str]] = {"mr2ct": "g_ct"}
    averaged = ("g_ct",)  # --ema
    roles: ClassVar[dict[str, str]] = {
        "g_ct": "MR -> CT, and the encoder PatchNCE reads",
        "d_ct": "real or synthetic CT",
    }

    def __init__(self, identity: bool = True, flip: bool = False):
        self.identity, self.flip = identity, flip

    def resolve_networks(self, config: Any) -> dict[str, Network]:
        return {
            "g_ct": Network(ic.GENERATORS, generator_spec(config.gen, config.context)),
            "d_ct": Network(ic.DISCRIMINATORS, discriminator_spec(config.disc, config.context)),
        }

    def probe(self, networks: dict[str, nn.Module], x: torch.Tensor) -> str | None:
        generator = networks["g_ct"]
        if not hasattr(generator, "encode"):
            return (
                f"{self.name or 'cut'} needs a generator that offers encode(x, layers), e.g. resnet9 or unet"
            )
        y = generator(x)
        if tuple(y.shape) != tuple(x.shape):
            return f"the generator returns {tuple(y.shape)} for {tuple(x.shape)}"
        generator.encode(x, generator.feature_layers)
        networks["d_ct"](y)
        return None

    def check_losses(self, kinds: dict[str, str], removed: dict[str, str]) -> None:
        for kind, example in (("adversarial", "lsgan"), ("feature", "patchnce")):
            if kind not in kinds.values():
                raise SpecError(
                    f"--loss {removed.get(kind, '')} leaves {self.name or 'cut'} no {kind} loss; it needs one "
                    f"(e.g. {example}): give another instead of a weight of 0"
                )

    def setup(self, config: Any, dist: Any) -> None:
        self.config, self.device = config, dist.device
        self.g_ct, self.d_ct = self.build_networks(config, self.device).values()
        losses = compose_losses(config.loss, ic.LOSSES, self)
        self.adversarial = next(loss for loss in losses.values() if loss.kind == "adversarial")
        self.nce = next(loss for loss in losses.values() if loss.kind == "feature")
        with torch.no_grad():
            probe = torch.zeros(1, 2 * config.context + 1, config.size, config.size, device=self.device)
            self.nce.attach([f.shape[1] for f in self.g_ct.encode(probe, self.g_ct.feature_layers)])
        self.contrastive = Contrastive(self.g_ct, self.nce.to(self.device), self.identity)
        groups = {"g": self.g_ct.parameters(), "f": self.nce.parameters(), "d": self.d_ct.parameters()}
        self.optimizers = Optimizers(config, self.device, groups)
        self.g_train = compiled(dist.wrap(self.contrastive), config.compile)
        self.d_train = compiled(dist.wrap(self.d_ct), config.compile)

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One update of G_CT and the NCE heads, then one of D_CT on real CTs against this step's synthetic ones."""
        mr, ct = batch["mr"], batch["ct"]
        flip = self.flip and bool(torch.rand(()) < 0.5)  # the global RNG: checkpointed, so resume is exact
        amp = self.optimizers.amp
        self.d_ct.requires_grad_(False)
        with autocast(self.device, amp):
            fake, nce = self.g_train(mr, ct, flip)
            terms = {"g_gan": self.adversarial(self.d_ct(fake), True), **nce}
        loss_nce = sum(nce.values()) / len(nce)  # CUT averages the NCE and identity NCE
        loss_g = self.adversarial.weight * terms["g_gan"] + self.nce.weight * loss_nce
        self.optimizers.step(("g", "f"), loss_g)
        self.update_averages()
        self.d_ct.requires_grad_(True)
        with autocast(self.device, amp):
            terms["d"] = discriminator_loss(
                self.adversarial, self.d_train(torch.cat([ct, fake.detach()])), len(ct)
            )
        self.optimizers.step("d", terms["d"])
        self.optimizers.end_iteration()
        return {name: value.detach() for name, value in {**terms, "total_g": loss_g}.items()}

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "losses": {"patchnce": self.nce.state_dict()},
        }  # the loss's own parameters

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.nce.load_state_dict(state["losses"]["patchnce"])

    @torch.no_grad()
    def samples(self, fixed: tuple[torch.Tensor, torch.Tensor]) -> dict[str, np.ndarray]:
        """MR, synthetic CT, and a real CT (of another subject: the data are unpaired)."""
        ct, mr = fixed
        with autocast(self.device, self.optimizers.amp):
            fake = self.g_ct(mr[:1])
        return middle_slices({"mr": mr, "fake_ct": fake, "ct": ct}, self.config.context)


class FastCUT(CUT):
    """FastCUT: CUT without the identity NCE, NCE weighted 10, G_CT asked to commute with a left-right mirror."""

    default_losses = ("lsgan:1", "patchnce:10")

    def __init__(self, identity: bool = False, flip: bool = True):
        super().__init__(identity, flip)
