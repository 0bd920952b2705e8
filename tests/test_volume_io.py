"""Volume I/O: geometry survives every format, LPS/RAS is converted correctly, bad input says so."""

from __future__ import annotations

import gzip
import io
import json
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from click.testing import CliRunner

import imtrans_core as ic
from imtrans_core.cli.data_cmds import data
from imtrans_core.data.io import (
    check_ct_hu,
    from_sitk,
    list_volumes,
    read_volume,
    to_sitk,
    volume_id,
    write_volume,
)
from imtrans_core.data.volume import LPS_TO_RAS, Volume
from imtrans_core.errors import ImtransError, ImtransWarning


def rotation(ax: float, ay: float, az: float) -> np.ndarray:
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def oblique_affine(shear: float = 0.0) -> np.ndarray:
    """A RAS affine rotated about all three axes, anisotropic, optionally sheared."""
    affine = np.eye(4)
    linear = rotation(0.3, -0.2, 0.5) @ np.diag([0.8, 1.1, 2.5])
    linear[:, 1] += shear * linear[:, 0]
    affine[:3, :3] = linear
    affine[:3, 3] = [-40.5, 12.25, 70.0]
    return affine


def write_nifti(path: Path, array: np.ndarray, affine: np.ndarray) -> Path:
    nib.save(nib.Nifti1Image(array, affine, dtype=array.dtype), path)
    return path


def ramp(shape=(9, 8, 7), dtype=np.int16) -> np.ndarray:
    return (np.arange(np.prod(shape)) - 200).reshape(shape).astype(dtype)


@pytest.mark.parametrize("shear", [0.0, 0.25])
@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".mha", ".nrrd", ".mhd"])
def test_oblique_round_trip_keeps_geometry_and_values(tmp_path, suffix, shear):
    source = write_nifti(tmp_path / "in.nii.gz", ramp(), oblique_affine(shear))
    volume = read_volume(source)
    assert np.allclose(volume.affine, nib.load(source).affine, atol=1e-5)
    write_volume(volume, tmp_path / f"out{suffix}")
    back = read_volume(tmp_path / f"out{suffix}")
    assert back.same_grid(volume, atol=1e-5)
    assert np.allclose(back.affine, volume.affine, atol=1e-5)
    assert back.array.dtype == np.int16
    assert np.array_equal(back.array, volume.array)


def test_world_coordinates_agree_with_itk(tmp_path):
    """nibabel's RAS affine and ITK's own LPS index-to-point mapping name the same places."""
    affine = oblique_affine()
    source = write_nifti(tmp_path / "oblique.nii.gz", ramp(), affine)
    write_volume(read_volume(source), tmp_path / "oblique.mha")
    from_mha = sitk.ReadImage(str(tmp_path / "oblique.mha"))
    from_nifti = sitk.ReadImage(str(source))  # ITK's own NIfTI reader, independent of ours
    for index in [(0, 0, 0), (8, 0, 0), (0, 7, 0), (0, 0, 6), (3, 5, 2), (8, 7, 6)]:
        ras = nib.affines.apply_affine(affine, index)
        lps = LPS_TO_RAS @ ras
        assert np.allclose(from_mha.TransformIndexToPhysicalPoint(index), lps, atol=1e-4)
        assert np.allclose(from_nifti.TransformIndexToPhysicalPoint(index), lps, atol=1e-4)
        value = from_mha[index]  # SimpleITK indexes images (i, j, k)
        assert value == read_volume(source).array[index]


def test_written_nifti_uses_scanner_codes_and_sform_keeps_shear(tmp_path):
    affine = oblique_affine(shear=0.25)
    write_volume(Volume.from_affine(ramp(), affine), tmp_path / "sheared.nii.gz")
    header = nib.load(tmp_path / "sheared.nii.gz").header
    assert int(header["sform_code"]) == 1 and int(header["qform_code"]) == 1
    assert np.allclose(header.get_sform(), affine, atol=1e-5)


