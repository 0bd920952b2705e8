"""Score synthetic volumes as the paper does (Hiasa et al. 2018, §3.1), and as SynthRAD2023 does.

Paired evaluation (a synthetic CT against a CT registered to its source MR, the paper's first
experiment, Table 1):

* ``paper`` protocol: both CTs windowed to [-150, 350] HU and mapped onto [0, 255] (§2.2); MAE
  and PSNR = 20 log10(255 / sqrt(MSE)) on that scale, SSIM on it too, plus the MAE in plain HU
  (``mae_hu``; a synthetic CT lives within [-150, 350] HU, so this one also counts what the window
  cannot represent: air and cortical bone of the real CT).
* ``synthrad`` protocol, as the SynthRAD2023 challenge's evaluation code computes it
  (github.com/SynthRAD2023/metrics, ``image_metrics.py`` with ``ImageMetrics.ssim(gt, pred,
  mask)``): MAE in HU, unclipped, in the mask; PSNR after clipping both to [-1024, 3000] HU
  with data range 4024, in the mask; SSIM of scikit-image with its defaults on the volumes
  clipped the same way with everything outside the mask set to -1024 HU (see
  ``imtrans_metrics.similarity.ssim_synthrad2023``). ``both`` reports the two side by side.

Every metric comes from the ``METRICS`` registry (the ``imtrans_metrics`` plugin). Without a
mask the whole volume counts; with one only its non-zero voxels (the paper leaves out the
region outside the common field of view, Fig. 3); ``mask="fov"`` takes the voxels where the
reference CT is not padding (-1024 HU, what ``imtrans register`` writes outside the CT).

Unpaired evaluation (the second experiment, Fig. 4): mutual information between the synthetic
volume and its *source* (``mi``), as the mean over the slices of the model's plane
("mean of each slice of MI"): coronal slices are taken across ``volume.axis_of(1)``.

Summary statistics: mean and sample standard deviation (n - 1) over volumes. The paper's SD
column cannot be recomputed from its per-patient rows with either n or n - 1 (e.g. MAE 30.121,
26.927, 33.651 gives SD 3.36 or 2.75, the table says 2.177), so it probably used something else.
"""

from __future__ import annotations

import csv
import json
import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..choices import SCALES, SCORE_ORIENTATIONS
from ..data.io import list_volumes, read_volume, suffix_of, volume_id
from ..data.volume import Volume
from ..errors import ImtransError, ImtransWarning

CT_PADDING = -1024.0  # what resampling writes outside a CT (preprocess.padding_value)

# (row key, metric spec, column label) per protocol; the specs go to imtrans_core.METRICS.
PROTOCOLS: dict[str, list[tuple[str, str, str]]] = {
    "paper": [
        ("mae", "mae:scale=paper", "MAE [0-255]"),
        ("mae_hu", "mae:scale=hu", "MAE [HU]"),
        ("psnr", "psnr:scale=paper", "PSNR [dB]"),
        ("ssim", "ssim:scale=paper", "SSIM"),
    ],
    "synthrad": [
        ("synthrad_mae", "mae:scale=hu", "MAE [HU, SynthRAD]"),
        ("synthrad_psnr", "psnr:scale=synthrad", "PSNR [dB, SynthRAD]"),
        ("synthrad_ssim", "ssim:scale=synthrad,protocol=synthrad2023", "SSIM (SynthRAD)"),
    ],
}
LABELS = {key: label for rows in PROTOCOLS.values() for key, _, label in rows} | {"mi": "MI [nats]"}
# What names a row rather than scores it.
INFO_KEYS = ("id", "pred", "ref", "mask", "source", "voxels", "baseline")

# In a folder laid out like SynthRAD2023 (one folder per subject), the file each role reads.
SUBJECT_FILES = {"pred": "sct", "ref": "ct", "mask": "mask", "source": "mr"}


def metric_keys(scale: str, mi: bool = False) -> list[str]:
    """The row keys a protocol reports, in table order."""
    return [key for key, _, _ in _protocol(scale)] + (["mi"] if mi else [])


