"""Preprocessing: N4 flattens a bias, resampling keeps world positions, masks find the body, folders resume."""

from __future__ import annotations

import io
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from click.testing import CliRunner
from rich.console import Console

import imtrans_core as ic
from imtrans_core.cli.data_cmds import data
from imtrans_core.data.io import read_volume, write_volume
from imtrans_core.data.preprocess import (
    body_mask,
    fov_mask,
    n4_correct,
    prepare_folder,
    resample_inplane,
    resample_to_grid,
)
from imtrans_core.data.volume import Volume
from imtrans_core.errors import ImtransError


def rotation(angle: float) -> np.ndarray:
    """A rotation about the axis (1, 1, 1) / sqrt(3), i.e. oblique to every world axis."""
    axis = np.ones(3) / np.sqrt(3)
    cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * cross @ cross


def world(volume: Volume, index: np.ndarray) -> np.ndarray:
    """LPS positions of (continuous) voxel indices, shape (..., 3)."""
    return index @ (volume.direction @ np.diag(volume.spacing)).T + np.asarray(volume.origin)


def continuous_index(volume: Volume, points: np.ndarray) -> np.ndarray:
    return (points - np.asarray(volume.origin)) @ np.linalg.inv(volume.direction @ np.diag(volume.spacing)).T


def grid_indices(shape: tuple[int, ...]) -> np.ndarray:
    return np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1).astype(float)


def linear_field(points: np.ndarray) -> np.ndarray:
    """A function of world position that linear interpolation reproduces exactly."""
    return points @ np.array([2.0, -3.0, 0.5]) + 10.0


def oblique_volume(shape=(30, 26, 20), spacing=(1.5, 2.0, 3.0), modality="") -> Volume:
    volume = Volume(np.zeros(shape, np.float32), spacing, (-20.0, 15.0, 40.0), rotation(0.4), modality)
    return volume.with_array(linear_field(world(volume, grid_indices(shape))).astype(np.float32))


def check_values_follow_world_positions(source: Volume, resampled: Volume, padding: float) -> None:
    index = continuous_index(source, world(resampled, grid_indices(resampled.shape)))
    last = np.asarray(source.shape) - 1
    inside = np.all((index >= 0) & (index <= last), axis=-1)
    outside = np.any((index < -1) | (index > last + 1), axis=-1)
    assert inside.sum() > 100 and outside.sum() > 100
    expected = linear_field(world(resampled, grid_indices(resampled.shape)))
    assert np.allclose(resampled.array[inside], expected[inside], atol=2e-3)
    assert np.all(resampled.array[outside] == padding)


def test_n4_reduces_a_multiplicative_bias():
    rng = np.random.default_rng(0)
    shape = (40, 40, 40)
    index = grid_indices(shape)
    inside = np.linalg.norm(index - 19.5, axis=-1) < 16
    bias = np.exp(0.6 * (index[..., 0] - 19.5) / 40 + 0.3 * (index[..., 2] - 19.5) / 40)
    image = np.where(inside, (100.0 + rng.normal(0, 1, shape)) * bias, 0.0).astype(np.float32)
    volume = Volume(image, (2.0, 2.0, 2.0), modality="mr")

    corrected = n4_correct(volume, shrink=2, iterations=(30, 30, 30))

    def cv(array: np.ndarray) -> float:
        return float(array[inside].std() / array[inside].mean())

    assert corrected.array.dtype == np.float32 and corrected.same_grid(volume)
    assert cv(image) > 0.08
    assert cv(corrected.array) < cv(image) / 3


def test_resample_to_grid_keeps_world_positions():
    source = oblique_volume()
    reference = Volume(np.zeros((24, 22, 20)), (2.5, 1.8, 2.2), (-30.0, 5.0, 20.0), rotation(-0.7))
    resampled = resample_to_grid(source, reference)
    assert resampled.same_grid(reference)
    assert resampled.array.dtype == np.float32
    check_values_follow_world_positions(source, resampled, padding=0.0)


def test_nearest_resampling_keeps_a_marked_point_and_the_dtype():
    labels = Volume(
        np.zeros((20, 20, 20), np.uint8), (2.0, 2.0, 2.0), (5.0, -5.0, 0.0), rotation(0.3), "labels"
    )
    labels.array[12, 7, 9] = 3
    finer = Volume(np.zeros((60, 60, 60)), (0.8, 0.8, 0.8), (-10.0, -20.0, -10.0))
    resampled = resample_to_grid(labels, finer)
    assert resampled.array.dtype == np.uint8 and set(np.unique(resampled.array)) == {0, 3}
    marked = world(resampled, np.argwhere(resampled.array == 3).astype(float)).mean(axis=0)
    assert np.allclose(marked, world(labels, np.array([12.0, 7.0, 9.0])), atol=0.5)


