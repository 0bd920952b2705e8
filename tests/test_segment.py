"""The segmentation application (§3.2): structures, train / predict / evaluate plumbing, Dice, errors.

Fast tests run on tiny hand-made volumes and a tiny random "CycleGAN" checkpoint; the slow test
trains on the hip phantom and checks that the Dice of pelvis and femur is well above chance.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import imtrans_core as ic
from imtrans_core.cli import run
from imtrans_core.data.io import read_volume, write_volume
from imtrans_core.data.volume import Volume
from imtrans_core.errors import ImtransError
from imtrans_segment import train as segtrain
from imtrans_segment.config import SegmentConfig
from imtrans_segment.data import from_folders, prepare
from imtrans_segment.evaluate import evaluate
from imtrans_segment.model import segmentation_loss
from imtrans_segment.predict import Segmenter, predict
from imtrans_segment.structures import PAPER_STRUCTURES, Structure, class_lut, class_values, resolve

NAMES = {
    "pelvis": 1,
    "sacrum": 2,
    "femur_left": 3,
    "femur_right": 4,
    "gluteus_medius": 6,
    "gluteus_minimus": 7,
}
TINY_GEN = "resnet9:ngf=4,n_blocks=1"
TINY_NET = "unet:base=4,depth=1"


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("IMTRANS_CACHE", str(tmp_path / "cache"))


# ----------------------------------------------------------------------------- helpers


def fake_cyclegan(folder: Path, gen: str = TINY_GEN, orientation: str = "coronal") -> Path:
    """A run directory with one checkpoint holding random G_CT and G_MR, as `imtrans train` writes it."""
    torch.manual_seed(0)
    models = {name: ic.GENERATORS.build(gen).state_dict() for name in ("g_ct", "g_mr")}
    state = {"models": models, "config": {"gen": gen, "orientation": orientation}, "step": 0}
    (folder / "checkpoints").mkdir(parents=True)
    torch.save(state, folder / "checkpoints" / "ckpt-00000000.pt")
    return folder


def anatomy(shift: int = 0) -> np.ndarray:
    """A label map [i, j, k] = (LR 20, AP 5, SI 24): pelvis block, two femurs, a gluteus medius."""
    labels = np.zeros((20, 5, 24), dtype=np.uint8)
    labels[2:18, :, 14 + shift : 20 + shift] = 1  # pelvis
    labels[3:7, :, 3:12] = 3  # femur_left
    labels[13:17, :, 3:12] = 4  # femur_right
    labels[8:12, 1:4, 4:10] = 6  # gluteus medius
    return labels


def volumes(labels: np.ndarray, geometry: dict | None = None) -> tuple[Volume, Volume, Volume]:
    """CT (HU), MR and labels on one grid: bone bright in CT, dark in MR; muscle grey; air around."""
    body = np.zeros(labels.shape, bool)
    body[1:19, :, 1:23] = True
    ct = np.where(body, 40.0, -1000.0)
    ct[np.isin(labels, (1, 3, 4))] = 700.0
    mr = np.where(body, 60.0, 0.0)
    mr[np.isin(labels, (1, 3, 4))] = 8.0
    mr[labels == 6] = 35.0
    geometry = geometry or {}
    return (
        Volume(ct.astype(np.int16), modality="ct", **geometry),
        Volume(mr.astype(np.float32), modality="mr", **geometry),
        Volume(labels, modality="labels", **geometry),
    )


def labelled_folders(root: Path, n: int = 2) -> tuple[Path, Path]:
    for i in range(n):
        ct, _, labels = volumes(anatomy(shift=i))
        write_volume(ct, root / "ct" / f"case{i}.nii.gz")
        write_volume(labels, root / "labels" / f"case{i}.nii.gz")
    (root / "labels" / "labels.json").write_text(json.dumps({"labels": NAMES}))
    return root / "ct", root / "labels"


ODD_GRID = {
    "spacing": (1.5, 2.0, 1.25),
    "origin": (10.0, -20.0, 30.0),
    "direction": np.array([[-1.0, 0, 0], [0, 0, 1.0], [0, 1.0, 0]]),  # i runs right, j superior, k posterior
}


def tiny_config(root: Path, **changes) -> SegmentConfig:
    ct, labels = labelled_folders(root)
    values = dict(
        cyclegan=str(fake_cyclegan(root / "cg")),
        ct=str(ct),
        labels=str(labels),
        structures=["pelvis,femur"],
        net=TINY_NET,
        iters=3,
        size=16,
        batch=2,
        amp="off",
        device="cpu",
        log_every=1,
        ckpt_every=2,
    )
    return SegmentConfig(**{**values, **changes})


# ----------------------------------------------------------------------------- structures


def test_structures_from_names_groups_and_values():
    assert [s.name for s in resolve(None, NAMES)] == list(PAPER_STRUCTURES)
    femur = resolve("femur", NAMES)[0]
    assert femur == Structure("femur", (3, 4)) and femur.value == 3  # femur_left + femur_right
    assert resolve("bone", NAMES, {"bone": ["pelvis", "sacrum"]}) == [Structure("bone", (1, 2))]


def test_structures_explicit_values_and_all():
    assert resolve("pelvis:1,femur:3+4,7", {}) == [
        Structure("pelvis", (1,)),
        Structure("femur", (3, 4)),
        Structure("label7", (7,)),
    ]
    assert [s.name for s in resolve("all", NAMES)] == list(NAMES)


@pytest.mark.parametrize(
    ("text", "names", "message"),
    [
        ("femr", NAMES, "'femr' is not a label of the data; known: pelvis, sacrum"),
        ("pelvis", {}, "the labels have no names"),
        ("femur,femur_left", NAMES, "label value 3 belongs to both 'femur' and 'femur_left'"),
        ("femur:3+x", NAMES, "cannot read 'femur:3+x'"),
        ("pelvis:0", NAMES, "must be > 0"),
    ],
)
def test_structures_errors_are_one_line(text, names, message):
    with pytest.raises(ImtransError, match=re.escape(message)) as err:
        resolve(text, names)
    assert "\n" not in str(err.value)


def test_classes_map_to_values_and_back():
    structures = resolve("pelvis,femur", NAMES)
    labels = np.array([0, 1, 2, 3, 4, 6])
    classes = class_lut(structures, labels)
    assert classes.tolist() == [0, 1, 0, 2, 2, 0]
    assert class_values(structures)[classes].tolist() == [0, 1, 0, 3, 3, 0]


# ----------------------------------------------------------------------------- training


def test_sample_batch_is_deterministic_and_pads_labels_with_background():
    from imtrans_segment.data import TrainingVolume

    n = 3
    volume = TrainingVolume(
        "v",
        np.full((n, 8, 10), 0.5, np.float16),
        np.zeros((n, 8, 10), np.float16),
        np.ones((n, 8, 10), np.uint8),
        np.arange(n),
    )
    x, y = segtrain.sample_batch([volume], 12, 2, seed=0, step=5)
    assert (
        x.shape == (2, 2, 12, 12) and x.dtype == np.float32 and y.shape == (2, 12, 12) and y.dtype == np.int64
    )
    assert set(np.unique(y)) == {0, 1} and (y[x[:, 0] == -1] == 0).all() and (y[x[:, 0] == 0.5] == 1).all()
    x2, y2 = segtrain.sample_batch([volume], 12, 2, seed=0, step=5)
    assert np.array_equal(x, x2) and np.array_equal(y, y2)


def test_loss_is_cross_entropy_plus_optional_dice():
    logits = torch.zeros(1, 3, 4, 4)
    target = torch.zeros(1, 4, 4, dtype=torch.long)
    terms = segmentation_loss(logits, target)
    assert set(terms) == {"ce", "total"} and terms["ce"].item() == pytest.approx(np.log(3))
    terms = segmentation_loss(logits, target, dice_weight=0.5)
    assert terms["total"].item() == pytest.approx(np.log(3) + 0.5 * terms["dice"].item())


def test_synthetic_mr_is_computed_once_and_cached(tmp_path):
    from imtrans_core.inference.backends import TorchBackend

    ct_dir, labels_dir = labelled_folders(tmp_path)
    items, names, _ = from_folders(ct_dir, labels_dir)
    assert names == NAMES and [i.id for i in items] == ["case0", "case1"]
    backend = TorchBackend.from_model(fake_cyclegan(tmp_path / "cg"), "ct2mr", "cpu")
    first = prepare(items, resolve("pelvis,femur", names), backend, "key", "coronal", progress=False)
    assert len(list((tmp_path / "cache" / "segment").glob("*.npy"))) == 2

    class Refuses:
        direction, source, target, orientation = "ct2mr", "ct", "mr", "coronal"

        def __call__(self, batch):
            raise AssertionError("the cache should have answered")

    again = prepare(items, resolve("pelvis,femur", names), Refuses(), "key", "coronal", progress=False)
    assert np.array_equal(first[0].mr, again[0].mr)
    # coronal slices: (AP, SI, LR)
    assert first[0].ct.shape == first[0].mr.shape == first[0].classes.shape == (5, 24, 20)
    assert set(np.unique(first[0].classes)) == {0, 1, 2}


def _unet(run: Path, step: int) -> dict[str, torch.Tensor]:
    path = run / "checkpoints" / f"ckpt-{step:08d}.pt"
    return torch.load(path, weights_only=True)["models"]["unet"]


class StopAt:
    """A hook plugin that sends this process Ctrl-C after iteration ``step``: the engine's stop request."""

    def __init__(self, step: int):
        self.step = step

    @ic.hookimpl
    def imtrans_step_end(self, run, step, metrics):
        if step == self.step:
            os.kill(os.getpid(), signal.SIGINT)