def evaluate_pair(
    pred: Volume,
    ref: Volume | None = None,
    mask: Volume | str | None = None,
    source: Volume | None = None,
    scale: str = "paper",
    mi_bins: int = 32,
    orientation: str = "coronal",
    resample: bool = False,
) -> dict[str, float]:
    """Scores of a synthetic volume ``pred`` against ``ref`` (paired) and/or its ``source`` (MI).

    ``mask``: a label volume on ``ref``'s grid (non-zero = scored), ``"fov"`` (where ``ref`` is not
    -1024 HU padding) or None (everything). ``orientation`` picks the MI slicing axis (``none``:
    one 3-D histogram). Volumes on different grids are an error unless ``resample``: then
    ``pred`` (and ``source``, ``mask``) are resampled onto ``ref``'s grid and voxels outside
    ``pred``'s field of view are left out. Also returns ``voxels``, the number scored.
    """
    import imtrans_core as ic

    if ref is None and source is None:
        raise ImtransError(
            "nothing to compare the prediction with — give REF (a real CT) and/or --source (its MR)"
        )
    protocol = _protocol(scale)
    if orientation not in SCORE_ORIENTATIONS:
        raise ImtransError(f"--orientation {orientation}: choose {', '.join(SCORE_ORIENTATIONS)}")
    grid = ref if ref is not None else pred
    pred = _on_grid(pred, grid, "PRED", resample, "linear")
    region = np.isfinite(pred.array)  # False only outside a resampled PRED's field of view
    if not region.all():  # SSIM's window reaches past the mask: air there, as SynthRAD2023 pads
        pred = pred.with_array(np.where(region, pred.array, CT_PADDING).astype(np.float32))
    inside, mask_name = _mask_region(mask, ref, grid, resample)
    region &= inside
    if source is not None:
        source = _on_grid(source, grid, "--source", resample, "linear")
    region_mi = region
    if source is not None and not np.isfinite(source.array).all():
        region_mi = region & np.isfinite(source.array)
        source = source.with_array(np.nan_to_num(source.array, nan=0.0))
    if not region.any() or not region_mi.any():
        where = f"{mask_name} is empty" if mask_name else f"{_name(pred)} has no voxel inside {_name(grid)}"
        raise ImtransError(f"{where}: nothing to score — check the mask belongs to {_name(grid)}")
    scores: dict[str, float] = {}
    if ref is not None:
        for key, spec, _ in protocol:
            scores[key] = ic.METRICS.build(spec)(pred.array, ref.array, region)
    if source is not None:
        axis = SCORE_ORIENTATIONS[orientation]
        spec = f"mi:bins={mi_bins}" + ("" if axis is None else f",axis={pred.axis_of(axis)}")
        scores["mi"] = ic.METRICS.build(spec)(pred.array, source.array, region_mi)
    scores["voxels"] = int(region.sum())
    return scores


def _mask_region(
    mask: Volume | str | None, ref: Volume | None, grid: Volume, resample: bool
) -> tuple[np.ndarray, str]:
    """Where to score on ``grid`` (inside the mask volume, REF's FOV, or everywhere) and the mask's name."""
    if isinstance(mask, str):
        if mask != "fov" or ref is None:
            raise ImtransError(f"--mask {mask}: give a mask volume, or 'fov' together with REF")
        return ref.array != CT_PADDING, "the FOV mask (REF != -1024 HU)"
    if mask is not None:
        mask = _on_grid(mask, grid, "--mask", resample, "nearest", default=0.0)
        return mask.array != 0, _name(mask)
    return np.ones(grid.shape, dtype=bool), ""


def constant_baseline(
    ref: Volume, mask: Volume | str | None = None, scale: str = "paper", resample: bool = False
) -> dict[str, float]:
    """The scores of a constant image, REF's median HU inside the mask: the least a model must beat.

    A synthetic CT that has learned nothing but the typical tissue value scores
    this; a score near it means the model has not learned the anatomy, however
    good the number looks alone.
    """
    region, _ = _mask_region(mask, ref, ref, resample)
    level = float(np.median(ref.array[region])) if region.any() else 0.0
    constant = ref.with_array(np.full(ref.shape, level, dtype=np.float32))
    scores = evaluate_pair(constant, ref, mask, scale=scale, resample=resample)
    return {k: v for k, v in scores.items() if k != "voxels"}


# ----------------------------------------------------------------------------- folders


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
    _protocol(scale)
    subjects = match_subjects(pred, ref, mask, source)
    return list(iter_evaluate(subjects, scale, mask_fov=mask == "fov", **options))


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, tuple[float, float]]:
    """``{metric: (mean, sd)}`` over rows; sd is the sample SD (n - 1), NaN for a single row."""
    keys = [k for k in (rows[0] if rows else {}) if k not in INFO_KEYS]
    out = {}
    for key in keys:
        values = np.array([float(row[key]) for row in rows if key in row], dtype=np.float64)
        sd = float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
        out[key] = (float(np.mean(values)), sd)
    return out


# ----------------------------------------------------------------------------- reports


def results_table(rows: Sequence[dict[str, Any]], title: str = "") -> Any:
    """A rich Table: one row per volume, then mean ± SD."""
    from rich.markup import escape
    from rich.table import Table

    keys = [k for k in (rows[0] if rows else {}) if k not in INFO_KEYS]
    table = Table(title=title or None, show_footer=len(rows) > 1)
    summary = summarize(rows)
    table.add_column("subject", footer="mean ± SD", style="bold")
    for key in keys:
        mean, sd = summary[key]
        footer = _format(mean) + ("" if math.isnan(sd) else f" ± {_format(sd)}")
        table.add_column(escape(LABELS.get(key, key)), footer=footer, justify="right")
    table.add_column("voxels", justify="right", style="dim")
    for row in rows:
        table.add_row(escape(row["id"]), *(_format(row[k]) for k in keys), f"{row.get('voxels', '')}")
    return table


