"""The input contract: recorded by training, carried by checkpoints and ONNX files, followed by translate."""

from __future__ import annotations

import json
import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

import imtrans_core as ic
from imtrans_core.cli import run
from imtrans_core.data.contract import InputContract, conform, measure
from imtrans_core.data.io import read_volume, write_volume
from imtrans_core.data.preprocess import resample_to_grid
from imtrans_core.data.volume import Volume
from imtrans_core.errors import ImtransWarning
from imtrans_core.inference.backends import TorchBackend
from imtrans_core.inference.models import load_generator
from imtrans_core.inference.translate import translate_on_grid, translate_volume

TRAINING_GRID = InputContract(
    "coronal", (5.0, 5.0), 9.5
)  # rows (S) x columns (L) 5 mm, coronal slices 9.5 mm
AXIAL = np.eye(3)[:, [2, 0, 1]]  # voxel axes S, L, P: an axial acquisition stored slice first


class Box(nn.Module):
    """The mean over 7 x 7 pixels: 35 mm on the training grid, 9 mm on 1.25 mm pixels; a model that sees scale."""

    def forward(self, x):
        return nn.functional.avg_pool2d(nn.functional.pad(x, (3, 3, 3, 3), mode="replicate"), 7, 1)


def blobs(shape, spacing, origin, direction) -> Volume:
    """One smooth MR (an elliptic body with 40 Gaussian blobs of 12-25 mm) sampled on any grid."""
    rng = np.random.default_rng(0)
    centres = rng.uniform([-100, -40, -100], [100, 40, 100], (40, 3))
    widths, heights = rng.uniform(12, 25, 40), rng.uniform(20, 60, 40)
    index = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1).astype(float)
    points = index @ (np.asarray(direction) @ np.diag(spacing)).T + np.asarray(origin)
    value = 40.0 * (((points[..., 0] / 110) ** 2 + (points[..., 2] / 110) ** 2) < 1)
    for centre, width, height in zip(centres, widths, heights, strict=True):
        value = value + height * np.exp(-np.sum((points - centre) ** 2, -1) / (2 * width**2))
    return Volume(
        value.astype(np.float32), spacing=spacing, origin=origin, direction=direction, modality="mr"
    )


def test_a_volume_on_another_grid_translates_like_one_on_the_training_grid_and_not_without_resampling():
    """The same MR at 5 mm coronal (the model's grid) and at 1.25 x 1.25 x 2.5 mm axial, stored slice first.

    Resampled onto the contract's grid and back, the axial MR's synthetic CT matches the one made
    on the training grid within a few HU (both brought to that grid); cut from its own 1.25 mm
    pixels it does not: the model then sees the anatomy four times too large.
    """
    training = blobs((48, 10, 48), (5.0, 9.5, 5.0), (-117.5, -42.75, -117.5), np.eye(3))
    axial = blobs((96, 192, 70), (2.5, 1.25, 1.25), (-120.0, -43.75, -118.75), AXIAL)
    backend = TorchBackend(Box(), "mr2ct", "coronal", "cpu", contract=TRAINING_GRID)
    reference = translate_on_grid(training, backend)
    assert np.array_equal(reference.array, translate_volume(training, backend).array)  # on the grid: as it is
    inside = training.array > 20
    resampled = translate_on_grid(axial, backend)
    assert resampled.same_grid(axial) and resampled.modality == "ct"
    native = translate_volume(axial, backend)
    followed, ignored = (
        float(np.abs(resample_to_grid(v, training, "linear").array - reference.array)[inside].mean())
        for v in (resampled, native)
    )
    assert followed < 6.0 and ignored > 2.5 * followed  # HU


def test_n4_runs_only_where_the_contract_says_training_used_it(monkeypatch):
    import imtrans_core.data.contract as contract

    calls = []
    monkeypatch.setattr(contract, "n4_correct", lambda v: calls.append(v) or v)
    mr = blobs((48, 10, 48), (5.0, 9.5, 5.0), (-117.5, -42.75, -117.5), np.eye(3))
    conform(mr, TRAINING_GRID)
    conform(mr, InputContract("coronal", (5.0, 5.0), 9.5, mr_n4=True), "ct")  # a CT for G_MR: never
    assert not calls
    conform(mr, InputContract("coronal", (5.0, 5.0), 9.5, mr_n4=True), "mr")
    assert len(calls) == 1


def test_thick_slices_across_the_training_plane_warn_once_and_a_contract_without_a_grid_changes_nothing():
    axial = blobs((20, 48, 20), (12.0, 5.0, 5.0), (-117.5, -40.0, -117.5), AXIAL)  # 12 mm axial slices
    with pytest.warns(ImtransWarning, match=r"t2\.nii: 12 mm between its voxels along the inferior-superior"):
        conform(axial, TRAINING_GRID, "mr", "t2.nii")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert conform(axial, InputContract("coronal")) is axial


def test_an_mr_whose_tags_name_another_weighting_warns_and_the_same_or_unknown_does_not():
    t1_model = InputContract("coronal", (5.0, 5.0), 9.5, mr_weighting="t1")
    volume = blobs((48, 10, 48), (5.0, 9.5, 5.0), (-117.5, -42.75, -117.5), np.eye(3))
    volume.meta |= {"mr_weighting": "t2", "mr_weighting_from": "description 't2_tse_tra'"}
    with pytest.warns(
        ImtransWarning,
        match=r"t2: its DICOM tags say T2-weighted \(description 't2_tse_tra'\), but the model learned T1-weighted",
    ):
        conform(volume, t1_model, "mr", "t2")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        conform(volume, replace(t1_model, mr_weighting="t2"), "mr")
        conform(volume, replace(t1_model, mr_weighting=""), "mr")  # a model that does not know
        conform(volume, t1_model, "ct")  # a CT has no weighting
        volume.meta["mr_weighting"] = ""  # NIfTI: no tags
        conform(volume, t1_model, "mr")