def test_train_runs_on_the_engine_with_hooks_loggers_and_exact_resume(tmp_path):
    config = tiny_config(tmp_path, iters=4, log=["tensorboard"])
    result = segtrain.train(config, out=tmp_path / "full", progress=False)
    assert list((tmp_path / "full" / "tensorboard").glob("events.out.tfevents.*"))
    assert (result.step, result.status) == (4, "finished")
    meta = json.loads((tmp_path / "full" / "segment.json").read_text())
    assert meta["structures"] == [{"name": "pelvis", "values": [1]}, {"name": "femur", "values": [3, 4]}]
    assert meta["classes"] == ["background", "pelvis", "femur"] and meta["orientation"] == "coronal"
    assert meta["net"] == "unet:in_ch=2,out_ch=3,base=4,depth=1,norm=instance,final=none"
    assert meta["cyclegan"] == str((tmp_path / "cg").resolve()) and meta["status"] == "finished"
    log = [json.loads(line) for line in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert [line["iter"] for line in log] == [1, 2, 3, 4] and {"ce", "total", "lr"} <= set(log[0])
    assert (tmp_path / "full" / "samples" / "iter-00000004.png").is_file()  # the samples logger

    ic.plugins.add_plugin(StopAt(3), "stop-at-3")
    try:
        cut = segtrain.train(config, out=tmp_path / "cut", progress=False)
    finally:
        ic.plugins.manager.unregister(name="stop-at-3")
    assert (cut.step, cut.status) == (3, "interrupted")
    assert json.loads((tmp_path / "cut" / "segment.json").read_text())["status"] == "interrupted"
    resumed = segtrain.train(None, resume=tmp_path / "cut", progress=False)
    assert (resumed.step, resumed.status) == (4, "finished")
    a, b = _unet(tmp_path / "full", 4), _unet(tmp_path / "cut", 4)
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ImtransError, match="already holds a segmentation run"):
        segtrain.train(config, out=tmp_path / "full", progress=False)


