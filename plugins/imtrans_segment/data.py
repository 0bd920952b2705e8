"""Training data of §3.2: labelled CT slices, each with its synthetic MR from G_MR (or alone: ``--channels ct``).

The paper trains its U-Net on 20 labelled CT volumes with a second input channel holding the
synthetic MR that the trained CycleGAN makes of each CT. G_MR runs once per volume; its output
is cached as a float16 slice stack under ``$IMTRANS_CACHE/segment/`` keyed by the checkpoint
file and the CT's identity, so a second training run (another structure list, more iterations)
starts at once.

Labelled CT comes from a dataset spec (its paired subjects with ``ct`` and ``labels``, e.g. the
hip phantom) or from two folders matched by volume id (``ct/case01.nii.gz`` with
``labels/case01.nii.gz``; an optional ``labels/labels.json`` names the values).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imtrans_core.api import (
    CT_WINDOW,
    MR_WINDOW,
    ImtransError,
    Plane,
    Volume,
    cache_root,
    list_volumes,
    normalize,
    read_volume,
    to_slices,
    track,
    translate_volume,
    volume_id,
)

from .structures import Structure, class_lut, integer_labels

MIN_BODY = 0.05  # a training slice needs at least this fraction of body (CT above air)


@dataclass
class LabeledCT:
    """One labelled CT before loading: ``load()`` gives ``(ct, labels)`` on the same grid."""

    id: str
    key: str  # identifies the voxels, for the synthetic-MR cache ('' = do not cache)
    load: Callable[[], tuple[Volume, Volume]]


@dataclass
class TrainingVolume:
    """One volume ready for sampling: slices in the CycleGAN's orientation, all ``(n, rows, cols)``."""

    id: str
    ct: np.ndarray  # float16, [-1, 1]
    mr: np.ndarray | None  # float16, [-1, 1]: G_MR(ct); None for a CT-only segmenter
    classes: np.ndarray  # uint8, 0 .. K
    usable: np.ndarray  # indices of slices with enough body in them


def from_source(
    source: Any, spec: str = "--data"
) -> tuple[list[LabeledCT], dict[str, int], dict[str, list[str]]]:
    """The labelled CT of a dataset (its paired subjects that have ``labels``), its label names and groups."""
    subjects = list(getattr(source, "paired", []) or [])
    if not subjects:
        raise ImtransError(
            f"{spec}: the dataset has no paired subjects, so no labelled CT; use one with labels "
            "(e.g. phantom:n_paired=20) or --ct DIR --labels DIR"
        )
    fingerprint = getattr(source, "fingerprint", "") or ""

    def loader(subject: Any) -> Callable[[], tuple[Volume, Volume]]:
        def load() -> tuple[Volume, Volume]:
            volumes = subject.load()
            if "ct" not in volumes or "labels" not in volumes:
                raise ImtransError(
                    f"{spec}: subject {subject.id} has no {'ct' if 'ct' not in volumes else 'labels'} volume"
                )
            return volumes["ct"], volumes["labels"]

        return load

    items = [LabeledCT(s.id, f"{fingerprint}|{s.id}" if fingerprint else "", loader(s)) for s in subjects]
    groups = {k: list(v) for k, v in (getattr(source, "label_groups", None) or {}).items()}
    return items, dict(getattr(source, "label_names", {}) or {}), groups


def from_folders(
    ct_dir: Path, labels_dir: Path
) -> tuple[list[LabeledCT], dict[str, int], dict[str, list[str]]]:
    """CT volumes and label volumes matched by id; names from ``labels_dir/labels.json`` if present."""
    cts = {volume_id(p): p for p in list_volumes(ct_dir)}
    labels = {volume_id(p): p for p in list_volumes(labels_dir)}
    missing = sorted(set(cts) - set(labels))
    if missing:
        raise ImtransError(
            f"--labels {labels_dir}: no label volume for CT {', '.join(missing[:5])}"
            f"{' ...' if len(missing) > 5 else ''} (label files are matched to CT files by name)"
        )

    def loader(ct_path: Path, label_path: Path) -> Callable[[], tuple[Volume, Volume]]:
        return lambda: (read_volume(ct_path, "ct"), read_volume(label_path, "labels"))

    items = [LabeledCT(i, _file_key(cts[i]), loader(cts[i], labels[i])) for i in sorted(cts)]
    return items, read_label_names(labels_dir), {}


