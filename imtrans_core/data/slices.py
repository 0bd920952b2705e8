"""Volumes <-> stacks of 2-D slices, and the unpaired slice sampler that feeds training.

Orientation: a stack is ``(n, rows, cols)`` in radiological display order, so
that sample images look as a reader expects: coronal and sagittal slices have
the head at the top; axial ones the anterior side at the top; coronal and axial
slices show the patient's right on the left. :func:`to_slices` and
:func:`from_slices` only transpose and flip, so they are exact inverses, and a
translated stack goes back onto the input's grid voxel for voxel.

2.5-D (``context`` k > 0): the networks see each slice with its k neighbours on
each side as channels, ``(2k + 1, rows, cols)``; :func:`window_indices` says
which slices make each stack (the first and last slice repeat past the volume's
ends), in training and in translation alike.

Training data: every volume of the CT and MR pools is windowed to [-1, 1] once,
stored as a float16 ``.npy`` in a cache folder and memory-mapped, so a pool far
larger than RAM streams from disk and worker processes share pages. Sample
``i`` is a pure function of ``(seed, i)``: an unpaired CT slice and MR slice,
randomly cropped (or padded) to ``size`` and flipped left-right, and where the
objective has a paired term the same slice of one aligned CT/MR pair, cropped
and flipped alike; a resumed run therefore sees exactly the data an
uninterrupted one would.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..cache import cache_root
from ..choices import PAIRINGS
from ..errors import ImtransError
from ..progress import track
from .intensity import CT_WINDOW, MRScaling
from .sources import VolumePool
from .volume import Volume

# (slice, row, column) world axes of each plane; world axes are LPS: 0 L, 1 P, 2 S.
PLANES = {"coronal": (1, 2, 0), "axial": (2, 1, 0), "sagittal": (0, 2, 1)}
# Whether a row / column index should run against its world axis's direction.
_ROW_FLIP = {"coronal": True, "axial": False, "sagittal": True}  # superior (or anterior) first
_COL_FLIP = {"coronal": False, "axial": False, "sagittal": False}  # patient right (or anterior) first
BACKGROUND = -1.0  # air in both windows


@dataclass(frozen=True)
class Plane:
    """How one volume's voxel axes map onto a stack of slices."""

    axes: tuple[int, int, int]  # voxel axes of (slice, row, column)
    flips: tuple[bool, bool]  # flip rows, flip columns

    @classmethod
    def of(cls, volume: Volume, orientation: str) -> Plane:
        if orientation not in PLANES:
            raise ImtransError(f"orientation '{orientation}': choose coronal, axial or sagittal")
        worlds = PLANES[orientation]
        axes = tuple(volume.axis_of(w) for w in worlds)
        if len(set(axes)) != 3:  # a strongly oblique volume: fall back to the voxel order
            axes = (axes[0], *[a for a in range(3) if a != axes[0]])
        signs = [np.sign(volume.direction[w, a]) or 1.0 for w, a in zip(worlds[1:], axes[1:], strict=True)]
        flips = (
            bool((signs[0] > 0) == _ROW_FLIP[orientation]),
            bool((signs[1] > 0) == _COL_FLIP[orientation]),
        )
        return cls(axes, flips)  # type: ignore[arg-type]

    def spacing(self, volume: Volume) -> tuple[float, float, float]:
        """The volume's voxel spacing (mm) between slices, rows and columns of this plane."""
        return tuple(float(volume.spacing[axis]) for axis in self.axes)  # type: ignore[return-value]


def to_slices(array: np.ndarray, plane: Plane) -> np.ndarray:
    """``[i, j, k]`` voxels -> ``(n, rows, cols)`` slices (a view where possible)."""
    stack = np.transpose(array, plane.axes)
    if plane.flips[0]:
        stack = stack[:, ::-1, :]
    if plane.flips[1]:
        stack = stack[:, :, ::-1]
    return stack


