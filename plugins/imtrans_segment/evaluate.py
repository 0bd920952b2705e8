"""Dice of predicted label volumes against reference ones, per structure, as the paper's Fig. 6.

The paper reports Dice of pelvis, femur, gluteus medius and gluteus minimus over 10 MR volumes
as box plots and mean ± SD (§3.2). Here PRED and REF are two label volumes or two folders
matched by subject id (``imtrans_core.api.match_subjects``); what each label value means
comes from ``labels.json`` beside the predictions (``imtrans segment predict`` writes it) or from
``--structures`` (``pelvis:1,femur:3+4``, or names that ``labels.json`` knows). A structure may
cover several reference values (femur = left ∪ right). Dice itself is the ``dice`` metric of the
``METRICS`` registry; the SD is the sample SD (n - 1), as ``imtrans evaluate`` reports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import imtrans_core as ic
from imtrans_core.api import ImtransError, box_plot, match_subjects, read_volume, results_table, write_results

from .data import read_label_names
from .predict import read_labels_json, structures_from_labels_json
from .structures import Structure, integer_labels, resolve


def known_structures(
    pred: Path, ref: Path, structures: str | Sequence[str] | None = None
) -> tuple[list[Structure], set[int] | None]:
    """The structures to score and, where PRED's ``labels.json`` says, the values a prediction may hold.

    ``--structures`` names are looked up in PRED's ``labels.json``, then in REF's (a label
    folder's ``labels.json`` naming its values, e.g. ``{"labels": {"pelvis": 1, ...}}``).
    """
    folder = pred if pred.is_dir() else pred.parent
    data = read_labels_json(folder)
    known: list[Structure] = []
    allowed: set[int] | None = None
    if data is not None:
        known, allowed = structures_from_labels_json(data, str(folder / "labels.json"))
    if not structures:
        if not known:
            raise ImtransError(
                f"PRED {pred}: no labels.json beside it to say what its values mean; "
                "pass --structures, e.g. pelvis:1,femur:3+4"
            )
        return known, allowed
    by_name = {s.name: s for s in known}
    ref_names = read_label_names(ref if ref.is_dir() else ref.parent)
    picked = []
    for item in [structures] if isinstance(structures, str) else list(structures):
        for part in item.replace(";", ",").split(","):
            part = part.strip()
            if not part:
                continue
            if part in by_name:
                picked.append(by_name[part])
            elif by_name and not ref_names and ":" not in part and not part.isdigit():
                raise ImtransError(
                    f"--structures: '{part}' is not a label of PRED's labels.json; known: "
                    f"{', '.join(by_name)} (or give values, e.g. {part}:3+4)"
                )
            else:
                picked.extend(resolve([part], ref_names))
    if not picked:
        raise ImtransError("--structures: empty; name at least one structure, e.g. pelvis,femur")
    return picked, allowed


def evaluate(
    pred: str | Path,
    ref: str | Path,
    structures: str | Sequence[str] | None = None,
) -> tuple[list[dict[str, Any]], list[Structure]]:
    """One row per subject: ``{"id", "pred", "ref", <structure>: dice, ..., "voxels"}``."""
    pred, ref = Path(pred), Path(ref)
    subjects = match_subjects(pred, ref)
    chosen, allowed = known_structures(pred, ref, structures)
    spec = ";".join(f"{s.name}:{'+'.join(map(str, s.values))}" for s in chosen)
    metric = ic.METRICS.build(f"dice:labels='{spec}'")
    needed = sorted({v for s in chosen for v in s.values})
    rows = []
    for subject in subjects:
        p_vol = read_volume(subject.pred, "labels")
        r_vol = read_volume(subject.ref, "labels")
        if not p_vol.same_grid(r_vol):
            raise ImtransError(
                f"PRED {subject.pred} is not on the grid of REF {subject.ref} "
                f"({p_vol.grid_difference(r_vol)}); predict on the reference's MR"
            )
        p = integer_labels(p_vol.array, f"PRED {subject.pred}")
        r = integer_labels(r_vol.array, f"REF {subject.ref}")
        p_values = set(np.unique(p).tolist()) - {0}
        if allowed is not None and not p_values <= allowed:
            extra = ", ".join(map(str, sorted(p_values - allowed)[:8]))
            raise ImtransError(
                f"PRED {subject.pred}: label value(s) {extra} are not among the segmentation's labels "
                f"({', '.join(map(str, sorted(allowed)))}); is it a prediction of this run?"
            )
        if not np.isin(r, needed).any():
            raise ImtransError(
                f"REF {subject.ref}: none of the label values {', '.join(map(str, needed))} "
                f"({', '.join(s.name for s in chosen)}) occur in it; is it labelled the same way? "
                "pass --structures name:values to say which values to score"
            )
        scores = metric.scores(p, r)
        rows.append(
            {
                "id": subject.id,
                "pred": str(subject.pred),
                "ref": str(subject.ref),
                **{s.name: float(scores[s.name]) for s in chosen},
                "voxels": int(p.size),
            }
        )
    return rows, chosen


def report(
    rows: list[dict[str, Any]],
    structures: list[Structure],
    json_path: str | Path | None = None,
    plot_path: str | Path | None = None,
) -> Any:
    """The rich table (one row per subject, mean ± SD below), and the JSON and box plot when asked."""
    if json_path:
        write_results(
            rows,
            json_path,
            {"structures": [s.to_dict() for s in structures], "metric": "dice", "sd": "sample (n - 1)"},
        )
    if plot_path:
        box_plot(
            {"Dice": rows},
            [s.name for s in structures],
            plot_path,
            labels={s.name: s.name.replace("_", " ") for s in structures},
            title=f"Dice over {len(rows)} subject{'s' * (len(rows) != 1)}",
        )
    return results_table(rows, title="Dice per structure")
