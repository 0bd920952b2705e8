"""Settle MKL's vector-math dispatch once, on one thread, before torch's worker threads share it.

On CPU, torch hands contiguous float ``tanh``, ``sqrt``, ``exp``, ``log`` and a dozen more to MKL's
VML, each intra-op thread on its own chunk. The MKL of the torch wheels (oneMKL 2024.2) picks each
function's kernel on its first call; when that first call runs on several threads at once, one
thread can compute its whole chunk with a low-accuracy kernel (pytorch/pytorch#188792), and two
runs of one configuration differ (docs/training.md, "Stopping and resuming"). Calling every such
function once on one value, before any threaded call, settles the dispatch; later calls are exact.
"""

from __future__ import annotations

import functools

#: the ``torch`` functions that ATen routes to MKL's VML for float32 and float64 (``aten/src/ATen/cpu/vml.h``)
VML_FUNCTIONS = (
    "acos",
    "asin",
    "atan",
    "cos",
    "erf",
    "erfc",
    "erfinv",
    "exp",
    "log",
    "log10",
    "log2",
    "sin",
    "sqrt",
    "tan",
    "tanh",
    "trunc",
)


@functools.cache
def settle_vml_dispatch() -> None:
    """Call each of ``VML_FUNCTIONS`` on one float32 and one float64 value, on this thread (once per process)."""
    import torch

    for dtype in (torch.float32, torch.float64):
        one = torch.full((1,), 0.5, dtype=dtype)
        for name in VML_FUNCTIONS:
            getattr(torch, name)(one)