def from_slices(stack: np.ndarray, plane: Plane) -> np.ndarray:
    """The exact inverse of :func:`to_slices`."""
    if plane.flips[1]:
        stack = stack[:, :, ::-1]
    if plane.flips[0]:
        stack = stack[:, ::-1, :]
    return np.transpose(stack, np.argsort(plane.axes))


def normalize(volume: Volume, modality: str, mr_scaling: MRScaling | None = None) -> np.ndarray:
    """The volume's voxels on the networks' [-1, 1] scale (CT window, or MR scaling + window)."""
    data = np.asarray(volume.array, dtype=np.float32)
    if modality == "ct":
        return CT_WINDOW.forward(data)
    scaled, _ = (mr_scaling or MRScaling()).forward(data)
    return scaled


class SliceStacks:
    """The normalised slice stacks of one pool, cached on disk as memory-mapped float16 files."""

    def __init__(
        self,
        pool: VolumePool,
        modality: str,
        orientation: str,
        fingerprint: str,
        min_foreground: float = 0.05,
        progress: bool = False,
    ):
        self.modality = modality
        self.ids = list(pool.ids)
        key = hashlib.sha1(f"{fingerprint}|{modality}|{orientation}|v1".encode()).hexdigest()[:20]
        self.folder = cache_root() / "slices" / key if fingerprint else None
        self.paths: list[Path] = []
        self.arrays: list[np.ndarray] = []  # used when the source gives no fingerprint to cache by
        counts = []
        self.shapes: list[tuple[int, ...]] = []  # (slices, rows, cols) of each volume
        self.spacings: list[tuple[float, float, float]] = []  # mm between slices, rows, columns
        for volume_id in track(pool.ids, f"caching {modality} slices", progress):
            stack, spacing = self._stack(pool, volume_id, orientation)
            self.shapes.append(tuple(stack.shape))
            self.spacings.append(spacing)
            counts.append(_foreground_slices(stack, min_foreground))
        self.index = [(v, s) for v, slices in enumerate(counts) for s in slices]
        if not self.index:
            raise ImtransError(
                f"the {modality} pool has no slice with enough body in it (of {len(pool)} volumes)"
            )
        self._open: dict[int, np.ndarray] = {}

    def _stack(
        self, pool: VolumePool, volume_id: str, orientation: str
    ) -> tuple[np.ndarray, tuple[float, float, float]]:
        """One volume's slice stack and its (slice, row, column) spacing, from the cache where it is."""
        if self.folder is None:
            volume = pool.load(volume_id)
            plane = Plane.of(volume, orientation)
            stack = to_slices(normalize(volume, self.modality), plane).astype(np.float16)
            self.arrays.append(np.ascontiguousarray(stack))
            return stack, plane.spacing(volume)
        path = self.folder / f"{volume_id}.npy"
        sidecar = path.with_suffix(".json")  # the grid the stack was cut from
        self.paths.append(path)
        if not (path.exists() and sidecar.exists()):
            volume = pool.load(volume_id)
            plane = Plane.of(volume, orientation)
            self.folder.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                stack = to_slices(normalize(volume, self.modality), plane)
                tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
                np.save(tmp, np.ascontiguousarray(stack, dtype=np.float16))
                os.replace(tmp, path)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.json")
            tmp.write_text(json.dumps({"spacing": plane.spacing(volume)}))
            os.replace(tmp, sidecar)
        spacing = tuple(float(v) for v in json.loads(sidecar.read_text())["spacing"])
        return np.load(path, mmap_mode="r"), spacing  # type: ignore[return-value]

    def __len__(self) -> int:
        return len(self.index)

    def around(self, volume: int, index: int, context: int) -> np.ndarray:
        """Slice ``index`` of the ``volume``-th volume with ``context`` neighbours each side.

        (2k + 1, rows, cols) float16 in [-1, 1]; the first and last slice repeat past the ends.
        """
        stack = self._volume(volume)
        return np.asarray(stack[window_indices(len(stack), np.array([index]), context)[0]])

    def values(self, stride: int = 4) -> np.ndarray:
        """Every ``stride``-th voxel of every volume along each axis, float32 in [-1, 1]: the pool's value sample."""
        return np.concatenate(
            [
                np.asarray(self._volume(v)[::stride, ::stride, ::stride], np.float32).ravel()
                for v in range(len(self.shapes))
            ]
        )

    def _volume(self, volume: int) -> np.ndarray:
        if self.folder is None:
            return self.arrays[volume]
        if volume not in self._open:  # opened lazily: each worker process maps its own
            self._open[volume] = np.load(self.paths[volume], mmap_mode="r")
        return self._open[volume]

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_open": {}}