def read_label_names(folder: Path) -> dict[str, int]:
    """``{name: value}`` from ``folder/labels.json`` (a flat mapping, or one under ``"labels"``); {} if absent."""
    path = Path(folder) / "labels.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
        data = data.get("labels", data)
        return {str(k): int(v) for k, v in data.items()}
    except (ValueError, AttributeError, TypeError):
        raise ImtransError(
            f'{path}: expected a JSON object of label names to values, e.g. {{"pelvis": 1}}'
        ) from None


def prepare(
    items: Sequence[LabeledCT],
    structures: Sequence[Structure],
    g_mr: Any,
    gen_key: str,
    orientation: str,
    batch: int = 8,
    progress: bool = True,
) -> list[TrainingVolume]:
    """Load every labelled CT, make (or read from the cache) its synthetic MR, map labels to classes.

    ``g_mr`` is the G_MR backend (``imtrans_core.api.translate_volume``), None for CT alone;
    slices are cut in ``orientation``. ``gen_key`` identifies G_MR for the cache (:func:`generator_key`).
    """
    out = []
    for item in track(items, "synthesizing MR from the labelled CT" if g_mr else "labelled CT", progress):
        ct, labels = item.load()
        if not labels.same_grid(ct):
            raise ImtransError(
                f"labelled CT {item.id}: the label volume is not on the CT's grid "
                f"({labels.grid_difference(ct)}); resample it onto the CT first"
            )
        plane = Plane.of(ct, orientation)
        key = (
            hashlib.sha1(f"{gen_key}|{item.key}|v1".encode()).hexdigest()[:24] if item.key and gen_key else ""
        )
        mr = _cached(key, lambda ct=ct: synthetic(ct, g_mr, batch)) if g_mr else None
        classes = class_lut(structures, integer_labels(labels.array, f"labels of {item.id}"))
        ct_slices = to_slices(normalize(ct, "ct"), plane)
        body = (np.asarray(ct_slices) > -0.9).mean(axis=(1, 2))
        out.append(
            TrainingVolume(
                item.id,
                np.ascontiguousarray(ct_slices, dtype=np.float16),
                None if mr is None else np.ascontiguousarray(to_slices(mr, plane), dtype=np.float16),
                np.ascontiguousarray(to_slices(classes, plane)),
                np.flatnonzero(body >= MIN_BODY),
            )
        )
    if not any(len(v.usable) for v in out):
        raise ImtransError(
            "the labelled CT volumes have no slice with enough body in them — are they CT in HU?"
        )
    return out


def synthetic(volume: Volume, backend: Any, batch: int = 8) -> np.ndarray:
    """``backend``'s translation of ``volume`` on the networks' [-1, 1] scale, on the volume's grid.

    ``imtrans_core.api.translate_volume`` gives HU (or the MR scale); its window maps
    that back onto [-1, 1] exactly, which is what the U-Net's input channel holds.
    """
    window = CT_WINDOW if backend.target == "ct" else MR_WINDOW
    return np.asarray(window.forward(translate_volume(volume, backend, batch).array), dtype=np.float32)


def generator_key(checkpoint: Path, backend: Any) -> str:
    """What identifies a trained generator for the cache: its checkpoint file (path, size, time) and plane."""
    file_key = _file_key(checkpoint)
    return f"{file_key}|{backend.direction}|{backend.orientation}" if file_key else ""  # '' = do not cache


def _file_key(path: Path) -> str:
    try:
        stat = Path(path).stat()
    except OSError:
        return ""
    return f"{Path(path).resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


def _cached(key: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
    if not key:
        return compute()
    path = cache_root() / "segment" / f"{key}.npy"
    if path.is_file():
        try:
            return np.load(path)
        except (OSError, ValueError):
            path.unlink(missing_ok=True)  # a damaged cache entry: make it again
    array = np.ascontiguousarray(compute(), dtype=np.float16)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, path)
    return array
