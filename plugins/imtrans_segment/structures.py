"""Which structures the segmentation network learns, and how label values map onto its classes.

A *structure* is a name and the label values it covers in the reference label maps: the paper
scores "femur" as both femurs together (Fig. 6), so ``femur`` is ``femur_left`` ∪ ``femur_right``
(values 3 and 4 in the hip phantom). The network's classes are ``0`` (background: every value no
structure covers) and ``1 .. K`` for the K structures in order; a prediction is written back with
each structure's first value (femur -> 3).

``--structures`` takes a comma (or ``;``) separated list; each item is

* a label name of the data (``pelvis``), or a group of them: ``femur`` gathers every name
  ``femur_*`` or ``*_femur`` (and a dataset's ``label_groups`` where it has them);
* ``name:values``, label values joined by ``+`` (``femur:3+4``): needed where the labels have no
  names, e.g. a folder of label maps;
* ``all``: every named label, each its own structure.

Without ``--structures``, the paper's four (Fig. 6): pelvis, femur, gluteus medius, gluteus minimus.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from imtrans_core.api import ImtransError

#: The structures of the paper's Fig. 6.
PAPER_STRUCTURES = ("pelvis", "femur", "gluteus_medius", "gluteus_minimus")


@dataclass(frozen=True)
class Structure:
    """One class of the network: a name and the label values it covers (the first is written out)."""

    name: str
    values: tuple[int, ...]

    @property
    def value(self) -> int:
        """The label value a prediction of this structure is written with."""
        return self.values[0]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "values": list(self.values)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Structure:
        return cls(str(data["name"]), tuple(int(v) for v in data["values"]))


def resolve(
    text: str | Sequence[str] | None,
    label_names: Mapping[str, int] | None = None,
    groups: Mapping[str, Sequence[str]] | None = None,
    option: str = "--structures",
) -> list[Structure]:
    """The structures ``text`` asks for, checked against the data's ``label_names``.

    Raises :class:`ImtransError` (one line) for a name the data do not have, a structure
    without values, or a label value claimed by two structures.
    """
    names = dict(label_names or {})
    items = _items(text) or list(PAPER_STRUCTURES)
    if items == ["all"]:
        if not names:
            raise ImtransError(
                f"{option} all: the labels have no names; list them as name:values, e.g. pelvis:1,femur:3+4"
            )
        items = sorted(names, key=names.__getitem__)
    out: list[Structure] = []
    for item in items:
        name, sep, values_text = item.partition(":")
        name = name.strip()
        if not re.fullmatch(r"[A-Za-z_][\w.\-]*|\d+", name):
            raise ImtransError(f"{option}: {item!r} is not a structure name; write e.g. pelvis or femur:3+4")
        if sep:
            values = _values(values_text, item, option)
        elif name.isdigit():
            name, values = f"label{name}", (int(name),)
        else:
            values = _named_values(name, names, groups or {}, option)
        out.append(Structure(name, values))
    _check_unique(out, option)
    return out


def class_lut(structures: Sequence[Structure], labels: np.ndarray) -> np.ndarray:
    """Label values -> class indices 0..K (``uint8``); values no structure covers become 0."""
    out = np.zeros(labels.shape, dtype=np.uint8)
    for index, structure in enumerate(structures, start=1):
        out[np.isin(labels, structure.values)] = index
    return out


def class_values(structures: Sequence[Structure]) -> np.ndarray:
    """Class index -> the label value written out: ``[0, first value of each structure]``."""
    return np.array([0, *(s.value for s in structures)], dtype=np.int64)


def label_dtype(structures: Sequence[Structure]) -> np.dtype:
    """``uint8`` where every written value fits (the usual case), else ``uint16``."""
    return np.dtype(np.uint8 if max((s.value for s in structures), default=0) <= 255 else np.uint16)


def integer_labels(array: np.ndarray, where: str) -> np.ndarray:
    """A label map as int64, or a one-line error for fractional or negative values."""
    array = np.asarray(array)
    if not np.issubdtype(array.dtype, np.integer) and np.any(np.mod(array, 1) != 0):
        bad = np.unique(array[np.mod(array, 1) != 0])[:5]  # NaN too: mod(NaN, 1) is NaN
        raise ImtransError(
            f"{where}: not a label map — it holds fractional values ({', '.join(f'{v:g}' for v in bad)}); "
            "pass an integer label volume"
        )
    out = array.astype(np.int64)
    if out.size and out.min() < 0:
        raise ImtransError(
            f"{where}: not a label map — it holds negative values (min {out.min()}); label values are >= 0"
        )
    return out


def _items(text: str | Sequence[str] | None) -> list[str]:
    if text is None:
        return []
    if isinstance(text, str):
        text = [text]
    return [item for part in text for item in re.split(r"[,;\s]+", part.strip()) if item]


def _values(text: str, item: str, option: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split("+"))
    except ValueError:
        raise ImtransError(
            f"{option}: cannot read {item!r}; write label values joined by +, e.g. femur:3+4"
        ) from None
    if any(v <= 0 for v in values):
        raise ImtransError(f"{option}: {item!r}: label values must be > 0 (0 is the background)")
    return values


def _named_values(
    name: str, names: Mapping[str, int], groups: Mapping[str, Sequence[str]], option: str
) -> tuple[int, ...]:
    if name in names:
        return (int(names[name]),)
    members = list(groups.get(name, ())) or sorted(
        (n for n in names if n.startswith(f"{name}_") or n.endswith(f"_{name}")), key=names.__getitem__
    )
    members = [m for m in members if m in names]
    if members:
        return tuple(int(names[m]) for m in members)
    if not names:
        raise ImtransError(
            f"{option}: the labels have no names, so '{name}' means nothing; give its values, e.g. {name}:1 or {name}:3+4"
        )
    known = ", ".join(sorted(names, key=names.__getitem__))
    raise ImtransError(
        f"{option}: '{name}' is not a label of the data; known: {known} (or give values, e.g. {name}:3+4)"
    )


def _check_unique(structures: Sequence[Structure], option: str) -> None:
    owner: dict[int, str] = {}
    seen: set[str] = set()
    for s in structures:
        if s.name in seen:
            raise ImtransError(f"{option}: '{s.name}' is listed twice")
        seen.add(s.name)
        for v in s.values:
            if v in owner:
                raise ImtransError(
                    f"{option}: label value {v} belongs to both '{owner[v]}' and '{s.name}'; a voxel has one class"
                )
            owner[v] = s.name