SEGMENT_SCRIPT = """
    import os, signal, sys
    from pathlib import Path
    import torch
    import imtrans_core as ic
    from imtrans_segment.config import SegmentConfig
    from imtrans_segment.train import train

    out = Path(sys.argv[1])
    class Hooks:
        @ic.hookimpl
        def imtrans_step_end(self, run, step, metrics):
            if step == {kill_at}:
                os.kill(os.getpid(), signal.SIGKILL)

        @ic.hookimpl
        def imtrans_run_end(self, run, status):
            state = {{k: v.state_dict() for k, v in run.networks.items()}}
            torch.save(state, out.parent / f"rank{{os.environ.get('RANK', '0')}}.pt")

    ic.plugins.add_plugin(Hooks(), "hooks")
    if "RANK" in os.environ:  # two ranks on two cores
        torch.set_num_threads(1)
    train(SegmentConfig(**{config}), out=out, progress=False)
"""


def _script(tmp_path: Path, config: SegmentConfig, kill_at: int = 0) -> Path:
    script = tmp_path / "segment_worker.py"
    script.write_text(textwrap.dedent(SEGMENT_SCRIPT.format(config=repr(config.to_dict()), kill_at=kill_at)))
    return script


def test_segment_resume_after_kill_matches_an_uninterrupted_run(tmp_path):
    config = tiny_config(tmp_path, iters=5, ckpt_every=2)
    segtrain.train(config, out=tmp_path / "straight", progress=False)
    killed = tmp_path / "killed"
    proc = subprocess.run(
        [sys.executable, str(_script(tmp_path, config, kill_at=3)), str(killed)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == -9, proc.stderr
    assert sorted(p.name for p in (killed / "checkpoints").iterdir()) == ["ckpt-00000002.pt"]
    assert segtrain.train(None, resume=killed, progress=False).step == 5
    a, b = _unet(tmp_path / "straight", 5), _unet(killed, 5)
    assert all(torch.equal(a[k], b[k]) for k in a)
    iters = [json.loads(line)["iter"] for line in (killed / "metrics.jsonl").read_text().splitlines()]
    assert iters == [1, 2, 3, 4, 5]  # the lines the killed run wrote past its checkpoint were dropped


def test_segment_ddp_two_processes_keep_parameters_identical(tmp_path, run_ranks):
    config = tiny_config(tmp_path, iters=3, ckpt_every=3)
    run_ranks(_script(tmp_path, config), tmp_path / "run")
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True)["unet"] for r in range(2))
    assert all(torch.equal(value, r1[key]) for key, value in r0.items())
    single = segtrain.train(config, out=tmp_path / "single", progress=False)
    assert single.step == 3
    alone = _unet(tmp_path / "single", 3)
    assert not all(torch.equal(value, alone[key]) for key, value in r0.items())  # two ranks: twice the data


