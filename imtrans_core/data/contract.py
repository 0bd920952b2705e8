"""The model's input contract: how its training slices were made, recorded once and followed everywhere.

A 2-D network learns anatomy at the pixel size it was shown. Fed the same anatomy
at another spacing (a 0.5 mm prostate T2 to a model trained on 2.5 mm pixels) or
cut along another plane, it sees shapes it never saw and writes noise. So a run
records, from its training data, what every input must look like:

==================  =====================================================================
``orientation``     the slicing plane (``coronal``, ``axial``, ``sagittal``)
``spacing``         [rows, columns] mm per pixel of the training slices (median over volumes)
``slice_spacing``   mm between adjacent slices (what a 2.5-D stack spans)
``context``         neighbours on each side of a slice in one input (2.5-D), 0 for 2-D
``size``            the training slice size in pixels (crops); any slice size translates
``mr_n4``           whether the training MRs were N4-corrected (``imtrans data prepare``)
``mr_weighting``    the training MRs' contrast, ``t1``, ``t2`` or ``pd`` (``""``: not known)
``mr_scaling``      the per-volume MR scaling: percentile of the voxels > 0 mapped to target
``ct_window``       the CT window in HU mapped to [-1, 1]
==================  =====================================================================

It is written to the run's ``config.json`` (``contract``), into every checkpoint
and into the ONNX metadata (``input_contract``), all as JSON. :func:`conform`
brings a volume onto the contract's grid (N4 first where training used it):
identity direction, the plane's pixels at ``spacing``, ``slice_spacing``
between slices, covering the whole volume; :func:`restore` puts a translation
of it back onto the input's own grid. A volume already on such a grid (axis
aligned, spacing within 2 %) is translated as it is, without interpolation.
"""

from __future__ import annotations

import statistics
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..errors import ImtransWarning
from .intensity import CT_WINDOW, MRScaling
from .io import from_sitk, to_sitk
from .preprocess import bounding_box, n4_correct, resample_to_grid, resample_to_spacing
from .slices import PLANES
from .volume import Volume
from .weighting import WEIGHTINGS

TOLERANCE = 0.02  # relative spacing difference below which a volume is used as it is
THICK = 1.5  # input slices this much thicker than the training pixels: resampling blurs, say so


@dataclass(frozen=True)
class InputContract:
    """What the generator's inputs looked like in training (see the module docstring)."""

    orientation: str = "coronal"
    spacing: tuple[float, float] | None = None  # None: not recorded (a run older than the contract)
    slice_spacing: float | None = None
    context: int = 0
    size: int | None = None
    mr_n4: bool = False
    mr_weighting: str = ""  # t1, t2, pd; "" where the training data did not say

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, with the intensity conventions every consumer needs beside the grid."""
        scaling = MRScaling()
        return {
            **asdict(self),
            "spacing": list(self.spacing) if self.spacing else None,
            "mr_scaling": {
                "percentile": scaling.percentile,
                "target": scaling.target,
                "foreground": "voxels > 0",
            },
            "ct_window": [CT_WINDOW.low, CT_WINDOW.high],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InputContract:
        spacing = data.get("spacing")
        return cls(
            orientation=str(data.get("orientation", "coronal")),
            spacing=(float(spacing[0]), float(spacing[1])) if spacing else None,
            slice_spacing=float(data["slice_spacing"]) if data.get("slice_spacing") else None,
            context=int(data.get("context", 0)),
            size=int(data["size"]) if data.get("size") else None,
            mr_n4=bool(data.get("mr_n4", False)),
            mr_weighting=str(data.get("mr_weighting", "")),
        )

    @classmethod
    def of_run(cls, state: dict[str, Any]) -> InputContract:
        """A checkpoint's contract; one saved before contracts knows only its plane and context."""
        if state.get("contract"):
            return cls.from_dict(state["contract"])
        config = state.get("config", {})
        return cls(str(config.get("orientation", "coronal")), context=int(config.get("context", 0)))


def measure(
    spacings: list[tuple[float, float, float]],
    orientation: str,
    context: int,
    size: int,
    mr_n4: bool,
    mr_weighting: str = "",
) -> InputContract:
    """The contract of training slices cut from volumes of these (slice, row, column) spacings (mm).

    The median of each axis: volumes prepared with ``imtrans data prepare`` share one grid;
    where they do not, a warning says by how much they differ, since a model then learns
    anatomy at several scales and no single grid is right for its inputs.
    """
    medians = [statistics.median(axis) for axis in zip(*spacings, strict=True)]
    widest = max(max(axis) / min(axis) for axis in zip(*spacings, strict=True))
    if widest > 1 + 4 * TOLERANCE:
        warnings.warn(
            f"the training volumes' voxel spacings differ by up to {widest:.2f}x; the model learns "
            f"anatomy at several scales and records the median, {medians[1]:g} x {medians[2]:g} mm "
            "(resample them to one grid with `imtrans data prepare`)",
            ImtransWarning,
            stacklevel=2,
        )
    return InputContract(
        orientation, (medians[1], medians[2]), medians[0], context, size, mr_n4, mr_weighting
    )


