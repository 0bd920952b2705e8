"""Training: ``train(config)`` runs CycleGAN (+ GC) and returns the run directory.

The same call serves one process and every rank of ``torchrun``; see
:mod:`.distributed`. ``imtrans train`` is a thin layer over it.
"""

from .config import PRESETS, TrainConfig, resolve_config, resume_config
from .runner import TrainResult, train
from .validate import check, resolve_specs

__all__ = [
    "PRESETS",
    "TrainConfig",
    "TrainResult",
    "check",
    "resolve_config",
    "resolve_specs",
    "resume_config",
    "train",
]