def window_indices(n_slices: int, centres: np.ndarray, context: int) -> np.ndarray:
    """The slices of each 2.5-D stack: (len(centres), 2k + 1) indices, clamped to the volume's ends."""
    offsets = np.arange(-context, context + 1)
    return np.clip(np.asarray(centres)[:, None] + offsets[None, :], 0, n_slices - 1)


def _foreground_slices(stack: np.ndarray, min_fraction: float) -> list[int]:
    fractions = (np.asarray(stack) > BACKGROUND + 0.1).mean(axis=(1, 2))
    return [int(i) for i in np.flatnonzero(fractions >= min_fraction)]


def fit_to(image: np.ndarray, size: int, rng: np.random.Generator | None) -> np.ndarray:
    """Crop (random offset, or centred without ``rng``) or pad with background to ``size`` x ``size``.

    Works on the last two axes, so images stacked along a first axis (a CT and
    its MR) are cropped alike.
    """
    out = image
    for axis in (-2, -1):
        extent = out.shape[axis]
        if extent > size:
            start = int(rng.integers(0, extent - size + 1)) if rng is not None else (extent - size) // 2
            out = np.take(out, range(start, start + size), axis=axis)
        elif extent < size:
            before = (size - extent) // 2
            pad = [(0, 0)] * out.ndim
            pad[axis] = (before, size - extent - before)
            out = np.pad(out, pad, constant_values=BACKGROUND)
    return out


class UnpairedSlices:
    """Map-style dataset: item ``i`` is ``{"ct": (C, S, S), "mr": (C, S, S)}`` float32 tensors.

    The CT slice and the MR slice are drawn from ``rng(seed, i)``; each comes with
    ``context`` neighbours on each side as channels (C = 2 context + 1).
    ``pairing="random"`` draws them independently (unpaired, like the reference
    CycleGAN's unaligned dataset). ``pairing="position"`` draws the MR slice, then
    the CT slice of a random CT volume at the same relative depth in its stack (within
    ``jitter`` of its length): still different subjects and never aligned, but a
    front slice is set against a front slice, so both images hold alike tissues.
    """

    def __init__(
        self,
        ct: SliceStacks,
        mr: SliceStacks,
        size: int,
        seed: int = 0,
        flip: bool = True,
        context: int = 0,
        pairing: str = "random",
        jitter: float = 0.05,
    ):
        if pairing not in PAIRINGS:
            raise ImtransError(f"--pairing {pairing}: choose {' or '.join(PAIRINGS)}")
        self.ct, self.mr, self.size, self.seed, self.flip = ct, mr, size, seed, flip
        self.context, self.pairing, self.jitter = context, pairing, jitter
        self.ct_depths = _usable_depths(ct)
        self.ct_volumes = sorted(self.ct_depths)

    def __len__(self) -> int:
        return 2**62  # indices are iteration numbers; any of them is valid

    def __getitem__(self, index: int) -> dict:
        import torch

        rng = np.random.default_rng([self.seed, index])
        chosen = {}
        if self.pairing == "position":
            chosen["mr"] = self.mr.index[int(rng.integers(len(self.mr)))]
            chosen["ct"] = self._at_depth_of(chosen["mr"], rng)
        out = {}
        for name, stacks in (("ct", self.ct), ("mr", self.mr)):
            volume, at = chosen.get(name) or stacks.index[int(rng.integers(len(stacks)))]
            image = fit_to(stacks.around(volume, at, self.context), self.size, rng)
            if self.flip and rng.random() < 0.5:
                image = image[..., ::-1]
            out[name] = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))
        return out

    def _at_depth_of(self, mr_slice: tuple[int, int], rng: np.random.Generator) -> tuple[int, int]:
        """A usable CT slice of a random CT volume, at the relative depth of ``mr_slice`` (+- jitter)."""
        volume, at = mr_slice
        depth = (at + 0.5) / self.mr.shapes[volume][0] + rng.normal(0.0, self.jitter)
        ct_volume = self.ct_volumes[int(rng.integers(len(self.ct_volumes)))]
        slices, depths = self.ct_depths[ct_volume]
        return ct_volume, int(slices[int(np.argmin(np.abs(depths - depth)))])


