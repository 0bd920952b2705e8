"""Multi-GPU and multi-node training through torchrun and DistributedDataParallel.

``torchrun --nproc-per-node N -m imtrans_core train ...`` sets RANK, WORLD_SIZE
and LOCAL_RANK; we then join the process group (NCCL on GPUs, gloo on CPUs),
wrap the generator and discriminator modules in DDP, give each rank different
slices, and let rank 0 alone write the run directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
import torch.distributed as torch_dist
from torch import nn

from ..choices import DEVICES
from ..errors import ImtransError
from ..vml import settle_vml_dispatch


@dataclass
class Distributed:
    rank: int = 0
    world: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    @classmethod
    def setup(cls, device: str = "auto") -> Distributed:
        """Read torchrun's environment; join the process group when there are several ranks.

        Every training loop (the engine's, a plugin's own) starts here, before its networks compute:
        the place to settle MKL's vector-math dispatch (``imtrans_core.vml``)."""
        settle_vml_dispatch()
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
        target = pick_device(device, local)
        if world > 1 and not torch_dist.is_initialized():
            torch_dist.init_process_group("nccl" if target.type == "cuda" else "gloo")
        return cls(rank, world, target)

    def wrap(self, module: nn.Module) -> nn.Module:
        """The module to train with: DDP-wrapped when there are several ranks."""
        if not self.active:
            return module
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(module, device_ids=ids)

    def barrier(self) -> None:
        if self.active:
            torch_dist.barrier()

    def close(self) -> None:
        if self.active and torch_dist.is_initialized():
            torch_dist.destroy_process_group()


def pick_device(device: str, local_rank: int = 0) -> torch.device:
    """The device of this rank, made current (``cuda:LOCAL_RANK`` under torchrun)."""
    kind = device_kind(device)
    if kind == "cuda":
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device(kind)


def device_kind(device: str) -> str:
    """``cpu`` or ``cuda`` for ``--device``, if this machine has it; no side effects."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ImtransError("--device cuda: no CUDA device is visible; use --device cpu")
    if device not in DEVICES:
        raise ImtransError(f"--device {device}: choose {', '.join(DEVICES)}")
    return device
