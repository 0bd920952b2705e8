"""Training: ``train(config)`` runs CycleGAN (+ GC) and returns the run directory.

The same call serves one process and every rank of ``torchrun``; see
:mod:`.distributed`. ``imtrans train`` is a thin layer over it.
"""

from .config import PRESETS, TrainConfig, resolve_config
from .runner import TrainResult, resolve_specs, train

__all__ = ["PRESETS", "TrainConfig", "TrainResult", "resolve_config", "resolve_specs", "train"]
