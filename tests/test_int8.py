"""int8 export: a trained model within the accuracy budget, and the sensitivity analysis that keeps it there."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

import imtrans_core as ic
from imtrans_core.data.intensity import MRScaling
from imtrans_core.data.slices import Plane, to_slices
from imtrans_core.errors import ImtransWarning
from imtrans_core.inference.models import load_generator
from imtrans_core.onnx.export import INT8_AIM, export_graph, export_model
from imtrans_core.onnx.graph import INPUT_NAME, WINDOWS
from imtrans_core.onnx.quantize import conv_names, to_int8
from imtrans_core.onnx.runtime import open_session
from imtrans_core.onnx.sample_data import BODY, CALIBRATION_VOLUMES, sample_data
from imtrans_core.onnx.sensitivity import PERCENTILES, Error, quantize_within
from imtrans_core.onnx.verify import TOLERANCES

DATA = "phantom:n_ct=4,n_mr=4,n_paired=2,size=64,slices=12,n_train_pairs=4"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A small ResNet-9 trained 300 iterations on phantom pairs: weights shaped by data, unlike random ones."""
    from imtrans_core.training import resolve_config, train

    options = {"gen": "resnet9:ngf=16,n_blocks=2", "data": DATA, "size": 64, "iters": 300, "workers": 0}
    config = resolve_config({**options, "ckpt_every": 300, "sample_every": 300}, None, "paired")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IMTRANS_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
        return train(config, out=tmp_path_factory.mktemp("int8") / "run").run_dir


@pytest.fixture(scope="module")
def graph(trained, tmp_path_factory) -> tuple[Path, list[np.ndarray]]:
    """The trained generator as an fp32 graph, and slices of the source modality as its inputs."""
    path = tmp_path_factory.mktemp("graph") / "fp32.onnx"
    export_graph(load_generator(trained).net, path, legacy=True)
    data = sample_data(DATA, "mr", "coronal", n_slices=8)
    return path, [
        np.ascontiguousarray(WINDOWS["mr"].forward(s)[None], dtype=np.float32) for s in data.calibration
    ]


def error_of(path: Path, reference: Path, batches: list[np.ndarray], where: list | None = None) -> Error:
    """|path - reference| over ``batches`` (where the masks hold), measured here apart from the module under test."""
    runs = [open_session(p, providers="cpu") for p in (path, reference)]
    diffs = [np.abs(np.subtract(*(s.run(None, {INPUT_NAME: b})[0] for s in runs))) for b in batches]
    masks = where or [np.ones(d.shape, bool) for d in diffs]
    diff = np.concatenate([d[m] for d, m in zip(diffs, masks, strict=True)])
    return Error(float(diff.mean()), float(np.percentile(diff, 99.9)))


def test_a_trained_model_exports_to_int8_within_two_hu_and_fifty_at_the_999th_percentile(trained, tmp_path):
    result = export_model(trained, tmp_path / "int8.onnx", precision="int8", legacy=True, calib_slices=16)
    checked = [m for m in result.measurements if m.precision == "int8"]
    assert [m.what.split()[0] for m in checked] == ["mr-0002", "volume"]
    for m in checked:  # on the held-out volume, which calibration never saw
        assert m.mean_abs * m.scale <= 2.0 and m.p999_abs * m.scale <= 50.0, m.describe()
    plan = result.metadata["quantization"]
    assert plan["budget"]["mean_abs"] == pytest.approx(INT8_AIM * TOLERANCES["int8"].mean_abs)
    assert plan["error"]["mean_abs"] <= plan["budget"]["mean_abs"]
    assert plan["error"]["p999_abs"] <= plan["budget"]["p999_abs"]
    assert plan["percentile"] in PERCENTILES and plan["steps"][-1]["percentile"] == plan["percentile"]
    assert plan["steps"][-1]["fp32_convolutions"] == len(plan["fp32_convolutions"])
    assert plan["outputs"] == "float"
    quantized = {
        n.input[0] for n in onnx.load(str(result.path)).graph.node if n.op_type == "DequantizeLinear"
    }
    assert quantized  # int8 it is, where the budget allowed


