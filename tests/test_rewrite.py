"""The export's rewrites compute what the network computes: the convolution split into rows, then columns."""

from __future__ import annotations

import pytest
import torch

import imtrans_core as ic
from imtrans_core.onnx.rewrite import RowsThenColumns, for_export, rewritable


@pytest.mark.parametrize(
    ("out", "inputs", "kernel", "padding", "bias"),
    [(1, 64, (7, 7), (0, 0), True), (3, 16, (3, 5), (1, 2), False), (2, 8, (5, 1), (2, 0), True)],
)
def test_rows_then_columns_is_the_convolution(out, inputs, kernel, padding, bias):
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(inputs, out, kernel, padding=padding, bias=bias)
    x = torch.randn(2, inputs, 19, 23)
    with torch.no_grad():
        expected, split = conv(x), RowsThenColumns(conv)(x)
    assert split.shape == expected.shape
    torch.testing.assert_close(split, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "conv",
    [
        torch.nn.Conv2d(64, 8, 7),  # a full register of outputs
        torch.nn.Conv2d(64, 1, (1, 7)),  # one kernel row already
        torch.nn.Conv2d(64, 1, 3, stride=2),
        torch.nn.Conv2d(64, 1, 3, dilation=2),
        torch.nn.Conv2d(64, 2, 3, groups=2),
        torch.nn.Conv2d(64, 1, 3, padding=1, padding_mode="reflect"),
        torch.nn.Conv2d(64, 1, 3, padding="same"),
        torch.nn.ConvTranspose2d(64, 1, 3),
    ],
)
def test_only_plain_convolutions_with_few_outputs_and_tall_kernels_are_split(conv):
    assert not rewritable(conv)


def test_the_generator_for_export_computes_the_same_and_the_trained_one_is_untouched():
    torch.manual_seed(0)
    net = ic.GENERATORS.build("resnet9:ngf=8,n_blocks=2").eval()
    last = net.model[-2]
    assert rewritable(last)  # the 7 x 7 convolution to one channel before the tanh
    exported = for_export(net)
    assert net.model[-2] is last and isinstance(exported.model[-2], RowsThenColumns)
    assert sum(isinstance(m, RowsThenColumns) for m in exported.modules()) == 1
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(exported(x), net(x), rtol=1e-5, atol=1e-5)