def test_a_volume_much_smaller_than_the_training_slices_says_the_model_sees_little_around():
    """A 19-slice axial T2 (57 mm head to foot) cut coronally: slices 12 pixels tall on a 5 mm grid."""
    t2 = blobs((24, 48, 19), (5.0, 5.0, 3.0), (-60.0, -120.0, -27.0), np.eye(3))
    contract = InputContract("coronal", (5.0, 5.0), 9.5, size=64)
    with pytest.warns(
        ImtransWarning, match=r"t2: its coronal slices are 12 x 24 pixels .* learned on 64 x 64"
    ):
        conform(t2, contract, "mr", "t2")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        conform(blobs((48, 10, 48), (5.0, 9.5, 5.0), (-117.5, -42.75, -117.5), np.eye(3)), contract)


def test_measure_records_the_median_grid_and_warns_when_the_training_volumes_disagree():
    contract = measure([(2.5, 1.25, 1.25)] * 3, "coronal", 1, 128, True, "t2")
    assert contract == InputContract("coronal", (1.25, 1.25), 2.5, 1, 128, True, "t2")
    assert InputContract.from_dict(json.loads(json.dumps(contract.to_dict()))) == contract
    with pytest.warns(ImtransWarning, match=r"differ by up to 2\.00x.*records the median, 1.25 x 1.25 mm"):
        measure([(2.5, 1.25, 1.25), (2.5, 1.25, 1.25), (2.5, 2.5, 2.5)], "coronal", 0, 128, False)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from imtrans_core.training import TrainConfig, train

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IMTRANS_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
        config = TrainConfig(
            gen="resnet9:ngf=8,n_blocks=2",
            disc="patchgan:ndf=8",
            data="phantom:n_ct=2,n_mr=2,n_paired=1,size=64,slices=8",
            size=64,
            iters=2,
            ckpt_every=2,
            workers=0,
        )
        return train(config, out=tmp_path_factory.mktemp("contract") / "run").run_dir


def test_training_records_the_contract_in_config_json_and_every_checkpoint(tiny_run):
    recorded = json.loads((tiny_run / "config.json").read_text())["contract"]
    assert recorded["orientation"] == "coronal" and recorded["spacing"] == [5.0, 5.0]
    assert recorded["slice_spacing"] == 9.5 and recorded["size"] == 64 and recorded["mr_n4"] is False
    assert recorded["mr_weighting"] == "t1"  # the phantom's default weighting
    assert recorded["ct_window"] == [-150.0, 350.0] and recorded["mr_scaling"]["percentile"] == 99.5
    state = torch.load(next((tiny_run / "checkpoints").glob("*.pt")), weights_only=False)
    assert state["contract"] == recorded
    assert load_generator(tiny_run).contract == InputContract("coronal", (5.0, 5.0), 9.5, 0, 64, False, "t1")


def test_translate_cli_puts_an_axial_mr_back_on_its_own_grid_and_says_where_it_cut(
    tiny_run, tmp_path, capsys
):
    mr = ic.DATASETS.build("phantom:n_ct=2,n_mr=2,n_paired=1,size=64,slices=8").mr[0]
    axial = Volume(
        np.ascontiguousarray(np.transpose(mr.array, (2, 0, 1))),
        spacing=tuple(np.asarray(mr.spacing)[[2, 0, 1]]),
        origin=mr.origin,
        direction=np.asarray(mr.direction)[:, [2, 0, 1]],
    )
    write_volume(axial, tmp_path / "axial.nii.gz")
    for flag in ([], ["--no-resample"]):
        code = run(
            ["translate", str(tiny_run), str(tmp_path / "axial.nii.gz"), "--out", str(tmp_path / "o"), *flag]
        )
        _, err = capsys.readouterr()
        assert code == 0, err
        said = " ".join(err.split())  # the console wraps long lines
        assert (
            "coronal slices at 5 x 5 mm" if not flag else "coronal slices of each input's own grid"
        ) in said
        sct = read_volume(tmp_path / "o" / "axial.nii.gz")
        assert sct.same_grid(read_volume(tmp_path / "axial.nii.gz"))
        (tmp_path / "o" / "axial.nii.gz").unlink()


def test_real_mr_volumes_translate_onto_their_own_grids_in_hu(tiny_run, real_data, tmp_path, capsys):
    """The prostate T2 (axial, 0.5 x 0.5 x 3 mm, 19 slices) and an abdominal T1 (3 mm) through the CLI."""
    inputs = [real_data / "prostatex0000_t2.nii.gz", real_data / "ts_example_mr_sm.nii.gz"]
    code = run(["translate", str(tiny_run), *map(str, inputs), "--out", str(tmp_path / "o")])
    said = " ".join(capsys.readouterr().err.split())
    assert code == 0, said
    assert "prostatex0000_t2.nii.gz: its coronal slices are" in said  # 57 mm head to foot: little context
    for path in inputs:
        sct, mr = read_volume(tmp_path / "o" / path.name), read_volume(path)
        assert sct.same_grid(mr)
        assert sct.array.min() >= -150.0 and sct.array.max() <= 350.0 and sct.array.std() > 1.0