@pytest.mark.parametrize(("slice_axis", "normal"), [("coronal", 1), ("axial", 2), ("sagittal", 0)])
def test_resample_inplane_gives_a_square_patient_aligned_plane(slice_axis, normal):
    source = oblique_volume(modality="ct")
    out = resample_inplane(source, size=32, spacing=2.0, slice_axis=slice_axis)
    assert np.array_equal(out.direction, np.eye(3))
    assert [n for axis, n in enumerate(out.shape) if axis != normal] == [32, 32]
    assert out.axis_of(normal) == normal
    assert out.spacing[normal] == pytest.approx(source.spacing[source.axis_of(normal)])
    centre_in = world(source, (np.asarray(source.shape) - 1) / 2)
    centre_out = world(out, (np.asarray(out.shape) - 1) / 2)
    corners = world(source, grid_indices((2, 2, 2)) * (np.asarray(source.shape) - 1))
    assert np.allclose(np.delete(centre_out, normal), np.delete(centre_in, normal))
    assert centre_out[normal] == pytest.approx((corners[..., normal].min() + corners[..., normal].max()) / 2)
    check_values_follow_world_positions(source, out, padding=-1024.0)


def test_resample_inplane_names_a_bad_slice_axis():
    with pytest.raises(ImtransError, match="slice axis 'oblique'"):
        resample_inplane(oblique_volume(), slice_axis="oblique")


def ct_phantom() -> tuple[Volume, np.ndarray]:
    """Air around an elliptic cylinder of soft tissue (along k, through every slice) holding an air
    tube (open at both ends, so only a per-slice fill closes it) and an enclosed air pocket; a
    separate bone blob outside the body."""
    index = grid_indices((48, 48, 32))
    x, y = index[..., 0] - 24, index[..., 1] - 24
    body = (x / 20) ** 2 + (y / 14) ** 2 <= 1
    array = np.full(body.shape, -1000, np.int16)
    array[body] = 40
    array[(x + 8) ** 2 + y**2 <= 9] = -1000  # air tube along k
    array[np.linalg.norm(index - [30, 24, 16], axis=-1) <= 4] = -950  # enclosed air pocket
    array[1:4, 1:4, 10:13] = 700  # separate bone blob
    return Volume(array, (1.0, 1.0, 2.0), modality="ct"), body


def test_body_mask_finds_the_body_fills_its_air_and_drops_a_blob():
    volume, body = ct_phantom()
    mask = body_mask(volume)
    assert mask.modality == "labels" and mask.array.dtype == np.uint8 and mask.same_grid(volume)
    assert np.array_equal(mask.array.astype(bool), body)


def test_body_mask_uses_otsu_for_mr():
    volume, body = ct_phantom()
    rng = np.random.default_rng(1)
    mr = np.where(volume.array > -500, 300.0, 5.0) + rng.normal(0, 3, volume.shape)
    mask = body_mask(Volume(mr.astype(np.float32), volume.spacing, modality="mr"))
    assert np.array_equal(mask.array.astype(bool), body)


def test_fov_mask_is_where_both_hold_data():
    ct = Volume(np.full((6, 6, 6), -1024, np.int16), modality="ct")
    ct.array[:4] = 20
    mr = Volume(np.zeros((6, 6, 6), np.float32), modality="mr")
    mr.array[2:] = 50
    assert np.array_equal(fov_mask(ct, mr).array[:, 0, 0], [0, 0, 1, 1, 0, 0])
    with pytest.raises(ImtransError, match="different grids"):
        fov_mask(ct, Volume(np.zeros((5, 6, 6))))


def small_ct(seed: int) -> Volume:
    volume, _ = ct_phantom()
    noise = np.random.default_rng(seed).integers(-5, 5, volume.shape)
    return Volume.from_affine(
        (volume.array + noise).astype(np.int16), np.diag([-1.0, -1.0, 2.0, 1.0]), modality="ct"
    )


def truncated_copy(source: Path, target: Path) -> Path:
    target.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    return target


@pytest.fixture
def ct_folder(tmp_path) -> Path:
    folder = tmp_path / "in"
    write_volume(small_ct(0), folder / "ct_a.nii.gz")
    write_volume(small_ct(1), folder / "ct_b.mha")
    truncated_copy(folder / "ct_a.nii.gz", folder / "ct_bad.nii.gz")
    (folder / "README.txt").write_text("not a volume")
    return folder


