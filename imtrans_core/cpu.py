"""What this CPU can do fast, read once from its flags: the rule every precision choice follows.

bf16 pays only where the CPU has bf16 units (AMX, or AVX-512 BF16); elsewhere it is emulated and
runs many times slower than fp32 (one 3x3 convolution: 94x on an AVX2-only EPYC). Asked for bf16
there, torch (``--amp``) and OpenVINO (``--precision``) both warn once and run fp32.
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path

from .errors import ImtransWarning


def cpu_has_fast_bf16() -> bool:
    """True when the CPU has AMX or AVX-512 BF16 units (read from /proc/cpuinfo on Linux)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


@functools.cache
def say_no_bf16_units(option: str) -> None:
    """Warn, once a process for each ``option`` (``--amp bf16``), that bf16 runs as fp32 here."""
    warnings.warn(
        f"{option}: this CPU has no bf16 units (neither AMX nor AVX-512 BF16), where bf16 runs many "
        "times slower than fp32; running in fp32 (auto chooses by itself)",
        ImtransWarning,
        stacklevel=3,
    )