def test_to_from_sitk_transposes_and_keeps_lps(tmp_path):
    volume = Volume(ramp(), (0.5, 0.7, 3.0), (1.0, -2.0, 3.0), rotation(0.1, 0.2, 0.3))
    image = to_sitk(volume)
    assert image.GetSize() == volume.shape
    assert image[4, 3, 2] == volume.array[4, 3, 2]
    assert from_sitk(image).same_grid(volume, atol=1e-9)


@pytest.mark.parametrize(
    ("dtype", "stored"),
    [(np.uint8, np.uint8), (np.float32, np.float32), (bool, np.uint8), (np.int64, np.int32)],
)
def test_dtype_is_kept_sensibly(tmp_path, dtype, stored):
    volume = Volume(ramp(dtype=np.int16).clip(0, 1 if dtype is bool else 200).astype(dtype))
    for suffix in (".nii.gz", ".mha"):
        write_volume(volume, tmp_path / f"v{suffix}")
        back = read_volume(tmp_path / f"v{suffix}")
        assert back.array.dtype == stored
        assert np.array_equal(back.array, volume.array.astype(stored))


def test_nifti_scaling_gives_hu_in_a_compact_dtype(tmp_path):
    stored = np.full((4, 4, 4), 1024, np.uint16)
    stored[0] = 0
    image = nib.Nifti1Image(stored, np.eye(4))
    image.header.set_slope_inter(1.0, -1024.0)
    nib.save(image, tmp_path / "scaled.nii.gz")
    volume = read_volume(tmp_path / "scaled.nii.gz", "ct")
    assert volume.array.dtype == np.int16
    assert volume.array.min() == -1024 and volume.array.max() == 0


def write_dicom_series(
    folder: Path, hu: np.ndarray, uid: str, spacing, origin, prefix: str = "slice", tags: dict | None = None
) -> None:
    """SimpleITK's DICOM series recipe: the image holds HU, the rescale tags say how to store them.

    ``tags`` adds to or replaces the CT's tags (an MR: ``{"0008|0060": "MR", ...}``).
    """
    folder.mkdir(parents=True, exist_ok=True)
    image = sitk.GetImageFromArray(hu.transpose(2, 1, 0))
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(image.GetDepth()):
        plane = image[:, :, k]
        position = image.TransformIndexToPhysicalPoint((0, 0, k))
        every = {
            "0008|0060": "CT",
            "0020|000d": uid,
            "0020|000e": f"{uid}.1",
            "0020|0037": "1\\0\\0\\0\\1\\0",
            "0020|0032": "\\".join(f"{p:.6f}" for p in position),
            "0020|0013": str(k + 1),
            "0028|1052": "-1024",
            "0028|1053": "1",
        } | (tags or {})
        for tag, value in every.items():
            plane.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"{prefix}{k:03d}.dcm"))
        writer.Execute(plane)


def test_dicom_series_is_read_in_hu_with_its_geometry(tmp_path):
    hu = np.random.default_rng(0).integers(-1024, 1000, size=(7, 6, 5)).astype(np.int16)
    folder = tmp_path / "series"
    write_dicom_series(folder, hu, "1.2.826.0.1.3680043.2.1125.1001", (0.7, 0.8, 2.5), (-10.0, 20.0, 30.0))
    first = (folder / "slice000.dcm").read_bytes()
    stored = np.frombuffer(first[-hu[:, :, 0].size * 2 :], dtype=np.int16)
    assert stored.min() >= 0  # the file holds HU + 1024 ...
    volume = read_volume(folder)  # ... and the reader applies the intercept
    assert volume.modality == "ct"
    assert volume.array.dtype == np.int16
    assert np.array_equal(volume.array, hu)
    assert np.allclose(volume.spacing, (0.7, 0.8, 2.5), atol=1e-5)
    assert np.allclose(volume.origin, (-10.0, 20.0, 30.0), atol=1e-5)
    assert np.allclose(volume.direction, np.eye(3))
    assert list_volumes(tmp_path) == [folder]
    assert list_volumes(folder) == [folder]


