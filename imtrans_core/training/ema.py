"""``--ema``: an exponential moving average of the generators' weights, for translation and export."""

from __future__ import annotations

import copy

import torch
from torch import nn


class WeightAverage:
    """A copy of a module whose weights follow the module's as an exponential moving average.

    A GAN's generator does not settle: each update answers the discriminator's
    last one, and its output moves with it (docs/studies/quality-variants.md: one run's score
    moves by 2-4 points between kept checkpoints). The average of the recent
    weights sits near the middle of that orbit and is the usual remedy (Yazici
    et al. 2019, "The unusual effectiveness of averaging in GAN training";
    Karras et al. 2018). The decay starts low and rises to ``decay``
    (``min(decay, (1 + t) / (10 + t))`` after t updates), so that the average of
    a short run is not held near the initial weights. The copy is what
    translation and export load; training keeps using the module itself.
    """

    def __init__(self, module: nn.Module, decay: float):
        self.decay = decay
        self.module = copy.deepcopy(module).requires_grad_(False)

    def rate(self, updates: int) -> float:
        """The decay applied at the ``updates``-th update (1 for the first)."""
        return min(self.decay, (1 + updates) / (10 + updates))

    @torch.no_grad()
    def update(self, module: nn.Module, updates: int) -> None:
        """Move the average towards ``module``'s weights; buffers (e.g. norm statistics) are copied."""
        keep = self.rate(updates)
        for average, current in zip(self.module.parameters(), module.parameters(), strict=True):
            average.lerp_(current.detach(), 1.0 - keep)
        for average, current in zip(self.module.buffers(), module.buffers(), strict=True):
            average.copy_(current)
