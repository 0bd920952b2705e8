"""studies/avx2_paths.py: both Winograd forms compute the convolution they replace, and only the 3x3
stride-1 ones are replaced."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module")
def avx2_paths(load_study):
    return load_study("avx2_paths")


@pytest.mark.parametrize("height, width", [(66, 66), (31, 45)])  # whole 4x4 tiles, and tiles cut at the edge
def test_winograd_f4x4_matches_the_direct_convolution(avx2_paths, height, width):
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(16, 24, 3)
    x = torch.randn(2, 16, height, width)
    with torch.no_grad():
        expected, got = conv(x), avx2_paths.WinogradConv(conv)(x)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-4)
    assert not torch.equal(got, expected)  # computed another way, not handed the convolution's result


@pytest.mark.skipif(not torch._nnpack_available(), reason="this torch build has no NNPACK")
def test_nnpack_matches_the_direct_convolution_slice_by_slice(avx2_paths):
    torch.manual_seed(1)
    conv = torch.nn.Conv2d(8, 8, 3, padding=1)
    x = torch.randn(3, 8, 20, 20)
    with torch.no_grad():
        torch.testing.assert_close(avx2_paths.NnpackConv(conv)(x), conv(x), rtol=0, atol=1e-4)


def test_only_3x3_stride_1_convolutions_are_replaced(avx2_paths):
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 7), torch.nn.Conv2d(4, 4, 3), torch.nn.Conv2d(4, 4, 3, stride=2)
    )
    swapped = avx2_paths.with_winograd(net, avx2_paths.WinogradConv)
    assert [type(m).__name__ for m in swapped] == ["Conv2d", "WinogradConv", "Conv2d"]
    assert isinstance(net[1], torch.nn.Conv2d)  # the original is left as it was