def test_calibration_spreads_over_the_pool_and_never_touches_the_held_out_volume():
    data = sample_data(DATA, "mr", "coronal", n_slices=12)
    assert data.volume_id == "mr-0002" and data.calibration_volumes == ["mr-0000", "mr-0001", "mr-0003"]
    pool = ic.DATASETS.build(DATA).mr
    slices_of = {}
    for volume_id in pool.ids:  # each volume's slices as the export sees them, computed here apart
        volume = pool.load(volume_id)
        mr = np.asarray(volume.array, dtype=np.float32)
        stack = to_slices(mr * MRScaling().scale_of(mr), Plane.of(volume, "coronal"))
        slices_of[volume_id] = {np.ascontiguousarray(s, dtype=np.float32).tobytes() for s in stack}
    came_from = {
        next(v for v, known in slices_of.items() if s[0].tobytes() in known) for s in data.calibration
    }
    assert came_from == set(data.calibration_volumes)  # every calibration volume, the held-out one never
    twelve = sample_data(DATA.replace("n_mr=4", "n_mr=12"), "mr", "coronal", n_slices=12)
    assert (
        len(twelve.calibration_volumes) == CALIBRATION_VOLUMES and "mr-0002" not in twelve.calibration_volumes
    )


@pytest.mark.parametrize("method", ["minmax", "percentile"])
def test_calibration_holds_one_batch_at_a_time_and_merges_every_batch(graph, tmp_path, monkeypatch, method):
    """All batches' activations at once took 10 GB for 32 paper-size slices; one at a time, under 1 GB."""
    from onnxruntime.quantization import calibrate

    fp32, batches = graph
    calibrator = calibrate.MinMaxCalibrater if method == "minmax" else calibrate.HistogramCalibrater
    collect, per_pass = calibrator.collect_data, []

    def counting(self, reader):
        get_next, taken = reader.get_next, []

        def counted():
            batch = get_next()
            taken.extend([] if batch is None else [batch])
            return batch

        reader.get_next = counted
        collect(self, reader)
        per_pass.append(len(taken))

    monkeypatch.setattr(calibrator, "collect_data", counting)
    ranges = tmp_path / "ranges.json"
    to_int8(fp32, tmp_path / "q.onnx", batches, method, ranges=ranges)
    assert per_pass == [1] * len(batches)
    if method == "minmax":  # the first convolution's input (the padded image) spans every batch's values
        graph_ = onnx.load(str(tmp_path / "q.onnx")).graph
        made_by = {out: node for node in graph_.node for out in node.output}
        conv = next(node for node in graph_.node if node.op_type == "Conv")
        image = conv.input[0]  # Conv <- Pad <- DequantizeLinear <- QuantizeLinear, ranged as the Pad's output
        assert made_by[made_by[made_by[image].input[0]].input[0]].op_type == "QuantizeLinear"
        calibrated = json.loads(ranges.read_text())["data"][image]
        low, high = (np.asarray(calibrated[k]["data"]).item() for k in ("lowest", "highest"))
        everything = np.concatenate([b.ravel() for b in batches])
        assert (low, high) == pytest.approx((everything.min(), everything.max()))
        assert (low, high) != pytest.approx((batches[-1].min(), batches[-1].max()))


@pytest.mark.parametrize("round_outputs", [False, True])
def test_the_convolutions_inputs_and_weights_are_int8_and_their_outputs_stay_float(
    graph, tmp_path, round_outputs
):
    fp32, batches = graph
    to_int8(fp32, tmp_path / "q.onnx", batches, keep_float=conv_names(fp32)[:1], round_outputs=round_outputs)
    nodes = onnx.load(str(tmp_path / "q.onnx")).graph.node
    made_by = {out: node for node in nodes for out in node.output}
    convs = [n for n in nodes if n.op_type == "Conv"]
    int8 = [c for c in convs if c.input[1] in made_by]  # weights made by a DequantizeLinear, not stored
    assert len(int8) == len(convs) - 1 and {made_by[c.input[1]].op_type for c in int8} == {"DequantizeLinear"}
    transposed = [n for n in nodes if n.op_type == "ConvTranspose"]  # float: no runtime gains from int8
    rounded = {out for n in nodes if n.op_type == "DequantizeLinear" for out in n.output}
    assert len(transposed) == 2 and not rounded & {name for t in transposed for name in t.input}
    for conv in int8:  # input: an activation rounded to uint8 and back, then padded where the net pads
        rounded = made_by[conv.input[0]]
        rounded = made_by[rounded.input[0]] if rounded.op_type == "Pad" else rounded
        assert made_by[rounded.input[0]].op_type == "QuantizeLinear"
    quantized = [made_by.get(n.input[0]) for n in nodes if n.op_type == "QuantizeLinear"]
    assert sum(node in int8 for node in quantized if node is not None) == (len(int8) if round_outputs else 0)


