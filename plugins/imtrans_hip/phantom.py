"""The procedural hip phantom: seeded CT / T1-MR / label volumes of the hip, and the ``phantom`` dataset.

The paper's volumes are private, so this is the embedded default data and the
test data. Each subject is one seeded anatomy (:mod:`.anatomy`) rendered on a
coronal grid like the paper's MR (256 x 256 in-plane at 1.25 mm, 38 slices of
2 mm; array ``[i, j, k]`` = left-right, anterior-posterior, inferior-superior,
identity direction, so coronal slices are ``array[:, j, :]``) as

* CT in HU: air -1000, fat about -100, muscle 15-50, urine 10, cancellous bone
  130-250, cortical bone about 1250, slight partial-volume blur, Gaussian noise;
* T1-weighted MR (arbitrary scale, about [0, 100]): fat and fatty marrow bright,
  muscle intermediate, cortical bone, air and urine dark; a smooth multiplicative
  bias field, a random global scale and Rician noise;
* labels (``LABELS``).

What makes the task hard is kept: cortical bone and air are both dark in MR but
opposite in CT, fat is bright in MR and dark in CT. Tissue values are calibrated
against a real pelvis CT (``tests/test_phantom.py`` compares the medians).
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from dataclasses import asdict
from pathlib import Path

import numpy as np

from imtrans_core.errors import ImtransError
from imtrans_core.sources import PairedSubject, VolumePool, VolumeSource
from imtrans_core.volume import Volume

from .anatomy import LABEL_GROUPS, LABELS, TISSUES, Subject, build, nominal_grid, paint
from .shapes import F32, Grid

__all__ = [
    "LABELS",
    "LABEL_GROUPS",
    "PHANTOM_VERSION",
    "TISSUES",
    "phantom",
    "render_subject",
    "write_phantom",
]

# Bump when any rendered voxel changes: it is part of every fingerprint and cache key.
PHANTOM_VERSION = "1"

# Per tissue: CT mean HU, its between-subject sd, within-tissue texture sd (per voxel, before the
# partial-volume blur); then the same three for T1 MR (fat = about 95 before the global scale).
# Muscle HU follow a real pelvis CT (gluteus maximus is the fattiest, iliopsoas the leanest).
TISSUE_VALUES: dict[str, tuple[float, float, float, float, float, float]] = {
    "air": (-1000, 0, 0, 0, 0, 0),
    "gas": (-960, 15, 10, 0, 0, 0),
    "fat": (-100, 8, 10, 95, 4, 3),
    "skin": (40, 10, 10, 55, 5, 3),
    "gluteus_maximus": (11, 4, 12, 42, 2, 3),
    "gluteus_medius": (30, 4, 12, 37, 2, 3),
    "gluteus_minimus": (36, 4, 12, 36, 2, 3),
    "iliopsoas": (47, 4, 10, 33, 2, 3),
    "adductors": (45, 4, 10, 34, 2, 3),
    "quadriceps": (48, 4, 10, 33, 2, 3),
    "other_muscle": (42, 4, 10, 35, 2, 3),
    "urine": (10, 4, 5, 12, 3, 1),
    "cortical": (1100, 80, 100, 5, 1, 1),
    "cancellous_pelvis": (115, 20, 50, 68, 6, 8),
    "cancellous_sacrum": (90, 25, 50, 62, 6, 8),
    "cancellous_femur": (150, 20, 50, 80, 5, 8),
    "marrow": (-30, 20, 20, 88, 4, 4),
    "cartilage": (90, 10, 10, 45, 4, 3),
    "bowel": (35, 10, 20, 38, 5, 6),
    "disc": (80, 10, 10, 38, 4, 3),
}
_MUSCLE_TISSUES = [n for n, name in enumerate(TISSUES) if name in LABEL_GROUPS["muscle"]]
CT_RANGE = (-1024.0, 3071.0)


def _streams(seed: int) -> dict[str, np.random.Generator]:
    """Independent random streams of one subject, so rendering only CT leaves the MR unchanged."""
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ImtransError(f"phantom seed must be a non-negative integer, got {seed!r}")
    children = np.random.SeedSequence([0x41B, int(seed)]).spawn(4)
    return {
        k: np.random.default_rng(c) for k, c in zip(("anatomy", "ct", "mr", "fov"), children, strict=True)
    }


def _tables(rng: np.random.Generator, modality: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-subject tissue means and texture sds (indexed by tissue id) for ``ct`` or ``mr``."""
    col = 0 if modality == "ct" else 3
    mean = np.array([TISSUE_VALUES[t][col] for t in TISSUES], np.float64)
    sd_subject = np.array([TISSUE_VALUES[t][col + 1] for t in TISSUES], np.float64)
    texture = np.array([TISSUE_VALUES[t][col + 2] for t in TISSUES], np.float64)
    mean = mean + sd_subject * rng.standard_normal(len(TISSUES))
    # muscles share most of their between-subject shift (fatty infiltration affects them all)
    shared = rng.standard_normal() * (6.0 if modality == "ct" else 2.5)
    mean[_MUSCLE_TISSUES] += shared
    return mean.astype(F32), texture.astype(F32)


