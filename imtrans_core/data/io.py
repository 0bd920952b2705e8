"""Reading and writing volumes: NIfTI, MHA/MHD/NRRD and DICOM series, all as one :class:`Volume`.

World coordinates, spelled out because the formats disagree:

* NIfTI stores a voxel-to-**RAS** affine (x towards the patient's Right, y Anterior, z Superior).
  nibabel gives it to us (the sform when its code is set, else the qform) and
  :meth:`Volume.from_affine` turns it into ITK geometry by negating the first two world rows.
* MHA/MHD/NRRD and DICOM are read by SimpleITK, whose spacing, origin and direction are already
  **LPS** (DICOM's patient coordinates: x Left, y Posterior, z Superior); they are copied
  unchanged. Only the array order changes: ``GetArrayFromImage`` gives ``[k, j, i]``, which is
  transposed to the Volume's ``[i, j, k]`` (and back in :func:`to_sitk`).
* Writing NIfTI stores ``volume.affine`` (RAS) as the sform *and* the qform, both with code 1
  (scanner). A qform is a rotation plus zooms and cannot hold a shear, so for a sheared grid it is
  the nearest rotation; nibabel (and this module) read the sform first, which keeps any affine
  exactly (to the float32 precision NIfTI stores it in).

Intensities are read as stored, with the file's rescaling applied: NIfTI ``scl_slope``/``scl_inter``
as nibabel applies them, DICOM ``RescaleSlope``/``RescaleIntercept`` as GDCM applies them (so a CT
series comes out in HU). Rescaled values are kept as int16/int32 when they are whole numbers,
else float32; unscaled data keep their stored dtype.

Problems a person can fix (a missing or truncated file, a 4-D image, NaNs, an empty folder) raise
:class:`ImtransError` with one line naming the file. Data that merely look wrong, such as a CT
that does not seem to be in HU, give an :class:`ImtransWarning` (see :func:`check_ct_hu`).
"""

from __future__ import annotations

import warnings
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
import SimpleITK as sitk

try:  # ISA-L's gzip, a dependency where it has wheels; zlib through nibabel elsewhere
    from isal import igzip
except ImportError:  # pragma: no cover - no isal wheel for this platform (tests set igzip to None)
    igzip = None

from ..errors import ImtransError, ImtransWarning
from .volume import Volume
from .weighting import TAGS, weighting_from_tags

NIFTI_SUFFIXES = (".nii.gz", ".nii")
ITK_SUFFIXES = (".mha", ".mhd", ".nrrd", ".nhdr")
SUFFIXES = NIFTI_SUFFIXES + ITK_SUFFIXES
_SUPPORTED = ".nii, .nii.gz, .mha, .mhd, .nrrd or a DICOM series folder"

# What nibabel and SimpleITK raise for files they cannot parse (truncated gzip, bad header, ...).
_READ_ERRORS = (OSError, EOFError, ValueError, zlib.error, RuntimeError, nib.filebasedimages.ImageFileError)


def suffix_of(path: str | Path) -> str:
    """The supported image suffix of ``path`` (``.nii.gz``, ``.mha``, ...), or ``''``."""
    name = Path(path).name.lower()
    return next((suffix for suffix in SUFFIXES if name.endswith(suffix)), "")


def volume_id(path: str | Path) -> str:
    """A volume's name without its image suffix (``ct_01.nii.gz`` -> ``ct_01``); a DICOM folder's name."""
    path = Path(path)
    suffix = suffix_of(path) if not path.is_dir() else ""
    return path.name[: len(path.name) - len(suffix)]


