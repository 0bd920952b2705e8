"""Where imtrans keeps what it can rebuild: cut slices, TensorRT engines, OpenVINO compiled models,
segmentation stacks."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``$IMTRANS_CACHE``, else ``~/.cache/imtrans``."""
    return Path(os.environ.get("IMTRANS_CACHE") or Path.home() / ".cache" / "imtrans")
