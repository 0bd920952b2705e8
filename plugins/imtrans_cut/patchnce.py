"""PatchNCE (Park et al. 2020, Eq. 3-5): a patch of the output should match the input's patch at its place.

For each encoder layer, ``patches`` locations are drawn; a two-layer MLP head maps the
features there to unit vectors; each output patch (the query) is scored against the input's
patch at the same place (the positive) and at the other drawn places of the same image (the
negatives), with temperature tau, by cross-entropy. The heads are the loss's own
parameters: the model that reads this loss optimises them beside its generator and saves
them in its checkpoints.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from imtrans_core.api import SpecError


class PatchNCELoss(nn.Module):
    """Contrastive loss over encoder features, averaged over layers (CUT: 256 patches, tau 0.07, 256-wide heads)."""

    kind = "feature"  # reads features of the generator's encoder (``encode``)
    name = "patchnce"

    def __init__(self, weight: float = 1.0, patches: int = 256, temperature: float = 0.07, width: int = 256):
        super().__init__()
        if not weight >= 0 or not temperature > 0 or patches < 2 or width < 1:
            raise SpecError(
                f"patchnce needs weight >= 0, temperature > 0, patches >= 2 and width >= 1; got weight={weight}, "
                f"temperature={temperature}, patches={patches}, width={width}"
            )
        self.weight, self.patches, self.temperature, self.width = float(weight), patches, temperature, width
        self.heads = nn.ModuleList()

    def attach(self, channels: list[int]) -> None:
        """Make one MLP head per layer for features of ``channels`` channels (once, before training)."""
        self.heads = nn.ModuleList(
            nn.Sequential(nn.Linear(c, self.width), nn.ReLU(), nn.Linear(self.width, self.width))
            for c in channels
        )
        for head in self.heads.modules():
            if isinstance(head, nn.Linear):  # CUT's init: normal(0, 0.02), zero bias
                nn.init.normal_(head.weight, 0.0, 0.02)
                nn.init.zeros_(head.bias)

    def forward(self, source: list[torch.Tensor], output: list[torch.Tensor]) -> torch.Tensor:
        """The mean over layers of the NCE of ``output``'s patches (queries) against ``source``'s (keys)."""
        total = torch.zeros((), device=source[0].device)
        for head, key, query in zip(self.heads, source, output, strict=True):
            h, w = key.shape[-2:]
            places = torch.randperm(h * w, device=key.device)[: self.patches]  # the global RNG: resumable
            k = F.normalize(head(key.flatten(2)[:, :, places].transpose(1, 2).float()), dim=-1).detach()
            q = F.normalize(head(query.flatten(2)[:, :, places].transpose(1, 2).float()), dim=-1)
            total = total + self._nce(q, k)
        return total / len(self.heads)

    def _nce(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """(N, P, D) queries and keys: each query's own key is the positive, the image's other keys the negatives."""
        positive = (q * k).sum(-1, keepdim=True)  # (N, P, 1)
        negative = q @ k.transpose(1, 2)  # (N, P, P)
        eye = torch.eye(q.shape[1], device=q.device, dtype=torch.bool)
        negative = negative.masked_fill(eye, -10.0)  # a patch is no negative of itself
        logits = torch.cat([positive, negative], -1).flatten(0, 1) / self.temperature
        return F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long, device=q.device))

    def extra_repr(self) -> str:
        return f"weight={self.weight}, patches={self.patches}, temperature={self.temperature}, width={self.width}"
