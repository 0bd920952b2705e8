"""The procedural hip phantom: seeded CT / T1-MR / label volumes of the hip, and the ``phantom`` dataset.

The paper's volumes are private, so this is the embedded default data and the
test data. Each subject is one seeded body (:mod:`.anatomy`) rendered on a
coronal grid like the paper's MR (256 x 256 in-plane at 1.25 mm, 38 slices over a
76 mm slab; array ``[i, j, k]`` = left-right, anterior-posterior,
inferior-superior, identity direction, so coronal slices are ``array[:, j, :]``) as

* CT in HU (:mod:`.ct`): tissue values with texture, the scanner's blur,
  correlated quantum noise, optional streaks and a metal prosthesis;
* T1-weighted MR (:mod:`.mr`, about [0, 100]): fat and water signal at the
  paper's nearly opposed phase, chemical shift, coil sensitivity, bias field,
  optional ghosts, Rician noise;
* labels (``LABELS``).

Coarse grids are rendered at twice the resolution and averaged (partial volume).
The knobs of the imaging live in :class:`.scan.Scan`; the dataset frames the CT
and MR archives differently (:func:`fov_shift`). What makes the task hard is
kept: cortical bone and air are both dark in MR but opposite in CT, fat is bright
in MR and dark in CT. How patient-like the CT is, is measured against a real
pelvis CT (:mod:`.realism`, ``tests/test_realism.py``).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, fields, replace
from pathlib import Path

import numpy as np

from imtrans_core.api import ImtransError, PairedSubject, Volume, VolumePool, VolumeSource

from . import ct, mr
from .anatomy import LABEL_GROUPS, LABELS, TISSUES, Anatomy, Painted, Subject, build, nominal_grid, paint
from .scan import Scan
from .shapes import F32, Grid, WorldNoise, smooth_sample

__all__ = [
    "LABELS",
    "LABEL_GROUPS",
    "PHANTOM_VERSION",
    "TISSUES",
    "Scan",
    "fov_shift",
    "phantom",
    "render_subject",
    "write_phantom",
]

# Bump when any rendered voxel changes: it is part of every fingerprint and cache key.
PHANTOM_VERSION = "2"
# ... except where only one MR weighting's tissue table (mr.WEIGHTINGS) changes: bump its revision,
# which the keys and fingerprints of that weighting's renders carry, and the other's stay valid.
WEIGHTING_REVISIONS = {"t1": "", "t2": "t2_table=2"}


def _scan_key(scan: Scan) -> str:
    """What sets a render apart from the defaults: the scan's settings and its weighting's revision."""
    return ",".join(part for part in (scan.key(), WEIGHTING_REVISIONS[scan.weighting]) if part)


def _streams(seed: int, repeat: int = 0) -> dict[str, np.random.Generator]:
    """Independent random streams of one subject, so rendering only CT leaves the MR unchanged.

    Scan ``repeat`` > 0 of the subject draws its noise streams anew and keeps every other.
    """
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ImtransError(f"phantom seed must be a non-negative integer, got {seed!r}")
    names = ("anatomy", "ct", "mr", "fov", "implant", "pairing", "ct_noise", "mr_noise")
    children = np.random.SeedSequence([0x41B, int(seed)]).spawn(len(names))
    streams = {k: np.random.default_rng(c) for k, c in zip(names, children, strict=True)}
    if repeat:
        again = np.random.SeedSequence([0x41B, int(seed), int(repeat)]).spawn(2)
        streams.update(ct_noise=np.random.default_rng(again[0]), mr_noise=np.random.default_rng(again[1]))
    return streams


def _volume(array: np.ndarray, grid: Grid, modality: str, meta: dict) -> Volume:
    return Volume(array, grid.spacing, grid.origin, np.eye(3), modality, dict(meta))


def render_subject(
    seed: int,
    size: int = 256,
    slices: int = 38,
    modalities: tuple[str, ...] = ("ct", "mr", "labels"),
    scan: Scan = Scan(),
    fov: tuple[float, float, float] = (0.0, 0.0, 0.0),
    tissue: bool = False,
) -> dict[str, Volume]:
    """Render one phantom subject as CT (HU), T1 MR and labels, on the same coronal grid.

    ``modalities`` picks what to render (any of ``ct``, ``mr``, ``labels``;
    painting the anatomy is most of the cost). ``fov`` moves the field of view
    by that many mm (x, y, z) over the body, as a different scan of the same
    patient would. ``scan`` sets the imaging (:class:`Scan`); with
    ``scan.misregistration`` > 0 the CT is resampled through a small deformation,
    as a CT registered to its MR is. ``tissue=True`` adds the
    tissue map (``TISSUES`` indices) under key ``tissue``. Same arguments, same voxels.
    """
    unknown = set(modalities) - {"ct", "mr", "labels"}
    if unknown:
        raise ImtransError(f"unknown phantom modality {sorted(unknown)}; choose from ct, mr, labels")
    if int(size) < 16 or int(slices) < 4:
        raise ImtransError(f"phantom size must be >= 16 and slices >= 4, got size={size}, slices={slices}")
    rng = _streams(seed, scan.repeat)
    subject = Subject.sample(rng["anatomy"])
    if rng["implant"].uniform() < scan.metal:
        subject = replace(subject, implant=str(rng["implant"].choice(["left", "right"])))
    anatomy = build(subject, rng["anatomy"])
    meta = {"seed": int(seed), "phantom_version": PHANTOM_VERSION, "subject": asdict(subject)}
    if scan_key := _scan_key(scan):
        meta["scan"] = scan_key
    grid = nominal_grid(size, slices, fov, scan.thickness)
    factor = supersampling(grid) if {"ct", "mr"} & set(modalities) else (1, 1, 1)
    fine = refine(grid, factor)
    images, (tissue_map, labels) = _scan(anatomy, fine, modalities, scan, rng)
    out = {m: _volume(block_mean(array, factor), grid, m, meta) for m, array in images.items()}
    if fine != grid and ("labels" in modalities or tissue):
        tissue_map, labels = paint(anatomy, grid)  # what lies at each voxel's centre
    if "labels" in modalities:
        out["labels"] = _volume(labels, grid, "labels", {**meta, "label_names": dict(LABELS)})
    if tissue:
        out["tissue"] = _volume(tissue_map, grid, "tissue", {**meta, "tissue_names": list(TISSUES)})
    return out


# Grids coarser than this (mm) are rendered at twice the resolution along that axis and averaged:
# a big voxel integrates the tissues inside it (partial volume) instead of showing the one at its
# centre, which would alias thin structures (fascia, fat strands, cortex) into dashes.
SUPERSAMPLE_ABOVE_MM = 2.2


def supersampling(grid: Grid) -> tuple[int, int, int]:
    """Sub-voxels per voxel along each axis: 2 where the spacing exceeds ``SUPERSAMPLE_ABOVE_MM``."""
    return tuple(2 if s > SUPERSAMPLE_ABOVE_MM else 1 for s in grid.spacing)


def refine(grid: Grid, factor: tuple[int, int, int]) -> Grid:
    """The grid of ``factor`` sub-voxels per voxel, each voxel's sub-voxels centred on it."""
    spacing = tuple(s / f for s, f in zip(grid.spacing, factor, strict=True))
    origin = tuple(o - (f - 1) / 2 * s for o, f, s in zip(grid.origin, factor, spacing, strict=True))
    return Grid(tuple(n * f for n, f in zip(grid.shape, factor, strict=True)), spacing, origin)