def test_a_study_can_quantize_the_transposed_convolutions_too(graph, tmp_path):
    fp32, batches = graph
    operators = ("Conv", "ConvTranspose")
    to_int8(fp32, tmp_path / "q.onnx", batches, keep_float=conv_names(fp32)[:1], operators=operators)
    nodes = onnx.load(str(tmp_path / "q.onnx")).graph.node
    made_by = {out: node for node in nodes for out in node.output}
    transposed = [n for n in nodes if n.op_type == "ConvTranspose"]
    assert len(transposed) == 2
    assert all(made_by[t.input[i]].op_type == "DequantizeLinear" for t in transposed for i in (0, 1))
    assert not [n for n in nodes if n.op_type == "QuantizeLinear" and made_by.get(n.input[0]) in transposed]


def test_reflection_pads_pad_the_rounded_tensor_same_numbers_and_the_residual_path_stays_float(
    graph, tmp_path
):
    fp32, batches = graph
    to_int8(fp32, tmp_path / "moved.onnx", batches, keep_float=conv_names(fp32)[:1])
    nodes = onnx.load(str(tmp_path / "moved.onnx")).graph.node
    made_by = {out: node for node in nodes for out in node.output}
    read_by = {name: [n for n in nodes if name in n.input] for node in nodes for name in node.output}

    def kind(name: str) -> str:
        return getattr(made_by.get(name), "op_type", "stored")

    padded = [
        p for p in nodes if p.op_type == "Pad" and [n.op_type for n in read_by[p.output[0]]] == ["Conv"]
    ]
    int8_pads = [p for p in padded if kind(read_by[p.output[0]][0].input[1]) == "DequantizeLinear"]
    assert len(int8_pads) == 2 * 2 + 1  # two per residual block, and the head's; the first conv stays fp32
    assert all(kind(p.input[0]) == "DequantizeLinear" for p in int8_pads)
    adds = [n for n in nodes if n.op_type == "Add"]
    assert adds and "DequantizeLinear" not in {kind(i) for a in adds for i in a.input}

    to_int8(fp32, tmp_path / "after.onnx", batches, keep_float=conv_names(fp32)[:1], before_pads=False)
    after = onnx.load(str(tmp_path / "after.onnx")).graph.node
    rounded = {out for n in after if n.op_type == "DequantizeLinear" for out in n.output}
    assert not [n for n in after if n.op_type == "Pad" and n.input[0] in rounded]  # two graphs, not one
    assert error_of(tmp_path / "moved.onnx", tmp_path / "after.onnx", batches) == Error(0.0, 0.0)