def test_dicom_folder_with_two_series_reads_the_largest_and_says_so(tmp_path):
    hu = np.full((4, 4, 3), -1000, np.int16)
    hu[1:3, 1:3] = 40
    write_dicom_series(tmp_path, hu, "1.2.3.4.100", (1, 1, 1), (0, 0, 0), prefix="a")
    write_dicom_series(tmp_path, hu[:, :, :2], "1.2.3.4.200", (1, 1, 1), (0, 0, 50), prefix="b")
    with pytest.warns(ImtransWarning, match="2 DICOM series; reading the largest, 1.2.3.4.100.1"):
        assert read_volume(tmp_path).shape == (4, 4, 3)
    assert read_volume(tmp_path, series="1.2.3.4.200.1").shape == (4, 4, 2)
    with pytest.raises(ImtransError, match=r"no DICOM series '9\.9'"):
        read_volume(tmp_path, series="9.9")


def test_list_volumes_and_volume_id(tmp_path):
    volume = Volume(ramp())
    for name in ("b.mha", "a.nii.gz", "c.nrrd", ".hidden.nii.gz"):
        write_volume(volume, tmp_path / name)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "empty_dir").mkdir()
    found = list_volumes(tmp_path)
    assert [p.name for p in found] == ["a.nii.gz", "b.mha", "c.nrrd"]
    assert [volume_id(p) for p in found] == ["a", "b", "c"]
    assert volume_id("x/ct.01.NII.GZ") == "ct.01"


def one_line_error(call, *args, **kwargs) -> str:
    with pytest.raises(ImtransError) as caught:
        call(*args, **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_missing_path(tmp_path):
    assert "no such file or folder" in one_line_error(read_volume, tmp_path / "nope.nii.gz")


def test_truncated_nifti(tmp_path):
    path = write_nifti(tmp_path / "whole.nii.gz", ramp(shape=(40, 40, 40)), np.eye(4))
    cut = tmp_path / "cut.nii.gz"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    message = one_line_error(read_volume, cut)
    assert str(cut) in message and "truncated" in message


def test_non_image_files(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    assert "not a supported image" in one_line_error(read_volume, tmp_path / "notes.txt")
    (tmp_path / "fake.nii.gz").write_bytes(gzip.compress(b"hello, not a header"))
    assert "cannot read it as NIfTI" in one_line_error(read_volume, tmp_path / "fake.nii.gz")
    (tmp_path / "fake.mha").write_text("garbage")
    assert "cannot read it as MHA" in one_line_error(read_volume, tmp_path / "fake.mha")


def test_four_d_is_refused_but_a_singleton_fourth_axis_is_squeezed(tmp_path):
    write_nifti(tmp_path / "4d.nii.gz", np.zeros((5, 4, 3, 2), np.int16), np.eye(4))
    message = one_line_error(read_volume, tmp_path / "4d.nii.gz")
    assert "4-D (shape (5, 4, 3, 2)) — pass a 3-D volume or split it first" in message
    write_nifti(tmp_path / "single.nii.gz", np.zeros((5, 4, 3, 1), np.int16), np.eye(4))
    assert read_volume(tmp_path / "single.nii.gz").shape == (5, 4, 3)
    sitk.WriteImage(sitk.Image([5, 4, 3, 1], sitk.sitkInt16), str(tmp_path / "single.mha"))
    assert read_volume(tmp_path / "single.mha").shape == (5, 4, 3)


def test_empty_folder(tmp_path):
    assert "no volumes found" in one_line_error(list_volumes, tmp_path)
    assert "no DICOM series" in one_line_error(read_volume, tmp_path)


def test_nan_voxels_are_an_error_naming_the_count(tmp_path):
    array = np.zeros((4, 4, 4), np.float32)
    array[0, 0, :3] = np.nan
    write_nifti(tmp_path / "nan.nii.gz", array, np.eye(4))
    assert "3 of 64 voxels are NaN or infinite" in one_line_error(read_volume, tmp_path / "nan.nii.gz")


@pytest.mark.parametrize("fast_gzip", [True, False], ids=["isal", "zlib"])
def test_nifti_gz_holds_the_bytes_nibabel_writes_and_any_gzip_reader_opens_it(
    tmp_path, monkeypatch, fast_gzip
):
    """Compressed by ISA-L where it is installed, by nibabel's zlib elsewhere: the same NIfTI inside,
    read back by nibabel, SimpleITK and plain gzip; no name or time in the gzip header."""
    from imtrans_core.data import io as volume_io

    if not fast_gzip:
        monkeypatch.setattr(volume_io, "igzip", None)
    elif volume_io.igzip is None:
        pytest.skip("isal is not installed here: NIfTI is compressed by zlib")
    volume = Volume.from_affine(ramp(dtype=np.float32) / 7, oblique_affine())
    write_volume(volume, tmp_path / "a.nii.gz")
    write_volume(volume, tmp_path / "nii" / "b.nii.gz")
    written = (tmp_path / "a.nii.gz").read_bytes()
    reference = tmp_path / "reference.nii.gz"  # nibabel's own writer, from the same image
    monkeypatch.setattr(volume_io, "igzip", None)
    write_volume(volume, reference)
    assert gzip.decompress(written) == gzip.decompress(reference.read_bytes())
    if fast_gzip:
        assert written == (tmp_path / "nii" / "b.nii.gz").read_bytes()  # one volume, one file
        assert written[3] == 0 and written[4:8] == bytes(4)  # FLG without a name; MTIME 0
    assert np.array_equal(read_volume(tmp_path / "a.nii.gz").array, volume.array)
    itk = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "a.nii.gz"))).transpose(2, 1, 0)
    assert np.array_equal(itk, volume.array)


