"""The ``segment`` model: the §3.2 two-channel U-Net (or a CT-only one), as one step of the shared training engine.

Hiasa et al. 2018, §3.2: "we modified the 2D U-net to take the two-channel input of both CT and
synthesized MR images. We trained [it] using Adam for 1e5 iterations at learning rate of
0.0001." The loss is pixel-wise cross-entropy (Ronneberger et al.), optionally plus a soft Dice
loss, which helps small structures such as the gluteus minimus. ``imtrans segment train``
(:mod:`.train`) prepares the labelled slices and drives this model with the core engine.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import imtrans_core as ic
from imtrans_core.api import TrainableModel, autocast, resolve_amp

from .config import SegmentConfig

# --channels -> the input channels in order; at test time "ct" holds the synthetic CT. "ct,mr" is
# the paper's; "ct" alone segments any model's synthetic CT as a CT tool would.
CHANNEL_SETS = {"ct,mr": ("ct", "mr"), "ct": ("ct",)}


def net_spec(net: str, n_structures: int, channels: str = "ct,mr") -> str:
    """``net`` resolved for ``channels``' inputs, background + ``n_structures`` classes and raw logits."""
    in_ch = len(CHANNEL_SETS[channels])
    return str(ic.GENERATORS.resolve(net, in_ch=in_ch, out_ch=n_structures + 1, final="none"))


class SegmentationUNet(TrainableModel):
    """The §3.2 U-Net on (CT, synthetic MR) slices: cross-entropy (+ soft Dice), Adam; see segment train.

    Its network is ``config.net`` resolved by :func:`net_spec` (2 channels in, background +
    structures out, raw logits).
    """

    trained_by = "imtrans segment train"
    label = "segment train"
    shown = ("ce", "dice")

    def setup(self, config: SegmentConfig, dist: Any) -> None:
        self.config, self.device = config, dist.device
        self.amp = resolve_amp(config.amp, dist.device)
        self.net = he_init(ic.GENERATORS.build(config.net)).to(dist.device)
        self.classes = int(ic.GENERATORS.resolve(config.net).kwargs["out_ch"])  # background + structures
        self.net_train = dist.wrap(self.net)
        self.optimizer = torch.optim.Adam(
            self.net.parameters(), lr=config.lr, betas=(config.beta1, config.beta2)
        )

    @property
    def networks(self) -> dict[str, nn.Module]:
        return {"unet": self.net}

    def network_specs(self) -> dict[str, str]:
        return {"unet": str(ic.GENERATORS.resolve(self.config.net))}

    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``batch``: ``x`` (N, C, S, S) CT (and synthetic MR) in [-1, 1]; ``y`` (N, S, S) classes."""
        with autocast(self.device, self.amp):
            logits = self.net_train(batch["x"])  # (N, K+1, S, S)
        terms = segmentation_loss(logits.float(), batch["y"], self.config.dice_loss)
        self.optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        self.optimizer.step()
        return {name: value.detach() for name, value in terms.items()}

    def state_dict(self) -> dict[str, Any]:
        return {"models": {"unet": self.net.state_dict()}, "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["models"]["unet"])
        self.optimizer.load_state_dict(state["optimizer"])

    @torch.no_grad()
    def samples(self, fixed: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        """Each input channel (CT, synthetic MR), reference classes; the U-Net's (classes drawn from -1 to 1)."""
        with autocast(self.device, self.amp):
            predicted = self.net(fixed["x"][:1]).argmax(dim=1)
        top = max(self.classes - 1, 1)
        channels = CHANNEL_SETS[self.config.channels]
        images = {name: fixed["x"][0, i] for i, name in enumerate(channels)}
        images.update(labels=fixed["y"][0] * 2.0 / top - 1, predicted=predicted[0] * 2.0 / top - 1)
        return {name: image.float().cpu().numpy() for name, image in images.items()}


def with_net(config: SegmentConfig, n_structures: int) -> SegmentConfig:
    """``config`` with its network spec resolved for ``n_structures`` (what the model builds)."""
    return replace(config, net=net_spec(config.net, n_structures, config.channels))


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor, dice_weight: float = 0.0) -> dict[str, Any]:
    """Cross-entropy (Ronneberger et al.) plus ``dice_weight`` x soft Dice loss over the structures.

    ``logits`` (N, K+1, H, W) float32; ``target`` (N, H, W) int64 in 0..K. Returns
    ``ce``, ``dice`` (when weighted) and their weighted sum ``total``.
    """
    ce = F.cross_entropy(logits, target)
    terms = {"ce": ce}
    if dice_weight > 0:
        probs = logits.softmax(dim=1)[:, 1:]  # (N, K, H, W)
        onehot = F.one_hot(target, logits.shape[1]).permute(0, 3, 1, 2)[:, 1:].float()
        inter = (probs * onehot).sum(dim=(0, 2, 3))
        total = probs.sum(dim=(0, 2, 3)) + onehot.sum(dim=(0, 2, 3))
        soft_dice = (2 * inter + 1.0) / (total + 1.0)
        terms["dice"] = 1.0 - soft_dice.mean()
        terms["total"] = ce + dice_weight * terms["dice"]
    else:
        terms["total"] = ce
    return terms


def he_init(net: nn.Module) -> nn.Module:
    """Ronneberger et al.'s initialisation (U-Net paper, §3): conv weights ~ N(0, 2 / fan_in), biases 0.

    The generators' reference-CycleGAN initialisation (N(0, 0.02)) starts every ReLU layer far
    too small for a classifier: on the hip phantom the U-Net then merged femur, gluteus medius
    and minimus into one class for hundreds of iterations, where this one separated all four.
    """
    for module in net.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return net