def test_only_a_value_copying_pad_read_by_its_rounding_alone_moves_and_graph_outputs_keep_their_values():
    """Pad -> Q -> DQ -> Conv four times: reflect (moves), constant (adds a value), a Pad the sum reads too,
    and a DQ that is a graph output."""
    from onnx import TensorProto, helper, numpy_helper

    from imtrans_core.onnx.quantize import _quantize_before_pads

    nodes = []
    for i, mode in enumerate(("reflect", "constant", "reflect", "edge")):
        nodes += [
            helper.make_node("Pad", ["x", "pads"], [f"p{i}"], mode=mode),
            helper.make_node("QuantizeLinear", [f"p{i}", "s", "z"], [f"q{i}"]),
            helper.make_node("DequantizeLinear", [f"q{i}", "s", "z"], [f"d{i}"]),
            helper.make_node("Conv", [f"d{i}", "w"], [f"c{i}"]),
        ]
    nodes.append(helper.make_node("Add", ["p2", "p2"], ["sum"]))
    stored = {
        "pads": np.array([0, 0, 1, 1, 0, 0, 1, 1]),
        "s": np.float32(0.1),
        "z": np.uint8(128),
        "w": np.ones((1, 1, 3, 3), np.float32),
    }
    shapes = {"c0": 4, "c1": 4, "c2": 4, "d3": 6, "sum": 6}  # padded 4 x 4 -> 6 x 6, convolved -> 4 x 4
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 1, k, k]) for n, k in shapes.items()]
    graph = helper.make_graph(
        nodes,
        "pads",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
        outputs,
        [numpy_helper.from_array(v, k) for k, v in stored.items()],
    )
    assert _quantize_before_pads(graph) == 1
    reads = {n.output[0]: n.input[0] for n in graph.node}
    assert (reads["p0"], reads["q0"], reads["c0"]) == ("d0", "x", "p0")
    assert [(reads[f"p{i}"], reads[f"q{i}"]) for i in (1, 2, 3)] == [("x", f"p{i}") for i in (1, 2, 3)]
    onnx.checker.check_model(helper.make_model(graph), full_check=True)  # still in order


def test_outputs_rounded_and_inputs_rounded_after_the_pads_make_the_graph_onnxruntime_fuses(graph, tmp_path):
    import onnxruntime as ort

    fp32, batches = graph
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    fused = {}
    for before_pads in (False, True):
        to_int8(fp32, tmp_path / "q.onnx", batches, keep_float=conv_names(fp32)[:1], round_outputs=True,
                before_pads=before_pads)  # fmt: skip
        options.optimized_model_filepath = str(tmp_path / f"optimized-{before_pads}.onnx")
        ort.InferenceSession(str(tmp_path / "q.onnx"), options, providers=["CPUExecutionProvider"])
        nodes = onnx.load(options.optimized_model_filepath).graph.node
        fused[before_pads] = [n.op_type for n in nodes if n.op_type in ("Conv", "QLinearConv")]
    assert fused[False].count("Conv") == 1  # the first, kept in fp32; every other one runs QLinearConv
    assert fused[True].count("Conv") > 1  # a Pad between a convolution and its DequantizeLinear


def test_a_loose_budget_quantizes_every_convolution_in_one_trial(graph, tmp_path):
    fp32, batches = graph
    plan = quantize_within(fp32, tmp_path / "q.onnx", batches, Error(1.0, 2.0))
    assert plan.keep_float == conv_names(fp32)[:1] and plan.trials == 1 and plan.sensitivity == {}
    assert plan.percentile == PERCENTILES[0]
    assert plan.error == error_of(tmp_path / "q.onnx", fp32, batches)


def test_the_budget_is_judged_in_the_body_the_masks_mark_not_over_the_air(graph, tmp_path):
    fp32, batches = graph
    body = [b[:, :1] > BODY for b in batches]  # the batches are on the MR's [-1, 1] scale already
    assert all(0.05 < m.mean() < 0.95 for m in body)  # air and body both, so the choice matters
    plan = quantize_within(fp32, tmp_path / "q.onnx", batches, Error(1.0, 2.0), where=body)
    assert plan.error == error_of(tmp_path / "q.onnx", fp32, batches, body)
    assert plan.error != error_of(tmp_path / "q.onnx", fp32, batches)