# ----------------------------------------------------------------------------- predict


class ThresholdNet(torch.nn.Module):
    """Class 2 where the CT channel is bright, class 1 where the MR channel is bright, else 0."""

    def forward(self, x):
        ct, mr = x[:, :1], x[:, 1:]
        return torch.cat([torch.zeros_like(ct), (mr > 0.5).float(), 2 * (ct > 0.5).float()], dim=1)


def test_segment_maps_classes_to_label_values_on_the_mr_grid():
    _, mr, labels = volumes(anatomy(), ODD_GRID)
    synthetic_ct = mr.with_array(
        np.where(np.isin(labels.array, (3, 4)), 350.0, -150.0).astype(np.float32), "ct"
    )
    structures = resolve("pelvis,femur", NAMES)
    segmenter = Segmenter(ThresholdNet(), structures, "coronal", {}, torch.device("cpu"), None)
    out = segmenter.segment(mr, synthetic_ct, batch=2)
    assert out.same_grid(mr) and out.array.dtype == np.uint8 and out.modality == "labels"
    # class 2 (femur) is written as femur_left's value 3; class 1 (pelvis) as 1 where the MR is bright
    expected = np.where(np.isin(labels.array, (3, 4)), 3, np.where(mr.array == 60.0, 1, 0))
    assert np.array_equal(out.array, expected)