def conform(volume: Volume, contract: InputContract, source: str = "mr", name: str = "") -> Volume:
    """``volume`` (of modality ``source``) on the contract's grid, an MR N4-corrected first when training used N4.

    Returned unchanged when the contract records no spacing or the volume is already
    on such a grid. Warns when its voxels across the training plane are much coarser
    than the pixels the model learned (thick slices of another plane), when it
    spans less than half the training slices there, and when its DICOM tags name
    another MR weighting than the training MRs had.
    """
    if source == "mr":
        _warn_weighting(volume, contract, name)
    if contract.spacing is None:
        return volume
    slice_world, row_world, col_world = PLANES[contract.orientation]
    wanted = np.empty(3)
    wanted[[slice_world, row_world, col_world]] = [
        contract.slice_spacing or volume.spacing[volume.axis_of(slice_world)],
        *contract.spacing,
    ]
    _warn_thick(volume, contract, wanted, name)
    _warn_small(volume, contract, wanted, name)
    if contract.mr_n4 and source == "mr":
        volume = n4_correct(volume)
    if _on_grid(volume, wanted):
        return volume
    return resample_to_spacing(_antialiased(volume, wanted), wanted)


def restore(translated: Volume, original: Volume, low: float) -> Volume:
    """A translation of :func:`conform`'s output back on ``original``'s grid (``low`` outside it)."""
    if translated.same_grid(original):
        return translated
    back = resample_to_grid(translated, original, "linear", default=low)
    back.meta = dict(translated.meta)
    return back


def _antialiased(volume: Volume, wanted: np.ndarray) -> Volume:
    """Low-passed along the axes that resampling coarsens, so noise finer than the new grid is not aliased.

    A Gaussian of (factor - 1) / 2 input voxels along an axis coarsened by ``factor``
    (scikit-image's ``rescale`` rule), by SimpleITK's ``DiscreteGaussian`` (which the
    standalone ONNX example calls alike); axes kept or refined are left alone.
    """
    import SimpleITK as sitk

    sigma_mm = np.zeros(3)
    for world in range(3):
        axis = volume.axis_of(world)
        sigma_mm[axis] = max(0.0, (wanted[world] / volume.spacing[axis] - 1) / 2) * volume.spacing[axis]
    if not np.any(sigma_mm > 0):
        return volume
    image = sitk.Cast(to_sitk(volume), sitk.sitkFloat32)
    smooth = sitk.DiscreteGaussian(image, [float(s) ** 2 for s in sigma_mm], 64, 0.01, True)
    return volume.with_array(from_sitk(smooth).array)


def _on_grid(volume: Volume, wanted: np.ndarray) -> bool:
    """Axis-aligned (a signed permutation) with the wanted spacing along each world axis."""
    direction = np.abs(np.asarray(volume.direction))
    if not np.allclose(np.sort(direction, axis=0)[-1], 1.0, atol=1e-6):
        return False
    spacing = np.array([volume.spacing[volume.axis_of(world)] for world in range(3)])
    return bool(np.all(np.abs(spacing / wanted - 1) <= TOLERANCE))


def _warn_thick(volume: Volume, contract: InputContract, wanted: np.ndarray, name: str) -> None:
    _, row_world, col_world = PLANES[contract.orientation]
    for world in (row_world, col_world):
        have = float(volume.spacing[volume.axis_of(world)])
        if have > THICK * wanted[world]:
            warnings.warn(
                f"{name or 'the volume'}: {have:g} mm between its voxels along the {_AXES[world]} axis, "
                f"which lies in the {contract.orientation} plane the model translates at {wanted[world]:g} mm "
                "per pixel; resampling interpolates across them, so expect blur along that axis",
                ImtransWarning,
                stacklevel=3,
            )
            return


def _warn_weighting(volume: Volume, contract: InputContract, name: str) -> None:
    """Say so when the MR's tags name another contrast than the model learned (resampling cannot fix it)."""
    have = volume.meta.get("mr_weighting", "")
    if have and contract.mr_weighting and have != contract.mr_weighting:
        warnings.warn(
            f"{name or 'the volume'}: its DICOM tags say {WEIGHTINGS[have]} "
            f"({volume.meta.get('mr_weighting_from', '')}), but the model learned "
            f"{WEIGHTINGS[contract.mr_weighting]} MRs; tissues differ in contrast between the two, "
            "so expect tissues at wrong HU",
            ImtransWarning,
            stacklevel=3,
        )


def _warn_small(volume: Volume, contract: InputContract, wanted: np.ndarray, name: str) -> None:
    """Say so when the volume spans less than half the training slices' width in the training plane."""
    if not contract.size:
        return
    low, high = bounding_box(volume)
    _, row_world, col_world = PLANES[contract.orientation]
    pixels = [int(np.ceil((high[w] - low[w]) / wanted[w] - 1e-6)) + 1 for w in (row_world, col_world)]
    if min(pixels) < contract.size / 2:
        warnings.warn(
            f"{name or 'the volume'}: its {contract.orientation} slices are {pixels[0]} x {pixels[1]} pixels "
            f"on the model's grid, where it learned on {contract.size} x {contract.size}: it sees little of "
            "the anatomy around each structure",
            ImtransWarning,
            stacklevel=3,
        )


_AXES = {0: "left-right", 1: "anterior-posterior", 2: "inferior-superior"}
