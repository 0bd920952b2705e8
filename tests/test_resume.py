"""Resume that extends a run, checkpoints that never run code, warnings that name their file."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest
import torch

from imtrans_core.cli import run
from imtrans_core.data.io import write_volume
from imtrans_core.data.volume import Volume
from imtrans_core.errors import ImtransError
from imtrans_core.training import TrainConfig, train
from imtrans_core.training.checkpoint import load_file

TINY = dict(
    gen="resnet9:ngf=8,n_blocks=1",
    disc="patchgan:ndf=8",
    data="phantom:n_ct=2,n_mr=2,n_paired=1,size=64,slices=8",
    size=64,
    log_every=2,
    ckpt_every=4,
    sample_every=100,
    workers=0,
)


@pytest.fixture(autouse=True)
def cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("IMTRANS_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A run trained to its end: 4 iterations at a constant rate (the decay would start at 4)."""
    path = tmp_path_factory.mktemp("finished") / "run"
    result = train(TrainConfig(**TINY, iters=4, decay_from=4), out=path)
    assert (result.step, result.status) == (4, "finished")
    return path


def metrics(path: pathlib.Path) -> list[dict]:
    return [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]


def test_resume_extends_a_finished_run_exactly_as_one_long_run(finished, tmp_path, capsys):
    extended = tmp_path / "extended"
    extended.mkdir()
    for item in finished.rglob("*"):  # a copy, so the module's run stays as it was
        target = extended / item.relative_to(finished)
        target.parent.mkdir(parents=True, exist_ok=True)
        if item.is_file():
            target.write_bytes(item.read_bytes())
    assert run(["train", "--resume", str(extended), "--iters", "8", "--log-every", "1"]) == 0
    assert "finished 8 iterations" in capsys.readouterr().out
    straight = train(TrainConfig(**TINY, iters=8, decay_from=4), out=tmp_path / "straight").run_dir

    a = torch.load(straight / "checkpoints" / "ckpt-00000008.pt", weights_only=True)
    b = torch.load(extended / "checkpoints" / "ckpt-00000008.pt", weights_only=True)
    for net in a["models"]:
        for key, value in a["models"][net].items():
            assert torch.equal(value, b["models"][net][key]), f"{net}.{key} differs from the straight run"
    # The log continues where it stopped, at the new --log-every, with the new schedule's rates.
    logged = metrics(extended)
    assert [m["iter"] for m in logged] == [2, 4, 5, 6, 7, 8]
    rates = {m["iter"]: m["lr"] for m in metrics(straight)}
    assert [m["lr"] for m in logged if m["iter"] in rates] == [rates[i] for i in (2, 4, 6, 8)]
    stored = json.loads((extended / "config.json").read_text())
    assert stored["iters"] == 8 and stored["log_every"] == 1 and stored["gen"] == TINY["gen"]


@pytest.mark.parametrize(
    "args, words",
    [
        (["--lr", "0.001"], "--lr 0.001: a resumed run keeps what it trains (lr=0.0002)"),
        (["--gen", "resnet9"], "--gen resnet9: a resumed run keeps what it trains"),
        (["--size", "32"], "resuming may change only --iters, --decay-from, --amp, --device"),
        (["--iters", "2", "--decay-from", "1"], "has already trained 4 iterations; give --iters 4 or more"),
        (["--out", "elsewhere"], "--out applies to a new run"),
        (["--preset", "cpu"], "--preset applies to a new run"),
        (["--keep", "0"], "--keep 0: must be >= 1"),
    ],
)
def test_resume_refuses_what_would_change_the_model(finished, capsys, args, words):
    before = (finished / "config.json").read_text()
    code = run(["train", "--resume", str(finished), *args])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and words in err, err
    assert (finished / "config.json").read_text() == before


def test_resume_with_unchanged_values_is_accepted(finished, capsys):
    """Repeating a value the run already has (e.g. from the same config file) is no change."""
    assert run(["train", "--resume", str(finished), "--lr", "0.0002", "--dry-run"]) == 0


