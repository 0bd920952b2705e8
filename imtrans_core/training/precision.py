"""Mixed precision: bf16 autocast where the hardware makes it pay.

On CPUs with AMX bf16 autocast runs the ResNet-9 about 3x faster than fp32; on
CPUs without bf16 units it would be emulated and far slower, so ``--amp bf16``
warns there and runs fp32. On CUDA, bf16 where supported, else fp16 with a GradScaler.
Losses are computed in float32 regardless (the loss modules cast), and the GC
loss disables autocast inside.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from pathlib import Path

import torch

from ..errors import ImtransError, ImtransWarning


def cpu_has_fast_bf16() -> bool:
    """True when the CPU has AMX or AVX-512 BF16 units (read from /proc/cpuinfo on Linux)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


# Emulated bf16 is no speed-up but a slow-down: one 3x3 convolution ran 94x slower than fp32 on an
# AVX2-only EPYC. fp32 gives the same network more exactly, so the run goes on in fp32 rather than stop.
NO_BF16_UNITS = (
    "--amp bf16: this CPU has no bf16 units (neither AMX nor AVX-512 BF16), where bf16 runs many "
    "times slower than fp32; running in fp32 (--amp auto chooses by itself)"
)


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
            _say_no_bf16_units()
            return None
        return torch.bfloat16
    if amp == "fp16":
        if device.type != "cuda":
            raise ImtransError("--amp fp16 needs a CUDA device; on the CPU use --amp bf16")
        return torch.float16
    raise ImtransError(f"--amp {amp}: choose off, bf16, fp16 or auto")


@functools.cache
def _say_no_bf16_units() -> None:
    """Once a process: the run's checks and its model both resolve ``--amp``."""
    warnings.warn(NO_BF16_UNITS, ImtransWarning, stacklevel=3)


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)