def test_prepare_folder_skips_existing_and_reports_a_bad_file_without_stopping(ct_folder, tmp_path):
    out = tmp_path / "out"
    write_volume(small_ct(2), out / "ct_b.nii.gz")  # done by an earlier run
    text = io.StringIO()
    report = prepare_folder(ct_folder, out, "ct", size=16, spacing=4.0, console=Console(file=text, width=300))
    assert [p.name for p in report.done] == ["ct_a.nii.gz"]
    assert [p.name for p in report.skipped] == ["ct_b.mha"]
    assert [p.name for p, _ in report.failed] == ["ct_bad.nii.gz"]
    lines = text.getvalue().splitlines()
    assert any(
        line.startswith("failed") and "ct_bad.nii.gz" in line and "truncated" in line for line in lines
    )
    assert "1 done, 1 skipped (output exists), 1 failed" in text.getvalue()
    prepared = read_volume(out / "ct_a.nii.gz")
    assert prepared.array.dtype == np.int16 and prepared.shape[0] == prepared.shape[2] == 16
    assert sorted(p.name for p in out.iterdir()) == [
        "ct_a.nii.gz",
        "ct_b.nii.gz",
        "prepared.json",
    ]  # no partials


def test_prepare_folder_reports_two_inputs_with_one_name(tmp_path):
    write_volume(small_ct(0), tmp_path / "in" / "ct.nii.gz")
    write_volume(small_ct(0), tmp_path / "in" / "ct.mha")
    report = prepare_folder(
        tmp_path / "in", tmp_path / "out", "ct", size=8, spacing=8.0, console=Console(file=io.StringIO())
    )
    assert len(report.done) == 1
    assert report.failed[0][1] == "same name as ct.mha — rename one of them"


def test_cli_prepare_goes_on_past_a_bad_file_lists_it_at_the_end_and_exits_1(ct_folder, tmp_path, capsys):
    from imtrans_core.cli import run

    args = ["data", "prepare", str(ct_folder), str(tmp_path / "out"), "--modality", "ct", "--size", "16"]
    assert run([*args, "--spacing", "4"]) == 1
    out, err = capsys.readouterr()
    assert "2 done, 0 skipped (output exists), 1 failed" in " ".join(out.split())
    last = err.strip().splitlines()
    assert last[-2] == "error: 1 of 3 volume(s) failed; the others were done:"
    assert last[-1].strip().startswith(str(ct_folder / "ct_bad.nii.gz")) and "truncated" in last[-1]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "ct_a.nii.gz",
        "ct_b.nii.gz",
        "prepared.json",
    ]


def test_cli_prepare_mr_with_n4(tmp_path):
    volume, _ = ct_phantom()
    mr = Volume.from_affine(
        np.where(volume.array > -500, 300.0, 0.0).astype(np.float32), np.eye(4), modality="mr"
    )
    write_volume(mr, tmp_path / "in" / "mr_1.nii.gz")
    args = ["prepare", str(tmp_path / "in"), str(tmp_path / "out"), "--modality", "mr", "--size", "16"]
    result = CliRunner().invoke(data, [*args, "--spacing", "4", "--slice-spacing", "2"])
    assert result.exit_code == 0, result.output
    prepared = nib.load(tmp_path / "out" / "mr_1.nii.gz")
    assert prepared.shape[0] == prepared.shape[2] == 16 and prepared.get_data_dtype() == np.float32
    assert prepared.header.get_zooms() == pytest.approx((4.0, 2.0, 4.0))
    record = json.loads((tmp_path / "out" / "prepared.json").read_text())
    assert record == {
        "modality": "mr",
        "size": 16,
        "spacing": 4.0,
        "slice_axis": "coronal",
        "slice_spacing": 2.0,
        "n4": True,
    }
    write_volume(Volume(np.zeros((4, 4, 4), np.float32)), tmp_path / "ct" / "c.nii.gz")
    folder = ic.DATASETS.build(f"folder:ct={tmp_path / 'ct'},mr={tmp_path / 'out'}")
    assert folder.mr_n4 and not ic.DATASETS.build(f"folder:ct={tmp_path / 'ct'},mr={tmp_path / 'in'}").mr_n4


def test_cli_prepare_on_a_missing_folder_is_an_imtrans_error(tmp_path):
    result = CliRunner().invoke(
        data, ["prepare", str(tmp_path / "nope"), str(tmp_path / "out"), "--modality", "ct"]
    )
    assert isinstance(result.exception, ImtransError)
