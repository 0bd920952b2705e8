"""ONNX export: verified against torch, metadata, precisions, the onnxruntime backend, the standalone example."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

import imtrans_core as ic
from imtrans_core.cli import run
from imtrans_core.data.intensity import CT_WINDOW, MR_WINDOW, MRScaling
from imtrans_core.data.io import read_volume, write_volume
from imtrans_core.data.volume import Volume
from imtrans_core.errors import ImtransError, ImtransWarning
from imtrans_core.inference.backends import TorchBackend
from imtrans_core.inference.models import load_generator
from imtrans_core.inference.translate import translate_on_grid, translate_volume
from imtrans_core.onnx.choose import make_backend
from imtrans_core.onnx.export import METADATA_KEYS, export_model
from imtrans_core.onnx.exported import read_metadata
from imtrans_core.onnx.providers import CPU, loadable_providers, physical_cores, resolve_providers
from imtrans_core.onnx.runtime import OnnxBackend, open_session
from imtrans_core.onnx.sample_data import BODY, sample_data
from imtrans_core.onnx.verify import TOLERANCES, Pair

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "docs" / "examples" / "translate_onnx.py"
PHANTOM = "phantom:n_ct=3,n_mr=3,n_paired=1,size=64,slices=8"


def tiny_run(root: Path, gen: str, context: int = 0) -> Path:
    from imtrans_core.training import TrainConfig, train

    config = TrainConfig(
        gen=gen,
        disc="patchgan:ndf=8",
        data=PHANTOM,
        size=64,
        iters=4,
        log_every=2,
        ckpt_every=4,
        workers=0,
        context=context,
    )
    return train(config, out=root / "run").run_dir


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IMTRANS_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
        yield


@pytest.fixture(scope="module")
def resnet_run(env, tmp_path_factory) -> Path:
    return tiny_run(tmp_path_factory.mktemp("resnet"), "resnet9:ngf=8,n_blocks=2")


@pytest.fixture(scope="module")
def exported(resnet_run, tmp_path_factory):
    """The tiny ResNet's G_CT, exported with the default (dynamo) exporter and fully verified."""
    return export_model(resnet_run, tmp_path_factory.mktemp("onnx") / "mr2ct.onnx")


def mr_volume(index: int = 2) -> Volume:
    return ic.DATASETS.build(PHANTOM).mr[index]


# ----------------------------------------------------------------------------- export and verification


def test_resnet9_exports_to_one_checked_file_that_matches_torch(exported):
    path = exported.path
    onnx.checker.check_model(str(path))
    assert sorted(p.name for p in path.parent.iterdir()) == ["mr2ct.onnx"]  # no .onnx.data beside it
    model = onnx.load(str(path))
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 1, "height", "width"]
    checks = {m.what.split()[0]: m for m in exported.measurements}
    assert {"random", "volume"} <= set(checks) and len(exported.measurements) == 4
    assert all(m.ok and m.max_abs < TOLERANCES["fp32"].max_abs for m in exported.measurements)
    volume = next(m for m in exported.measurements if m.volume)
    assert volume.mean_abs * 250 < 0.5  # HU