def list_volumes(folder: str | Path) -> list[Path]:
    """The image files and DICOM series folders directly inside ``folder``, sorted by name.

    Hidden entries (``.name``) are ignored, which is where :func:`write_volume` keeps its
    half-written outputs. A folder that is itself one DICOM series is returned as ``[folder]``.
    Finding nothing is an error: every caller wants at least one volume.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ImtransError(f"{folder}: not a folder — pass a folder holding {_SUPPORTED}s")
    found = [
        entry
        for entry in sorted(folder.iterdir())
        if not entry.name.startswith(".")
        and ((entry.is_file() and suffix_of(entry)) or (entry.is_dir() and _dicom_series(entry)))
    ]
    if not found and _dicom_series(folder):
        found = [folder]
    if not found:
        raise ImtransError(f"{folder}: no volumes found — expected {_SUPPORTED}s in it")
    return found


def read_volume(path: str | Path, modality: str = "", series: str | None = None) -> Volume:
    """Read a 3-D volume from a NIfTI/MHA/MHD/NRRD file or a DICOM series folder.

    ``modality`` (``ct``, ``mr``, ``labels``) is stored on the Volume; for a DICOM series it
    defaults to the series' Modality tag. A CT is checked with :func:`check_ct_hu`.
    ``series`` picks one DICOM series (by SeriesInstanceUID) in a folder holding several;
    without it the largest is read, with a warning.
    """
    path = Path(path)
    if not path.exists():
        raise ImtransError(f"{path}: no such file or folder — check the path")
    if path.is_dir():
        volume = _read_dicom(path, series)
    elif suffix_of(path) in NIFTI_SUFFIXES:
        volume = _read_nifti(path)
    elif suffix_of(path):
        volume = from_sitk(_read_itk(path))
    else:
        raise ImtransError(f"{path}: not a supported image — pass {_SUPPORTED}")
    _check_finite(volume.array, path)
    volume.modality = modality or volume.modality
    volume.meta["path"] = str(path)
    if volume.modality == "ct":
        check_ct_hu(volume, path)
    return volume


def write_volume(volume: Volume, path: str | Path) -> None:
    """Write ``volume`` as NIfTI (``.nii``/``.nii.gz``) or MHA/MHD/NRRD, geometry exactly.

    Parent folders are created. bool is stored as uint8, float16 as float32 and int64 as int32
    when the values fit (few tools read 64-bit images). The file appears complete or not at
    all: it is written under a hidden name beside ``path`` and renamed (but ``.mhd``, whose
    header names its data file).
    """
    path = Path(path)
    suffix = suffix_of(path)
    if not suffix:
        raise ImtransError(f"{path}: cannot write this format — name it .nii.gz, .nii, .mha, .mhd or .nrrd")
    if volume.array.ndim != 3:
        raise ValueError(f"write_volume needs a 3-D array, got shape {volume.shape}")
    volume = volume.with_array(_storable(volume.array))
    # written under a hidden name, then renamed: a crash or a full disk never leaves a half
    # file under the real name, nor destroys a good one (.mhd names its data file: written in place)
    partial = path if suffix == ".mhd" else path.with_name(f".{path.name[: -len(suffix)]}.partial{suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if suffix in NIFTI_SUFFIXES:
            _write_nifti(volume, partial)
        else:
            sitk.WriteImage(to_sitk(volume), str(partial), True)
        partial.replace(path)
    except (OSError, RuntimeError) as exc:
        raise ImtransError(
            f"{path}: cannot write it ({_first_line(exc)}) — check the folder is writable and has space"
        ) from exc
    finally:
        if partial != path and partial.exists():  # gone after the rename; removed after a failure
            partial.unlink()


def to_sitk(volume: Volume) -> sitk.Image:
    """The volume as a SimpleITK image with the same (LPS) geometry; ``[i, j, k]`` becomes ITK's ``[k, j, i]``."""
    image = sitk.GetImageFromArray(np.ascontiguousarray(_storable(volume.array).transpose(2, 1, 0)))
    image.SetSpacing(volume.spacing)
    image.SetOrigin(volume.origin)
    image.SetDirection(volume.direction.ravel().tolist())
    return image


def from_sitk(image: sitk.Image, modality: str = "") -> Volume:
    """A 3-D scalar SimpleITK image as a Volume; ITK's geometry is LPS already, so it is copied as is."""
    return Volume(
        sitk.GetArrayFromImage(image).transpose(2, 1, 0),
        image.GetSpacing(),
        image.GetOrigin(),
        np.reshape(image.GetDirection(), (3, 3)),
        modality,
    )