def block_mean(array: np.ndarray, factor: tuple[int, int, int]) -> np.ndarray:
    """The mean of each ``factor`` block: sub-voxels back to voxels."""
    if factor == (1, 1, 1):
        return array
    shape = [d for n, f in zip(array.shape, factor, strict=True) for d in (n // f, f)]
    return array.reshape(shape).mean(axis=(1, 3, 5), dtype=F32)


def _scan(
    anatomy: Anatomy, grid: Grid, modalities: tuple[str, ...], scan: Scan, rng: dict[str, np.random.Generator]
) -> tuple[dict[str, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Paint the body on ``grid`` and image it in the requested modalities; also the tissue and label maps.

    Two threads: the noise of each image and the texture field are drawn while the
    body is painted, then CT and MR are rendered side by side (numpy releases the GIL on big arrays). Each has
    its own random streams, so the voxels are the same whatever runs when.
    """
    scanners = {"ct": ct, "mr": mr}
    with ThreadPoolExecutor(max_workers=2) as pool:
        fields = {
            m: pool.submit(scanners[m].draw_noise, grid, rng[f"{m}_noise"])
            for m in scanners
            if m in modalities
        }
        texture = pool.submit(smooth_sample, grid, lambda g: anatomy.texture.sample(g, g.everything()))
        tissue_map, labels = paint(anatomy, grid)
        body = Painted(tissue_map, texture.result(), grid, anatomy.subject)
        jobs = {}
        if "ct" in fields:
            jobs["ct"] = pool.submit(_render_ct, body, rng, fields["ct"].result(), scan)
        if "mr" in fields:
            knobs = {k: getattr(scan, k) for k in ("weighting", "fat_phase", "fat_shift", "coil", "ghosting")}
            jobs["mr"] = pool.submit(mr.render, body, rng["mr"], fields["mr"].result(), **knobs)
        return {m: job.result() for m, job in jobs.items()}, (tissue_map, labels)


def _render_ct(body: Painted, rng: dict[str, np.random.Generator], fields, scan: Scan) -> np.ndarray:
    """The CT of a subject; resampled through a small deformation when ``scan.misregistration`` > 0."""
    image = ct.render(body, rng["ct"], fields, scan.ct_noise, scan.streaks, scan.ct_texture)
    if scan.misregistration > 0:
        image = resample(image, misregistration(body.grid, scan.misregistration, rng["pairing"]))
    return image


def misregistration(grid: Grid, rms_mm: float, rng: np.random.Generator) -> list[np.ndarray]:
    """Where each voxel of a registered CT samples the original (voxel coordinates per axis).

    A deformation of ``rms_mm`` RMS: half of its variance one rigid translation,
    half a smooth field (lattice step 40 mm), what is left after a
    rigid-plus-B-spline registration of a CT to its MR.
    """
    per_axis = rms_mm / np.sqrt(3.0)
    lo = np.array(grid.origin) - 1.0
    hi = lo + np.array(grid.shape) * np.array(grid.spacing) + 2.0
    source = []
    for a in range(3):
        smooth = WorldNoise.draw(rng, lo, hi, 40.0).sample(grid, grid.everything())
        shift_mm = F32(per_axis / np.sqrt(2.0)) * (smooth + F32(rng.standard_normal()))
        shape = [1, 1, 1]
        shape[a] = grid.shape[a]
        source.append(np.arange(grid.shape[a], dtype=F32).reshape(shape) + shift_mm / F32(grid.spacing[a]))
    return source


def resample(image: np.ndarray, source: list[np.ndarray]) -> np.ndarray:
    """``image`` sampled at voxel coordinates ``source`` (one array per axis): trilinear, edges clamped.

    How a registration tool writes a CT onto its MR's grid.
    """
    lower, weight = [], []
    for a, coordinate in enumerate(source):
        c = np.clip(coordinate, 0, image.shape[a] - 1)
        i0 = np.minimum(np.floor(c).astype(np.intp), image.shape[a] - 2)
        lower.append(i0)
        weight.append((c - i0).astype(F32))
    out = np.zeros(np.broadcast_shapes(*(c.shape for c in source)), F32)
    for corner in np.ndindex(2, 2, 2):
        w = np.ones((), F32)
        for a in range(3):
            w = w * (weight[a] if corner[a] else 1 - weight[a])
        out += w * image[tuple(lower[a] + corner[a] for a in range(3))]
    return out


# --- the dataset ---------------------------------------------------------------------------------

# Subject seeds of a dataset with seed s: CT pool s*100000 + i, MR pool + 40000 + i, paired (test)
# subjects + 80000 + i, training pairs + 90000 + i. The streams never meet, so no MR volume shows the
# anatomy of a CT volume (unpaired, as in the paper) and the paired test subjects are seen in no training.
STREAMS = {"ct": 0, "mr": 40_000, "paired": 80_000, "train-pairs": 90_000}
SEED_STRIDE = 100_000
FOV_SD_LATERAL = (5.0, 3.0)  # left-right and anterior-posterior SD of a field of view's position, mm


def fov_shift(seed: int, stream: str, scan: Scan) -> tuple[float, float, float]:
    """Where subject ``seed``'s field of view sits (mm from the nominal one) in its archive.

    Two hospitals' archives frame the hip differently: the MR archive (and the
    paired subjects, which are MRs with a CT registered to them) is centred
    ``scan.cohort_offset`` mm higher than the CT archive, and within an archive the
    cranio-caudal position varies with SD ``scan.fov_sd``.
    """
    rng = _streams(seed)["fov"]
    offset = scan.cohort_offset if stream in ("mr", "paired") else 0.0
    sd = (*FOV_SD_LATERAL, scan.fov_sd)
    return tuple(float(v) for v in rng.normal(0.0, 1.0, 3) * np.array(sd) + np.array([0.0, 0.0, offset]))


def subject_seed(seed: int, stream: str, index: int) -> int:
    """The render seed of subject ``index`` of pool ``stream`` (a key of ``STREAMS``) in dataset ``seed``."""
    limit = (
        min([start for start in STREAMS.values() if start > STREAMS[stream]] + [SEED_STRIDE])
        - STREAMS[stream]
    )
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


def _key(seed: int, size: int, slices: int, modality: str, scan: Scan, fov) -> tuple:
    """Cache key of one rendered volume (labels and MR do not depend on the CT's settings, but the
    key is kept simple: any setting change renders again)."""
    return (seed, size, slices, modality, _scan_key(scan), tuple(round(v, 4) for v in fov))


def _disk_name(key: tuple) -> str:
    seed, size, slices, modality, scan_key, fov = key
    digest = hashlib.sha1(repr((scan_key, fov)).encode()).hexdigest()[:12]
    return f"phantom-v{PHANTOM_VERSION}-{size}x{slices}-s{seed}-{modality}-{digest}"


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
    seed: int, size: int, slices: int, modalities: tuple[str, ...], scan: Scan, fov, cache: str
) -> dict[str, Volume]:
    """Volumes of one subject from the memory cache, the disk cache, or a fresh render (then cached)."""
    folder = Path(cache).expanduser() if cache else None
    out: dict[str, Volume] = {}
    missing = []
    for m in modalities:
        key = _key(seed, size, slices, m, scan, fov)
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
        fresh = render_subject(seed, size, slices, tuple(missing), scan, fov)
        for m, vol in fresh.items():
            key = _key(seed, size, slices, m, scan, fov)
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
    n_train_pairs: int = 0,
    thickness: float = Scan.thickness,
    ct_noise: float = Scan.ct_noise,
    ct_texture: float = Scan.ct_texture,
    streaks: float = Scan.streaks,
    metal: float = Scan.metal,
    weighting: str = Scan.weighting,
    fat_phase: float = Scan.fat_phase,
    fat_shift: float = Scan.fat_shift,
    coil: float = Scan.coil,
    ghosting: float = Scan.ghosting,
    misregistration: float = Scan.misregistration,
    fov_sd: float = Scan.fov_sd,
    cohort_offset: float = Scan.cohort_offset,
    repeat: int = Scan.repeat,
) -> VolumeSource:
    """Procedural hip phantom: unpaired CT and MR pools (T1; T2 with ``weighting=t2``) plus paired test subjects.

    Coronal volumes like the paper's MR (``size`` x ``size`` in-plane over 320 mm,
    ``slices`` slices over a ``thickness`` mm slab). CT, MR and paired subjects
    come from disjoint seed streams, and the two archives frame the hip
    differently (``cohort_offset``, ``fov_sd``). The defaults are the paper's
    first experiment: 20 CT + 20 MR for training and 3 paired subjects for
    testing. ``n_train_pairs`` aligned subjects more (from the paired
    subjects' archive, never a test subject) feed a paired loss: the supervised
    upper bound and the hybrid. The imaging knobs (``ct_noise`` ... ``misregistration``) are
    :class:`Scan`'s, documented in docs/data.md. ``cache``: a folder keeping
    renders across runs (in memory they are kept anyway, up to
    IMTRANS_PHANTOM_CACHE_MB, default 1024).
    """
    for name, value, low, high in (
        ("n_ct", n_ct, 0, None),
        ("n_mr", n_mr, 0, None),
        ("n_paired", n_paired, 0, None),
        ("n_train_pairs", n_train_pairs, 0, None),
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
    subject_seed(seed, "train-pairs", max(n_train_pairs - 1, 0))
    size, slices = int(size), int(slices)
    knobs = dict(locals())
    paired_scan = Scan(**{f.name: knobs[f.name] for f in fields(Scan)})
    scan = replace(paired_scan, misregistration=0.0)  # only a pair can be misregistered

    def pool(stream: str, n: int) -> VolumePool:
        seeds = {f"{stream}-{i:04d}": subject_seed(seed, stream, i) for i in range(n)}

        def load(volume_id: str) -> Volume:
            if volume_id not in seeds:
                raise ImtransError(
                    f"phantom: no {stream} volume {volume_id!r}; ids run {stream}-0000..{stream}-{n - 1:04d}"
                )
            s = seeds[volume_id]
            return _load(s, size, slices, (stream,), scan, fov_shift(s, stream, scan), cache)[stream]

        return VolumePool(list(seeds), load)

    def paired_loader(s: int):
        def load() -> dict[str, Volume]:
            fov = fov_shift(s, "paired", scan)
            vols = _load(s, size, slices, ("ct", "mr", "labels"), paired_scan, fov, cache)
            vols["mask"] = vols["labels"].with_array((vols["labels"].array > 0).astype(np.uint8), "mask")
            return vols

        return load

    paired = [
        PairedSubject(f"pair-{i:03d}", paired_loader(subject_seed(seed, "paired", i)))
        for i in range(n_paired)
    ]
    train_pairs = [
        PairedSubject(f"train-pair-{i:04d}", paired_loader(subject_seed(seed, "train-pairs", i)))
        for i in range(n_train_pairs)
    ]
    fingerprint = (
        f"phantom-v{PHANTOM_VERSION}:n_ct={n_ct},n_mr={n_mr},n_paired={n_paired},"
        f"size={size},slices={slices},seed={seed}"
    ) + (f",{scan_key}" if (scan_key := _scan_key(paired_scan)) else "")
    source = VolumeSource(
        pool("ct", n_ct),
        pool("mr", n_mr),
        paired,
        dict(LABELS),
        fingerprint,
        train_pairs=train_pairs,
        mr_weighting=weighting,
    )
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
    scan: Scan = Scan(),
    n_train_pairs: int = 0,
) -> Path:
    """Write a phantom data set as NIfTI in a SynthRAD-like layout; returns ``out_dir``.

    ``ct/ct-0000.nii.gz ...``, ``mr/mr-0000.nii.gz ...`` (unpaired pools),
    ``paired/pair-000/{ct,mr,labels,mask}.nii.gz`` (test subjects on one grid),
    ``train-pairs/train-pair-0000/...`` (aligned training subjects, the
    ``pairs`` of the ``folder`` dataset),
    ``labels.json`` (structure name -> label value) and ``montage.png`` (mid-coronal
    CT | MR | labels of up to four subjects) to look at.
    """
    import SimpleITK as sitk
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from imtrans_core.api import write_volume

    out = Path(out_dir)
    source = phantom(n_ct, n_mr, n_paired, size, slices, seed, n_train_pairs=n_train_pairs, **asdict(scan))
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ImtransError(
            f"--out {out}: cannot create it ({exc.strerror or exc}); pick a writable folder"
        ) from exc
    shown: list[dict[str, Volume]] = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task("phantom", total=n_ct + n_mr + n_paired + n_train_pairs)
        for stream, pool in (("ct", source.ct), ("mr", source.mr)):
            for volume_id in pool.ids:
                progress.update(task, description=f"{stream} {volume_id}")
                vol = pool.load(volume_id)
                write_volume(vol, out / stream / f"{volume_id}.nii.gz")
                progress.advance(task)
        for folder, subjects in (("paired", source.paired), ("train-pairs", source.train_pairs)):
            for subject in subjects:
                progress.update(task, description=f"{folder} {subject.id}")
                vols = subject.load()
                for m, vol in vols.items():
                    write_volume(vol, out / folder / subject.id / f"{m}.nii.gz")
                if len(shown) < 4 and folder == "paired":
                    shown.append(vols)
                progress.advance(task)
    (out / "labels.json").write_text(json.dumps(LABELS, indent=2) + "\n")
    if not shown and (n_ct or n_mr):  # no paired subject: the first CT and the first MR (not the same body)
        shown.append({m: pool[0] for m, pool in (("ct", source.ct), ("mr", source.mr)) if len(pool)})
    if shown:
        sitk.WriteImage(sitk.GetImageFromArray(montage(shown)), str(out / "montage.png"))
    return out
