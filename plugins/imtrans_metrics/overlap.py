"""Dice overlap of label maps: the paper's segmentation measure (Hiasa et al. 2018, §3.2, Fig. 6).

The paper scores pelvis, femur, gluteus medius and gluteus minimus, and a structure may be
several label values (femur = left femur ∪ right femur), so a *structure* here is a group of
label values. In a spec, ``labels`` lists structures separated by ``;`` (or spaces), each an
optional ``name:`` and label ids joined by ``+``::

    dice                                  every non-zero label, each its own structure
    dice:labels=1                         label 1
    dice:labels='pelvis:1;femur:2+3'      two structures; the metric is their mean Dice
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from numbers import Number
from typing import Any

import numpy as np

from imtrans_core.api import ImtransError, SpecError

from .base import Metric, check_mask, spec_name

#: Structures as :func:`dice` takes them: label ids, groups of ids, a mapping name -> id(s), or spec text.
Structures = str | Iterable[Any] | Mapping[Hashable, Any]


def dice_score(a_mask: Any, b_mask: Any) -> float:
    """Dice coefficient 2|A ∩ B| / (|A| + |B|) of two masks (non-zero = inside).

    Two empty masks score 1.0: nothing was there and nothing was predicted, which is a correct
    answer (nnU-Net would say NaN; a NaN would poison every mean it enters).
    """
    a, b = np.asarray(a_mask), np.asarray(b_mask)
    if a.shape != b.shape:
        raise ImtransError(f"shapes differ: {a.shape} vs {b.shape}; resample one onto the other's grid first")
    a, b = a != 0, b != 0
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(a, b).sum()) / total


def dice(
    pred_labels: Any, ref_labels: Any, label_values: Structures | None = None, mask: Any = None
) -> dict[Hashable, float]:
    """Dice of every structure between two label maps, counting only voxels inside ``mask``.

    ``label_values``: ``None`` for every non-zero label found in either map (keys: the label
    ids); a sequence whose items are ids (key: the id) or groups of ids (key: the tuple); or a
    mapping ``{name: id or ids}`` (key: the name), e.g. ``{"femur": (2, 3), "pelvis": 1}``; or
    the text a spec takes, ``"pelvis:1;femur:2+3"`` (see :func:`parse_labels`).
    """
    pred, ref = np.asarray(pred_labels), np.asarray(ref_labels)
    mask = check_mask(mask, pred.shape, ref.shape)
    pred, ref = pred[mask], ref[mask]
    structures = _structures(label_values, pred, ref)
    if not structures:
        raise ImtransError("no structures to score: both label maps are background (0) inside the mask")
    return {key: dice_score(np.isin(pred, ids), np.isin(ref, ids)) for key, ids in structures.items()}


def mean_dice(
    pred_labels: Any, ref_labels: Any, mask: Any = None, label_values: Structures | None = None
) -> float:
    """The mean of :func:`dice` over the structures (what a ``dice`` metric returns)."""
    return float(np.mean(list(dice(pred_labels, ref_labels, label_values, mask).values())))


def parse_labels(text: str) -> dict[Hashable, tuple[int, ...]]:
    """Read the ``labels`` spec value: ``'pelvis:1;femur:2+3'`` -> ``{'pelvis': (1,), 'femur': (2, 3)}``.

    Unnamed structures are keyed like :func:`dice` keys them: ``'1;2+3'`` -> ``{1: (1,), (2, 3): (2, 3)}``.
    An empty text gives ``{}``, which means every non-zero label.
    """
    structures: dict[Hashable, tuple[int, ...]] = {}
    for item in re.split(r"[;\s]+", text.strip()):
        if not item:
            continue
        name, _, ids_text = item.rpartition(":")
        try:
            ids = tuple(int(i) for i in ids_text.split("+"))
        except ValueError:
            raise SpecError(
                f"labels: cannot read {item!r}; write label ids joined by + with an optional name, "
                "structures separated by ;, e.g. labels='pelvis:1;femur:2+3'"
            ) from None
        key: Hashable = name or (ids[0] if len(ids) == 1 else ids)
        if key in structures:
            raise SpecError(f"labels: structure {key!r} is listed twice")
        structures[key] = ids
    return structures


@dataclass(frozen=True)
class DiceMetric(Metric):
    """A ``dice`` metric: calling it gives the mean Dice; :meth:`scores` gives each structure's."""

    structures: Mapping[Hashable, tuple[int, ...]] = field(default_factory=dict)

    def scores(self, pred: Any, ref: Any, mask: Any = None) -> dict[Hashable, float]:
        return dice(pred, ref, self.structures or None, mask)


def dice_factory(labels: str = "") -> DiceMetric:
    """Dice overlap of label maps; labels='pelvis:1;femur:2+3' (default: every non-zero label), mean over structures."""
    structures = parse_labels(labels)
    fn = partial(mean_dice, label_values=structures or None)
    return DiceMetric(spec_name("dice", dice_factory, labels=labels), fn, True, "", structures)


def _structures(label_values: Structures | None, pred: np.ndarray, ref: np.ndarray) -> dict[Hashable, tuple]:
    """``label_values`` as ``{key: ids}``; ``None`` finds the non-zero labels of both maps."""
    if isinstance(label_values, str):
        label_values = parse_labels(label_values) or None
    if label_values is None:
        found = np.union1d(np.unique(pred), np.unique(ref))
        return {_key(v): (v,) for v in found.tolist() if v != 0}
    if isinstance(label_values, Mapping):
        return {key: _ids(v) for key, v in label_values.items()}
    return {(_key(v) if isinstance(v, Number) else tuple(v)): _ids(v) for v in label_values}


def _ids(value: Any) -> tuple:
    return (value,) if isinstance(value, Number) else tuple(value)


def _key(value: Any) -> Hashable:
    """A label id as a key: ``2.0`` (a float label map, as NIfTI often stores them) becomes ``2``."""
    return int(value) if float(value).is_integer() else value