def check_ct_hu(volume: Volume, path: str | Path | None = None) -> bool:
    """Warn (:class:`ImtransWarning`) and return False when a CT does not look like it is in HU.

    A body CT in Hounsfield units has air near -1000 HU around the patient and mostly air, fat
    and soft tissue (-1000..100 HU). Three signs that the values are something else:

    * no negative value at all: raw stored values whose rescale intercept (usually -1024) was
      never applied;
    * a median above 500 HU: most of the volume would be denser than soft tissue;
    * a range narrower than 200: an image that was already normalised (e.g. to [0, 1] or [-1, 1]).
    """
    array = volume.array
    low, high = float(array.min()), float(array.max())
    median = float(np.median(subsample(array)))
    reasons = []
    if low >= 0:
        reasons.append(f"no negative values (min {low:g}), so no air at -1000 HU")
    if median > 500:
        reasons.append(f"median {median:g} is denser than soft tissue")
    if high - low < 200:
        reasons.append(f"values span only {low:g}..{high:g}, as if normalised")
    if reasons:
        name = path or volume.meta.get("path", "CT volume")
        warnings.warn(
            f"{name}: looks like it is not in HU ({'; '.join(reasons)}) — missing rescale slope/intercept, "
            "or an image that was already normalised?",
            ImtransWarning,
            stacklevel=2,
        )
    return not reasons


def _read_nifti(path: Path) -> Volume:
    """NIfTI through nibabel, loaded into memory (a memory map would break overwriting the same file)."""
    try:
        image = nib.load(path, mmap=False)
        array = np.asanyarray(image.dataobj)
    except _READ_ERRORS as exc:
        raise _unreadable(path, exc, "NIfTI") from exc
    if array.dtype != image.get_data_dtype():  # nibabel applied scl_slope/scl_inter
        array = _compact(array)
    return Volume.from_affine(_three_d(array, path), image.affine)


def _read_itk(path: Path) -> sitk.Image:
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise _unreadable(path, exc, suffix_of(path)[1:].upper()) from exc
    return _scalar_3d(image, path)


def _dicom_series(folder: Path) -> tuple[str, ...]:
    """The DICOM SeriesInstanceUIDs found directly in ``folder`` (empty if none).

    GDCM prints a multi-line warning to stderr for a folder without a series; finding none is
    an answer here, so its warnings are off while it looks.
    """
    shown = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    try:
        return tuple(sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder)))
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(shown)


def _read_dicom(folder: Path, series: str | None) -> Volume:
    """One DICOM series; GDCM sorts its slices by position and applies RescaleSlope/Intercept."""
    found = _dicom_series(folder)
    if not found:
        raise ImtransError(f"{folder}: no DICOM series in this folder — pass {_SUPPORTED}")
    if series is None:
        series = _largest_series(folder, found)
    elif series not in found:
        raise ImtransError(f"{folder}: no DICOM series {series!r} here; found {', '.join(found)}")
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series))
    reader.MetaDataDictionaryArrayUpdateOn()
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        raise _unreadable(folder, exc, "DICOM") from exc
    volume = from_sitk(_scalar_3d(image, folder))
    volume.array = _compact(volume.array)
    tag = reader.GetMetaData(0, "0008|0060").strip().lower() if reader.HasMetaDataKey(0, "0008|0060") else ""
    volume.modality = tag if tag in ("ct", "mr") else ""
    volume.meta["series"] = series
    if volume.modality == "mr":
        tags = {k: reader.GetMetaData(0, t) for k, t in TAGS.items() if reader.HasMetaDataKey(0, t)}
        volume.meta["mr_weighting"], volume.meta["mr_weighting_from"] = weighting_from_tags(tags)
    return volume


def _largest_series(folder: Path, found: tuple[str, ...]) -> str:
    counts = {uid: len(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), uid)) for uid in found}
    largest = max(counts, key=counts.__getitem__)
    if len(found) > 1:
        warnings.warn(
            f"{folder}: {len(found)} DICOM series; reading the largest, {largest} ({counts[largest]} files) "
            f"— pass series= to choose another ({', '.join(found)})",
            ImtransWarning,
            stacklevel=3,
        )
    return largest