def test_predict_and_evaluate_through_the_cli(tmp_path):
    config = tiny_config(tmp_path)
    assert (
        cli(
            f"segment train --cyclegan {config.cyclegan} --ct {config.ct} --labels {config.labels} "
            f"--structures pelvis,femur --net {TINY_NET} --iters 2 --size 16 --batch 2 --amp off --device cpu "
            f"--out {tmp_path / 'seg'}"
        )
        == 0
    )
    _, mr, labels = volumes(anatomy(), ODD_GRID)
    write_volume(mr, tmp_path / "mr" / "subject.nii.gz")
    write_volume(labels, tmp_path / "ref" / "subject.nii.gz")
    assert (
        cli(
            f"segment predict {tmp_path / 'seg'} {tmp_path / 'mr'} --out {tmp_path / 'pred'} "
            f"--ct-out {tmp_path / 'sct'} --device cpu --amp off"
        )
        == 0
    )
    pred = read_volume(tmp_path / "pred" / "subject.nii.gz")
    assert pred.same_grid(read_volume(tmp_path / "mr" / "subject.nii.gz"))
    assert pred.array.dtype == np.uint8 and set(np.unique(pred.array)) <= {0, 1, 3}
    assert read_volume(tmp_path / "sct" / "subject.nii.gz").same_grid(pred)
    written = json.loads((tmp_path / "pred" / "labels.json").read_text())
    assert written["labels"] == {"pelvis": 1, "femur": 3} and written["structures"][1]["values"] == [3, 4]
    assert (
        cli(
            f"segment evaluate {tmp_path / 'pred'} {tmp_path / 'ref'} --json {tmp_path / 'dice.json'} "
            f"--plot {tmp_path / 'dice.png'}"
        )
        == 0
    )
    report = json.loads((tmp_path / "dice.json").read_text())
    assert set(report["summary"]) == {"pelvis", "femur"} and report["rows"][0]["id"] == "subject"
    assert (tmp_path / "dice.png").stat().st_size > 1000


def test_a_ct_only_segmenter_learns_from_ct_alone_and_segments_any_model_s_synthetic_ct(tmp_path, capsys):
    """``--channels ct``: no CycleGAN to train; one input channel; the MR's own values change nothing."""
    config = tiny_config(tmp_path)
    base = (
        f"segment train --ct {config.ct} --labels {config.labels} --structures pelvis,femur --net {TINY_NET}"
    )
    base += " --iters 2 --size 16 --batch 2 --amp off --device cpu --channels ct"
    message = one_line_error(f"{base} --cyclegan {config.cyclegan} --out {tmp_path / 'x'}", capsys)
    assert "--channels ct" in message and "leave it out" in message
    assert cli(f"{base} --out {tmp_path / 'seg'}") == 0
    capsys.readouterr()
    meta = json.loads((tmp_path / "seg" / "segment.json").read_text())
    assert meta["channels"] == ["ct"] and meta["cyclegan"] == "" and meta["orientation"] == "coronal"
    assert "in_ch=1" in meta["net"]
    segmenter = Segmenter.load(tmp_path / "seg", "cpu", "off")
    _, mr, labels = volumes(anatomy(), ODD_GRID)
    synthetic_ct = mr.with_array(
        np.where(np.isin(labels.array, (1, 3, 4)), 700.0, 40.0).astype(np.float32), "ct"
    )
    other_mr = mr.with_array(np.zeros_like(mr.array))
    assert np.array_equal(
        segmenter.segment(mr, synthetic_ct).array, segmenter.segment(other_mr, synthetic_ct).array
    )
    write_volume(mr, tmp_path / "mr" / "subject.nii.gz")
    predict_ = f"segment predict {tmp_path / 'seg'} {tmp_path / 'mr'} --out {tmp_path / 'pred'} --device cpu"
    assert "a CT-only segmenter; pass --cyclegan MODEL" in one_line_error(predict_, capsys)
    assert cli(f"{predict_} --cyclegan {config.cyclegan}") == 0
    assert read_volume(tmp_path / "pred" / "subject.nii.gz").same_grid(mr)


# ----------------------------------------------------------------------------- evaluate


def write_pair(root: Path, name: str, pred: np.ndarray, ref: np.ndarray) -> None:
    write_volume(Volume(pred, modality="labels"), root / "pred" / f"{name}.nii.gz")
    write_volume(Volume(ref, modality="labels"), root / "ref" / f"{name}.nii.gz")


