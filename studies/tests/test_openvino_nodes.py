"""studies/openvino_nodes.py: nodes summed by type and kernel, with each convolution's multiply-adds."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def openvino_nodes(load_study):
    return load_study("openvino_nodes")


def test_kernel_names_give_the_precision(openvino_nodes):
    assert openvino_nodes.precision_of("jit_avx2_I8") == "int8"
    assert openvino_nodes.precision_of("brgconv_avx512_amx_i8") == "int8"
    assert openvino_nodes.precision_of("jit_avx512_bf16") == "bf16"
    assert openvino_nodes.precision_of("brgconv_avx2_f32") == "fp32"


def test_nodes_are_summed_by_kind_with_their_multiply_adds(openvino_nodes):
    nodes = [
        {"node": "c1/WithoutBiases", "type": "Convolution", "kernel": "jit_avx2_I8", "ms": 3.0},
        {"node": "m1", "type": "MVN", "kernel": "jit_avx2_f32", "ms": 1.0},
        {"node": "c2/WithoutBiases", "type": "Convolution", "kernel": "jit_avx2_I8", "ms": 2.0},
        {"node": "Deconv_5", "type": "ConvolutionBackpropData", "kernel": "brgconv_avx2_f32", "ms": 0.0},
        {"node": "Deconv_7", "type": "ConvolutionBackpropData", "kernel": "brgconv_avx2_f32", "ms": 4.0},
    ]
    convs = {"c1/WithoutBiases": 4e9, "c2/WithoutBiases": 2e9}
    rows = openvino_nodes.by_kind(nodes, convs, [6e9, 8e9], batch=2)  # transposed: in graph order
    assert [(r["type"], r["nodes"]) for r in rows] == [
        ("Convolution", 2), ("ConvolutionBackpropData", 1), ("MVN", 1)
    ]  # fmt: skip
    assert rows[0]["ms"] == 5.0 and rows[0]["gmac"] == pytest.approx(3.0) and rows[0]["precision"] == "int8"
    assert rows[1]["gmac"] == pytest.approx(4.0)  # the second transposed one, per slice: the idle first is
    # left out of the rows but still takes its place in the order
    assert rows[2]["gmac"] == 0 and sum(r["share"] for r in rows) == pytest.approx(1.0)
