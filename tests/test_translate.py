"""imtrans translate: geometry kept exactly, the window round trip, backends, the CLI on a tiny run."""

from __future__ import annotations

import inspect
import json
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import imtrans_core as ic
from imtrans_core.cli import run
from imtrans_core.data.contract import InputContract
from imtrans_core.data.io import read_volume, write_volume
from imtrans_core.data.slices import Plane
from imtrans_core.data.sources import PairedSubject, VolumePool, VolumeSource
from imtrans_core.data.volume import Volume
from imtrans_core.errors import ImtransError, ImtransWarning
from imtrans_core.inference.backends import TorchBackend
from imtrans_core.inference.jobs import plan_jobs, translate_files
from imtrans_core.inference.modality import check_source
from imtrans_core.inference.translate import translate_volume
from imtrans_core.onnx.choose import make_backend

TINY = dict(
    gen="resnet9:ngf=8,n_blocks=2",
    disc="patchgan:ndf=8",
    size=64,
    iters=2,
    log_every=1,
    ckpt_every=2,
    workers=0,
)


class Identity(nn.Module):
    """A 'generator' that returns its input: translation then only cuts, windows and reassembles."""

    def __init__(self):
        super().__init__()
        self.shapes: list[tuple[int, ...]] = []

    def forward(self, x):
        self.shapes.append(tuple(x.shape))
        return x


class ColumnRamp(nn.Module):
    """Adds 0.01 * column index: tells where each slice column lands in the output volume."""

    def forward(self, x):
        return x + 0.01 * torch.arange(x.shape[-1], dtype=x.dtype)


def rotation(axis, degrees):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    a = np.deg2rad(degrees)
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k


def oblique(array, modality=""):
    """Non-unit, anisotropic spacing and a direction rotated 20 degrees about an oblique axis."""
    return Volume(
        array,
        spacing=(0.9, 1.7, 2.3),
        origin=(-12.5, 30.25, 7.0),
        direction=rotation((1, 2, 3), 20),
        modality=modality,
    )