def test_the_analysis_keeps_the_fewest_most_sensitive_convolutions_that_meet_the_budget(graph, tmp_path):
    fp32, batches = graph
    one = (PERCENTILES[0],)  # the ranking alone: one percentile per step
    first = quantize_within(fp32, tmp_path / "all.onnx", batches, Error(1.0, 2.0), percentiles=one)
    budget = Error(
        first.all_int8.mean_abs * 0.8, first.all_int8.p999_abs * 0.8
    )  # every convolution in int8 fails it
    plan = quantize_within(fp32, tmp_path / "q.onnx", batches, budget, percentiles=one)
    convs = conv_names(fp32)
    assert plan.convolutions == convs and sorted(plan.sensitivity) == sorted(convs[1:])
    ranked = sorted(convs[1:], key=lambda name: plan.sensitivity[name].over(budget), reverse=True)
    kept = plan.keep_float[1:]  # the first convolution always stays fp32 (OpenVINO has no int8 kernel for it)
    assert plan.keep_float[0] == convs[0] and 1 <= len(kept) < len(ranked) and kept == ranked[: len(kept)]
    assert error_of(tmp_path / "q.onnx", fp32, batches).within(budget)
    assert plan.trials == 1 + len(ranked) + len(kept)
    assert [len(step.keep_float) for step in plan.steps] == list(range(1, len(kept) + 2))
    # one fewer in fp32 is over the budget: the plan is the smallest that meets it
    to_int8(fp32, tmp_path / "fewer.onnx", batches, keep_float=plan.keep_float[:-1])
    assert not error_of(tmp_path / "fewer.onnx", fp32, batches).within(budget)


def test_each_step_tries_the_percentiles_in_turn_and_writes_the_first_within_the_budget(graph, tmp_path):
    fp32, batches = graph
    first = conv_names(fp32)[:1]
    errors = {}
    for level in (99.0, 99.999):  # every convolution but the first in int8, clipped hard and lightly
        to_int8(fp32, tmp_path / f"{level}.onnx", batches, percentile=level, keep_float=first)
        errors[level] = error_of(tmp_path / f"{level}.onnx", fp32, batches)
    assert errors[99.0] != errors[99.999]
    # tried first: one whose error the other's does not meet (which, the CPU's int8 kernels decide)
    missed, met = (99.0, 99.999) if not errors[99.0].within(errors[99.999]) else (99.999, 99.0)
    budget = errors[met]
    assert not errors[missed].within(budget)  # the first percentile tried misses it
    plan = quantize_within(fp32, tmp_path / "q.onnx", batches, budget, percentiles=(missed, met, 99.9))
    tried = [(list(s.keep_float), s.percentile) for s in plan.steps]
    assert tried == [(first, missed), (first, met)]  # and not 99.9
    assert plan.percentile == met and plan.keep_float == first and plan.sensitivity == {}
    assert plan.error == budget == error_of(tmp_path / "q.onnx", fp32, batches)
    assert plan.all_int8 == errors[missed]


def test_every_step_tries_the_percentiles_and_the_sensitivities_rank_at_the_first(tmp_path, monkeypatch):
    """The analysis's control flow against a table of errors: each trial's error looked up by what it quantized."""
    import imtrans_core.onnx.runtime as runtime
    import imtrans_core.onnx.sensitivity as sensitivity

    calls = []

    def to_int8(src, dst, batches, method, percentile, keep_float=(), only=None, ranges=None):
        calls.append((method, percentile, len(keep_float), only[0] if only else None))
        Path(dst).write_text(repr(calls[-1]))

    alone = {"c1": 3.0, "c2": 2.0, "c3": 0.5}  # over the budget, each quantized alone: ranks c1, c2, c3
    steps = {(1, 99.9): 5, (1, 99.0): 4, (1, 99.99): 6, (2, 99.9): 3, (2, 99.0): 2, (2, 99.99): 2.5}
    steps |= {(3, 99.9): 1.5, (3, 99.0): 0.9}  # three in fp32 at 99.0 is the first within the budget

    def error(got, reference):
        _, percentile, fp32, only = calls[-1]
        return Error(alone[only] if only else steps[(fp32, percentile)], 0.0)

    monkeypatch.setattr(sensitivity, "to_int8", to_int8)
    monkeypatch.setattr(sensitivity, "conv_names", lambda src: ["c0", "c1", "c2", "c3"])
    monkeypatch.setattr(sensitivity, "_error", error)
    monkeypatch.setattr(sensitivity, "_outputs", lambda session, checked: np.zeros(1))
    monkeypatch.setattr(runtime, "open_session", lambda path, providers: None)
    batches = [np.zeros((1, 1, 4, 4), np.float32)]
    plan = quantize_within(
        tmp_path / "src.onnx", tmp_path / "q.onnx", batches, Error(1.0, 1.0), percentiles=(99.9, 99.0, 99.99)
    )
    assert plan.keep_float == ["c0", "c1", "c2"] and plan.percentile == 99.0 and plan.error == Error(0.9, 0.0)
    assert [(len(s.keep_float), s.percentile) for s in plan.steps] == [*steps]  # in order, none skipped
    assert {c[1] for c in calls if c[3]} == {99.9} and all(c[0] == "percentile" for c in calls)
    assert (tmp_path / "q.onnx").read_text() == repr(("percentile", 99.0, 3, None))  # the step that met it
    assert plan.trials == len(calls) == len(steps) + len(alone)
    calls.clear()
    steps[(1, PERCENTILES[0])] = 0.5  # other methods: one range per step (the percentile is ignored)
    plan = quantize_within(tmp_path / "src.onnx", tmp_path / "q.onnx", batches, Error(1.0, 1.0), "minmax")
    assert calls == [("minmax", PERCENTILES[0], 1, None)] and plan.percentile is None


