"""``imtrans evaluate``: every matched subject of two folders scored, one bad file never stopping
the others (:mod:`.subjects` matches, :mod:`.scoring` scores, :mod:`.report` summarises)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..data.io import read_volume
from ..data.volume import Volume
from ..errors import ImtransError
from .scoring import constant_baseline, evaluate_pair, require_metrics
from .subjects import Subject, match_subjects

# ----------------------------------------------------------------------------- folders


def iter_evaluate(
    subjects: Sequence[Subject],
    scale: str = "paper",
    mask_fov: bool = False,
    failures: list[tuple[str, str]] | None = None,
    **options: Any,
) -> Iterator[dict[str, Any]]:
    """One row per subject (its id, files and :func:`evaluate_pair` scores), reading one subject at a time.

    With a ``failures`` list, a subject that cannot be scored (an unreadable file, another
    grid) is appended to it as (id, reason) and the others go on; without one it raises.
    """
    for subject in subjects:
        try:
            yield _evaluate_subject(subject, scale, mask_fov, **options)
        except ImtransError as exc:
            if failures is None:
                raise
            failures.append((subject.id, str(exc)))


def _evaluate_subject(subject: Subject, scale: str, mask_fov: bool, **options: Any) -> dict[str, Any]:
    """The row of one subject: its id, files, scores and the constant-image baseline."""
    pred = read_volume(subject.pred)
    ref = read_volume(subject.ref, modality="ct") if subject.ref else None
    mask: Volume | str | None = (
        "fov" if mask_fov else (read_volume(subject.mask, modality="labels") if subject.mask else None)
    )
    source = read_volume(subject.source) if subject.source else None
    scores = evaluate_pair(pred, ref, mask, source, scale=scale, **options)
    row: dict[str, Any] = {"id": subject.id}
    if ref is not None:
        row["baseline"] = constant_baseline(ref, mask, scale, options.get("resample", False))
    row.update(
        {
            k: str(getattr(subject, k)) if getattr(subject, k) else ""
            for k in ("pred", "ref", "mask", "source")
        }
    )
    if mask_fov:
        row["mask"] = "fov"
    return row | scores


def evaluate_folders(
    pred: str | Path,
    ref: str | Path | None = None,
    mask: str | Path | None = None,
    source: str | Path | None = None,
    scale: str = "paper",
    **options: Any,
) -> list[dict[str, Any]]:
    """:func:`evaluate_pair` over two files or folders matched by subject id (see :func:`match_subjects`).

    ``mask`` may be ``"fov"``; ``options`` are ``mi_bins``, ``orientation`` and ``resample``.
    """
    require_metrics(scale, source is not None, "evaluate_folders")
    subjects = match_subjects(pred, ref, mask, source)
    return list(iter_evaluate(subjects, scale, mask_fov=mask == "fov", **options))


# ----------------------------------------------------------------------------- reports


# ----------------------------------------------------------------------------- helpers