def _blur(a: np.ndarray, w: tuple[float, float, float]) -> np.ndarray:
    """Partial-volume blur: a [w, 1-2w, w] kernel along each axis (sigma = sqrt(2 w) voxels), edges replicated."""
    for axis, wa in enumerate(w):
        n = a.shape[axis]
        if wa <= 0 or n < 3:
            continue
        a = np.moveaxis(a, axis, 0)
        out = a * F32(1 - 2 * wa)
        out[1:] += F32(wa) * a[:-1]
        out[:-1] += F32(wa) * a[1:]
        out[0] += F32(wa) * a[0]
        out[-1] += F32(wa) * a[-1]
        a = np.moveaxis(out, 0, axis)
    return np.ascontiguousarray(a)


def _bias_field(grid: Grid, rng: np.random.Generator) -> np.ndarray:
    """A smooth multiplicative MR bias field: exp of a random quadratic over the field of view (about +-25 %)."""
    x, y, z = grid.coords(tuple(slice(None) for _ in range(3)))
    half = [0.5 * grid.shape[a] * grid.spacing[a] for a in range(3)]
    u, v, w = x / F32(half[0]), y / F32(half[1]), z / F32(half[2])
    terms = (u, v, w, u * u, v * v, w * w, u * w, u * v)  # across slices (v) it varies little
    sd = (0.12, 0.04, 0.12, 0.05, 0.02, 0.05, 0.05, 0.05)
    log = sum(F32(c) * t for c, t in zip(rng.normal(0.0, 1.0, 8) * sd, terms, strict=True))
    return np.exp(log.astype(F32))