def test_other_calibrations_try_one_range_per_step(graph, tmp_path):
    fp32, batches = graph
    plan = quantize_within(fp32, tmp_path / "q.onnx", batches, Error(1e-9, 1.0), method="minmax")
    assert plan.percentile is None and {s.percentile for s in plan.steps} == {None}
    assert [len(s.keep_float) for s in plan.steps] == list(range(1, len(plan.keep_float) + 1))


def test_a_budget_nothing_int8_meets_keeps_every_convolution_in_fp32(graph, tmp_path):
    fp32, batches = graph
    plan = quantize_within(fp32, tmp_path / "q.onnx", batches, Error(1e-9, 1e-9))
    assert sorted(plan.keep_float) == sorted(conv_names(fp32)) and plan.error == Error(0.0, 0.0)
    assert not any(n.op_type == "QuantizeLinear" for n in onnx.load(str(tmp_path / "q.onnx")).graph.node)


def test_openvino_runs_the_int8_export_as_onnxruntime_does(trained, tmp_path):
    """The first convolution stays fp32: quantized, OpenVINO's CPU plugin could not compile the file."""
    pytest.importorskip("openvino")
    from imtrans_core.onnx.choose import make_backend

    result = export_model(trained, tmp_path / "int8.onnx", precision="int8", legacy=True, calib_slices=16)
    batch = graph_inputs()[:2]
    by_openvino = make_backend(result.path, backend="openvino", precision="f32")(batch)
    with pytest.warns(ImtransWarning, match="CPU provider runs this int8 file's convolutions dequantized"):
        by_onnxruntime = make_backend(result.path, backend="onnx")(batch)
    assert (
        np.abs(by_openvino - by_onnxruntime).mean() * 250 <= 2.0
    )  # both int8, within the budget of each other


def test_onnxruntime_on_the_cpu_warns_for_int8_files_whose_convolution_outputs_stay_float(trained, tmp_path):
    """Files with quantized outputs (exported before) run fused on the CPU provider: no warning for them."""
    import warnings

    from imtrans_core.onnx.export import write_metadata
    from imtrans_core.onnx.exported import read_metadata
    from imtrans_core.onnx.runtime import OnnxBackend

    fp32 = export_model(trained, tmp_path / "fp32.onnx", legacy=True, verify_model=False).path
    metadata = read_metadata(fp32)
    for plan, warns in (({"outputs": "float"}, True), ({"activations": "uint8 per tensor"}, False)):
        write_metadata(fp32, {**metadata, "precision": "int8", "quantization": plan}, tmp_path / "m.onnx")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            OnnxBackend.from_file(tmp_path / "m.onnx", device="cpu")
        said = [w for w in caught if issubclass(w.category, ImtransWarning)]
        assert len(said) == warns and all("--backend openvino" in str(w.message) for w in said)


def graph_inputs() -> np.ndarray:
    data = sample_data(DATA, "mr", "coronal", n_slices=4)
    return np.ascontiguousarray(WINDOWS["mr"].forward(np.stack(data.calibration)), dtype=np.float32)