def test_a_checkpoint_holding_a_pickled_object_is_refused(finished, tmp_path, capsys):
    marker = tmp_path / "code-ran"

    class Payload:  # unpickling it would create the marker file
        def __reduce__(self):
            return (pathlib.Path.touch, (marker,))

    state = torch.load(finished / "checkpoints" / "ckpt-00000004.pt", weights_only=True)
    state["extra"] = Payload()
    evil = tmp_path / "evil.pt"
    torch.save(state, evil)
    with pytest.raises(ImtransError, match="refused; it holds Python objects besides tensors"):
        load_file(evil)
    volume = tmp_path / "mr.nii.gz"
    write_volume(Volume(np.zeros((8, 8, 8), np.float32), modality="mr"), volume)
    code = run(["translate", str(evil), str(volume), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "refused" in err and len(err.strip().splitlines()) == 1, err
    assert not marker.exists(), "loading the checkpoint ran the code inside it"


def test_checkpoints_of_v0_1_still_load(finished, tmp_path):
    """v0.1 stored torch.__version__ (a TorchVersion, a str subclass) in each checkpoint."""
    from torch.torch_version import TorchVersion

    state = torch.load(finished / "checkpoints" / "ckpt-00000004.pt", weights_only=True)
    state["versions"]["torch"] = TorchVersion(torch.__version__)
    old = tmp_path / "old.pt"
    torch.save(state, old)
    assert load_file(old)["versions"]["torch"] == torch.__version__


def test_training_warnings_name_each_file(tmp_path, capsys):
    """Two CTs that are not in HU: two warning lines, each naming its file (not one per source line)."""
    rng = np.random.default_rng(0)
    for modality in ("ct", "mr"):
        for i in range(2):
            array = rng.uniform(0, 100, (32, 8, 32)).astype(np.float32)  # 0..100: not HU
            write_volume(Volume(array, modality=modality), tmp_path / modality / f"{modality}-{i}.nii.gz")
    data = f"folder:ct={tmp_path / 'ct'},mr={tmp_path / 'mr'}"
    args = ["train", "--gen", TINY["gen"], "--disc", TINY["disc"], "--data", data, "--size", "32"]
    code = run([*args, "--iters", "1", "--workers", "0", "--out", str(tmp_path / "run")])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 0, err
    for i in range(2):
        assert f"warning: {tmp_path / 'ct' / f'ct-{i}.nii.gz'}: looks like it is not in HU" in err, err
    assert "UserWarning" not in err and "ImtransWarning" not in err


@pytest.mark.slow
def test_demo_run_again_continues_to_a_new_iters(tmp_path, capsys):
    """`imtrans demo --iters N` a second time extends its training instead of ignoring N."""
    assert run(["demo", "--out", str(tmp_path), "--iters", "2"]) == 0
    assert run(["demo", "--out", str(tmp_path), "--iters", "4"]) == 0
    out = capsys.readouterr().out
    assert "continuing" in out and "4 iterations" in out, out
    assert json.loads((tmp_path / "run" / "config.json").read_text())["iters"] == 4
    assert [m["iter"] for m in metrics(tmp_path / "run")][-1] == 4
    scores = json.loads((tmp_path / "scores.json").read_text())  # the table, for scripts and docs
    assert scores["iterations"] == 4 and [s["id"] for s in scores["subjects"]] == ["pair-000", "pair-001"]
    assert set(scores["mean_sd"]) >= {"mae", "psnr", "ssim", "mi"} and scores["preset"] == "paired"
    assert scores["baselines_mean_sd"]["contrast prior"]["mae"][0] > 0
    assert (tmp_path / "subjects.png").stat().st_size > 10_000  # MR, synthetic CT, prior's map, CT, errors
    assert "constant image (must beat)" in out and "noise floor (best possible)" in out
    assert "contrast prior's map, no network" in out
    constant, prior, tissue, again, floor = (
        np.mean([r["mae"] for r in scores["baselines"][k]])
        for k in ("constant image", "contrast prior", "tissue means", "second scan", "noise floor")
    )
    assert constant > 3 * floor and floor < tissue < constant  # the scale the model is read on
    assert 1.2 * floor < again < 1.6 * floor  # two independent noises differ by about sqrt(2) of one
    assert (
        tissue < prior < constant
    )  # the inverse-rank map gets fat, muscle and cortex right, not bone marrow


def test_extending_a_decayed_run_follows_the_new_schedule(tmp_path, capsys, caplog):
    """A run whose rate reached 0 learns again: lr at step 4 of 8 with the decay from 4 is the base rate."""
    path = tmp_path / "run"
    train(TrainConfig(**TINY, iters=4), out=path)  # decays from 2 to 0 at 4
    assert metrics(path)[-1]["lr"] == 0.0
    with caplog.at_level("INFO", logger="imtrans"):
        result = train(None, resume=path, changes={"iters": 8, "log_every": 1})
    assert result.step == 8
    assert "learning rate at iteration 4: 0.00e+00 -> 2.00e-04" in caplog.text
    rates = {m["iter"]: m["lr"] for m in metrics(path)}
    assert rates[5] == pytest.approx(2e-4 * 0.75) and rates[8] == 0.0


def test_a_v0_1_run_with_keep_0_still_resumes(finished, tmp_path):
    from imtrans_core.training.rundir import KEEP_ALL, RunDir

    run_dir = tmp_path / "old"
    run_dir.mkdir()
    stored = json.loads((finished / "config.json").read_text())
    (run_dir / "config.json").write_text(json.dumps({**stored, "keep": 0}))
    assert RunDir.open(run_dir).config.keep == KEEP_ALL


def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(finished, tmp_path):
    from imtrans_core.training.checkpoint import load_latest

    run_dir = tmp_path / "copy"
    (run_dir / "checkpoints").mkdir(parents=True)
    good = finished / "checkpoints" / "ckpt-00000004.pt"
    (run_dir / "checkpoints" / "ckpt-00000004.pt").write_bytes(good.read_bytes())
    (run_dir / "checkpoints" / "ckpt-00000008.pt").write_bytes(good.read_bytes()[:200])  # cut short
    assert load_latest(run_dir)["step"] == 4


def test_the_contrast_prior_baseline_maps_bright_mr_dark_without_a_network():
    """The map --loss prior starts from, applied to a test MR: inverse rank, fitted on the pools alone."""
    import imtrans_core as ic
    from imtrans_core.demo import baseline_rows, contrast_prior_map

    spec = "phantom:n_ct=3,n_mr=3,n_paired=1,size=64,slices=8"
    subject = ic.DATASETS.build(spec).paired[0].load()
    sct = contrast_prior_map(spec)(subject["mr"]).array
    mr, body = subject["mr"].array, subject["mask"].array > 0
    order = np.argsort(mr[body])
    assert np.all(np.diff(sct[body][order]) <= 1e-3)  # the brighter the MR, the darker the CT
    assert sct[body & (mr > np.percentile(mr[body], 90))].mean() < -50  # fat, bright on T1, at fat's HU
    assert (sct[mr == 0] == -1000).all()  # air stays air
    seen = []

    def extra(image, volumes):  # each reference image once, with its subject's volumes
        seen.append(image)
        return {"hu_mean": float(image.array[volumes["mask"].array > 0].mean())}

    rows = baseline_rows(spec, extra=extra)
    assert len(rows["contrast prior"]) == 1
    assert rows["contrast prior"][0]["mae"] < rows["constant image"][0]["mae"]
    assert rows["contrast prior"][0]["hu_mean"] == pytest.approx(sct[body].mean(), abs=1e-3)
    assert len(seen) == 4 and "hu_mean" not in rows["constant image"][0]  # the images, not the constant
    assert contrast_prior_map(spec.replace("n_ct=3,n_mr=3", "n_ct=0,n_mr=0")) is None  # no pools, no map