def test_dice_per_structure_with_mean_and_sample_sd(tmp_path):
    ref = np.zeros((4, 4, 4), np.uint8)
    ref[:2] = 1  # pelvis: 32 voxels
    ref[2, :2], ref[3, :2] = 3, 4  # femur left + right: 16 voxels
    perfect = np.where(np.isin(ref, (3, 4)), 3, ref).astype(np.uint8)  # femur written as 3
    half = perfect.copy()
    half[1] = 0  # pelvis 16 of 32: Dice 2*16/(16+32) = 2/3
    write_pair(tmp_path, "a", perfect, ref)
    write_pair(tmp_path, "b", half, ref)
    labels = {
        "labels": {"pelvis": 1, "femur": 3},
        "structures": [{"name": "pelvis", "values": [1]}, {"name": "femur", "values": [3, 4]}],
    }
    (tmp_path / "pred" / "labels.json").write_text(json.dumps(labels))
    rows, structures = evaluate(tmp_path / "pred", tmp_path / "ref")
    assert [s.name for s in structures] == ["pelvis", "femur"]
    assert [(r["id"], r["pelvis"], r["femur"]) for r in rows] == [
        ("a", 1.0, 1.0),
        ("b", pytest.approx(2 / 3), 1.0),
    ]
    assert cli(f"segment evaluate {tmp_path / 'pred'} {tmp_path / 'ref'} --json {tmp_path / 'd.json'}") == 0
    summary = json.loads((tmp_path / "d.json").read_text())["summary"]["pelvis"]
    assert summary["mean"] == pytest.approx(5 / 6) and summary["sd"] == pytest.approx(
        np.std([1, 2 / 3], ddof=1)
    )
    # one file each; a name that labels.json knows, and explicit values
    rows, _ = evaluate(tmp_path / "pred" / "a.nii.gz", tmp_path / "ref" / "a.nii.gz", "femur")
    assert [r["femur"] for r in rows] == [1.0]
    rows, _ = evaluate(tmp_path / "pred" / "b.nii.gz", tmp_path / "ref" / "b.nii.gz", "bone:1+3+4")
    assert rows[0]["bone"] == pytest.approx(2 * 32 / (32 + 48))


def cli(command: str) -> int:
    """``imtrans <command>`` in-process (paths must not hold spaces); the exit status."""
    return run(command.split())


def one_line_error(command: str, capsys) -> str:
    assert cli(command) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "Traceback" not in err
    return err


def test_bad_inputs_give_one_line_errors(tmp_path, capsys):
    ref = np.zeros((4, 4, 4), np.uint8)
    ref[:2] = 1
    pred = ref.copy()
    pred[3] = 9  # a value the segmentation never writes
    write_pair(tmp_path, "a", pred, ref)
    (tmp_path / "pred" / "labels.json").write_text(json.dumps({"labels": {"pelvis": 1, "femur": 3}}))
    evaluate_ = f"segment evaluate {tmp_path / 'pred'} {tmp_path / 'ref'}"
    message = one_line_error(evaluate_, capsys)
    assert "label value(s) 9 are not among the segmentation's labels (1, 3)" in message
    write_pair(tmp_path, "a", ref, ref)
    assert "none of the label values 5" in one_line_error(f"{evaluate_} --structures x:5", capsys)
    assert "'gluteus' is not a label" in one_line_error(f"{evaluate_} --structures gluteus", capsys)
    write_volume(Volume(np.full((4, 4, 4), 0.5, np.float32)), tmp_path / "frac" / "a.nii.gz")
    message = one_line_error(f"segment evaluate {tmp_path / 'pred'} {tmp_path / 'frac'}", capsys)
    assert "fractional values (0.5)" in message
    (tmp_path / "pred" / "labels.json").unlink()
    assert "no labels.json" in one_line_error(evaluate_, capsys)
    nope = tmp_path / "nope"
    assert "no such segmentation run" in one_line_error(
        f"segment predict {nope} {tmp_path} --out {nope}", capsys
    )
    assert "not a segmentation run" in one_line_error(
        f"segment predict {tmp_path} {tmp_path} --out {nope}", capsys
    )
    assert "--channels ct for a CT-only" in one_line_error(
        f"segment train --data phantom --out {nope}", capsys
    )
    assert "no such run directory" in one_line_error(
        f"segment train --cyclegan {nope} --data phantom", capsys
    )