def write_json(
    rows: Sequence[dict[str, Any]], path: str | Path, settings: dict[str, Any] | None = None
) -> None:
    """``{"settings", "rows", "summary": {metric: {mean, sd, n}}}``; non-finite numbers become null."""
    summary = {
        k: {"mean": _finite(m), "sd": _finite(s), "n": len(rows)} for k, (m, s) in summarize(rows).items()
    }
    payload = {
        "settings": settings or {},
        "rows": [{k: _finite(v) for k, v in row.items() if k != "baseline"} for row in rows],
        "summary": summary,
    }
    if rows and "baseline" in rows[0]:
        payload["baselines"] = {"constant": _baseline_means(rows)}
    _write(path, lambda f: json.dump(payload, f, indent=2, allow_nan=False))


def baseline_line(rows: Sequence[dict[str, Any]]) -> str:
    """One line for under the results table: what a constant image scores on the same subjects."""
    if not rows or "baseline" not in rows[0]:
        return ""
    means = _baseline_means(rows)
    scores = ", ".join(f"{LABELS.get(k, k)} {_format(v)}" for k, v in means.items())
    return f"baseline, a constant image (each REF's median HU in the mask): {scores}"


def _baseline_means(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    keys = list(rows[0]["baseline"])
    return {k: _finite(float(np.mean([row["baseline"][k] for row in rows]))) for k in keys}


def write_csv(rows: Sequence[dict[str, Any]], path: str | Path) -> None:
    """One line per volume: id, the scores, the voxel count and the files."""
    keys = [k for k in (rows[0] if rows else {}) if k not in INFO_KEYS]
    fields = ["id", *keys, "voxels", "pred", "ref", "mask", "source"]

    def write(f: Any) -> None:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)

    _write(path, write, newline="")


# ----------------------------------------------------------------------------- helpers


def _protocol(scale: str) -> list[tuple[str, str, str]]:
    if scale not in SCALES:
        raise ImtransError(f"--scale {scale}: choose {', '.join(SCALES)}")
    return PROTOCOLS["paper"] + PROTOCOLS["synthrad"] if scale == "both" else PROTOCOLS[scale]


def _on_grid(
    volume: Volume, grid: Volume, role: str, resample: bool, interpolator: str, default: float = math.nan
) -> Volume:
    """``volume`` itself when it is on ``grid``; resampled onto it with ``resample``; else a one-line error."""
    if volume.same_grid(grid):
        return volume
    if not resample:
        raise ImtransError(
            f"{role} {_name(volume)} is not on the grid of {_name(grid)} ({grid_difference(volume, grid)}) — "
            "pass --resample to resample it onto that grid"
        )
    from ..data.preprocess import resample_to_grid

    moved = resample_to_grid(volume, grid, interpolator=interpolator, default=default)
    moved.meta = dict(volume.meta)
    return moved


def grid_difference(a: Volume, b: Volume) -> str:
    """What differs between two grids, e.g. ``shape 64x64x8 vs 64x64x10; spacing 1,1,2 vs 1,1,2.5``."""
    parts = []
    if a.shape != b.shape:
        parts.append(f"shape {'x'.join(map(str, a.shape))} vs {'x'.join(map(str, b.shape))}")
    for label, x, y in (("spacing", a.spacing, b.spacing), ("origin", a.origin, b.origin)):
        if not np.allclose(x, y, atol=1e-4):
            parts.append(f"{label} {_vector(x)} vs {_vector(y)}")
    if not np.allclose(a.direction, b.direction, atol=1e-4):
        parts.append("direction differs")
    return "; ".join(parts) or "same grid"


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


def _name(volume: Volume) -> str:
    return str(volume.meta.get("path", f"a volume of shape {volume.shape}"))


def _vector(values: Sequence[float]) -> str:
    return ",".join(f"{v:g}" for v in values)


def _format(value: Any) -> str:
    if isinstance(value, float):
        return (
            "inf"
            if math.isinf(value)
            else "nan"
            if math.isnan(value)
            else f"{value:.4g}"
            if abs(value) < 1
            else f"{value:.3f}"
        )
    return str(value)


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _write(path: str | Path, write: Callable[[Any], None], newline: str | None = None) -> None:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline=newline) as f:
            write(f)
    except OSError as exc:
        raise ImtransError(
            f"{path}: cannot write it ({exc.strerror}) — check the folder is writable"
        ) from exc