def _render_ct(tissue: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    mean, texture = _tables(rng, "ct")
    img = mean[tissue] + texture[tissue] * rng.standard_normal(tissue.shape, dtype=F32)
    img = _blur(img, (0.1, 0.08, 0.1))
    img += F32(rng.uniform(10.0, 20.0)) * rng.standard_normal(tissue.shape, dtype=F32)
    return np.clip(img, *CT_RANGE).astype(F32)


def _render_mr(tissue: np.ndarray, grid: Grid, rng: np.random.Generator) -> np.ndarray:
    mean, texture = _tables(rng, "mr")
    img = mean[tissue] + texture[tissue] * rng.standard_normal(tissue.shape, dtype=F32)
    img = np.maximum(_blur(img, (0.1, 0.08, 0.1)), 0)
    img *= _bias_field(grid, rng) * F32(rng.uniform(0.75, 1.3))
    sigma = F32(rng.uniform(1.5, 3.0))
    n1 = rng.standard_normal(tissue.shape, dtype=F32)
    n2 = rng.standard_normal(tissue.shape, dtype=F32)
    img += sigma * n1
    n2 *= sigma
    return np.sqrt(img * img + n2 * n2)  # Rician: magnitude of a complex Gaussian


def _volume(array: np.ndarray, grid: Grid, modality: str, meta: dict) -> Volume:
    return Volume(array, grid.spacing, grid.origin, np.eye(3), modality, dict(meta))


def render_subject(
    seed: int,
    size: int = 256,
    slices: int = 38,
    modalities: tuple[str, ...] = ("ct", "mr", "labels"),
    mr_shift: float = 0.0,
    tissue: bool = False,
) -> dict[str, Volume]:
    """Render one phantom subject as CT (HU), T1 MR and labels, on the same coronal grid.

    ``modalities`` picks what to render (any of ``ct``, ``mr``, ``labels``;
    painting the anatomy is most of the cost). ``mr_shift`` > 0 shifts the MR
    field of view by up to that many mm in-plane (half across slices), as
    between an unpaired MR and CT; with 0 every volume overlays voxel for voxel
    (paired ground truth). ``tissue=True`` adds the tissue map (``TISSUES``
    indices) under key ``tissue``. Same seed, same voxels.
    """
    unknown = set(modalities) - {"ct", "mr", "labels"}
    if unknown:
        raise ImtransError(f"unknown phantom modality {sorted(unknown)}; choose from ct, mr, labels")
    if int(size) < 16 or int(slices) < 4:
        raise ImtransError(f"phantom size must be >= 16 and slices >= 4, got size={size}, slices={slices}")
    rng = _streams(seed)
    subject = Subject.sample(rng["anatomy"])
    anatomy = build(subject, rng["anatomy"])
    meta = {"seed": int(seed), "phantom_version": PHANTOM_VERSION, "subject": asdict(subject)}
    grid = nominal_grid(size, slices)
    shift = rng["fov"].uniform(-1.0, 1.0, 3) * np.array([1.0, 0.5, 1.0]) * float(mr_shift)
    mr_grid = nominal_grid(size, slices, shift) if mr_shift > 0 else grid

    out: dict[str, Volume] = {}
    maps = None
    if {"ct", "labels"} & set(modalities) or tissue or mr_grid is grid:
        maps = paint(anatomy, grid)
    if "ct" in modalities:
        out["ct"] = _volume(_render_ct(maps[0], rng["ct"]), grid, "ct", meta)
    if "mr" in modalities:
        mr_maps = maps if mr_grid is grid else paint(anatomy, mr_grid)
        out["mr"] = _volume(_render_mr(mr_maps[0], mr_grid, rng["mr"]), mr_grid, "mr", meta)
    if "labels" in modalities:
        out["labels"] = _volume(maps[1], grid, "labels", {**meta, "label_names": dict(LABELS)})
    if tissue:
        out["tissue"] = _volume(maps[0], grid, "tissue", {**meta, "tissue_names": list(TISSUES)})
    return out


# --- the dataset ---------------------------------------------------------------------------------

# Subject seeds of a dataset with seed s: CT pool s*100000 + i, MR pool + 40000 + i, paired + 80000 + i.
# The three streams never meet, so no MR volume shows the anatomy of a CT volume (unpaired, as in
# the paper) and the paired test subjects are seen by neither pool.
STREAMS = {"ct": 0, "mr": 40_000, "paired": 80_000}
STREAM_SIZE = 40_000
SEED_STRIDE = 100_000
MR_SHIFT_MM = 4.0  # the unpaired MR pool's field of view is shifted by up to this much


def subject_seed(seed: int, stream: str, index: int) -> int:
    """The render seed of subject ``index`` of pool ``stream`` (``ct``, ``mr``, ``paired``) in dataset ``seed``."""
    limit = STREAM_SIZE if stream != "paired" else SEED_STRIDE - STREAMS["paired"]
    if not 0 <= index < limit:
        raise ImtransError(f"phantom: at most {limit} {stream} subjects per seed, asked for index {index}")
    return int(seed) * SEED_STRIDE + STREAMS[stream] + int(index)


class _Cache:
    """Rendered volumes by key, least recently used dropped first, within a byte budget (thread-safe).

    The optional disk cache (``_disk_load`` / ``_disk_save``) keeps each volume as an ``.npy``
    (memory-mapped on load) beside a ``.json`` with its geometry and meta, named by the phantom
    version and render parameters, written atomically.
    """

    def __init__(self, budget_bytes: int) -> None:
        self.budget = budget_bytes
        self.items: OrderedDict[tuple, Volume] = OrderedDict()
        self.nbytes = 0
        self.lock = threading.Lock()

    def get(self, key: tuple) -> Volume | None:
        with self.lock:
            vol = self.items.get(key)
            if vol is not None:
                self.items.move_to_end(key)
            return vol

    def put(self, key: tuple, vol: Volume) -> None:
        with self.lock:
            if key in self.items or vol.array.nbytes > self.budget:
                return
            self.items[key] = vol
            self.nbytes += vol.array.nbytes
            while self.nbytes > self.budget:
                _, old = self.items.popitem(last=False)
                self.nbytes -= old.array.nbytes

    def clear(self) -> None:
        with self.lock:
            self.items.clear()
            self.nbytes = 0


_MEMORY = _Cache(int(float(os.environ.get("IMTRANS_PHANTOM_CACHE_MB", "1024")) * 2**20))


def _disk_name(key: tuple) -> str:
    seed, size, slices, modality, mr_shift = key
    return f"phantom-v{PHANTOM_VERSION}-{size}x{slices}-s{seed}-{modality}-shift{mr_shift:g}"


def _disk_load(folder: Path, key: tuple) -> Volume | None:
    stem = folder / _disk_name(key)
    try:
        info = json.loads(stem.with_suffix(".json").read_text())
        array = np.load(stem.with_suffix(".npy"), mmap_mode="r")
    except (OSError, ValueError):
        return None
    return Volume(
        array, tuple(info["spacing"]), tuple(info["origin"]), np.eye(3), info["modality"], info["meta"]
    )


def _disk_save(folder: Path, key: tuple, vol: Volume) -> None:
    stem = folder / _disk_name(key)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{stem.name}.{os.getpid()}.{threading.get_ident()}"
        np.save(f"{tmp}.npy", np.ascontiguousarray(vol.array))
        os.replace(f"{tmp}.npy", stem.with_suffix(".npy"))
        info = {"spacing": vol.spacing, "origin": vol.origin, "modality": vol.modality, "meta": vol.meta}
        Path(f"{tmp}.json").write_text(json.dumps(info))
        os.replace(f"{tmp}.json", stem.with_suffix(".json"))
    except OSError as exc:
        raise ImtransError(
            f"phantom cache={folder}: cannot write there ({exc.strerror or exc}); "
            "pass a writable folder or cache='' to keep renders in memory only"
        ) from exc


def _load(
    seed: int, size: int, slices: int, modalities: tuple[str, ...], mr_shift: float, cache: str
) -> dict[str, Volume]:
    """Volumes of one subject from the memory cache, the disk cache, or a fresh render (then cached)."""
    folder = Path(cache).expanduser() if cache else None
    out: dict[str, Volume] = {}
    missing = []
    for m in modalities:
        key = (seed, size, slices, m, mr_shift if m == "mr" else 0.0)
        vol = _MEMORY.get(key)
        if vol is None and folder is not None:
            vol = _disk_load(folder, key)
            if vol is not None:
                _MEMORY.put(key, vol)
        if vol is None:
            missing.append(m)
        else:
            out[m] = vol
    if missing:
        fresh = render_subject(seed, size, slices, tuple(missing), mr_shift=mr_shift)
        for m, vol in fresh.items():
            key = (seed, size, slices, m, mr_shift if m == "mr" else 0.0)
            vol.array.flags.writeable = False
            _MEMORY.put(key, vol)
            if folder is not None:
                _disk_save(folder, key, vol)
            out[m] = vol
    # callers get their own arrays: a cached render must never be changed in place
    return {
        m: Volume(np.array(v.array), v.spacing, v.origin, v.direction, v.modality, dict(v.meta))
        for m, v in ((m, out[m]) for m in modalities)
    }


def phantom(
    n_ct: int = 20,
    n_mr: int = 20,
    n_paired: int = 3,
    size: int = 256,
    slices: int = 38,
    seed: int = 0,
    cache: str = "",
) -> VolumeSource:
    """Procedural hip phantom: unpaired CT and T1-MR pools plus pixel-aligned paired test subjects.

    Coronal volumes like the paper's MR (``size`` x ``size`` in-plane over 320 mm,
    ``slices`` slices over 76 mm). CT, MR and paired subjects come from three
    disjoint seed streams; the MR pool's field of view is shifted by a few mm.
    The defaults are the paper's first experiment: 20 CT + 20 MR for training and 3
    paired subjects for testing. ``cache``: a folder keeping renders across runs
    (in memory they are kept anyway, up to IMTRANS_PHANTOM_CACHE_MB, default 1024).
    """
    for name, value, low, high in (
        ("n_ct", n_ct, 0, None),
        ("n_mr", n_mr, 0, None),
        ("n_paired", n_paired, 0, None),
        ("size", size, 16, 2048),
        ("slices", slices, 4, 1024),
        ("seed", seed, 0, None),
    ):
        if not isinstance(value, (int, np.integer)) or value < low or (high is not None and value > high):
            accepted = f">= {low}" if high is None else f"in {low}..{high}"
            raise ImtransError(f"phantom: {name} must be an integer {accepted}, got {value!r}")
    subject_seed(seed, "ct", max(n_ct - 1, 0))
    subject_seed(seed, "mr", max(n_mr - 1, 0))
    subject_seed(seed, "paired", max(n_paired - 1, 0))
    size, slices = int(size), int(slices)

    def pool(stream: str, n: int) -> VolumePool:
        seeds = {f"{stream}-{i:04d}": subject_seed(seed, stream, i) for i in range(n)}
        shift = MR_SHIFT_MM if stream == "mr" else 0.0

        def load(volume_id: str) -> Volume:
            if volume_id not in seeds:
                raise ImtransError(
                    f"phantom: no {stream} volume {volume_id!r}; ids run {stream}-0000..{stream}-{n - 1:04d}"
                )
            return _load(seeds[volume_id], size, slices, (stream,), shift, cache)[stream]

        return VolumePool(list(seeds), load)

    def paired_loader(s: int):
        def load() -> dict[str, Volume]:
            vols = _load(s, size, slices, ("ct", "mr", "labels"), 0.0, cache)
            vols["mask"] = vols["labels"].with_array((vols["labels"].array > 0).astype(np.uint8), "mask")
            return vols

        return load

    paired = [
        PairedSubject(f"pair-{i:03d}", paired_loader(subject_seed(seed, "paired", i)))
        for i in range(n_paired)
    ]
    fingerprint = (
        f"phantom-v{PHANTOM_VERSION}:n_ct={n_ct},n_mr={n_mr},n_paired={n_paired},"
        f"size={size},slices={slices},seed={seed}"
    )
    source = VolumeSource(pool("ct", n_ct), pool("mr", n_mr), paired, dict(LABELS), fingerprint)
    source.label_groups = {k: list(v) for k, v in LABEL_GROUPS.items()}  # read by consumers that merge labels
    return source


# --- files for people ---------------------------------------------------------------------------


def montage(rows: list[dict[str, Volume]]) -> np.ndarray:
    """Mid-coronal slices side by side, one row per subject: CT (-150..350 HU), MR, labels (uint8, 2-D).

    Superior is up and the patient's right on the left, as a radiologist reads a coronal image.
    """
    tiles = []
    for vols in rows:
        row = []
        for m in ("ct", "mr", "labels"):
            vol = vols.get(m)
            if vol is None:
                continue
            a = np.asarray(vol.array, dtype=np.float32)
            j = vol.axis_of(1)
            sl = np.take(a, a.shape[j] // 2, axis=j)  # (i, k)
            if m == "ct":
                sl = (sl + 150.0) / 500.0
            elif m == "mr":
                sl = sl / max(float(np.percentile(a, 99.5)), 1e-6)
            else:
                sl = sl / max(max(LABELS.values()), 1)
            row.append(np.flipud(np.clip(sl, 0, 1).T))
        tiles.append(np.concatenate(row, axis=1))
    width = max(t.shape[1] for t in tiles)
    tiles = [np.pad(t, ((0, 0), (0, width - t.shape[1]))) for t in tiles]
    return np.round(np.concatenate(tiles, axis=0) * 255).astype(np.uint8)


def write_phantom(
    out_dir: str | Path,
    n_ct: int,
    n_mr: int,
    n_paired: int,
    size: int = 256,
    slices: int = 38,
    seed: int = 0,
) -> Path:
    """Write a phantom data set as NIfTI in a SynthRAD-like layout; returns ``out_dir``.

    ``ct/ct-0000.nii.gz ...``, ``mr/mr-0000.nii.gz ...`` (unpaired pools),
    ``paired/pair-000/{ct,mr,labels,mask}.nii.gz`` (pixel-aligned test subjects),
    ``labels.json`` (structure name -> label value) and ``montage.png`` (mid-coronal
    CT | MR | labels of up to four subjects) to look at.
    """
    import SimpleITK as sitk
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from imtrans_core.io import write_volume

    out = Path(out_dir)
    source = phantom(n_ct, n_mr, n_paired, size, slices, seed)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ImtransError(
            f"--out {out}: cannot create it ({exc.strerror or exc}); pick a writable folder"
        ) from exc
    shown: list[dict[str, Volume]] = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task("phantom", total=n_ct + n_mr + n_paired)
        for stream, pool in (("ct", source.ct), ("mr", source.mr)):
            for volume_id in pool.ids:
                progress.update(task, description=f"{stream} {volume_id}")
                vol = pool.load(volume_id)
                write_volume(vol, out / stream / f"{volume_id}.nii.gz")
                progress.advance(task)
        for subject in source.paired:
            progress.update(task, description=f"paired {subject.id}")
            vols = subject.load()
            for m, vol in vols.items():
                write_volume(vol, out / "paired" / subject.id / f"{m}.nii.gz")
            if len(shown) < 4:
                shown.append(vols)
            progress.advance(task)
    (out / "labels.json").write_text(json.dumps(LABELS, indent=2) + "\n")
    if not shown and (n_ct or n_mr):  # no paired subject: the first CT and the first MR (not the same body)
        shown.append({m: pool[0] for m, pool in (("ct", source.ct), ("mr", source.mr)) if len(pool)})
    if shown:
        sitk.WriteImage(sitk.GetImageFromArray(montage(shown)), str(out / "montage.png"))
    return out
