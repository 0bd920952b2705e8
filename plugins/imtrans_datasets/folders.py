"""Datasets over real volumes on disk: two folders, or the SynthRAD2023 layout."""

from __future__ import annotations

import hashlib
from pathlib import Path

from imtrans_core.api import (
    ImtransError,
    PairedSubject,
    VolumePool,
    VolumeSource,
    list_volumes,
    read_volume,
    volume_id,
)


def _pool(folder: Path, modality: str, option: str) -> VolumePool:
    if not folder.is_dir():
        raise ImtransError(f"{option}={folder}: no such folder")
    paths = {volume_id(p): p for p in list_volumes(folder)}  # raises on an empty folder
    return VolumePool(sorted(paths), lambda vid: read_volume(paths[vid], modality=modality))


def _fingerprint(*parts: object) -> str:
    return hashlib.sha1(repr(parts).encode()).hexdigest()[:16]


def folder(ct: str, mr: str, pairs: str = "") -> VolumeSource:
    """Unpaired CT and MR volumes from two folders, in any supported format; aligned pairs from a third.

    ``pairs``: a folder with one subfolder per subject holding ``ct`` and ``mr``
    volumes on one grid (``ct.nii.gz``, ``mr.mha``, ...; a ``mask`` is read too),
    as ``imtrans data phantom --train-pairs`` writes them: the aligned subjects
    a paired loss trains on (supervised or hybrid, docs/training.md).
    """
    from imtrans_core.api import read_prepared

    ct_pool, mr_pool = _pool(Path(ct), "ct", "ct"), _pool(Path(mr), "mr", "mr")
    subjects = _pair_folders(Path(pairs)) if pairs else []
    stamps = [_stamps(f) for f in (ct, mr, *(str(Path(pairs) / s.id) for s in subjects))]
    fingerprint = _fingerprint("folder", *stamps)
    prepared = read_prepared(Path(mr))
    return VolumeSource(
        ct_pool,
        mr_pool,
        fingerprint=fingerprint,
        train_pairs=subjects,
        mr_n4=bool(prepared.get("n4", False)),
        mr_weighting=str(prepared.get("mr_weighting", "")),
    )


def _pair_folders(base: Path) -> list[PairedSubject]:
    """One :class:`PairedSubject` per subfolder of ``base``, named by it."""
    if not base.is_dir():
        raise ImtransError(f"pairs={base}: no such folder")
    folders = sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise ImtransError(
            f"pairs={base}: no subject folders in it; expected one folder per pair (ct and mr)"
        )
    subjects = []
    for sub in folders:
        paths = list_volumes(sub)
        files = {volume_id(p): p for p in paths}
        if len(files) < len(paths):
            raise ImtransError(f"pairs={base}: {sub.name} holds two volumes of one name; keep one of each")
        missing = [m for m in ("ct", "mr") if m not in files]
        if missing:
            raise ImtransError(f"pairs={base}: {sub.name} has no {' and no '.join(missing)} volume")
        wanted = {m: files[m] for m in ("ct", "mr", "mask") if m in files}
        subjects.append(PairedSubject(sub.name, lambda wanted=wanted: _read_all(wanted)))
    return subjects


def _read_all(paths: dict[str, Path]) -> dict:
    return {modality: read_volume(path, modality=modality) for modality, path in paths.items()}


def _stamps(folder: str) -> list[tuple[str, int, float]]:
    """Names, sizes and times of the files in a folder: a changed file changes the cache key."""
    return [(str(p), p.stat().st_size, p.stat().st_mtime) for p in list_volumes(Path(folder))]


SYNTHRAD_FILES = ("ct.nii.gz", "mr.nii.gz")


def synthrad(root: str, test: int | None = None) -> VolumeSource:
    """SynthRAD2023 layout (one folder per patient: mr, ct, mask .nii.gz): unpaired pools, paired tests.

    The last ``test`` patients (sorted by name) are held out of the training
    pools and serve as paired test subjects; by default a fifth of them (at least
    one). ``test=0`` trains on every patient and offers no test subject: a model is
    never scored on a patient it trained on. The training patients are also
    offered as aligned pairs (SynthRAD registers each CT to its MR), for a paired
    loss: supervised or hybrid training.
    """
    base = Path(root)
    if not base.is_dir():
        raise ImtransError(f"root={root}: no such folder")
    patients = sorted(
        p for p in base.iterdir() if p.is_dir() and all((p / f).exists() for f in SYNTHRAD_FILES)
    )
    if not patients:
        raise ImtransError(f"root={root}: no patient folders holding {' and '.join(SYNTHRAD_FILES)}")
    if test is None:
        if len(patients) < 2:
            raise ImtransError(
                f"root={root}: one patient cannot be split into training and test; pass test=0 to train on it alone"
            )
        test = max(1, round(len(patients) / 5))
    if not 0 <= test < len(patients):
        raise ImtransError(
            f"test={test}: must be between 0 and {len(patients) - 1} for {len(patients)} patients"
        )
    train, held_out = patients[: len(patients) - test], patients[len(patients) - test :]
    by_id = {p.name: p for p in patients}
    ct = VolumePool([p.name for p in train], lambda pid: read_volume(by_id[pid] / "ct.nii.gz", modality="ct"))
    mr = VolumePool([p.name for p in train], lambda pid: read_volume(by_id[pid] / "mr.nii.gz", modality="mr"))
    paired = [PairedSubject(p.name, lambda p=p: _load_patient(p)) for p in held_out]
    pairs = [PairedSubject(p.name, lambda p=p: _load_patient(p)) for p in train]
    files = [(str(f), f.stat().st_size, f.stat().st_mtime) for p in train for f in sorted(p.glob("*.nii.gz"))]
    fingerprint = _fingerprint("synthrad", root, [p.name for p in train], files)
    return VolumeSource(ct, mr, paired, fingerprint=fingerprint, train_pairs=pairs)


def _load_patient(folder: Path) -> dict:
    names = ["ct", "mr"] + (["mask"] if (folder / "mask.nii.gz").exists() else [])
    return _read_all({name: folder / f"{name}.nii.gz" for name in names})
