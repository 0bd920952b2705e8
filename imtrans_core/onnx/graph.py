"""What exporting, quantizing and verifying an ONNX graph share: here, so quantize and verify need not import export.

The names of the graph's one input and one output, the window and unit of each
modality (a generator's source and target), and :func:`quiet`, which silences
the exporters' and the quantizer's chatter. :mod:`imtrans_core.onnx.export` imports
:mod:`imtrans_core.onnx.quantize` and :mod:`imtrans_core.onnx.verify`; all three import this.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator

from ..data.intensity import CT_WINDOW, MR_WINDOW

WINDOWS = {"ct": CT_WINDOW, "mr": MR_WINDOW}
UNITS = {"ct": "HU", "mr": "MR units"}
INPUT_NAME, OUTPUT_NAME = "x", "y"


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence the exporters' and quantizer's chatter (warnings, prints, torch.onnx log lines)."""
    # "" is the root logger: the quantizer logs its per-tensor notes there.
    names = ("torch.onnx", "torch.export", "torch._export", "onnxscript", "")
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
