"""imtrans evaluate: the paper's MAE/PSNR against hand computations, MI, masks, grids, folders, outputs."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

import imtrans_core as ic
from imtrans_core.cli import run
from imtrans_core.data.io import read_volume, write_volume
from imtrans_core.data.volume import Volume
from imtrans_core.errors import ImtransError, ImtransWarning
from imtrans_core.evaluation.evaluate import evaluate_folders
from imtrans_core.evaluation.report import summarize
from imtrans_core.evaluation.scoring import evaluate_pair
from imtrans_core.evaluation.subjects import match_subjects


def paper(hu):
    """The paper's §2.2 scale, written out independently: [-150, 350] HU -> [0, 255]."""
    return (np.clip(np.asarray(hu, np.float64), -150, 350) + 150) * 255 / 500


def hand_mi(a, b, mask, bins, axis):
    """MI in nats from per-slice joint histograms on the whole volume's bin edges, averaged over slices."""
    ranges = [[a[mask].min(), a[mask].max()], [b[mask].min(), b[mask].max()]]
    values = []
    for n in range(a.shape[axis]):
        take = [slice(None)] * 3
        take[axis] = n
        m = mask[tuple(take)]
        if not m.any():
            continue
        joint, _, _ = np.histogram2d(a[tuple(take)][m], b[tuple(take)][m], bins=bins, range=ranges)
        p = joint / joint.sum()
        pa, pb = p.sum(1), p.sum(0)
        nz = p > 0
        values.append(np.sum(p[nz] * np.log(p[nz] / np.outer(pa, pb)[nz])))
    return float(np.mean(values))


def ct_pair(shape=(12, 8, 10), seed=0):
    rng = np.random.default_rng(seed)
    ref = rng.uniform(-1000, 1500, shape).astype(np.float32)
    pred = np.clip(ref + rng.normal(0, 80, shape), -150, 350).astype(np.float32)
    return Volume(pred, (1.0, 2.0, 1.5), (3.0, -4.0, 5.0)), Volume(
        ref, (1.0, 2.0, 1.5), (3.0, -4.0, 5.0), modality="ct"
    )


def test_paper_mae_and_psnr_match_a_hand_computation_with_and_without_a_mask():
    pred, ref = ct_pair()
    mask_array = np.zeros(pred.shape, np.uint8)
    mask_array[2:9, :, 3:] = 1
    for mask in (None, pred.with_array(mask_array, "labels")):
        inside = np.ones(pred.shape, bool) if mask is None else mask_array == 1
        scores = evaluate_pair(pred, ref, mask, scale="both")
        diff = paper(pred.array)[inside] - paper(ref.array)[inside]
        assert scores["mae"] == pytest.approx(np.mean(np.abs(diff)), rel=1e-12)
        assert scores["psnr"] == pytest.approx(20 * np.log10(255 / np.sqrt(np.mean(diff**2))), rel=1e-12)
        assert scores["mae_hu"] == pytest.approx(np.mean(np.abs(pred.array - ref.array)[inside]), rel=1e-6)
        clip = np.clip(pred.array.astype(float), -1024, 3000) - np.clip(ref.array.astype(float), -1024, 3000)
        unclipped = pred.array.astype(float) - ref.array.astype(float)  # SynthRAD2023's MAE
        assert scores["synthrad_mae"] == pytest.approx(np.mean(np.abs(unclipped[inside])), rel=1e-9)
        assert scores["synthrad_psnr"] == pytest.approx(
            20 * np.log10(4024 / np.sqrt(np.mean(clip[inside] ** 2)))
        )
        assert 0 < scores["ssim"] < 1 and 0 < scores["synthrad_ssim"] < 1
        assert scores["voxels"] == inside.sum()
    assert evaluate_pair(ref, ref)["ssim"] == pytest.approx(1.0) and math.isinf(
        evaluate_pair(ref, ref)["psnr"]
    )


def test_scale_picks_the_protocol():
    pred, ref = ct_pair()
    assert set(evaluate_pair(pred, ref)) == {"mae", "mae_hu", "psnr", "ssim", "voxels"}
    assert set(evaluate_pair(pred, ref, scale="synthrad")) == {
        "synthrad_mae",
        "synthrad_psnr",
        "synthrad_ssim",
        "voxels",
    }
    with pytest.raises(ImtransError, match="--scale"):
        evaluate_pair(pred, ref, scale="hu")


