"""imtrans register: mutual-information registration recovers a known rigid motion between CT and MR."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from imtrans_core.cli import run
from imtrans_core.data.io import read_volume, write_volume
from imtrans_core.data.register import register_ct_to_mr, resample_moving
from imtrans_core.data.volume import Volume
from imtrans_core.errors import ImtransError

SHAPE, SPACING = (48, 48, 48), 2.0
SHIFT = np.array([4.0, -3.0, 5.0])  # mm
ANGLE = 6.0  # degrees about the superior axis


def tissues(points: np.ndarray) -> np.ndarray:
    """0 air, 1 fat, 2 muscle, 3 bone at LPS points (mm): an asymmetric body so that rotation is defined."""
    x, y, z = points[..., 0], points[..., 1], points[..., 2]
    labels = np.zeros(x.shape, np.uint8)
    labels[(x / 38) ** 2 + (y / 28) ** 2 + (z / 40) ** 2 < 1] = 1
    labels[(x / 32) ** 2 + (y / 22) ** 2 + (z / 36) ** 2 < 1] = 2
    bone = ((x - 12) / 7) ** 2 + ((y + 4) / 6) ** 2 + ((z - 5) / 20) ** 2 < 1
    bone |= ((x + 14) / 5) ** 2 + ((y - 3) / 9) ** 2 + ((z + 8) / 12) ** 2 < 1
    labels[bone] = 3
    return labels


def rotation_z(degrees: float) -> np.ndarray:
    a = np.deg2rad(degrees)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])


@pytest.fixture(scope="module")
def case():
    """An MR and a CT of one 'patient' who moved by (SHIFT, ANGLE) between the scans; same grid."""
    origin = -SPACING * (np.array(SHAPE) - 1) / 2
    index = np.stack(np.meshgrid(*[np.arange(n) for n in SHAPE], indexing="ij"), -1)
    points = index * SPACING + origin
    motion = rotation_z(ANGLE)
    rng = np.random.default_rng(0)
    mr = np.array([0.0, 90.0, 40.0, 8.0])[tissues(points)] + rng.normal(0, 2, SHAPE)
    # the CT at point y shows the anatomy found at motion^-1(y) = R^T (y - t) in the MR
    ct = np.array([-1000.0, -100.0, 40.0, 700.0])[tissues((points - SHIFT) @ motion)] + rng.normal(
        0, 10, SHAPE
    )
    fixed = Volume(mr.astype(np.float32), (SPACING,) * 3, tuple(origin), modality="mr")
    moving = Volume(ct.astype(np.int16), (SPACING,) * 3, tuple(origin), modality="ct")
    return fixed, moving, motion, tissues(points) == 3


def dice(a, b):
    return 2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


def test_rigid_registration_recovers_a_known_shift_and_rotation(case):
    fixed, moving, motion, bone = case
    registered, transform = register_ct_to_mr(fixed, moving, bspline=False)
    for point in [(0, 0, 0), (10, 5, -10), (-15, 8, 12)]:
        p = np.asarray(point, float)
        assert np.linalg.norm(np.array(transform.TransformPoint(tuple(p))) - (motion @ p + SHIFT)) < 0.6  # mm
    assert registered.same_grid(fixed) and registered.array.dtype == np.int16 and registered.modality == "ct"
    before, after = dice(moving.array > 300, bone), dice(registered.array > 300, bone)
    assert before < 0.6 and after > 0.9


def test_the_sampling_seed_never_asks_itk_for_the_wall_clock(case, monkeypatch):
    """SimpleITK reads a sampling seed of 0 as 'seed from the wall clock': our seed 0 must not reach it as 0."""
    fixed, moving, _, _ = case
    seeds = []
    original = sitk.ImageRegistrationMethod.SetMetricSamplingPercentage

    def record(self, percentage, seed=sitk.sitkWallClock):
        seeds.append(seed)
        return original(self, percentage, seed)

    monkeypatch.setattr(sitk.ImageRegistrationMethod, "SetMetricSamplingPercentage", record)
    register_ct_to_mr(fixed, moving, bspline=False, seed=0)
    assert seeds and sitk.sitkWallClock not in seeds


def test_bspline_stage_keeps_the_alignment_and_fills_outside_with_air(case):
    fixed, moving, _, bone = case
    shifted = Volume(moving.array, moving.spacing, tuple(np.add(moving.origin, (0, 0, 30.0))), modality="ct")
    registered, transform = register_ct_to_mr(fixed, moving, mesh=3, bspline_iterations=4)
    assert isinstance(transform, sitk.CompositeTransform) and transform.GetNumberOfTransforms() == 2
    assert dice(registered.array > 300, bone) > 0.9
    # a CT that covers only part of the MR: air (-1024 HU) where it has no data
    partial = resample_moving(shifted, fixed, sitk.Euler3DTransform())
    assert (partial.array[:, :, :15] == -1024).all() and (
        partial.array[:, :, 15:] == moving.array[:, :, :-15]
    ).all()


def test_register_cli_writes_the_ct_on_the_mr_grid_and_the_transform(case, tmp_path, capsys):
    fixed, moving, motion, _ = case
    write_volume(fixed, tmp_path / "mr.nii.gz")
    write_volume(moving, tmp_path / "ct.mha")
    code = run(
        [
            "register",
            "--fixed",
            str(tmp_path / "mr.nii.gz"),
            "--moving",
            str(tmp_path / "ct.mha"),
            "--out",
            str(tmp_path / "ct_on_mr.nii.gz"),
            "--transform",
            str(tmp_path / "t.tfm"),
            "--rigid-only",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "rigid: MI" in err and "wrote" in out
    assert read_volume(tmp_path / "ct_on_mr.nii.gz").same_grid(read_volume(tmp_path / "mr.nii.gz"))
    transform = sitk.ReadTransform(str(tmp_path / "t.tfm"))
    assert (
        np.linalg.norm(
            np.array(transform.TransformPoint((10.0, 5.0, -10.0))) - (motion @ (10, 5, -10) + SHIFT)
        )
        < 0.6
    )


def test_bad_options_are_one_line_errors(case):
    fixed, moving, _, _ = case
    with pytest.raises(ImtransError, match="--init"):
        register_ct_to_mr(fixed, moving, init="landmarks")
    with pytest.raises(ImtransError, match="--mesh"):
        register_ct_to_mr(fixed, moving, mesh=0)
