"""An example trainable model: MR -> CT alone, learned by L1 from aligned pairs.

One network (``G_CT``, built from ``--gen``), one optimiser, one loss: the smallest
method the engine can train, written against ``imtrans_core.api`` alone, to show what a
method plugin writes. Everything else (the loop, checkpoints, resume, Ctrl-C, DDP,
logging, hooks) comes from the engine, and ``imtrans translate RUN mr.nii.gz`` runs the
result, as its ``translates`` says::

    imtrans train --model paired-l1 --gen tiny --data phantom:n_train_pairs=8 --iters 2000

Registered by reference (``"imtrans_example.model:PairedL1"``), so torch is
imported when the model is first built, not when the plugin loads.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

import imtrans_core as ic
from imtrans_core.api import Network, Optimizers, TrainableModel, autocast, generator_spec, middle_slices


class PairedL1(TrainableModel):
    """G_CT trained with mean |G_CT(MR) - CT| on the data's aligned training pairs."""

    shown = ("l1",)
    reads = frozenset({"gen"})  # of the options only some models read: --disc, --loss, --pool... are refused
    translates: ClassVar[dict[str, str]] = {"mr2ct": "g_ct"}  # what `imtrans translate` and `export` load
    roles: ClassVar[dict[str, str]] = {"g_ct": "MR -> CT"}

    def resolve_networks(self, config: Any) -> dict[str, Network]:
        return {"g_ct": Network(ic.GENERATORS, generator_spec(config.gen, config.context))}

    def setup(self, config: Any, dist: Any) -> None:
        self.network = self.resolve_networks(config)["g_ct"]
        self.g_ct = self.network.build().to(dist.device)
        self.g_train = dist.wrap(self.g_ct)
        self.optimizers = Optimizers(config, dist.device, {"g": self.g_ct.parameters()})  # Adam, linear decay
        self.device, self.middle = dist.device, config.context  # the middle slice of a 2.5-D stack

    @property
    def networks(self) -> dict[str, nn.Module]:
        return {"g_ct": self.g_ct}

    def network_specs(self) -> dict[str, str]:
        return {"g_ct": str(self.network)}

    def data_needs(self) -> tuple[bool, bool]:
        return False, True  # aligned pairs only

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        with autocast(self.device, self.optimizers.amp):
            loss = (self.g_train(batch["pair_mr"]).float() - batch["pair_ct"]).abs().mean()
        self.optimizers.step("g", loss)
        self.optimizers.end_iteration()
        return {"l1": loss.detach(), "total": loss.detach()}

    def lr(self) -> float:
        return self.optimizers.lr()

    def state_dict(self) -> dict[str, Any]:
        return {"models": {"g_ct": self.g_ct.state_dict()}, **self.optimizers.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.g_ct.load_state_dict(state["models"]["g_ct"])
        self.optimizers.load_state_dict(state)

    @torch.no_grad()
    def samples(self, fixed: tuple[torch.Tensor, torch.Tensor]) -> dict[str, np.ndarray]:
        """MR, synthetic CT, CT of the first fixed pair."""
        ct, mr = fixed
        return middle_slices({"mr": mr, "fake_ct": self.g_ct(mr[:1]), "ct": ct}, self.middle)