@pytest.fixture(autouse=True)
def cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("IMTRANS_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def blob_source(n=2, shape=(48, 8, 40)) -> VolumeSource:
    """A hand-made stand-in for the phantom: an elliptic body with a bright (CT) / dark (MR) bone."""
    i, _, k = np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij")
    body = (i / 0.8) ** 2 + (k / 0.9) ** 2 < 1
    bone = ((i - 0.2) / 0.2) ** 2 + (k / 0.3) ** 2 < 1

    def make(modality, seed):
        rng = np.random.default_rng(seed)
        values = (-1000, 40, 700) if modality == "ct" else (0, 60, 10)
        array = np.choose(body.astype(int) + bone, values).astype(np.float32)
        return Volume(array + rng.normal(0, 5, shape).astype(np.float32), (5.0, 9.5, 5.0), modality=modality)

    return VolumeSource(
        ct=VolumePool([f"ct{n_}" for n_ in range(n)], lambda v: make("ct", int(v[2:]))),
        mr=VolumePool([f"mr{n_}" for n_ in range(n)], lambda v: make("mr", int(v[2:]))),
        paired=[PairedSubject("pair0", lambda: {"ct": make("ct", 9), "mr": make("mr", 9)})],
    )


def data_spec() -> str:
    """The phantom when its plugin registers it, else the blob source above."""
    if "phantom" in ic.DATASETS.names():
        return "phantom:n_ct=2,n_mr=2,n_paired=1,size=64,slices=8"
    if "test_blobs" not in ic.DATASETS.names():
        ic.DATASETS.add("test_blobs", lambda: blob_source())
    return "test_blobs"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from imtrans_core.training import TrainConfig, train

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IMTRANS_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
        result = train(TrainConfig(**TINY, data=data_spec()), out=tmp_path_factory.mktemp("tiny") / "run")
    return result.run_dir


# ----------------------------------------------------------------------------- the engine


def test_identity_mr2ct_keeps_an_oblique_grid_and_maps_the_mr_window_onto_the_ct_window(tmp_path):
    rng = np.random.default_rng(0)
    mr = rng.uniform(0, 120, size=(20, 12, 16)).astype(np.float32)
    write_volume(oblique(mr), tmp_path / "mr.nii.gz")
    volume = read_volume(tmp_path / "mr.nii.gz")
    net = Identity()
    out = translate_volume(volume, TorchBackend(net, "mr2ct", "coronal", "cpu"), batch=5)
    write_volume(out, tmp_path / "sct.nii.gz")
    back = read_volume(tmp_path / "sct.nii.gz")

    assert back.shape == volume.shape == (20, 12, 16)
    assert np.allclose(back.spacing, (0.9, 1.7, 2.3), atol=1e-5)
    assert np.allclose(back.origin, (-12.5, 30.25, 7.0), atol=1e-4)
    assert np.allclose(back.direction, rotation((1, 2, 3), 20), atol=1e-5)
    assert back.same_grid(volume) and out.modality == "ct"
    # independent: MR scaled so that its 99.5th foreground percentile is 100, window [0, 100] -> [-150, 350] HU
    scale = 100.0 / np.percentile(mr[mr > 0], 99.5)
    expected = -150.0 + 5.0 * np.clip(mr * scale, 0, 100)
    assert np.abs(back.array - expected).max() < 1e-3
    # slices went through in batches of 5 (the last one short), each (N, 1, rows, cols)
    plane = Plane.of(volume, "coronal")
    n, rows, cols = (volume.shape[a] for a in plane.axes)
    assert net.shapes == [(5, 1, rows, cols)] * (n // 5) + ([(n % 5, 1, rows, cols)] if n % 5 else [])


def test_identity_ct2mr_gives_the_hu_window_on_the_mr_scale():
    hu = np.random.default_rng(1).uniform(-1100, 1500, size=(10, 7, 9)).astype(np.float32)
    out = translate_volume(oblique(hu, "ct"), TorchBackend(Identity(), "ct2mr", "axial", "cpu"), batch=3)
    assert out.modality == "mr" and out.array.dtype == np.float32
    assert np.abs(out.array - (np.clip(hu, -150, 350) + 150) / 5).max() < 1e-4


@pytest.mark.parametrize("orientation", ["coronal", "axial", "sagittal"])
def test_slice_columns_land_on_the_patients_right_to_left_axis(orientation):
    """The net sees radiological slices: columns run right -> left (coronal, axial) or anterior -> posterior."""
    mr = np.full((12, 10, 8), 50.0, dtype=np.float32)
    mr[:, :, 0] = 100.0  # an inferior slab fixes the MR scale (percentile 100): 50 -> 0.0 on [-1, 1]
    out = translate_volume(Volume(mr), TorchBackend(ColumnRamp(), "mr2ct", orientation, "cpu"))
    hu_per_column = 0.01 * 250  # 0.01 on [-1, 1] is 2.5 HU
    world = {"coronal": 0, "axial": 0, "sagittal": 1}[orientation]  # the column's world axis (L or P)
    steps = np.diff(out.array[:, :, 1:].mean(axis=tuple(a for a in range(3) if a != world)))
    assert np.allclose(steps, hu_per_column, atol=1e-3)  # identity direction: columns ascend along +L / +P


class ChannelOffsets(nn.Module):
    """A 2.5-D 'generator' that adds 0.1 x (c - 1) to channel c: each prediction tells which stack made it."""

    def forward(self, x):
        assert x.shape[1] == 3
        return x + 0.1 * (torch.arange(3, dtype=x.dtype) - 1)[None, :, None, None]


def test_2_5d_predictions_of_each_slice_are_averaged_over_the_stacks_that_hold_it():
    """Slice j is channel 2 of stack j-1, 1 of stack j and 0 of stack j+1: offsets +0.1, 0, -0.1.

    Inside the volume they cancel; the first slice has no stack j-1 (the repeated end slice in
    stack 0 is no prediction of it), so it keeps the -0.1 of stack 1 averaged with the 0 of its
    own: -0.05 on [-1, 1], -2.5 on the MR scale; the last slice +2.5.
    """
    n = 7
    hu = np.random.default_rng(3).uniform(-100, 300, size=(6, n, 5)).astype(np.float32)  # inside the window
    volume = Volume(hu, modality="ct")  # coronal: slices along the second axis
    plain = translate_volume(volume, TorchBackend(Identity(), "ct2mr", "coronal", "cpu"))
    seen = Identity()
    stacks = InputContract("coronal", context=1)
    backend = TorchBackend(nn.Sequential(seen, ChannelOffsets()), "ct2mr", "coronal", "cpu", contract=stacks)
    stacked = translate_volume(volume, backend, batch=3)
    expected = np.zeros(n)
    expected[0], expected[-1] = -2.5, 2.5
    assert np.abs(stacked.array - plain.array - expected[None, :, None]).max() < 1e-4
    assert seen.shapes == [(3, 3, 5, 6), (3, 3, 5, 6), (1, 3, 5, 6)]  # (stacks, slices, superior, left)


def test_bf16_autocast_stays_close_to_fp32(monkeypatch):
    monkeypatch.setattr("imtrans_core.training.precision.cpu_has_fast_bf16", lambda: True)  # even if emulated
    torch.manual_seed(0)
    net = ic.GENERATORS.build("resnet9:ngf=8,n_blocks=1")
    mr = Volume(np.random.default_rng(2).uniform(0, 100, (16, 4, 24)).astype(np.float32))
    fp32 = translate_volume(mr, TorchBackend(net, "mr2ct", "coronal", "cpu", amp="off"))
    bf16 = translate_volume(mr, TorchBackend(net, "mr2ct", "coronal", "cpu", amp="bf16"))
    assert 0 < np.abs(fp32.array - bf16.array).max() < 25  # HU; ~0.04 on [-1, 1] at worst


@pytest.mark.parametrize("units", [True, False])
def test_bf16_on_a_cpu_without_bf16_units_warns_once_and_runs_fp32(monkeypatch, units):
    from imtrans_core.cpu import say_no_bf16_units
    from imtrans_core.training.precision import resolve_amp

    monkeypatch.setattr("imtrans_core.training.precision.cpu_has_fast_bf16", lambda: units)
    say_no_bf16_units.cache_clear()  # once a process: this test must see the first time
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dtype = resolve_amp("bf16", torch.device("cpu"))
        assert resolve_amp("bf16", torch.device("cpu")) == dtype  # a second call says nothing more
        assert resolve_amp("auto", torch.device("cpu")) == dtype  # auto chooses the same by itself
    assert dtype == (torch.bfloat16 if units else None)
    said = [str(w.message) for w in caught if issubclass(w.category, ImtransWarning)]
    if units:
        assert said == []
    else:
        assert len(said) == 1 and said[0].startswith("--amp bf16: this CPU has no bf16 units")
        assert "running in fp32" in said[0] and "\n" not in said[0]


def test_a_model_must_keep_the_batch_shape():
    class Shrink(nn.Module):
        def forward(self, x):
            return x[..., :-1]

    with pytest.raises(ImtransError, match="must map"):
        translate_volume(
            Volume(np.ones((8, 4, 8), np.float32)), TorchBackend(Shrink(), "mr2ct", "coronal", "cpu")
        )


def test_wrong_modality_tag_is_an_error_and_ct_like_intensities_warn():
    ct = Volume(np.full((8, 4, 8), -1000.0, dtype=np.float32), modality="ct")
    with pytest.raises(ImtransError, match=r"tagged CT.*--direction ct2mr"):
        check_source(ct, "mr", "ct.nii.gz")
    with pytest.warns(ImtransWarning, match="tagged CT"):
        check_source(ct, "mr", "ct.nii.gz", strict=False)
    untagged_ct = Volume(np.where(np.arange(256).reshape(8, 4, 8) % 3, 40.0, -1000.0))
    with pytest.warns(ImtransWarning, match="like the air of a CT"):
        check_source(untagged_ct, "mr")
    with pytest.warns(ImtransWarning, match="no negative values"):
        check_source(Volume(np.ones((4, 4, 4))), "ct")
    # an N4-corrected, resampled MR may undershoot a little below 0: no warning
    mr = np.random.default_rng(3).uniform(0, 100, (8, 8, 8))
    mr[0, :, :] = -20.0
    with warnings.catch_warnings():
        warnings.simplefilter("error", ImtransWarning)
        check_source(Volume(mr), "mr")


def test_onnx_backend_missing_is_one_clear_line(monkeypatch, tmp_path):
    monkeypatch.setattr("imtrans_core.onnx.runtime.available", lambda: False)  # onnxruntime not installed
    (tmp_path / "g.onnx").write_bytes(b"")
    with pytest.raises(ImtransError, match="onnx backend not available"):
        make_backend(tmp_path / "g.onnx", backend="onnx")
    with pytest.raises(ImtransError, match="--backend onnx, openvino or auto"):
        make_backend(tmp_path / "g.onnx", backend="torch")


def test_onnx_backend_plugs_in_through_from_file(monkeypatch, tmp_path):
    """The agreed interface: OnnxBackend.from_file(path, device=...) with direction/orientation/source/target."""

    class FakeOnnx:
        direction, source, target, orientation = "ct2mr", "ct", "mr", "axial"

        @classmethod
        def from_file(cls, path, device="auto"):
            return cls()

        def __call__(self, batch):
            return batch

    monkeypatch.setattr("imtrans_core.onnx.runtime.OnnxBackend", FakeOnnx)
    (tmp_path / "g.onnx").write_bytes(b"")
    backend = make_backend(tmp_path / "g.onnx", backend="onnx")
    out = translate_volume(Volume(np.full((6, 5, 4), 100.0, np.float32), modality="ct"), backend)
    assert out.modality == "mr" and np.allclose(out.array, 50.0)
    with pytest.raises(ImtransError, match="is the ct2mr generator, not mr2ct"):
        make_backend(tmp_path / "g.onnx", backend="onnx", direction="mr2ct")


def test_plan_jobs_names_outputs_by_id_and_refuses_clashes(tmp_path):
    for name in ("a", "b"):
        write_volume(Volume(np.zeros((4, 4, 4), np.float32)), tmp_path / "in" / f"{name}.nii.gz")
    write_volume(Volume(np.zeros((4, 4, 4), np.float32)), tmp_path / "other" / "a.mha")
    jobs = plan_jobs([tmp_path / "in"], tmp_path / "out", "mha")
    assert [j.output.name for j in jobs] == ["a.mha", "b.mha"]
    with pytest.raises(ImtransError, match="would both be written"):
        plan_jobs([tmp_path / "in", tmp_path / "other" / "a.mha"], tmp_path / "out")
    with pytest.raises(ImtransError, match="overwrite the input"):
        plan_jobs([tmp_path / "other" / "a.mha"], tmp_path / "other", "mha")


def test_files_stream_one_volume_at_a_time(tmp_path):
    for name, n in (("a", 3), ("b", 5)):
        write_volume(
            Volume(np.random.default_rng(n).uniform(0, 90, (6, n, 4)).astype(np.float32)),
            tmp_path / f"{name}.nii",
        )
    jobs = plan_jobs([tmp_path / "a.nii", tmp_path / "b.nii"], tmp_path / "out")
    seen = []
    results = translate_files(
        jobs,
        TorchBackend(Identity(), "mr2ct", "coronal", "cpu"),
        on_volume=lambda job, n: seen.append((job.input.name, n)),
    )
    first = next(results)  # a generator: the second volume is not read before the first is written
    assert first[1] == "written" and first[0].output.exists() and seen == [("a.nii", 3)]
    assert not jobs[1].output.exists()
    assert [r[1] for r in results] == ["written"] and seen[-1] == ("b.nii", 5)
    again = translate_files(jobs, TorchBackend(Identity(), "mr2ct", "coronal", "cpu"), skip_existing=True)
    assert [r[1] for r in again] == ["skipped", "skipped"]


def test_one_bad_file_never_stops_the_others(tmp_path):
    for name in ("a", "c"):
        volume = Volume(np.random.default_rng(1).uniform(0, 90, (6, 3, 4)).astype(np.float32))
        write_volume(volume, tmp_path / f"{name}.nii")
    (tmp_path / "b.nii").write_text("not a volume")
    jobs = plan_jobs([tmp_path / n for n in ("a.nii", "b.nii", "c.nii")], tmp_path / "out")
    outcomes = list(translate_files(jobs, TorchBackend(Identity(), "mr2ct", "coronal", "cpu")))
    assert [o.status for o in outcomes] == ["written", "failed", "written"]
    assert "b.nii" in outcomes[1].error and jobs[2].output.exists()


def test_translate_and_evaluate_over_a_folder_with_a_truncated_file_do_the_rest_and_exit_1(
    tiny_run, tmp_path, capsys
):
    """The issue's case: a.nii.gz, a truncated b.nii.gz, c.nii.gz: a and c are written, b is named, exit 1."""
    mr = ic.DATASETS.build(data_spec()).mr
    for name, volume in (("a", mr[0]), ("c", mr[1])):
        write_volume(volume, tmp_path / "in" / f"{name}.nii.gz")
    whole = (tmp_path / "in" / "a.nii.gz").read_bytes()
    (tmp_path / "in" / "b.nii.gz").write_bytes(whole[: len(whole) // 2])
    code = run(["translate", str(tiny_run), str(tmp_path / "in"), "--out", str(tmp_path / "sct")])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 1, err
    assert sorted(p.name for p in (tmp_path / "sct").iterdir()) == ["a.nii.gz", "c.nii.gz"]
    assert "1 of 3 volume(s) failed; the others were done:" in err and "b.nii.gz: cannot read it" in err
    (tmp_path / "sct" / "b.nii.gz").write_bytes(whole[: len(whole) // 2])  # a bad prediction among good ones
    args = ["evaluate", str(tmp_path / "sct"), str(tmp_path / "in"), "--json", str(tmp_path / "s.json")]
    code = run(args)
    captured = capsys.readouterr()
    assert code == 1, captured.err
    assert "1 of 3 subject(s) failed" in " ".join(captured.err.split())
    assert [row["id"] for row in json.loads((tmp_path / "s.json").read_text())["rows"]] == ["a", "c"]


class ReflectPadded(torch.nn.Module):
    """Like the ResNet's first layer: reflection padding, which needs slices wider than the pad."""

    def forward(self, x):
        return torch.nn.functional.pad(x, (3, 3, 3, 3), mode="reflect")[..., 3:-3, 3:-3]


def test_a_volume_too_thin_for_the_network_fails_alone(tmp_path):
    mr = np.random.default_rng(2).uniform(0, 90, (8, 3, 8)).astype(np.float32)
    write_volume(Volume(mr), tmp_path / "a.nii")
    write_volume(Volume(mr[:, :, :2]), tmp_path / "thin.nii")  # 8 x 2 slices
    jobs = plan_jobs([tmp_path / "thin.nii", tmp_path / "a.nii"], tmp_path / "out")
    outcomes = list(translate_files(jobs, TorchBackend(ReflectPadded(), "mr2ct", "coronal", "cpu")))
    assert [o.status for o in outcomes] == ["failed", "written"]
    assert "thin.nii: cannot translate it" in outcomes[0].error


# ----------------------------------------------------------------------------- the CLI on a trained run


def test_translate_cli_on_a_tiny_run_keeps_geometry_and_matches_the_python_api(tiny_run, tmp_path, capsys):
    source = ic.DATASETS.build(data_spec())
    mr = source.mr[0]
    mr_oblique = oblique(mr.array, "mr")
    write_volume(mr, tmp_path / "in" / "s1.nii.gz")
    write_volume(mr_oblique, tmp_path / "in" / "s2.mha")
    code = run(
        [
            "translate",
            str(tiny_run),
            str(tmp_path / "in"),
            "--out",
            str(tmp_path / "out"),
            "--batch",
            "3",
            "--device",
            "cpu",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "wrote 2 volume(s)" in out
    for name, original in (("s1", mr), ("s2", mr_oblique)):
        sct = read_volume(tmp_path / "out" / f"{name}.nii.gz")
        assert sct.same_grid(original)
        assert sct.array.min() >= -150.0 - 1e-3 and sct.array.max() <= 350.0 + 1e-3
    expected = translate_volume(
        read_volume(tmp_path / "in" / "s1.nii.gz"), make_backend(tiny_run, device="cpu")
    )
    assert np.allclose(read_volume(tmp_path / "out" / "s1.nii.gz").array, expected.array, atol=1e-3)


def test_translate_cli_ct2mr_and_a_ct_fed_to_mr2ct_warns(tiny_run, tmp_path, capsys):
    ct = ic.DATASETS.build(data_spec()).ct[0]
    write_volume(ct, tmp_path / "ct.nii.gz")
    code = run(
        [
            "translate",
            str(tiny_run),
            str(tmp_path / "ct.nii.gz"),
            "--out",
            str(tmp_path / "smr"),
            "--direction",
            "ct2mr",
            "--device",
            "cpu",
        ]
    )
    assert code == 0, capsys.readouterr().err
    smr = read_volume(tmp_path / "smr" / "ct.nii.gz")
    assert smr.same_grid(ct) and smr.array.min() >= 0.0 and smr.array.max() <= 100.0
    code = run(
        [
            "translate",
            str(tiny_run),
            str(tmp_path / "ct.nii.gz"),
            "--out",
            str(tmp_path / "sct"),
            "--device",
            "cpu",
        ]
    )
    _, err = capsys.readouterr()
    assert code == 0 and "warning:" in err and "--direction ct2mr" in err


def test_translate_cli_errors_are_one_line(tiny_run, tmp_path, capsys):
    code = run(["translate", str(tiny_run), str(tmp_path / "nothing.nii.gz"), "--out", str(tmp_path / "o")])
    _, err = capsys.readouterr()
    assert code == 2 and "nothing.nii.gz: no such file" in err and "Traceback" not in err
    code = run(["translate", str(tmp_path / "norun"), str(tmp_path), "--out", str(tmp_path / "o")])
    assert code == 2


def test_translate_cli_runs_an_exported_onnx_model_like_torch(tiny_run, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    export = pytest.importorskip("imtrans_core.onnx.export")
    export.export_model(tiny_run, tmp_path / "g.onnx", legacy=True, verify_model=False)
    mr = ic.DATASETS.build(data_spec()).mr[1]
    write_volume(oblique(mr.array), tmp_path / "mr.nii.gz")
    args = ["translate", str(tmp_path / "g.onnx"), str(tmp_path / "mr.nii.gz"), "--out", str(tmp_path / "o")]
    code = run([*args, "--backend", "onnx", "--no-resample"])  # the oblique grid's own slices: no empty ones
    _, err = capsys.readouterr()
    assert code == 0, err
    assert "OnnxBackend" in err
    onnx_sct = read_volume(tmp_path / "o" / "mr.nii.gz")
    torch_sct = translate_volume(read_volume(tmp_path / "mr.nii.gz"), make_backend(tiny_run, device="cpu"))
    assert onnx_sct.same_grid(torch_sct) and np.abs(onnx_sct.array - torch_sct.array).max() < 0.05  # HU


@pytest.mark.slow
def test_compiled_bf16_backend_matches_fp32_eager(monkeypatch):
    """The fastest CPU path (torch.compile + bf16) stays within the 2 HU budget of fp32 eager."""
    monkeypatch.setattr("imtrans_core.training.precision.cpu_has_fast_bf16", lambda: True)  # even if emulated
    torch.manual_seed(0)
    net = ic.GENERATORS.build("resnet9:ngf=16,n_blocks=3")
    mr = ic.DATASETS.build("phantom:n_ct=0,n_mr=0,n_paired=1,size=64,slices=8").paired[0].load()["mr"]
    eager = translate_volume(mr, TorchBackend(net, "mr2ct", device="cpu"))
    fast = translate_volume(mr, TorchBackend(net, "mr2ct", device="cpu", amp="bf16", compile_net=True))
    assert np.mean(np.abs(fast.array - eager.array)) < 2.0


def test_a_checkpoint_loads_the_network_it_trained_after_a_default_changed(tmp_path):
    """Every checkpoint stores its networks' resolved specs; inference builds from them, not today's defaults."""
    from imtrans_core.inference.models import checkpoint_of, load_generator
    from imtrans_core.training import TrainConfig, train
    from imtrans_core.training.checkpoint import load_file, save
    from imtrans_core.training.validate import generator_spec

    config = TrainConfig(**{**TINY, "gen": "resnet9:n_blocks=1", "data": data_spec()})
    run_dir = train(config, out=tmp_path / "run").run_dir
    stored = load_file(checkpoint_of(run_dir))["networks"]
    assert set(stored) == {"g_ct", "g_mr", "d_ct", "d_mr"} and "ngf=64" in stored["g_ct"]
    original = ic.GENERATORS.get("resnet9")
    signature = inspect.signature(original, eval_str=True)

    def narrower(*args, **kwargs):
        return original(*args, **kwargs)

    narrower.__signature__ = signature.replace(  # resnet9 as a later release might default it
        parameters=[p.replace(default=16) if p.name == "ngf" else p for p in signature.parameters.values()]
    )
    ic.GENERATORS.add("resnet9", narrower, override=True)
    try:
        assert "ngf=16" in str(generator_spec("resnet9:n_blocks=1"))  # the default did change
        generator = load_generator(run_dir, "ct2mr")
        assert generator.spec == stored["g_mr"] and generator.net(torch.zeros(1, 1, 64, 64)).shape == (
            1,
            1,
            64,
            64,
        )
        old = load_file(checkpoint_of(run_dir))
        del old["networks"]  # a checkpoint without the specs falls back on the options, and today's defaults
        save(tmp_path / "old", 2, old, keep=1)
        with pytest.raises(RuntimeError, match="size mismatch"):
            load_generator(tmp_path / "old")
    finally:
        ic.GENERATORS.add("resnet9", original, override=True)
