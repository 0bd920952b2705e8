"""An example trainable model: MR -> CT alone, learned by L1 from aligned pairs.

One network (``G_CT``, built from ``--gen``), one optimiser, one loss: the smallest
model the engine can train, to show what a model plugin writes. Everything else
(the loop, checkpoints, resume, Ctrl-C, DDP, logging, hooks) comes from the engine,
and ``imtrans translate RUN mr.nii.gz`` runs the result like a CycleGAN's G_CT::

    imtrans train --model paired-l1 --gen tiny --data phantom:n_train_pairs=8 --iters 2000

Registered by reference (``"imtrans_example.model:PairedL1"``), so torch is
imported when the model is first built, not when the plugin loads.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

import imtrans_core as ic
from imtrans_core.training.trainable import TrainableModel
from imtrans_core.training.validate import generator_spec


class PairedL1(TrainableModel):
    """G_CT trained with mean |G_CT(MR) - CT| on the data's aligned training pairs."""

    shown = ("l1",)

    def setup(self, config: Any, dist: Any) -> None:
        self.spec = str(generator_spec(config.gen, config.context))
        self.g_ct = ic.GENERATORS.build(self.spec).to(dist.device)
        self.g_train = dist.wrap(self.g_ct)
        self.optimizer = torch.optim.Adam(
            self.g_ct.parameters(), lr=config.lr, betas=(config.beta1, config.beta2)
        )
        self.middle = config.context  # the middle slice of a 2.5-D stack, for the samples

    @property
    def networks(self) -> dict[str, nn.Module]:
        return {"g_ct": self.g_ct}

    def network_specs(self) -> dict[str, str]:
        return {"g_ct": self.spec}

    def data_needs(self) -> tuple[bool, bool]:
        return False, True  # aligned pairs only

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        loss = (self.g_train(batch["pair_mr"]) - batch["pair_ct"]).abs().mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"l1": loss.detach(), "total": loss.detach()}

    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def state_dict(self) -> dict[str, Any]:
        return {"models": {"g_ct": self.g_ct.state_dict()}, "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.g_ct.load_state_dict(state["models"]["g_ct"])
        self.optimizer.load_state_dict(state["optimizer"])

    @torch.no_grad()
    def samples(self, fixed: tuple[torch.Tensor, torch.Tensor]) -> dict[str, np.ndarray]:
        """MR, synthetic CT, CT of the first fixed pair."""
        ct, mr = fixed
        images = {"mr": mr, "fake_ct": self.g_ct(mr[:1]), "ct": ct}
        return {name: image[0, self.middle].float().cpu().numpy() for name, image in images.items()}
