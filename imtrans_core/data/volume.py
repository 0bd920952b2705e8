"""A 3-D image with its geometry: what every reader returns and every writer takes.

Conventions (explicit because NIfTI and ITK disagree):

* ``array`` is indexed ``[i, j, k]`` in the file's voxel order (nibabel's order;
  SimpleITK's ``GetArrayFromImage`` gives ``[k, j, i]`` and is transposed).
* ``spacing`` (mm), ``origin`` (mm) and ``direction`` (3x3, columns are the
  world directions of the i, j, k axes) follow ITK, i.e. world coordinates are
  **LPS** (x to the patient's left, y posterior, z superior), as in DICOM.
* ``affine`` gives the NIfTI/nibabel 4x4 voxel-to-**RAS** matrix; it is the
  LPS geometry with the first two world rows negated.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

# LPS <-> RAS flips the sign of the first two world axes.
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


@dataclass
class Volume:
    """Voxels ``[i, j, k]`` plus ITK (LPS) geometry and a modality tag (``ct``, ``mr``, ``labels``)."""

    array: np.ndarray
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))
    modality: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.array = np.asarray(self.array)
        self.spacing = tuple(float(s) for s in self.spacing)
        self.origin = tuple(float(o) for o in self.origin)
        self.direction = np.asarray(self.direction, dtype=np.float64).reshape(3, 3)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)

    @property
    def affine(self) -> np.ndarray:
        """4x4 voxel index -> RAS world (mm), as nibabel writes it."""
        out = np.eye(4)
        out[:3, :3] = LPS_TO_RAS @ self.direction @ np.diag(self.spacing)
        out[:3, 3] = LPS_TO_RAS @ np.asarray(self.origin)
        return out

    @classmethod
    def from_affine(cls, array: np.ndarray, affine: np.ndarray, **kwargs: Any) -> Volume:
        """Build from a nibabel-style voxel-to-RAS affine."""
        lps = LPS_TO_RAS @ np.asarray(affine, dtype=np.float64)[:3]
        spacing = np.linalg.norm(lps[:, :3], axis=0)
        direction = lps[:, :3] / np.where(spacing == 0, 1.0, spacing)
        return cls(array, tuple(spacing), tuple(lps[:, 3]), direction, **kwargs)

    def with_array(self, array: np.ndarray, modality: str | None = None) -> Volume:
        """Same grid, new voxels (e.g. a translation's output)."""
        if tuple(np.shape(array)) != self.shape:
            raise ValueError(f"array shape {np.shape(array)} does not fit the grid {self.shape}")
        return replace(
            self,
            array=np.asarray(array),
            modality=self.modality if modality is None else modality,
            meta=dict(self.meta),
        )

    def same_grid(self, other: Volume, atol: float = 1e-4) -> bool:
        """True when both volumes overlay voxel for voxel."""
        return (
            self.shape == other.shape
            and np.allclose(self.spacing, other.spacing, atol=atol)
            and np.allclose(self.origin, other.origin, atol=atol)
            and np.allclose(self.direction, other.direction, atol=atol)
        )

    def grid_difference(self, other: Volume) -> str:
        """What differs between the two grids, e.g. ``shape 64x64x8 vs 64x64x10; spacing 1,1,2 vs 1,1,2.5``."""
        parts = []
        if self.shape != other.shape:
            parts.append(f"shape {'x'.join(map(str, self.shape))} vs {'x'.join(map(str, other.shape))}")
        for label, x, y in (("spacing", self.spacing, other.spacing), ("origin", self.origin, other.origin)):
            if not np.allclose(x, y, atol=1e-4):
                parts.append(f"{label} {_vector(x)} vs {_vector(y)}")
        if not np.allclose(self.direction, other.direction, atol=1e-4):
            parts.append("direction differs")
        return "; ".join(parts) or "same grid"

    def axis_of(self, world_axis: int) -> int:
        """The voxel axis (0, 1 or 2) best aligned with LPS world axis 0 (L), 1 (P) or 2 (S).

        Coronal slices are taken across ``axis_of(1)``, axial ones across
        ``axis_of(2)``, sagittal ones across ``axis_of(0)``.
        """
        return int(np.argmax(np.abs(self.direction[world_axis, :])))


def _vector(values: tuple[float, ...]) -> str:
    return ",".join(f"{v:g}" for v in values)
