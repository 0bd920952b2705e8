"""Displacement fields: warping an image through one, and the smoothness term that keeps one plausible."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from imtrans_core.api import SpecError


def warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """``image`` (N, C, H, W) resampled at each pixel's position plus ``flow`` (N, 2, H, W: dy, dx in pixels).

    Bilinear, borders repeated outward (a CT's air stays air at the edge of the field of view).
    """
    h, w = image.shape[-2:]
    rows = torch.arange(h, device=image.device, dtype=flow.dtype).view(1, h, 1)
    cols = torch.arange(w, device=image.device, dtype=flow.dtype).view(1, 1, w)
    y = (rows + flow[:, 0]) * (2 / max(h - 1, 1)) - 1  # grid_sample's [-1, 1], corners aligned
    x = (cols + flow[:, 1]) * (2 / max(w - 1, 1)) - 1
    grid = torch.stack([x, y], -1)  # (N, H, W, 2): x first, as grid_sample reads it
    return F.grid_sample(
        image, grid.to(image.dtype), mode="bilinear", padding_mode="border", align_corners=True
    )


class SmoothnessLoss(nn.Module):
    """Mean squared spatial gradient of a displacement field (RegGAN's smoothness term, lambda 10)."""

    kind = "deformation"  # reads the registration network's field
    name = "smooth"

    def __init__(self, weight: float = 10.0):
        super().__init__()
        if not weight >= 0:
            raise SpecError(f"weight must be >= 0, got {weight}")
        self.weight = float(weight)

    def forward(self, flow: torch.Tensor) -> torch.Tensor:
        flow = flow.float()
        dy = flow[:, :, 1:, :] - flow[:, :, :-1, :]
        dx = flow[:, :, :, 1:] - flow[:, :, :, :-1]
        return (dy**2).mean() + (dx**2).mean()
