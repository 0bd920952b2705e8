"""Preprocessing with SimpleITK: N4 bias correction, resampling to the training grid, masks.

What the paper does before training (Sec. 2.1): N4ITK on every MR; CTs cropped and resliced so
that their field of view resembles the MR's, then resized to 256 x 256. Here:

* :func:`n4_correct` fits the bias field on a shrunken copy (fast) and divides the full-resolution
  image by the field evaluated on its own grid.
* :func:`resample_inplane` reslices any volume onto a patient-aligned grid whose slicing plane
  (coronal by default, like the paper's MR) is ``size x size`` voxels of ``spacing`` mm, centred on
  the volume; 256 x 1.25 mm = 320 mm is the paper's MR field of view.
* :func:`resample_to_grid` puts a volume on another's grid (e.g. a CT on its MR's).
* :func:`resample_to_spacing` reslices a volume onto a patient-aligned grid of given spacing
  that covers it (a model's input grid, :mod:`imtrans_core.data.contract`).
* :func:`body_mask` and :func:`fov_mask` give the voxels evaluation should count.
* :func:`prepare_folder` runs the above over a folder, resumably, and records its options in
  the folder's ``prepared.json`` (a model trained on it records ``n4`` in its input contract).

Voxels outside the input are filled with :func:`padding_value` (air: -1024 HU for CT, 0 otherwise).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from rich.console import Console
from rich.markup import escape

from ..errors import ImtransError
from ..progress import file_bar
from .intensity import CT_PADDING
from .io import from_sitk, list_volumes, read_volume, to_sitk, volume_id, write_volume
from .volume import Volume

# The LPS world axis each slicing plane is cut across (see Volume.axis_of).
SLICE_AXES = {"sagittal": 0, "coronal": 1, "axial": 2}
INTERPOLATORS = {"linear": sitk.sitkLinear, "nearest": sitk.sitkNearestNeighbor}
PREPARED = "prepared.json"  # how prepare_folder made a folder: its options (n4, spacing, ...)
CT_BODY_THRESHOLD = -500.0  # HU: between air (-1000) and fat (-100)


def padding_value(volume: Volume) -> float:
    """What resampling writes outside the input: air, so padded images look like real ones."""
    return CT_PADDING if volume.modality == "ct" else 0.0


def n4_correct(
    volume: Volume,
    shrink: int = 4,
    iterations: Sequence[int] = (50, 50, 30, 20),
    mask: Volume | None = None,
) -> Volume:
    """Remove MR intensity inhomogeneity with N4ITK (Tustison et al. 2010), as the paper does for every MR.

    The field is fitted on a copy shrunk ``shrink`` times per axis (never below 4 voxels), one
    fitting level per entry of ``iterations``, inside ``mask`` (default: Otsu foreground) and
    only where the image is > 0, since N4 works on log intensities. The full-resolution image is
    then divided by the field (``GetLogBiasFieldAsImage`` on the original grid). Returns float32.
    """
    image = sitk.Cast(to_sitk(volume), sitk.sitkFloat32)
    fit_mask = _n4_mask(volume, image, mask)
    factors = [max(1, min(shrink, n // 4)) for n in image.GetSize()]
    corrector = sitk.N4BiasFieldCorrectionImageFilter()
    corrector.SetMaximumNumberOfIterations([int(n) for n in iterations])
    corrector.Execute(sitk.Shrink(image, factors), sitk.Shrink(fit_mask, factors))
    bias = sitk.Exp(corrector.GetLogBiasFieldAsImage(image))
    corrected = sitk.Cast(image / bias, sitk.sitkFloat32)  # SimpleITK divides into float64
    return volume.with_array(from_sitk(corrected).array)


def resample_to_grid(
    volume: Volume,
    reference: Volume,
    interpolator: str | None = None,
    default: float | None = None,
) -> Volume:
    """``volume`` resampled onto ``reference``'s grid (shape, spacing, origin, direction), by world position.

    ``interpolator`` is ``linear`` (float32 output) or ``nearest`` (keeps the dtype); by default
    nearest for label maps and linear otherwise. ``default`` fills voxels outside ``volume``
    (default :func:`padding_value`).
    """
    grid = _grid_image(reference.shape, reference.spacing, reference.origin, reference.direction)
    return _resample(volume, grid, interpolator, default)


def resample_inplane(
    volume: Volume,
    size: int = 256,
    spacing: float = 1.25,
    slice_axis: str = "coronal",
    slice_spacing: float | None = None,
    center: Sequence[float] | None = None,
    interpolator: str | None = None,
    default: float | None = None,
) -> Volume:
    """Reslice onto a patient-aligned grid whose ``slice_axis`` plane is ``size x size`` at ``spacing`` mm.

    The output grid has the identity direction (i -> L, j -> P, k -> S), so an oblique input is
    resliced onto the patient's axes. In the slicing plane it spans ``size * spacing`` mm centred
    on ``center`` (LPS mm; default the centre of the volume's bounding box), cropping or padding
    as needed. Across the plane it covers the volume's whole extent with ``slice_spacing`` mm
    (default: the input's spacing along that direction). For ``coronal``, the output shape is
    ``(size, n_slices, size)`` and ``Volume.axis_of(1) == 1``.
    """
    if slice_axis not in SLICE_AXES:
        raise ImtransError(f"slice axis {slice_axis!r}: use one of {', '.join(SLICE_AXES)}")
    normal = SLICE_AXES[slice_axis]
    low, high = bounding_box(volume)
    middle = (low + high) / 2 if center is None else np.asarray(center, dtype=np.float64)
    thickness = volume.spacing[volume.axis_of(normal)] if slice_spacing is None else float(slice_spacing)
    shape = np.full(3, int(size))
    shape[normal] = int(np.floor((high[normal] - low[normal]) / thickness + 1e-6)) + 1
    steps = np.full(3, float(spacing))
    steps[normal] = thickness
    middle[normal] = (low[normal] + high[normal]) / 2
    origin = middle - steps * (shape - 1) / 2
    grid = _grid_image(tuple(shape), tuple(steps), tuple(origin), np.eye(3))
    return _resample(volume, grid, interpolator, default)


def resample_to_spacing(
    volume: Volume, spacing: Sequence[float], interpolator: str | None = None, default: float | None = None
) -> Volume:
    """Reslice onto a patient-aligned grid (identity direction) of ``spacing`` mm along L, P and S.

    The grid starts at the low corner of the volume's bounding box (so an axis-aligned input
    keeps its first voxel's position and, where its spacing is the asked one, its voxels) and
    reaches past the high corner by less than one step, so every input voxel lies inside it: a
    translation made on it goes back onto the input's grid without holes.
    """
    low, high = bounding_box(volume)
    steps = np.asarray(spacing, dtype=np.float64)
    shape = np.ceil((high - low) / steps - 1e-6).astype(int) + 1
    grid = _grid_image(tuple(shape), tuple(steps), tuple(low), np.eye(3))
    return _resample(volume, grid, interpolator, default)


def body_mask(volume: Volume, threshold: float | None = None) -> Volume:
    """The patient's body: threshold, keep the largest connected component, fill holes per axial slice.

    ``threshold`` defaults to -500 HU for a CT and to Otsu's threshold otherwise. The largest
    component drops the table, clothes and separate blobs; filling holes in each axial slice
    adds enclosed air (bowel gas, lungs) that a 3-D fill would miss where it opens at the
    volume's top or bottom. Returns a uint8 ``labels`` volume on the same grid.
    """
    image = sitk.Cast(to_sitk(volume), sitk.sitkFloat32)
    if threshold is None and volume.modality == "ct":
        threshold = CT_BODY_THRESHOLD
    if threshold is None:
        foreground = sitk.OtsuThreshold(image, 0, 1)
    else:
        top = float(np.finfo(np.float32).max)
        foreground = sitk.BinaryThreshold(image, float(threshold), top, 1, 0)
    largest = sitk.RelabelComponent(sitk.ConnectedComponent(foreground), sortByObjectSize=True) == 1
    mask = from_sitk(largest).array.astype(np.uint8)
    return volume.with_array(fill_holes_per_slice(mask, volume.axis_of(2)), modality="labels")


def fov_mask(
    volume_a: Volume,
    volume_b: Volume,
    pad_a: float | None = None,
    pad_b: float | None = None,
) -> Volume:
    """Voxels where both volumes hold data, i.e. differ from their padding value (default :func:`padding_value`).

    For evaluation: a synthetic and a real CT are compared only where both fields of view
    overlap. Note that a CT whose air is stored as exactly -1024 HU loses that air from the mask
    too (harmless for scores: air is outside the paper's window), and linear resampling blends
    values near the FOV border, so those border voxels count as data.
    """
    if not volume_a.same_grid(volume_b):
        raise ImtransError(
            f"{_name(volume_a)} and {_name(volume_b)} are on different grids — "
            "resample one onto the other first (resample_to_grid)"
        )
    pad_a = padding_value(volume_a) if pad_a is None else pad_a
    pad_b = padding_value(volume_b) if pad_b is None else pad_b
    both = (volume_a.array != pad_a) & (volume_b.array != pad_b)
    return volume_a.with_array(both.astype(np.uint8), modality="labels")


def prepare_volume(
    volume: Volume,
    size: int = 256,
    spacing: float = 1.25,
    slice_axis: str = "coronal",
    slice_spacing: float | None = None,
    n4: bool = True,
) -> Volume:
    """One volume ready for training: N4 (MR only, when ``n4``), then :func:`resample_inplane`.

    CTs are rounded back to int16 HU, which halves the files and loses nothing a 500 HU
    window can show; MRs stay float32.
    """
    if volume.modality == "mr" and n4:
        volume = n4_correct(volume)
    volume = resample_inplane(
        volume, size=size, spacing=spacing, slice_axis=slice_axis, slice_spacing=slice_spacing
    )
    if volume.modality == "ct":
        volume = volume.with_array(np.round(np.clip(volume.array, -32768, 32767)).astype(np.int16))
    return volume


@dataclass
class PrepareReport:
    """What :func:`prepare_folder` did with each input."""

    done: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    weightings: dict[Path, str] = field(default_factory=dict)  # MR inputs whose DICOM tags name one

    def summary(self) -> str:
        return (
            f"{len(self.done)} done, {len(self.skipped)} skipped (output exists), {len(self.failed)} failed"
        )


def prepare_folder(
    in_dir: str | Path,
    out_dir: str | Path,
    modality: str,
    size: int = 256,
    spacing: float = 1.25,
    slice_axis: str = "coronal",
    slice_spacing: float | None = None,
    n4: bool = True,
    overwrite: bool = False,
    console: Console | None = None,
) -> PrepareReport:
    """:func:`prepare_volume` for every volume in ``in_dir``, written as ``out_dir/<id>.nii.gz``.

    Resumable: an output that exists is skipped (unless ``overwrite``), and
    :func:`write_volume` writes under a hidden name and renames when complete, so an
    interrupted run never leaves a partial file that a later run would skip. A file that fails is reported on one line and the loop
    goes on; the summary at the end counts done / skipped / failed.
    """
    if modality not in ("ct", "mr"):
        raise ImtransError(f"modality {modality!r}: use 'ct' or 'mr'")
    inputs = list_volumes(in_dir)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ImtransError(
            f"{out_dir}: is a file, not a folder; pass a folder to write the prepared volumes into"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    console = console or Console()
    report = PrepareReport()
    owners: dict[str, Path] = {}
    options = {
        "size": size,
        "spacing": spacing,
        "slice_axis": slice_axis,
        "slice_spacing": slice_spacing,
        "n4": n4,
    }
    record = out_dir / PREPARED  # how the folder was made: a model trained on it records n4, weighting
    try:
        before = read_prepared(out_dir)
    except ImtransError:
        before = {}  # damaged: rewritten now
    _write_record(record, {"modality": modality, **options})
    with file_bar(console) as progress:
        task = progress.add_task(f"prepare {modality.upper()}", total=len(inputs))
        for path in inputs:
            key = volume_id(path)
            if key in owners:
                _fail(report, console, path, f"same name as {owners[key].name} — rename one of them")
            else:
                owners[key] = path
                _prepare_one(path, out_dir / f"{key}.nii.gz", modality, overwrite, options, report, console)
            progress.advance(task)
    weighting = _common_weighting(report, before, console)
    if modality == "mr" and weighting:
        _write_record(record, {"modality": modality, **options, "mr_weighting": weighting})
    console.print(report.summary())
    return report


def read_prepared(folder: Path) -> dict:
    """How :func:`prepare_folder` made ``folder`` (its ``prepared.json``: options, N4, MR weighting), or {}."""
    record = Path(folder) / PREPARED
    try:
        return json.loads(record.read_text()) if record.is_file() else {}
    except ValueError as err:
        raise ImtransError(f"{record}: damaged, not JSON ({err}); prepare the folder again") from err


def _write_record(record: Path, content: dict) -> None:
    partial = record.with_name(f".{PREPARED}.partial")
    partial.write_text(json.dumps(content, indent=2) + "\n")
    os.replace(partial, record)


def _common_weighting(report: PrepareReport, before: dict, console: Console) -> str:
    """The one MR weighting the folder's DICOM tags named, ``""`` if none did or several did (said in one line).

    Files skipped because their output exists keep what the folder's earlier record said.
    """
    named = set(report.weightings.values())
    if report.skipped and before.get("mr_weighting"):
        named.add(before["mr_weighting"])
    if len(named) > 1:
        console.print(
            f"[yellow]warning[/] the MRs' DICOM tags name several weightings ({', '.join(sorted(named))}); "
            "a model learns one contrast: prepare each weighting into its own folder"
        )
        return ""
    return named.pop() if named else ""


def _prepare_one(
    path: Path,
    target: Path,
    modality: str,
    overwrite: bool,
    options: dict,
    report: PrepareReport,
    console: Console,
) -> None:
    if target.exists() and not overwrite:
        report.skipped.append(path)
        return
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            volume = read_volume(path, modality)
            write_volume(prepare_volume(volume, **options), target)  # atomic
        report.done.append(path)
        if volume.meta.get("mr_weighting"):
            report.weightings[path] = volume.meta["mr_weighting"]
    except Exception as exc:  # any failure is one file's problem: report it and go on with the rest
        reason = str(exc) if isinstance(exc, ImtransError) else f"{type(exc).__name__}: {exc}"
        _fail(report, console, path, reason)
    else:
        for warning in caught:
            console.print(f"[yellow]warning[/] {escape(str(warning.message))}")


def _fail(report: PrepareReport, console: Console, path: Path, reason: str) -> None:
    report.failed.append((path, reason))
    line = reason if str(path) in reason else f"{path}: {reason}"
    console.print(f"[red]failed[/] {escape(line)}")


def _n4_mask(volume: Volume, image: sitk.Image, mask: Volume | None) -> sitk.Image:
    if mask is None:
        region = sitk.OtsuThreshold(image, 0, 1, 200)
    elif mask.same_grid(volume):
        region = sitk.Cast(to_sitk(mask) != 0, sitk.sitkUInt8)
    else:
        raise ImtransError(f"N4 mask {_name(mask)} is not on the grid of {_name(volume)} — resample it first")
    return region & (image > 0)


def _grid_image(
    shape: Sequence[int], spacing: Sequence[float], origin: Sequence[float], direction: np.ndarray
) -> sitk.Image:
    """An empty image that only carries a grid, as the reference for ``sitk.Resample``."""
    grid = sitk.Image([int(n) for n in shape], sitk.sitkUInt8)
    grid.SetSpacing([float(s) for s in spacing])
    grid.SetOrigin([float(o) for o in origin])
    grid.SetDirection(np.asarray(direction, dtype=np.float64).ravel().tolist())
    return grid


def _resample(volume: Volume, grid: sitk.Image, interpolator: str | None, default: float | None) -> Volume:
    interpolator = interpolator or ("nearest" if volume.modality == "labels" else "linear")
    if interpolator not in INTERPOLATORS:
        raise ImtransError(f"interpolator {interpolator!r}: use one of {', '.join(INTERPOLATORS)}")
    image = to_sitk(volume)
    if interpolator != "nearest":
        image = sitk.Cast(image, sitk.sitkFloat32)
    default = padding_value(volume) if default is None else default
    out = sitk.Resample(image, grid, sitk.Transform(), INTERPOLATORS[interpolator], float(default))
    resampled = from_sitk(out, volume.modality)
    resampled.meta = dict(volume.meta)
    return resampled


def bounding_box(volume: Volume) -> tuple[np.ndarray, np.ndarray]:
    """The low and high LPS corners (mm) of the box around the volume's voxel centres."""
    corners = _world_corners(volume)
    return corners.min(axis=0), corners.max(axis=0)


def _world_corners(volume: Volume) -> np.ndarray:
    """The LPS positions (8, 3) of the volume's corner voxel centres."""
    last = np.asarray(volume.shape) - 1
    corners = np.array(
        [[a, b, c] for a in (0, last[0]) for b in (0, last[1]) for c in (0, last[2])], dtype=float
    )
    matrix = volume.direction @ np.diag(volume.spacing)
    return corners @ matrix.T + np.asarray(volume.origin)


def fill_holes_per_slice(mask: np.ndarray, axis: int) -> np.ndarray:
    """Fill holes in each 2-D slice across ``axis`` (2-D connectivity: enclosed within the slice)."""
    slices = np.moveaxis(mask, axis, 0).copy()
    for n, plane in enumerate(slices):
        image = sitk.GetImageFromArray(np.ascontiguousarray(plane))
        slices[n] = sitk.GetArrayFromImage(
            sitk.BinaryFillhole(image, fullyConnected=False, foregroundValue=1)
        )
    return np.moveaxis(slices, 0, axis)


def _name(volume: Volume) -> str:
    return volume.meta.get("path", f"a volume of shape {volume.shape}")