def _three_d(array: np.ndarray, path: Path) -> np.ndarray:
    """Squeeze trailing singleton axes (a 4-D file with one time point); anything but 3-D is an error."""
    while array.ndim > 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 3:
        raise ImtransError(
            f"{path}: {array.ndim}-D (shape {array.shape}) — pass a 3-D volume or split it first"
        )
    return array


def _scalar_3d(image: sitk.Image, path: Path) -> sitk.Image:
    """The SimpleITK counterpart of :func:`_three_d`, also refusing vector (e.g. RGB) images."""
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise ImtransError(
            f"{path}: {image.GetNumberOfComponentsPerPixel()} values per voxel — pass a scalar (grey-value) volume"
        )
    while image.GetDimension() > 3 and image.GetSize()[-1] == 1:
        image = image[(slice(None),) * (image.GetDimension() - 1) + (0,)]
    if image.GetDimension() != 3:
        raise ImtransError(
            f"{path}: {image.GetDimension()}-D (shape {image.GetSize()}) — pass a 3-D volume or split it first"
        )
    return image


def _check_finite(array: np.ndarray, path: Path) -> None:
    if not np.issubdtype(array.dtype, np.floating):
        return
    bad = array.size - int(np.count_nonzero(np.isfinite(array)))
    if bad:
        raise ImtransError(
            f"{path}: {bad} of {array.size} voxels are NaN or infinite — replace them "
            "(e.g. with the background value) before using the file"
        )


def _compact(array: np.ndarray) -> np.ndarray:
    """Rescaled values in a compact dtype: int16/int32 when they are whole numbers that fit, else float32."""
    if np.issubdtype(array.dtype, np.integer) or np.all(np.mod(array, 1) == 0):
        low, high = array.min(), array.max()
        for dtype in (np.int16, np.int32):
            if np.iinfo(dtype).min <= low and high <= np.iinfo(dtype).max:
                return array.astype(dtype)
    return array.astype(np.float32)


def _storable(array: np.ndarray) -> np.ndarray:
    """A dtype every reader handles: bool -> uint8, float16 -> float32, int64 -> int32 when it fits."""
    if array.dtype == bool:
        return array.astype(np.uint8)
    if array.dtype == np.float16:
        return array.astype(np.float32)
    if array.dtype in (np.int64, np.uint64) and array.size and _fits(array, np.int32):
        return array.astype(np.int32)
    return array


def _fits(array: np.ndarray, dtype: type) -> bool:
    return bool(np.iinfo(dtype).min <= array.min() and array.max() <= np.iinfo(dtype).max)


def _write_nifti(volume: Volume, path: Path) -> None:
    affine = volume.affine
    image = nib.Nifti1Image(volume.array, affine, dtype=volume.array.dtype)
    image.set_sform(affine, code=1)
    image.set_qform(affine, code=1)
    image.header.set_xyzt_units("mm")
    if path.name.lower().endswith(".gz") and igzip is not None:
        # the bytes nibabel writes, compressed by ISA-L: several times faster than zlib at the same
        # level and size (benchmarks/files.py); no name or time in the header: one volume, one file
        with path.open("wb") as file, igzip.IGzipFile("", "wb", 1, file, mtime=0) as stream:
            image.to_stream(stream)
    else:
        nib.save(image, path)


def subsample(array: np.ndarray, limit: int = 2_000_000) -> np.ndarray:
    """Every n-th voxel along each axis, so statistics on a large volume stay cheap."""
    step = max(1, int(np.ceil((array.size / limit) ** (1 / 3))))
    return array[::step, ::step, ::step]


def _unreadable(path: Path, exc: BaseException, kind: str) -> ImtransError:
    return ImtransError(
        f"{path}: cannot read it as {kind} ({_first_line(exc)}) — the file may be truncated or not an image; "
        "re-export or re-download it"
    )


def _first_line(exc: BaseException) -> str:
    """The informative line of an exception message (ITK's span several lines and start with source paths)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
    line = next((line for line in lines if "ERROR" in line), lines[0])
    line = line.split("): ", 1)[-1] if "ERROR" in line else line
    return line[:200]