def _usable_depths(stacks: SliceStacks) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per volume with usable slices: their indices and relative depths ((index + 0.5) / slices)."""
    by_volume: dict[int, list[int]] = {}
    for volume, at in stacks.index:
        by_volume.setdefault(volume, []).append(at)
    return {v: (np.array(ats), (np.array(ats) + 0.5) / stacks.shapes[v][0]) for v, ats in by_volume.items()}


class PairedSlices:
    """Map-style dataset of aligned pairs: item ``i`` is ``{"pair_ct": (C, S, S), "pair_mr": (C, S, S)}``.

    ``ct`` and ``mr`` hold the same subjects in the same order, each pair on
    one grid; an item is one slice of one pair (where both show enough body)
    with ``context`` neighbours each side, cropped and flipped alike, drawn from
    ``rng(seed, i, 1)`` (a stream apart from the unpaired draws of the same iteration).
    """

    def __init__(
        self, ct: SliceStacks, mr: SliceStacks, size: int, seed: int = 0, flip: bool = True, context: int = 0
    ):
        for pair_id, ct_shape, mr_shape in zip(ct.ids, ct.shapes, mr.shapes, strict=True):
            if ct_shape != mr_shape:
                raise ImtransError(
                    f"training pair {pair_id}: its CT stack is {ct_shape} and its MR stack {mr_shape}; "
                    "a pair must share one grid (resample the CT onto the MR, e.g. with imtrans register)"
                )
        self.index = sorted(set(ct.index) & set(mr.index))
        if not self.index:
            raise ImtransError(f"no slice of the {len(ct.ids)} training pairs shows body in both CT and MR")
        self.ct, self.mr, self.size, self.seed, self.flip = ct, mr, size, seed, flip
        self.context = context

    def __len__(self) -> int:
        return 2**62

    def __getitem__(self, index: int) -> dict:
        import torch

        rng = np.random.default_rng([self.seed, index, 1])
        volume, n = self.index[int(rng.integers(len(self.index)))]
        k = self.context
        pair = np.concatenate([self.ct.around(volume, n, k), self.mr.around(volume, n, k)])
        pair = fit_to(pair, self.size, rng)
        if self.flip and rng.random() < 0.5:
            pair = pair[..., ::-1]
        pair = torch.from_numpy(np.ascontiguousarray(pair, dtype=np.float32))
        return {"pair_ct": pair[: 2 * k + 1], "pair_mr": pair[2 * k + 1 :]}


class TrainingSlices:
    """Item ``i`` of each part merged into one dict: unpaired and paired slices of one iteration."""

    def __init__(self, *parts: UnpairedSlices | PairedSlices):
        self.parts = parts

    def __len__(self) -> int:
        return 2**62

    def __getitem__(self, index: int) -> dict:
        return {key: value for part in self.parts for key, value in part[index].items()}


class StepSampler:
    """Dataset indices for iterations ``start .. iters-1``; rank ``r`` of ``w`` takes its own share."""

    def __init__(self, start: int, iters: int, batch: int, rank: int = 0, world: int = 1):
        self.start, self.iters, self.batch, self.rank, self.world = start, iters, batch, rank, world

    def __iter__(self) -> Iterator[int]:
        for step in range(self.start, self.iters):
            base = (step * self.world + self.rank) * self.batch
            yield from range(base, base + self.batch)

    def __len__(self) -> int:
        return max(0, self.iters - self.start) * self.batch
