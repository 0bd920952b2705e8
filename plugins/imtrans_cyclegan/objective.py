"""The four networks of CycleGAN and the objective of Hiasa et al. 2018, Eq. 1-6.

``G_CT`` translates MR to CT and ``G_MR`` CT to MR; ``D_CT`` and ``D_MR`` tell
real from synthetic images of their domain. The generators sit in one module
and the discriminators in another so that each is a single forward pass, which
is what DistributedDataParallel needs to synchronise gradients correctly.

Loss terms are registry objects with a ``kind`` that says where they enter the
objective (see ``imtrans_cyclegan.losses``):

- ``adversarial``: Eq. 1-2 (least squares in the paper), exactly one;
- ``cycle``: Eq. 3, |G_CT(G_MR(x)) - x| + |G_MR(G_CT(y)) - y|;
- ``gradient``: Eq. 5, 1/2 [(1 - GC(x, G_MR(x))) + (1 - GC(y, G_CT(y)))];
- ``identity``: |G_CT(x) - x| + |G_MR(y) - y| (the reference CycleGAN's, off by default);
- ``distribution``: 1/2 [d(x, G_CT(y)) + d(y, G_MR(x))], the value distributions of real and
  synthetic batches of each domain compared (not in the paper; ``hist``);
- ``paired``: |G_CT(y') - x'| + |G_MR(x') - y'| on an aligned pair (x', y') (not in the
  paper: the supervised upper bound, or with the others the hybrid);
- ``prior``: |G_CT(y) - m(y)| + |G_MR(x) - m'(x)| with m, m' maps of values fitted on the pools,
  weighted by the term's ``factor(step)`` (not in the paper: a warm start, ``prior``).

Unpaired and paired images come in one batch (``Batch``); the generators run
only what the objective's terms read, so a supervised run costs two passes per
step and no discriminator.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from imtrans_core.api import discriminator_loss

KINDS = ("adversarial", "cycle", "gradient", "identity", "distribution", "paired", "prior")


class Generators(nn.Module):
    """G_CT (MR -> CT) and G_MR (CT -> MR), run together in one forward pass."""

    def __init__(self, g_ct: nn.Module, g_mr: nn.Module):
        super().__init__()
        self.g_ct, self.g_mr = g_ct, g_mr

    def forward(
        self, batch: dict[str, torch.Tensor], identity: bool = False, cycle_noise: float = 0.0
    ) -> dict[str, torch.Tensor]:
        """The translations the objective reads, from the images ``batch`` holds.

        ``ct``, ``mr``: unpaired (N, C, H, W) in [-1, 1] (C: 1, or a 2.5-D stack; x in I_CT, y in I_MR as
        in the paper); ``pair_ct``, ``pair_mr``: one aligned pair per sample. ``cycle_noise``: the SD of
        Gaussian noise added to each translation before it is translated back (the cycle loss's ``noise``).
        """
        out = {}
        if "ct" in batch:
            out["fake_mr"] = self.g_mr(batch["ct"])  # G_MR(x)
            out["fake_ct"] = self.g_ct(batch["mr"])  # G_CT(y)
            out["rec_ct"] = self.g_ct(_noisy(out["fake_mr"], cycle_noise))  # G_CT(G_MR(x))
            out["rec_mr"] = self.g_mr(_noisy(out["fake_ct"], cycle_noise))  # G_MR(G_CT(y))
            if identity:
                out["idt_ct"] = self.g_ct(batch["ct"])
                out["idt_mr"] = self.g_mr(batch["mr"])
        if "pair_ct" in batch:
            out["pair_fake_ct"] = self.g_ct(batch["pair_mr"])
            out["pair_fake_mr"] = self.g_mr(batch["pair_ct"])
        return out


def _noisy(image: torch.Tensor, sd: float) -> torch.Tensor:
    return image + sd * torch.randn_like(image) if sd > 0 else image


class Discriminators(nn.Module):
    """D_CT and D_MR; one forward pass scores a CT batch and an MR batch."""

    def __init__(self, d_ct: nn.Module, d_mr: nn.Module):
        super().__init__()
        self.d_ct, self.d_mr = d_ct, d_mr

    def forward(self, ct: torch.Tensor, mr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.d_ct(ct), self.d_mr(mr)


@dataclass
class Objective:
    """The loss terms of Eq. 6 (and the paired term), grouped by where they enter."""

    adversarial: nn.Module | None  # None: supervised only, no discriminator is trained
    cycle: dict[str, nn.Module]
    gradient: dict[str, nn.Module]
    identity: dict[str, nn.Module]
    distribution: dict[str, nn.Module]
    paired: dict[str, nn.Module]
    prior: dict[str, nn.Module]

    @classmethod
    def from_losses(cls, losses: dict[str, nn.Module]) -> Objective:
        """The terms grouped by kind; ``losses`` as ``compose_losses`` gives them for ``cyclegan`` (checked)."""
        groups: dict[str, dict[str, nn.Module]] = {kind: {} for kind in KINDS}
        for name, loss in losses.items():
            groups[loss.kind][name] = loss
        adversarial = next(iter(groups["adversarial"].values()), None)
        return cls(adversarial, *(groups[kind] for kind in KINDS[1:]))

    @property
    def wants_identity(self) -> bool:
        return bool(self.identity)

    @property
    def cycle_noise(self) -> float:
        """The SD of the noise added to translations before the cycle (0: none, the paper's cycle)."""
        return max((float(getattr(loss, "noise", 0.0)) for loss in self.cycle.values()), default=0.0)

    @property
    def uses_unpaired(self) -> bool:
        """Whether any term reads unpaired images (every term of the paper does)."""
        return self.adversarial is not None or bool(
            self.cycle or self.gradient or self.identity or self.distribution or self.prior
        )

    @property
    def uses_pairs(self) -> bool:
        return bool(self.paired)

    def generator_terms(
        self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor], discriminators: Discriminators
    ) -> dict[str, torch.Tensor]:
        """Unweighted terms of the generators' loss, named for the log."""
        terms = {}
        ct, mr = batch.get("ct"), batch.get("mr")
        if self.adversarial is not None:  # Eq. 1-2, generator side
            pred_ct, pred_mr = discriminators(out["fake_ct"], out["fake_mr"])
            terms = {"g_ct": self.adversarial(pred_ct, True), "g_mr": self.adversarial(pred_mr, True)}
        for name, loss in self.cycle.items():  # Eq. 3
            terms[name] = loss(ct, out["rec_ct"]) + loss(mr, out["rec_mr"])
        for name, loss in self.gradient.items():  # Eq. 5
            terms[name] = 0.5 * (loss(ct, out["fake_mr"]) + loss(mr, out["fake_ct"]))
        for name, loss in self.identity.items():
            terms[name] = loss(ct, out["idt_ct"]) + loss(mr, out["idt_mr"])
        for name, loss in self.distribution.items():
            terms[name] = 0.5 * (loss(ct, out["fake_ct"]) + loss(mr, out["fake_mr"]))
        for name, loss in self.paired.items():
            terms[name] = loss(batch["pair_ct"], out["pair_fake_ct"]) + loss(
                batch["pair_mr"], out["pair_fake_mr"]
            )
        for name, loss in self.prior.items():
            terms[name] = loss(mr, out["fake_ct"], "ct") + loss(ct, out["fake_mr"], "mr")
        return terms

    def weights(self, step: int = 0) -> dict[str, float]:
        """Each term's weight at iteration ``step`` (a prior's falls as it says; the others are constant)."""
        weights = {}
        if self.adversarial is not None:
            weights = {"g_ct": self.adversarial.weight, "g_mr": self.adversarial.weight}
        for group in (self.cycle, self.gradient, self.identity, self.distribution, self.paired):
            weights.update({name: loss.weight for name, loss in group.items()})
        weights.update({name: loss.weight * loss.factor(step) for name, loss in self.prior.items()})
        return weights

    def generator_loss(self, terms: dict[str, torch.Tensor], step: int = 0) -> torch.Tensor:
        """Eq. 6 from the generators' side: the weighted sum of the terms at iteration ``step``."""
        weights = self.weights(step)
        return sum(weights[name] * value for name, value in terms.items())

    def seen_as_real(self, image: torch.Tensor, domain: str) -> torch.Tensor:
        """A real batch of ``domain`` as its discriminator is shown it (the adversarial loss's ``real``, if any)."""
        show = getattr(self.adversarial, "real", None)
        return show(image, domain) if show is not None else image

    def discriminator_terms(
        self, pred_ct: torch.Tensor, pred_mr: torch.Tensor, n_real: int
    ) -> dict[str, torch.Tensor]:
        """Eq. 1-2 from the discriminators' side: real scored as real, synthetic as synthetic.

        ``pred_*`` hold the real images' scores first (``n_real`` of them) and
        the pooled synthetic ones after.
        """
        return {
            "d_ct": discriminator_loss(self.adversarial, pred_ct, n_real),
            "d_mr": discriminator_loss(self.adversarial, pred_mr, n_real),
        }