def test_unwritable_format(tmp_path):
    assert "cannot write this format" in one_line_error(write_volume, Volume(ramp()), tmp_path / "x.png")


@pytest.mark.parametrize("suffix", [".nii.gz", ".mha"])
def test_a_failed_write_leaves_no_half_file_and_keeps_the_old_one(tmp_path, monkeypatch, suffix):
    target = tmp_path / f"sct{suffix}"
    write_volume(Volume(ramp()), target)
    before = target.read_bytes()

    def crash(*args):  # a full disk halfway through the file
        Path(args[-1] if suffix == ".nii.gz" else args[1]).write_bytes(b"half a volume")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(
        "imtrans_core.data.io._write_nifti" if suffix == ".nii.gz" else "SimpleITK.WriteImage", crash
    )
    assert "No space left on device" in one_line_error(write_volume, Volume(ramp() + 1), target)
    assert target.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == [target.name]
    monkeypatch.undo()
    write_volume(Volume(ramp() + 1), target)  # and a good write replaces it
    assert np.array_equal(read_volume(target).array, ramp() + 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]


@pytest.mark.parametrize(
    ("array", "reason"),
    [
        (np.full((8, 8, 8), 1100, np.uint16), "no negative values"),
        (np.concatenate([np.full((2, 8, 8), -1000), np.full((6, 8, 8), 900)]).astype(np.int16), "median 900"),
        (np.linspace(-1, 1, 512).reshape(8, 8, 8), "as if normalised"),
    ],
)
def test_check_ct_hu_warns_on_values_that_are_not_hu(array, reason):
    with pytest.warns(ImtransWarning, match=f"ct.nii.gz: looks like it is not in HU .*{reason}"):
        assert not check_ct_hu(Volume(array), "ct.nii.gz")


def test_check_ct_hu_accepts_a_ct_in_hu():
    array = np.full((8, 8, 8), -1000, np.int16)
    array[2:6, 2:6, 2:6] = 40
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_ct_hu(Volume(array), "ct.nii.gz")