def test_unet_exports_through_the_cli_with_json(env, tmp_path, capsys):
    run_dir = tiny_run(tmp_path, "unet:base=8,depth=2")
    out = tmp_path / "unet.onnx"
    code = run(["export", str(run_dir), "--out", str(out), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = json.loads(captured.out)
    assert report["precision"] == "fp32" and all(m["ok"] for m in report["measurements"])
    assert report["metadata"]["generator"].startswith("unet:")
    shapes = [m["what"] for m in report["measurements"]]
    assert "random 1x50x70" in shapes  # a size that is not a multiple of 2**depth


def test_metadata_round_trips_through_onnxruntime(exported, resnet_run):
    import onnxruntime as ort

    session = ort.InferenceSession(str(exported.path), providers=[CPU])
    raw = session.get_modelmeta().custom_metadata_map
    assert set(METADATA_KEYS) <= set(raw)
    meta = {key: json.loads(value) for key, value in raw.items()}
    assert meta == read_metadata(exported.path)
    generator = load_generator(resnet_run, "mr2ct")
    assert meta["direction"] == "mr2ct" and (meta["source"], meta["target"]) == ("mr", "ct")
    assert meta["orientation"] == "coronal" and meta["precision"] == "fp32" and meta["step"] == 4
    assert meta["ct_window"] == [-150.0, 350.0] == meta["target_window"]
    assert meta["source_window"] == [0.0, 100.0]
    assert (
        meta["mr_scaling"]["percentile"] == MRScaling().percentile and meta["mr_scaling"]["target"] == 100.0
    )
    assert meta["input_layout"] == "(N, 1, H, W) float32 in [-1, 1]" and meta["intensity_in_graph"] is False
    assert meta["generator"] == generator.spec and meta["config"]["gen"] == generator.spec
    assert meta["config"]["data"].startswith("phantom:n_ct=3") and meta["imtrans_version"] == ic.__version__
    assert meta["exporter"] == "dynamo" and meta["opset"] >= 18
    assert set(meta["verification"]) == {m.what for m in exported.measurements}


def test_the_last_convolution_is_exported_split_into_rows_then_columns(exported):
    """The network's one convolution to a single channel, 7 x 7, is a 1 x 7 then a one-hot 7 x 1 in the file."""
    import onnx

    convs = [n for n in onnx.load(str(exported.path)).graph.node if n.op_type == "Conv"]
    kernels = [next(list(a.ints) for a in n.attribute if a.name == "kernel_shape") for n in convs]
    assert kernels[-2:] == [[1, 7], [7, 1]] and [7, 7] in kernels[:1]  # the first, 1 -> 64, is whole


def test_two_sizes_and_batches_run_through_one_model(exported, resnet_run):
    backend = OnnxBackend.from_file(exported.path)
    net = load_generator(resnet_run, "mr2ct").net
    rng = np.random.default_rng(1)
    for shape in [(3, 1, 64, 64), (1, 1, 45, 67)]:
        x = rng.uniform(-1, 1, shape).astype(np.float32)
        with torch.inference_mode():
            expected = net(torch.from_numpy(x)).numpy()
        got = backend(x)
        assert got.shape == shape and got.dtype == np.float32
        assert np.abs(got - expected).max() < 1e-4


def test_int8_stays_within_its_stated_bound_on_phantom_slices(resnet_run, tmp_path):
    result = export_model(resnet_run, tmp_path / "int8.onnx", precision="int8", legacy=True, calib_slices=16)
    int8 = [m for m in result.measurements if m.precision == "int8"]
    assert [m.what.split()[0] for m in int8] == ["mr-0002", "volume"]  # images only: noise is uncalibrated
    assert all(m.mean_abs <= TOLERANCES["int8"].mean_abs for m in int8)
    model = onnx.load(str(result.path))
    ops = {n.op_type for n in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert read_metadata(result.path)["precision"] == "int8"
    # independently of the export's own check: translated phantom slices against torch
    with pytest.warns(ImtransWarning, match="runs this int8 file's convolutions dequantized"):
        backend = OnnxBackend.from_file(result.path)
    volume = translate_volume(mr_volume(), backend)
    reference = translate_volume(mr_volume(), TorchBackend(load_generator(resnet_run).net))
    assert np.abs(volume.array - reference.array).mean() <= TOLERANCES["int8"].mean_abs * 250


class AirOffset:
    """A real session whose output is off by ``offset`` wherever its input is air, and exact in the body."""

    def __init__(self, session, offset: float):
        self.session, self.offset = session, offset

    def run(self, names, feeds):
        (x,) = feeds.values()
        (y,) = self.session.run(names, feeds)
        return [y + self.offset * (x[:, :1] <= BODY)]


def test_image_checks_judge_the_body_and_noise_checks_every_voxel(resnet_run, exported):
    pair = Pair(
        load_generator(resnet_run), AirOffset(open_session(exported.path, providers="cpu"), 0.4), False
    )
    stack = sample_data(PHANTOM, "mr", "coronal").volume[:, None]  # (n, 1, H, W), scaled MR
    assert 0.05 < (MR_WINDOW.forward(stack) > BODY).mean() < 0.95  # air and body both
    in_body, everywhere = pair.compare(stack), pair.compare(stack, in_body=False)
    assert in_body[0] < TOLERANCES["fp32"].max_abs  # the offset air does not count
    assert everywhere[0] == pytest.approx(0.4, abs=1e-3) and everywhere[1] > 0.02


def test_fp16_keeps_instance_norm_in_fp32_and_float_io(resnet_run, tmp_path):
    result = export_model(resnet_run, tmp_path / "fp16.onnx", precision="fp16", legacy=True)
    model = onnx.load(str(result.path))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    half = {t.name for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT16}
    assert half, "the conv weights should be fp16"
    norms = [n for n in model.graph.node if n.op_type == "InstanceNormalization"]
    assert norms and not any(name in half for n in norms for name in n.input[1:])
    assert all(m.ok for m in result.measurements)
    assert read_metadata(result.path)["opset"] == 17  # the legacy exporter's


def test_with_intensity_graph_equals_the_windows_around_torch(resnet_run, tmp_path):
    result = export_model(resnet_run, tmp_path / "hu.onnx", with_intensity=True, legacy=True)
    meta = read_metadata(result.path)
    assert meta["intensity_in_graph"] is True and "HU" in meta["output_layout"]
    backend = OnnxBackend.from_file(result.path)
    net = load_generator(resnet_run).net
    rng = np.random.default_rng(2)
    raw = rng.uniform(-20, 120, (2, 1, 48, 52)).astype(np.float32)  # scaled MR, partly outside [0, 100]
    hu = backend.run(raw)
    with torch.inference_mode():
        expected = CT_WINDOW.inverse(net(torch.from_numpy(MR_WINDOW.forward(raw))).numpy())
    assert np.abs(hu - expected).max() < 0.25  # HU: 1e-3 on [-1, 1]
    assert hu.min() >= -150 and hu.max() <= 350
    # the backend still speaks [-1, 1], like any other
    x = MR_WINDOW.forward(raw)
    with torch.inference_mode():
        assert np.abs(backend(x) - net(torch.from_numpy(x)).numpy()).max() < 1e-4


def test_onnx_backend_translates_a_volume_like_the_torch_backend(exported, resnet_run):
    volume = mr_volume()
    backend = make_backend(exported.path, backend="onnx")
    assert isinstance(backend, OnnxBackend) and backend.providers == [CPU]
    onnx_ct = translate_volume(volume, backend, batch=3)
    torch_ct = translate_volume(volume, make_backend(resnet_run, device="cpu"), batch=3)
    assert onnx_ct.same_grid(torch_ct) and onnx_ct.modality == "ct"
    assert np.abs(onnx_ct.array - torch_ct.array).mean() < 0.5  # HU, the fp32 tolerance
    assert np.abs(onnx_ct.array - torch_ct.array).max() < 0.25


def cpu_runs_bf16() -> bool:
    """Whether OpenVINO's CPU plugin has bf16 units (AMX or AVX-512 BF16); elsewhere it keeps f32."""
    from imtrans_core.onnx.openvino import on_openvino_thread

    openvino = pytest.importorskip("openvino")
    return "BF16" in on_openvino_thread(openvino.Core().get_property, "CPU", "OPTIMIZATION_CAPABILITIES")


@pytest.mark.parametrize("precision, mean_hu", [("f32", 0.01), ("bf16", 3.0)])
def test_openvino_runs_the_same_file_exactly_in_f32_and_within_hu_in_bf16(exported, precision, mean_hu):
    pytest.importorskip("openvino")
    from imtrans_core.onnx.openvino import OpenVinoBackend

    if precision == "bf16" and not cpu_runs_bf16():
        pytest.skip("this CPU has no bf16 units (neither AMX nor AVX-512 BF16): OpenVINO runs f32")
    volume = mr_volume()
    reference = translate_volume(volume, make_backend(exported.path, backend="onnx"), batch=3).array
    backend = make_backend(exported.path, backend="openvino", precision=precision)
    assert isinstance(backend, OpenVinoBackend) and backend.runs_in == precision
    assert backend.threads == physical_cores() and backend.direction == "mr2ct"
    error = np.abs(translate_volume(volume, backend, batch=3).array - reference)
    assert error.mean() < mean_hu
    assert precision == "f32" or error.max() > 0.01  # bf16 is not f32: the hint reached the compiler


@pytest.mark.parametrize("units", [True, False])
def test_openvino_is_asked_for_bf16_only_where_the_cpu_has_bf16_units(exported, monkeypatch, units):
    """The rule torch's --amp follows: --precision bf16 without bf16 units warns once and compiles f32."""
    pytest.importorskip("openvino")
    import warnings

    from imtrans_core.cpu import say_no_bf16_units
    from imtrans_core.errors import ImtransWarning

    monkeypatch.setattr("imtrans_core.onnx.openvino.cpu_has_fast_bf16", lambda: units)
    say_no_bf16_units.cache_clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        backend = make_backend(exported.path, backend="openvino", precision="bf16")
    said = [str(w.message) for w in caught if issubclass(w.category, ImtransWarning)]
    if units:  # asked for bf16: what the CPU plugin then runs is the test above's question
        assert said == []
    else:
        assert backend.runs_in == "f32" and len(said) == 1
        assert (
            said[0].startswith("--precision bf16: this CPU has no bf16 units")
            and "running in fp32" in said[0]
        )


def test_openvino_keeps_f32_where_the_cpu_has_no_bf16_units(exported):
    pytest.importorskip("openvino")
    if cpu_runs_bf16():
        pytest.skip("this CPU has bf16 units: the bf16 hint is honoured (the test above)")
    backend = make_backend(exported.path, backend="openvino", precision="bf16")
    assert backend.runs_in == "f32"


def test_openvino_queues_the_slices_of_a_batch_over_its_streams_and_keeps_the_order(exported):
    pytest.importorskip("openvino")
    from imtrans_core.onnx.openvino import OpenVinoBackend

    backend = OpenVinoBackend.from_file(exported.path, precision="f32", threads=2)
    assert backend.streams == 2 and "2 threads in 2 streams" in repr(backend)
    batch = np.random.default_rng(0).uniform(-1, 1, (5, 1, 32, 32)).astype(np.float32)
    together = backend(batch)  # five requests of one slice, over two streams at once
    one_by_one = np.concatenate([backend(batch[i : i + 1]) for i in range(len(batch))])
    assert together.shape == batch.shape
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)
    assert np.abs(together[0] - together[1]).max() > 1e-3  # distinct slices: an order mix-up would show


def test_openvino_keeps_compiled_models_in_the_imtrans_cache_and_loads_them_again(
    exported, tmp_path, monkeypatch
):
    pytest.importorskip("openvino")
    from imtrans_core.onnx import openvino

    monkeypatch.setenv("IMTRANS_CACHE", str(tmp_path / "cache"))
    batch = np.random.default_rng(1).uniform(-1, 1, (2, 1, 32, 32)).astype(np.float32)
    compiled = openvino.OpenVinoBackend.from_file(exported.path, precision="f32")(batch)
    blobs = sorted((tmp_path / "cache" / "openvino").glob("*.blob"))
    assert len(blobs) == 1
    loaded = openvino.OpenVinoBackend.from_file(exported.path, precision="f32")(batch)
    assert sorted((tmp_path / "cache" / "openvino").glob("*.blob")) == blobs  # loaded, not compiled again
    np.testing.assert_array_equal(loaded, compiled)
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("IMTRANS_CACHE", str(tmp_path / "file"))  # a cache that cannot be a folder: none
    assert openvino._compiled_models_cache() == {}
    np.testing.assert_array_equal(
        openvino.OpenVinoBackend.from_file(exported.path, precision="f32")(batch), compiled
    )


def test_auto_runs_an_onnx_file_with_openvino_on_a_cpu_and_says_which(
    exported, tmp_path, capsys, monkeypatch
):
    pytest.importorskip("openvino")
    from imtrans_core.onnx.openvino import OpenVinoBackend

    assert isinstance(make_backend(exported.path, device="cpu"), OpenVinoBackend)
    write_volume(mr_volume(), tmp_path / "mr.nii.gz")
    args = ["translate", str(exported.path), str(tmp_path / "mr.nii.gz"), "--out", str(tmp_path / "sct")]
    assert run([*args, "--precision", "f32"]) == 0
    assert "with OpenVinoBackend(" in capsys.readouterr().err and (tmp_path / "sct" / "mr.nii.gz").exists()
    assert run([*args, "--backend", "onnx", "--precision", "bf16"]) == 2
    assert "--precision applies to the openvino backend" in capsys.readouterr().err


def test_openvino_reads_the_same_metadata_as_onnx(exported):
    """The backend takes the metadata from OpenVINO's reading of the file, not from a second parse."""
    ov = pytest.importorskip("openvino")
    from imtrans_core.onnx.exported import read_metadata
    from imtrans_core.onnx.openvino import OpenVinoBackend, metadata_of

    metadata = read_metadata(exported.path)
    assert metadata_of(ov.Core().read_model(str(exported.path))) == metadata
    assert OpenVinoBackend.from_file(exported.path).metadata == metadata and "input_contract" in metadata


SIGNAL_AFTER_OPENVINO = """
import ctypes, os, signal, sys
from imtrans_core.onnx.openvino import OpenVinoBackend

class Stack(ctypes.Structure):
    _fields_ = [("sp", ctypes.c_void_p), ("flags", ctypes.c_int), ("size", ctypes.c_size_t)]

def signal_stack():
    stack = Stack()
    assert ctypes.CDLL(None).sigaltstack(None, ctypes.byref(stack)) == 0
    return stack.sp, stack.flags, stack.size

before = signal_stack()
signal.signal(signal.SIGUSR1, lambda *_: print("handled", flush=True))
first, second = (OpenVinoBackend.from_file(sys.argv[1]) for _ in range(2))
first.close()  # released in the order they were made: OpenVINO 2026.4 then restores a freed stack
second.close()
assert signal_stack() == before, (signal_stack(), before)
os.kill(os.getpid(), signal.SIGUSR1)
print("survived", flush=True)
"""


def test_openvino_leaves_the_main_threads_signal_stack_alone_and_signals_still_arrive(exported):
    """Compiling and releasing models out of order used to leave a freed signal stack on the main
    thread: the next signal (a DataLoader worker's SIGCHLD, Ctrl-C) killed the process (SIGSEGV)."""
    pytest.importorskip("openvino")
    if not sys.platform.startswith("linux"):
        pytest.skip("sigaltstack through ctypes: Linux")
    child = subprocess.run(
        [sys.executable, "-c", SIGNAL_AFTER_OPENVINO, str(exported.path)], capture_output=True, text=True
    )
    assert child.returncode == 0 and child.stdout.split() == ["handled", "survived"], child.stderr[-2000:]


def test_without_openvino_auto_runs_onnxruntime_and_asking_for_it_says_how_to_install(exported, monkeypatch):
    from imtrans_core.onnx import openvino

    monkeypatch.setattr(openvino, "available", lambda: False)
    assert isinstance(make_backend(exported.path, device="cpu"), OnnxBackend)
    monkeypatch.setitem(sys.modules, "openvino", None)  # import fails
    with pytest.raises(ImtransError, match=r"openvino backend not available.*pip install openvino"):
        make_backend(exported.path, backend="openvino")


def test_standalone_example_needs_only_onnxruntime_numpy_simpleitk_and_follows_the_contract(
    exported, tmp_path
):
    """Fed an MR on another grid (3 mm pixels, rotated 20 degrees), the example resamples it onto the
    model's training grid and back as `imtrans translate` does: the same synthetic CT within 1 HU."""
    source = EXAMPLE.read_text()
    imports = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert imports and not any("imtrans" in line for line in imports)
    phantom = mr_volume()
    c, s = np.cos(np.deg2rad(20)), np.sin(np.deg2rad(20))
    tilted = np.array([[c, 0, -s], [0, 1, 0], [s, 0, c]])
    other = Volume(phantom.array, spacing=(3.0, 6.0, 3.0), origin=(-90.0, -20.0, -95.0), direction=tilted)
    write_volume(other, tmp_path / "mr.nii.gz")
    done = subprocess.run(
        [
            sys.executable,
            str(EXAMPLE),
            str(exported.path),
            str(tmp_path / "mr.nii.gz"),
            str(tmp_path / "sct.nii.gz"),
            "--batch",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    standalone = read_volume(tmp_path / "sct.nii.gz")
    imtrans = translate_on_grid(read_volume(tmp_path / "mr.nii.gz"), OnnxBackend.from_file(exported.path))
    assert standalone.same_grid(imtrans) and not imtrans.same_grid(phantom)
    assert np.abs(standalone.array - imtrans.array).mean() < 1.0  # HU


def test_a_2_5d_generator_exports_its_context_and_translates_alike_everywhere(
    env, tmp_path_factory, tmp_path
):
    """A model trained on 3-slice stacks: the graph takes (N, 3, H, W), the metadata says context 1,
    and onnxruntime, the standalone example and torch give one synthetic CT."""
    run = tiny_run(tmp_path_factory.mktemp("stacked"), "resnet9:ngf=8,n_blocks=2", context=1)
    result = export_model(run, tmp_path / "mr2ct.onnx")  # verified against torch on stacks, or it raises
    assert result.metadata["input_contract"]["context"] == 1
    assert result.metadata["input_layout"].startswith("(N, 3, H, W)")
    backend = OnnxBackend.from_file(result.path)
    assert backend.context == 1
    write_volume(mr_volume(), tmp_path / "mr.nii.gz")
    volume = read_volume(tmp_path / "mr.nii.gz")
    by_onnx = translate_volume(volume, backend)
    by_torch = translate_volume(volume, TorchBackend.from_model(run, device="cpu"))
    assert np.abs(by_onnx.array - by_torch.array).max() < 0.05  # HU
    done = subprocess.run(
        [
            sys.executable,
            str(EXAMPLE),
            str(result.path),
            str(tmp_path / "mr.nii.gz"),
            str(tmp_path / "sct.nii.gz"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert np.abs(read_volume(tmp_path / "sct.nii.gz").array - by_onnx.array).max() < 1e-3


# ----------------------------------------------------------------------------- providers and errors


def test_providers_are_only_those_that_load():
    usable = loadable_providers()
    assert usable[-1] == CPU
    assert resolve_providers("cpu") == [CPU]
    if usable == [CPU]:  # no GPU here: asking for one by name is a clear error, not a silent fall-back
        with pytest.raises(ImtransError, match="cannot run here"):
            resolve_providers("cuda")
    with pytest.raises(ImtransError, match="choose from cpu, cuda, tensorrt"):
        resolve_providers("tpu")
    assert physical_cores() >= 1


def test_person_errors_are_one_line(resnet_run, tmp_path, capsys):
    code = run(["export", str(tmp_path / "norun"), "--out", str(tmp_path / "g.onnx")])
    err = capsys.readouterr().err
    assert code == 2 and "norun: no such run directory" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    code = run(["export", str(resnet_run), "--out", str(tmp_path / "g.onnx"), "--precision", "int4"])
    err = capsys.readouterr().err
    assert code == 2 and "Invalid value for '--precision': 'int4' is not one of 'fp32', 'fp16', 'int8'" in err
    with pytest.raises(ImtransError, match="name the file"):
        export_model(resnet_run, tmp_path / "g.pt")
    (tmp_path / "notes.onnx").write_text("not a model")
    with pytest.raises(ImtransError, match="not an ONNX model"):
        OnnxBackend.from_file(tmp_path / "notes.onnx")
    for backend in ("auto", "onnx", "openvino"):
        with pytest.raises(ImtransError, match="not an ONNX model"):
            make_backend(tmp_path / "notes.onnx", backend=backend)
    with pytest.raises(ImtransError, match="no such ONNX model file"):
        OnnxBackend.from_file(tmp_path / "missing.onnx")


class Unexportable(torch.nn.Module):
    def forward(self, x):
        raise RuntimeError("boom inside the network")


@pytest.mark.parametrize("legacy", [False, True])
def test_exporter_errors_keep_their_cause(tmp_path, legacy):
    """One line for the person, and the exporter's own exception behind it for --debug."""
    from imtrans_core.onnx.export import export_graph

    with pytest.raises(ImtransError, match="the ONNX exporter failed") as info:
        export_graph(Unexportable(), tmp_path / "g.onnx", legacy=legacy)
    causes = []
    error: BaseException | None = info.value
    while error is not None:
        causes.append(str(error))
        error = error.__cause__
    assert any("boom inside the network" in c for c in causes[1:]), causes


@pytest.mark.parametrize("openvino_installed", [True, False])
def test_auto_picks_no_path_a_committed_benchmark_found_slower_than_torch_fp32(
    load_benchmark, monkeypatch, openvino_installed
):
    """Every CPU class with a committed whole-command benchmark: auto's choice is >= torch fp32, within 2 HU."""
    from imtrans_core.onnx import choose, openvino

    volume = load_benchmark("volume")
    monkeypatch.setattr(openvino, "available", lambda: openvino_installed)
    choice = choose.auto_backend(is_onnx=True, device="cpu")
    assert choice == ("openvino" if openvino_installed else "onnx")
    assert choose.auto_backend(is_onnx=False, device="cpu") == "torch"
    results = sorted((REPO / "docs" / "results" / "benchmarks").glob("volume-*.json"))
    assert results, "no committed whole-command benchmark: python benchmarks/volume.py --model RUN"
    for path in results:
        rows = {row["variant"]: row for row in json.loads(path.read_text())["rows"]}
        picked = rows[volume.AUTO_ROWS[choice]]
        assert picked["vs_fp32"] >= 1.0 and picked["mean_hu"] <= 2.0, (path.name, picked)
