"""Slices of a dataset for an export, in the source's units: int8 calibration and the image checks both use them.

The calibration slices spread over several volumes of the source modality's pool;
one other volume is held out for :mod:`imtrans_core.onnx.verify`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.intensity import MRScaling, Window
from ..data.slices import Plane, to_slices, window_indices
from ..errors import ImtransError
from .graph import WINDOWS

#: on the source's [-1, 1] scale, what counts as body (signal) rather than air: checks and int8 budgets
#: measure errors there, as a synthetic CT is judged, not over the air around it
BODY = -0.9


#: how many volumes of the pool the int8 calibration slices spread over: ranges calibrated on two volumes
#: clipped a third one's brightest voxels (docs/deploy.md, int8)
CALIBRATION_VOLUMES = 8


def body_stacks(stack: np.ndarray, window: Window, context: int, count: int) -> np.ndarray:
    """``count`` slices spread over the body of a slice stack (n, H, W) in source units (over all of it
    when no slice has 5 % body), each with its context: (count, 2 context + 1, H, W) float32."""
    body = np.flatnonzero((window.forward(stack) > BODY).mean(axis=(1, 2)) >= 0.05)
    body = body if body.size else np.arange(len(stack))
    picks = body[np.linspace(0, body.size - 1, min(count, body.size)).round().astype(int)]
    return np.ascontiguousarray(stack[window_indices(len(stack), picks, context)], dtype=np.float32)


def body_of(stacks: np.ndarray, window: Window, context: int) -> np.ndarray:
    """Where the centre slice of each stack (n, C, H, W) in source units is body: (n, 1, H, W) bool."""
    return window.forward(stacks[:, context : context + 1]) > BODY


@dataclass
class SampleData:
    """Slices of the source modality in its own units (HU, or MR after scaling), for checks and calibration."""

    description: str
    calibration: list[np.ndarray]  # (C, H, W) stacks around slices of the calibration volumes
    calibration_volumes: list[str]  # their ids
    volume_id: str  # the held-out volume
    volume: np.ndarray  # its slice stack (n, H, W)


def sample_data(
    spec: str, modality: str, orientation: str, n_slices: int = 32, context: int = 0
) -> SampleData:
    """Calibration slices spread over up to :data:`CALIBRATION_VOLUMES` volumes of ``spec``'s ``modality``
    pool, and a held-out volume: the pool's third (its last when it has fewer), calibrated on only when
    it is the pool's one volume."""
    import imtrans_core as ic

    source = ic.DATASETS.build(spec)
    pool = source.mr if modality == "mr" else source.ct
    if len(pool) == 0:
        raise ImtransError(f"--calib {spec}: its {modality.upper()} pool is empty")
    window = WINDOWS[modality]

    def stack(index: int) -> np.ndarray:
        volume = pool.load(pool.ids[index])
        data = np.asarray(volume.array, dtype=np.float32)
        if modality == "mr":
            data = data * MRScaling().scale_of(data)
        return np.ascontiguousarray(to_slices(data, Plane.of(volume, orientation)), dtype=np.float32)

    held_out = 2 if len(pool) > 2 else len(pool) - 1
    others = [i for i in range(len(pool)) if i != held_out] or [held_out]
    spread = np.linspace(0, len(others) - 1, min(CALIBRATION_VOLUMES, len(others))).round().astype(int)
    slices, chosen = [], [others[k] for k in spread]
    per_volume = -(-n_slices // len(chosen))  # ceil: slices kept of each volume, so memory stays bounded
    for i in chosen:
        slices += list(body_stacks(stack(i), window, context, per_volume))
    if len(slices) > n_slices:
        slices = [slices[int(k)] for k in np.linspace(0, len(slices) - 1, n_slices).round()]
    ids = [pool.ids[i] for i in chosen]
    return SampleData(f"{spec} ({modality.upper()})", slices, ids, pool.ids[held_out], stack(held_out))