def test_real_volumes_load_with_nibabels_geometry_and_survive_mha(real_data, tmp_path):
    paths = list_volumes(real_data)
    assert len(paths) >= 5
    for path in paths:
        volume = read_volume(path)
        reference = nib.load(path)
        assert np.allclose(volume.affine, reference.affine, atol=1e-5), path.name
        assert np.array_equal(volume.array, np.asanyarray(reference.dataobj)), path.name
        write_volume(volume, tmp_path / f"{volume_id(path)}.mha")
        back = read_volume(tmp_path / f"{volume_id(path)}.mha")
        assert back.same_grid(volume, atol=1e-5) and np.array_equal(back.array, volume.array), path.name


def test_real_ct_is_in_hu(real_data):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ImtransWarning)
        ct = read_volume(real_data / "ts_example_ct.nii.gz", "ct")
    # Air reaches below -1024 in this scan (README: -1207..3382), metal up to about 3400 HU.
    assert -1300 <= ct.array.min() <= -1000
    assert 2500 <= ct.array.max() <= 3500


def test_show_prints_geometry_and_statistics(real_data):
    result = CliRunner().invoke(data, ["show", str(real_data / "ts_example_ct.nii.gz")])
    assert result.exit_code == 0, result.output
    for expected in ("122 x 101 x 112", "RAS", "int32", "-1207 / 3382", "percentiles 1 / 50 / 99"):
        assert expected in result.output


def test_show_on_synthetic_oblique_file(tmp_path):
    path = write_nifti(tmp_path / "lps.nii.gz", ramp(), np.diag([-1.0, -1.0, 2.0, 1.0]))
    result = CliRunner().invoke(data, ["show", str(path)])
    assert result.exit_code == 0, result.output
    assert "LPS" in result.output and "9 x 8 x 7" in result.output


def test_show_reports_a_missing_file_as_imtrans_error(tmp_path):
    result = CliRunner().invoke(data, ["show", str(tmp_path / "missing.nii.gz")])
    assert isinstance(result.exception, ImtransError)


def test_an_mr_series_names_its_weighting_and_a_prepared_folder_records_it_for_training(tmp_path):
    from rich.console import Console

    from imtrans_core.data.preprocess import PREPARED, prepare_folder

    body = np.zeros((12, 12, 6), np.int16)
    body[2:10, 2:10] = 300
    for name, description, uid in (("t2_a", "t2_tse_tra", "1.2.3.7.1"), ("t2_b", "T2 TSE", "1.2.3.7.2")):
        tags = {"0008|0060": "MR", "0008|103e": description, "0018|0080": "4000", "0018|0081": "101"}
        write_dicom_series(tmp_path / "dicom" / name, body, uid, (4.0, 4.0, 4.0), (0.0, 0.0, 0.0), tags=tags)
    volume = read_volume(tmp_path / "dicom" / "t2_a")
    assert volume.modality == "mr" and volume.meta["mr_weighting"] == "t2"
    assert volume.meta["mr_weighting_from"] == "description 't2_tse_tra'"
    out = tmp_path / "prepared"
    report = prepare_folder(
        tmp_path / "dicom", out, "mr", size=16, spacing=4.0, n4=False, console=Console(quiet=True)
    )
    assert len(report.done) == 2 and json.loads((out / PREPARED).read_text())["mr_weighting"] == "t2"
    write_volume(Volume(np.zeros((4, 4, 4), np.float32)), tmp_path / "ct" / "c.nii.gz")
    assert ic.DATASETS.build(f"folder:ct={tmp_path / 'ct'},mr={out}").mr_weighting == "t2"
    tags = {"0008|0060": "MR", "0008|103e": "t1_vibe", "0018|0080": "7", "0018|0081": "2.5"}
    write_dicom_series(
        tmp_path / "dicom" / "t1_c", body, "1.2.3.7.3", (4.0, 4.0, 4.0), (0.0, 0.0, 0.0), tags=tags
    )
    text = io.StringIO()
    prepare_folder(
        tmp_path / "dicom", out, "mr", size=16, spacing=4.0, n4=False, console=Console(file=text, width=300)
    )
    assert "name several weightings (t1, t2)" in text.getvalue()  # the two T2s were skipped: the record said
    assert "mr_weighting" not in json.loads((out / PREPARED).read_text())  # mixed: none recorded
