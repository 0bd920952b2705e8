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

#: the flags that decide how fast each precision runs: fp32 (AVX2, FMA, AVX-512), bf16 (AVX-512 BF16,
#: AMX), int8 (VNNI, AMX)
SPEED_FLAGS = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
)


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's flags, from the first processor of /proc/cpuinfo (empty where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def speed_flags() -> list[str]:
    """Which of :data:`SPEED_FLAGS` this CPU has: what every benchmark records beside its numbers."""
    return [flag for flag in SPEED_FLAGS if flag in cpu_flags()]


def cpu_class() -> str:
    """``amx``, ``avx512-bf16``, ``avx512``, ``avx2`` (the x86 CPUs whose speeds differ in kind) or ``other``."""
    flags = cpu_flags()
    for flag, kind in (
        ("amx_bf16", "amx"),
        ("avx512_bf16", "avx512-bf16"),
        ("avx512f", "avx512"),
        ("avx2", "avx2"),
    ):
        if flag in flags:
            return kind
    return "other"


def cpu_has_fast_bf16() -> bool:
    """True when the CPU has AMX or AVX-512 BF16 units (read from /proc/cpuinfo on Linux)."""
    return bool({"amx_bf16", "avx512_bf16"} & cpu_flags())


@functools.cache
def say_no_bf16_units(option: str) -> None:
    """Warn, once a process for each ``option`` (``--amp bf16``), that bf16 runs as fp32 here."""
    warnings.warn(
        f"{option}: this CPU has no bf16 units (neither AMX nor AVX-512 BF16), where bf16 runs many "
        "times slower than fp32; running in fp32 (auto chooses by itself)",
        ImtransWarning,
        stacklevel=3,
    )
