"""Translate volumes with a trained generator: volume in, volume out, same grid, values back in HU.

The networks are 2-D (Hiasa et al. 2018, §2.3), so a volume is cut into slices across the
plane the model was trained on (``orientation`` in its config, coronal by default), the slices
go through the generator in batches, and the stack is put back with :func:`~imtrans_core.data.slices.from_slices`,
the exact inverse of the cut (:func:`translate_volume`). The output is ``volume.with_array(...)``:
shape, spacing, origin and direction are the input's, so the translation overlays its input in
any viewer. :func:`translate_on_grid` (what ``imtrans translate`` runs) first brings the volume
onto the grid the model was trained on, its input contract (:mod:`imtrans_core.data.contract`), and the result
back onto the input's grid.

Intensities follow the training windows (:mod:`imtrans_core.data.intensity`):

* ``mr2ct`` (G_CT): the MR is scaled per volume (robust percentile -> 100) and windowed to
  [-1, 1]; the output is mapped back with ``CT_WINDOW.inverse``. A synthetic CT therefore lives
  **within [-150, 350] HU**, the paper's window (§2.2): air, lung and cortical bone, which lie
  outside it, come out at the window's bounds (-150 and 350 HU). Compare it with a real CT on
  the paper's scale (``imtrans evaluate``), where the real CT is clipped the same way.
* ``ct2mr`` (G_MR): the CT is windowed to [-1, 1]; the output is put on the [0, 100] MR scale
  (``MR_WINDOW.inverse``). No source MR exists to borrow a scale from, so this is the scale
  every training MR was normalised to.

What runs the network is a *backend* (:mod:`.backends`). For a 2.5-D model (one trained with
``--context k``) every slice is predicted in each of the 2k + 1 stacks that hold it, and those
predictions are averaged, which smooths what a single 2-D pass leaves as stripes across slices.
Folders of files are :mod:`.jobs`; the modality check is :mod:`.modality`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..data.contract import InputContract, conform, restore
from ..data.intensity import CT_WINDOW, MR_WINDOW
from ..data.slices import Plane, from_slices, normalize, to_slices, window_indices
from ..data.volume import Volume
from ..errors import ImtransError
from .backends import Backend


def translate_volume(
    volume: Volume, backend: Backend, batch: int = 8, progress: Callable[[int], None] | None = None
) -> Volume:
    """``volume`` translated by ``backend`` slice by slice, on exactly the input's grid.

    The output is float32: HU within [-150, 350] for a synthetic CT, the [0, 100] MR scale for a
    synthetic MR; its modality is the backend's target. A 2.5-D backend's predictions of each
    slice (one per stack holding it) are averaged. ``progress(n)`` is called after each batch
    with the number of slices done in it.
    """
    if batch < 1:
        raise ImtransError(f"--batch {batch}: give at least 1")
    plane = Plane.of(volume, backend.orientation)
    stack = to_slices(normalize(volume, backend.source), plane)  # (n, rows, cols), [-1, 1]
    context = int(getattr(backend, "context", 0))
    n = stack.shape[0]
    total = np.zeros(stack.shape, dtype=np.float32)  # the sum of each slice's predictions
    counts = np.zeros(n, dtype=np.float32)
    for start in range(0, n, batch):
        centres = np.arange(start, min(start + batch, n))
        rows = window_indices(n, centres, context)  # (N, C): the slices of each stack
        chunk = np.ascontiguousarray(stack[rows], dtype=np.float32)  # (N, C, H, W)
        result = np.asarray(backend(chunk))
        if result.shape != chunk.shape:
            raise ImtransError(
                f"the model returned shape {result.shape} for a batch of shape {chunk.shape} — "
                "it must map (N, C, H, W) to the same shape"
            )
        for channel in range(rows.shape[1]):  # channel c of stack i predicts slice i + c - context
            target = centres + channel - context
            inside = (target >= 0) & (target < n)  # not the repeated end slices
            total[target[inside]] += result[inside, channel]
            counts[target[inside]] += 1
        if progress is not None:
            progress(len(centres))
    out = total / counts[:, None, None]
    window = CT_WINDOW if backend.target == "ct" else MR_WINDOW
    values = np.asarray(window.inverse(from_slices(out, plane)), dtype=np.float32)
    translated = volume.with_array(np.ascontiguousarray(values), modality=backend.target)
    translated.meta = {"source": volume.meta.get("path", ""), "direction": backend.direction}
    return translated


def translate_on_grid(
    volume: Volume,
    backend: Backend,
    batch: int = 8,
    progress_for: Callable[[int], Callable[[int], None] | None] | None = None,
    name: str = "",
) -> Volume:
    """``volume`` translated on the grid the model was trained on, returned on the input's own grid.

    The input is brought onto the backend's input contract (:func:`contract.conform`: N4
    where training used it, the training plane's pixel spacing, patient-aligned), translated,
    and resampled back onto exactly the input's grid; a volume already on such a grid is
    translated as it is. ``progress_for(n_slices)`` may return a per-batch progress callback.
    """
    contract = getattr(backend, "contract", None) or InputContract(backend.orientation)
    conformed = conform(volume, contract, backend.source, name)
    progress = progress_for(slice_count(conformed, backend)) if progress_for is not None else None
    translated = translate_volume(conformed, backend, batch, progress)
    low = (CT_WINDOW if backend.target == "ct" else MR_WINDOW).low
    return restore(translated, volume, low)


# ----------------------------------------------------------------------------- files and folders


def slice_count(volume: Volume, backend: Backend) -> int:
    """How many slices ``backend`` cuts ``volume`` into (what a progress bar counts)."""
    return volume.shape[Plane.of(volume, backend.orientation).axes[0]]