def test_mi_with_the_source_is_the_mean_over_coronal_slices():
    rng = np.random.default_rng(1)
    mr = rng.uniform(0, 100, (4, 40, 30))
    sct = -150 + 5 * mr + rng.normal(0, 40, mr.shape)  # depends on the MR, plus noise
    direction = np.array(
        [[0, 1, 0], [1, 0, 0], [0, 0, 1]], float
    )  # voxel axis 0 runs posterior: coronal = axis 0
    source, pred = Volume(mr, direction=direction), Volume(sct, direction=direction)
    scores = evaluate_pair(pred, source=source, mi_bins=8)
    everything = np.ones(mr.shape, bool)
    assert pred.axis_of(1) == 0
    assert scores["mi"] == pytest.approx(hand_mi(sct, mr, everything, 8, axis=0), rel=1e-9)
    assert set(scores) == {"mi", "voxels"}
    unrelated = evaluate_pair(
        pred.with_array(rng.permutation(sct.ravel()).reshape(sct.shape)), source=source, mi_bins=8
    )
    assert unrelated["mi"] < scores["mi"] / 2
    volume_mi = evaluate_pair(pred, source=source, mi_bins=8, orientation="none")["mi"]
    assert volume_mi != pytest.approx(scores["mi"])


def test_masks_empty_fov_and_off_grid():
    pred, ref = ct_pair()
    with pytest.raises(ImtransError, match="empty"):
        evaluate_pair(pred, ref, pred.with_array(np.zeros(pred.shape, np.uint8)))
    ref_padded = ref.with_array(
        np.where(np.arange(ref.array.size).reshape(ref.shape) % 4 == 0, -1024, ref.array)
    )
    scores = evaluate_pair(pred, ref_padded, "fov")
    assert scores["voxels"] == np.count_nonzero(ref_padded.array != -1024)
    off = Volume(np.ones(pred.shape, np.uint8), (1.0, 2.0, 1.5), (0.0, 0.0, 0.0), modality="labels")
    off.meta["path"] = "m.nii.gz"
    with pytest.raises(ImtransError, match=r"--mask m\.nii\.gz is not on the grid.*origin.*--resample"):
        evaluate_pair(pred, ref, off)


def test_mismatched_grids_name_both_volumes_and_what_differs_and_resample_fixes_it():
    pred, ref = ct_pair()
    pred.meta["path"], ref.meta["path"] = "sct.nii.gz", "ct.nii.gz"
    coarse = Volume(pred.array[::2], (2.0, 2.0, 1.5), pred.origin, meta={"path": "sct2.nii.gz"})
    with pytest.raises(ImtransError) as error:
        evaluate_pair(coarse, ref)
    message = str(error.value)
    for part in (
        "PRED sct2.nii.gz",
        "ct.nii.gz",
        "shape 6x8x10 vs 12x8x10",
        "spacing 2,2,1.5 vs 1,2,1.5",
        "--resample",
    ):
        assert part in message
    assert "\n" not in message
    # half a field of view: with --resample the part of REF that PRED does not cover is left out
    half = Volume(pred.array[:6], pred.spacing, pred.origin, meta={"path": "half.nii.gz"})
    scores = evaluate_pair(half, ref, resample=True)
    assert scores["voxels"] == 6 * 8 * 10
    diff = paper(pred.array[:6]) - paper(ref.array[:6])
    assert scores["mae"] == pytest.approx(np.mean(np.abs(diff)), rel=1e-6)


def test_summarize_is_mean_and_sample_sd():
    rows = [
        {"id": "a", "mae": 30.121, "voxels": 3},
        {"id": "b", "mae": 26.927, "voxels": 3},
        {"id": "c", "mae": 33.651, "voxels": 1},
    ]
    mean, sd = summarize(rows)["mae"]
    assert mean == pytest.approx(30.233, abs=1e-3) and sd == pytest.approx(3.363, abs=1e-3)
    assert set(summarize(rows)) == {"mae"}
    assert math.isnan(summarize(rows[:1])["mae"][1])


def write_subjects(folder, ids, volumes, name=None):
    for vid, volume in zip(ids, volumes, strict=True):
        write_volume(volume, folder / (f"{vid}/{name}.nii.gz" if name else f"{vid}.nii.gz"))


def test_folders_match_by_subject_id_and_warn_about_the_rest(tmp_path):
    pairs = {vid: ct_pair(seed=n) for n, vid in enumerate(["p1", "p2", "p3", "p4"])}
    write_subjects(tmp_path / "pred", ["p1", "p2", "p3"], [pairs[v][0] for v in ["p1", "p2", "p3"]])
    write_subjects(
        tmp_path / "ref", ["p2", "p3", "p4"], [pairs[v][1] for v in ["p2", "p3", "p4"]], name="ct"
    )  # SynthRAD layout
    with pytest.warns(ImtransWarning) as caught:
        rows = evaluate_folders(tmp_path / "pred", tmp_path / "ref")
    text = " ".join(str(w.message) for w in caught)
    assert "p1" in text and "p4" in text
    assert [r["id"] for r in rows] == ["p2", "p3"]
    for row in rows:
        pred, ref = pairs[row["id"]]
        assert row["mae"] == pytest.approx(np.mean(np.abs(paper(pred.array) - paper(ref.array))), rel=1e-6)
    write_subjects(tmp_path / "other", ["q1"], [pairs["p1"][1]])
    with pytest.raises(ImtransError, match="no subject id is in every folder"), pytest.warns(ImtransWarning):
        match_subjects(tmp_path / "pred", tmp_path / "other")
    with pytest.raises(ImtransError, match="is a file but PRED"):
        match_subjects(tmp_path / "pred", tmp_path / "other" / "q1.nii.gz")


