"""Mixed precision: bf16 autocast where the hardware makes it pay.

On CPUs with AMX bf16 autocast runs the ResNet-9 about 3x faster than fp32; on
CPUs without bf16 units it would be emulated and far slower, so ``--amp bf16``
warns there and runs fp32. On CUDA, bf16 where supported, else fp16 with a GradScaler.
Losses are computed in float32 regardless (the loss modules cast), and the GC
loss disables autocast inside.
"""

from __future__ import annotations

import contextlib

import torch

from ..cpu import cpu_has_fast_bf16, say_no_bf16_units
from ..errors import ImtransError


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``--amp`` on ``device`` (None: full fp32)."""
    if amp == "off":
        return None
    if amp == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if cpu_has_fast_bf16() else None
    if amp == "bf16":
        if device.type == "cpu" and not cpu_has_fast_bf16():
            say_no_bf16_units("--amp bf16")
            return None
        return torch.bfloat16
    if amp == "fp16":
        if device.type != "cuda":
            raise ImtransError("--amp fp16 needs a CUDA device; on the CPU use --amp bf16")
        return torch.float16
    raise ImtransError(f"--amp {amp}: choose off, bf16, fp16 or auto")


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)
