"""Training: ``train(config)`` trains the config's model (CycleGAN + GC by default) in the engine.

The same call serves one process and every rank of ``torchrun``; see
:mod:`.distributed`. ``imtrans train`` is a thin layer over it.

The names below load on first use (PEP 562): the configuration (:mod:`.config`)
needs no torch, so ``imtrans train --help`` and an option error answer without
importing it; ``train`` and the checks do.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "SMALL_SCALE": "config",
    "preset_options": "config",
    "TrainConfig": "config",
    "resolve_config": "config",
    "resume_config": "config",
    "TrainResult": "runner",
    "train": "runner",
    "check": "validate",
    "resolve_specs": "validate",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
