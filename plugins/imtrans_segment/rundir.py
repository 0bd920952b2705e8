"""A segmentation run directory's ``segment.json``: read with an error that says what to do."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from imtrans_core.api import ImtransError

from .structures import Structure

SEGMENT_JSON = "segment.json"


def read_meta(run: Path, option: str = "SEGRUN") -> dict[str, Any]:
    """``segment.json`` of a segmentation run directory (a clear error when it is not one)."""
    path = Path(run) / SEGMENT_JSON
    if not Path(run).exists():
        raise ImtransError(
            f"{option} {run}: no such segmentation run (train one with `imtrans segment train`)"
        )
    if not path.is_file():
        raise ImtransError(
            f"{option} {run}: not a segmentation run (no {SEGMENT_JSON}); "
            "pass the --out folder of `imtrans segment train`"
        )
    try:
        return json.loads(path.read_text())
    except ValueError:
        raise ImtransError(f"{path}: damaged (not JSON); train the run again") from None


def structures_of(meta: dict[str, Any]) -> list[Structure]:
    return [Structure.from_dict(s) for s in meta["structures"]]