def test_predict_without_the_cyclegan_run_says_what_to_do(tmp_path):
    config = tiny_config(tmp_path, iters=1)
    segtrain.train(config, out=tmp_path / "seg", progress=False)
    _, mr, _ = volumes(anatomy())
    write_volume(mr, tmp_path / "mr.nii.gz")
    shutil.rmtree(tmp_path / "cg")
    with pytest.raises(ImtransError, match="pass --cyclegan"):
        predict(tmp_path / "seg", [tmp_path / "mr.nii.gz"], tmp_path / "out", progress=False)


# ----------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_phantom_segmentation_through_synthetic_ct(tmp_path, capsys):
    """CycleGAN (a short run) -> U-Net on labelled phantom CT -> MR of other phantom subjects -> Dice.

    Two ways in at test time: the full pipeline (MR + synthetic CT from G_CT) and the same
    network given each subject's real CT instead of a synthetic one (a perfect G_CT). The second
    checks the U-Net and the predict path; the first is only as good as a one-minute CycleGAN's
    synthetic CT, so it has to beat chance (a structure's share of the voxels, about 0.05) clearly.
    """
    from imtrans_core.training import TrainConfig
    from imtrans_core.training import train as train_cyclegan
    from imtrans_metrics.overlap import dice

    started = time.perf_counter()
    cyclegan = TrainConfig(
        gen="resnet9:ngf=16,n_blocks=4",
        disc="patchgan:ndf=16",
        loss=["gc:0.3"],
        amp="auto",
        workers=0,
        data="phantom:n_ct=6,n_mr=6,n_paired=0,size=64,slices=8",
        size=64,
        iters=800,
        log_every=200,
        ckpt_every=800,
        sample_every=800,
    )
    train_cyclegan(cyclegan, out=tmp_path / "cg")
    cyclegan_s = time.perf_counter() - started
    labelled = "phantom:n_ct=0,n_mr=0,n_paired=8,size=64,slices=8"
    assert (
        cli(
            f"segment train --cyclegan {tmp_path / 'cg'} --data {labelled} --net unet:base=16,depth=3 "
            f"--iters 500 --lr 1e-3 --size 64 --batch 4 --dice-loss 1 --out {tmp_path / 'seg'}"
        )
        == 0
    )
    segment_s = time.perf_counter() - started - cyclegan_s
    test = ic.DATASETS.build("phantom:n_ct=0,n_mr=0,n_paired=3,size=64,slices=8,seed=7")  # other subjects
    segmenter = Segmenter.load(tmp_path / "seg", "cpu")
    oracle = []
    for subject in test.paired:
        loaded = subject.load()
        write_volume(loaded["mr"], tmp_path / "mr" / f"{subject.id}.nii.gz")
        write_volume(loaded["labels"], tmp_path / "ref" / f"{subject.id}.nii.gz")
        labels = segmenter.segment(loaded["mr"], loaded["ct"])
        oracle.append(
            dice(labels.array, loaded["labels"].array, {s.name: s.values for s in segmenter.structures})
        )
    assert cli(f"segment predict {tmp_path / 'seg'} {tmp_path / 'mr'} --out {tmp_path / 'pred'}") == 0
    assert (
        cli(f"segment evaluate {tmp_path / 'pred'} {tmp_path / 'ref'} --json {tmp_path / 'dice.json'}") == 0
    )
    summary = json.loads((tmp_path / "dice.json").read_text())["summary"]
    synthetic = {k: summary[k]["mean"] for k in PAPER_STRUCTURES}
    real = {k: float(np.mean([d[k] for d in oracle])) for k in PAPER_STRUCTURES}
    with capsys.disabled():
        print(
            f"\nphantom segmentation: CycleGAN {cyclegan_s:.0f} s (800 it), U-Net {segment_s:.0f} s (500 it), "
            f"total {time.perf_counter() - started:.0f} s"
        )
        for name, scores in (("MR + synthetic CT", synthetic), ("MR + real CT", real)):
            print(f"  Dice, {name}: " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()))
    assert real["pelvis"] > 0.7 and real["femur"] > 0.7
    assert synthetic["pelvis"] > 0.25 and synthetic["femur"] > 0.1
