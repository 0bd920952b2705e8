"""Which prediction goes with which reference: volumes of two folders matched by id, or the
folders of a SynthRAD2023-style layout (one folder per subject).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from ..data.io import list_volumes, suffix_of, volume_id
from ..errors import ImtransError, ImtransWarning

# In a folder laid out like SynthRAD2023 (one folder per subject), the file each role reads.
SUBJECT_FILES = {"pred": "sct", "ref": "ct", "mask": "mask", "source": "mr"}


@dataclass
class Subject:
    """The files of one subject: a prediction, and a reference, mask and source where given."""

    id: str
    pred: Path
    ref: Path | None = None
    mask: Path | None = None
    source: Path | None = None


def match_subjects(
    pred: str | Path,
    ref: str | Path | None = None,
    mask: str | Path | None = None,
    source: str | Path | None = None,
) -> list[Subject]:
    """Pair the files of PRED, REF, --mask and --source: one each, or folders matched by subject id.

    A subject id is a volume's name without its suffix (``io.volume_id``), or in a SynthRAD-style
    folder of subject folders the subject folder's name (``1PA001/ct.nii.gz`` -> ``1PA001``).
    Subjects missing from some folders are left out with a warning; none in common is an error.
    """
    pred = Path(pred)
    roles = {"ref": ref, "mask": None if mask == "fov" else mask, "source": source}
    given = {role: Path(p) for role, p in roles.items() if p is not None}
    if not pred.is_dir() or _is_series(pred):
        for role, path in given.items():
            if path.is_dir() and not _is_series(path):
                raise ImtransError(
                    f"{_option(role)} {path} is a folder but PRED {pred} is one volume — give files for both, or folders for both"
                )
        _exists(pred, "PRED")
        for role, path in given.items():
            _exists(path, _option(role))
        return [Subject(volume_id(pred), pred, **given)]
    indexes = {"pred": _index(pred, "pred")}
    for role, path in given.items():
        if not path.is_dir():
            raise ImtransError(
                f"{_option(role)} {path} is a file but PRED {pred} is a folder — give a folder matched by subject id"
            )
        indexes[role] = _index(path, role)
    common = set.intersection(*(set(index) for index in indexes.values()))
    for role, index in indexes.items():
        missing = sorted(set(index) - common)
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            warnings.warn(
                f"{_option(role)} {given.get(role, pred)}: {len(missing)} subject(s) not in every folder, "
                f"left out: {shown}",
                ImtransWarning,
                stacklevel=2,
            )
    if not common:
        folders = ", ".join(f"{_option(role)} {given.get(role, pred)}" for role in indexes)
        raise ImtransError(
            f"no subject id is in every folder ({folders}) — name each subject's files alike, e.g. 01.nii.gz"
        )
    return [Subject(vid, **{role: index[vid] for role, index in indexes.items()}) for vid in sorted(common)]


def _index(folder: Path, role: str) -> dict[str, Path]:
    """``{subject id: file}`` for the volumes in ``folder`` and its SynthRAD-style subject folders."""
    try:
        index = {volume_id(p): p for p in list_volumes(folder)}
    except ImtransError:
        index = {}
    member = SUBJECT_FILES[role]
    for child in sorted(folder.iterdir()):
        if child.is_dir() and not child.name.startswith("."):
            found = [p for p in sorted(child.iterdir()) if volume_id(p) == member and suffix_of(p)]
            if found:
                index[child.name] = found[0]
    if not index:
        raise ImtransError(
            f"{folder}: no volumes found — expected <id>.nii.gz files or <id>/{member}.nii.gz folders"
        )
    return index


def _is_series(path: Path) -> bool:
    """A folder that is one DICOM series (a single volume), not a folder of volumes."""
    try:
        return path.is_dir() and list_volumes(path) == [path]
    except ImtransError:
        return False


def _exists(path: Path, option: str) -> None:
    if not path.exists():
        raise ImtransError(f"{option} {path}: no such file or folder — check the path")


def _option(role: str) -> str:
    return {"pred": "PRED", "ref": "REF", "mask": "--mask", "source": "--source"}[role]