@pytest.fixture
def phantom_subject():
    return ic.DATASETS.build("phantom:n_ct=0,n_mr=0,n_paired=1,size=32,slices=6").paired[0].load()


def test_evaluate_cli_on_a_synthetic_ct_and_its_paired_phantom_ct(phantom_subject, tmp_path, capsys):
    """The paper's Table 1 numbers for one subject: translate the paired MR, score against the paired CT."""
    import torch

    from imtrans_core.inference.backends import TorchBackend
    from imtrans_core.inference.translate import translate_volume

    torch.manual_seed(0)
    net = ic.GENERATORS.build("resnet9:ngf=8,n_blocks=1")
    sct = translate_volume(phantom_subject["mr"], TorchBackend(net, "mr2ct", "coronal", "cpu"))
    write_volume(sct, tmp_path / "sct.nii.gz")
    write_volume(phantom_subject["ct"], tmp_path / "ct.nii.gz")
    write_volume(phantom_subject["mr"], tmp_path / "mr.nii.gz")
    write_volume(phantom_subject["mask"], tmp_path / "mask.nii.gz")
    args = [
        "evaluate",
        str(tmp_path / "sct.nii.gz"),
        str(tmp_path / "ct.nii.gz"),
        "--mask",
        str(tmp_path / "mask.nii.gz"),
        "--source",
        str(tmp_path / "mr.nii.gz"),
        "--json",
        str(tmp_path / "r.json"),
        "--csv",
        str(tmp_path / "r.csv"),
        "--plot",
        str(tmp_path / "r.png"),
    ]
    code = run(args)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "MAE [0-255]" in out and "PSNR [dB]" in out and "MI [nats]" in out
    result = json.loads((tmp_path / "r.json").read_text())
    (row,) = result["rows"]
    s, c = read_volume(tmp_path / "sct.nii.gz").array, read_volume(tmp_path / "ct.nii.gz").array
    inside = read_volume(tmp_path / "mask.nii.gz").array != 0
    diff = paper(s)[inside] - paper(c)[inside]
    assert row["mae"] == pytest.approx(np.mean(np.abs(diff)), rel=1e-9)
    assert row["psnr"] == pytest.approx(20 * np.log10(255 / np.sqrt(np.mean(diff**2))), rel=1e-9)
    mr = read_volume(tmp_path / "mr.nii.gz").array
    assert row["mi"] == pytest.approx(
        hand_mi(s.astype(float), mr.astype(float), inside, 32, axis=1), rel=1e-6
    )
    assert (
        result["summary"]["mae"]["mean"] == pytest.approx(row["mae"])
        and result["summary"]["mae"]["sd"] is None
    )
    with (tmp_path / "r.csv").open() as f:
        lines = list(csv.DictReader(f))
    assert len(lines) == 1 and float(lines[0]["mae"]) == pytest.approx(row["mae"])
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # beside the model: a constant image, REF's median in the mask, scored the same way
    constant = np.abs(paper(np.median(c[inside])) - paper(c)[inside]).mean()
    assert result["baselines"]["constant"]["mae"] == pytest.approx(constant, rel=1e-9)
    assert "baseline, a constant image" in out and f"{constant:.2f}"[:4] in out


def test_evaluate_cli_unpaired_mi_and_one_line_errors(tmp_path, capsys):
    rng = np.random.default_rng(5)
    for vid in ("a", "b"):
        mr = rng.uniform(0, 100, (8, 5, 8)).astype(np.float32)
        write_volume(Volume(mr), tmp_path / "mr" / f"{vid}.nii.gz")
        write_volume(Volume(-150 + 5 * mr), tmp_path / "sct" / f"{vid}.nii.gz")
    code = run(
        [
            "evaluate",
            str(tmp_path / "sct"),
            "--source",
            str(tmp_path / "mr"),
            "--plot",
            str(tmp_path / "mi.png"),
            "--json",
            str(tmp_path / "mi.json"),
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    summary = json.loads((tmp_path / "mi.json").read_text())["summary"]
    assert set(summary) == {"mi"} and summary["mi"]["mean"] > 1.5 and "mean ± SD" in out
    assert (tmp_path / "mi.png").exists()
    code = run(["evaluate", str(tmp_path / "sct")])
    _, err = capsys.readouterr()
    assert code == 2 and "--source" in err
    write_volume(Volume(np.zeros((4, 4, 4), np.float32)), tmp_path / "small.nii.gz")
    code = run(["evaluate", str(tmp_path / "sct" / "a.nii.gz"), str(tmp_path / "small.nii.gz")])
    _, err = capsys.readouterr()
    assert code == 2 and "not on the grid" in err and "--resample" in err and "Traceback" not in err
