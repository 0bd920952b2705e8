"""studies/int8_outputs.py: the transposed convolutions' inputs rounded to int8 about zero keep the range
they were calibrated to, and onnxruntime runs the edited graph."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper


@pytest.fixture(scope="module")
def int8_outputs(load_study):
    return load_study("int8_outputs")


def rounded_transposed_convolution(path, scale: float, zero: int) -> None:
    """x -> QuantizeLinear (uint8) -> DequantizeLinear -> ConvTranspose, written to ``path``."""
    stored = [
        numpy_helper.from_array(np.array(scale, np.float32), "s"),
        numpy_helper.from_array(np.array(zero, np.uint8), "z"),
        numpy_helper.from_array(np.full((2, 3, 2, 2), 0.5, np.float32), "w"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
        helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d"]),
        helper.make_node("ConvTranspose", ["d", "w"], ["y"], strides=[2, 2]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])],
        stored,
        value_info=[helper.make_tensor_value_info("q", TensorProto.UINT8, [1, 2, 4, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], ir_version=10)
    onnx.save(model, str(path))


def test_the_symmetric_rounding_spans_the_calibrated_range_with_no_zero_point(int8_outputs, tmp_path):
    import onnxruntime as ort

    path = tmp_path / "t.onnx"
    rounded_transposed_convolution(path, scale=0.1, zero=200)  # calibrated to [-20.0, 5.5]
    int8_outputs.symmetric_transposed_inputs(path)
    model = onnx.load(str(path))
    stored = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    assert stored["z"].dtype == np.int8 and stored["z"] == 0
    assert stored["s"] == pytest.approx(20.0 / 127)  # the larger end, not the uint8 span
    assert "q" not in {v.name for v in model.graph.value_info}  # its stored type would now be wrong

    x = np.linspace(-20.0, 5.5, 32, dtype=np.float32).reshape(1, 2, 4, 4)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"x": x})
    x_rounded = np.round(x / stored["s"]) * stored["s"]
    expected = np.zeros((1, 3, 8, 8), np.float32)  # a 2 x 2 stride-2 transposed conv of 0.5s: each input
    expected[:] = np.repeat(np.repeat(x_rounded.sum(1, keepdims=True) * 0.5, 2, 2), 2, 3)  # in its 2x2 block
    np.testing.assert_allclose(y, expected, atol=1e-5)
    assert np.abs(y - np.repeat(np.repeat(x.sum(1, keepdims=True) * 0.5, 2, 2), 2, 3)).max() > 1e-4  # rounded
