"""Intensity windows: exact endpoints, reversibility inside the window, clipping outside it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from imtrans_core.data.intensity import CT_WINDOW, MR_WINDOW, MRScaling, Window, paper_scale
from imtrans_core.errors import ImtransError

finite = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False)


def test_ct_window_is_the_papers():
    assert np.allclose(CT_WINDOW.forward(np.array([-150, 100, 350])), [-1.0, 0.0, 1.0])
    assert np.allclose(CT_WINDOW.inverse(np.array([-1.0, 0.0, 1.0])), [-150, 100, 350])
    assert (MR_WINDOW.low, MR_WINDOW.high) == (0.0, 100.0)


@settings(max_examples=60, deadline=None)
@given(low=finite, width=st.floats(min_value=1.0, max_value=5e3), t=st.floats(min_value=0.0, max_value=1.0))
def test_inverse_undoes_forward_inside_the_window(low, width, t):
    window = Window(low, low + width)
    x = np.float64(low + t * width)
    y = window.forward(x)
    assert -1.0 <= y <= 1.0
    assert window.inverse(y) == pytest.approx(x, abs=1e-9 * max(1.0, abs(low) + width))


@settings(max_examples=60, deadline=None)
@given(y=st.floats(min_value=-1.0, max_value=1.0))
def test_forward_undoes_inverse_on_the_network_range(y):
    assert CT_WINDOW.forward(CT_WINDOW.inverse(np.float64(y))) == pytest.approx(y, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(x=finite)
def test_outside_values_are_clipped_so_their_inverse_is_the_bound(x):
    back = CT_WINDOW.inverse(CT_WINDOW.forward(np.float64(x)))
    assert back == pytest.approx(min(max(x, -150.0), 350.0), abs=1e-9)


def test_clipping_both_ways():
    assert np.array_equal(CT_WINDOW.forward(np.array([-3000.0, 3000.0])), [-1.0, 1.0])
    assert np.array_equal(CT_WINDOW.inverse(np.array([-7.0, 7.0])), [-150.0, 350.0])


def test_integer_input_becomes_float32_and_float_dtypes_are_kept():
    assert CT_WINDOW.forward(np.array([0, 100], np.int16)).dtype == np.float32
    assert CT_WINDOW.forward(np.array([0.0], np.float32)).dtype == np.float32
    assert CT_WINDOW.forward(np.array([0.0], np.float64)).dtype == np.float64


def test_torch_tensors_work_like_arrays():
    hu = torch.tensor([-1000, -150, 100, 350, 2000], dtype=torch.int16)
    y = CT_WINDOW.forward(hu)
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float32
    assert torch.allclose(y, torch.tensor([-1.0, -1.0, 0.0, 1.0, 1.0]))
    assert torch.allclose(CT_WINDOW.inverse(y), torch.tensor([-150.0, -150.0, 100.0, 350.0, 350.0]))


def test_empty_window_is_refused():
    with pytest.raises(ValueError, match="low < high"):
        Window(5.0, 5.0)


def test_paper_scale_maps_the_ct_window_to_0_255():
    assert np.allclose(paper_scale(np.array([-1000.0, -150.0, 100.0, 350.0, 900.0])), [0, 0, 127.5, 255, 255])
    # PSNR on that scale, as the paper computes it: an error of 25.5 everywhere is 20 dB.
    mse = np.mean((paper_scale(np.array([0.0])) - paper_scale(np.array([50.0]))) ** 2)
    assert 20 * np.log10(255 / np.sqrt(mse)) == pytest.approx(20.0)


def mr_volume() -> np.ndarray:
    """Background zeros plus 1..1000: the 99.5th percentile of the foreground is 995.005."""
    return np.concatenate([np.zeros(3000), np.arange(1, 1001)]).astype(np.float32)


def test_mr_scaling_maps_the_foreground_percentile_to_100():
    scaling = MRScaling()
    scale = scaling.scale_of(mr_volume())
    assert scale == pytest.approx(100.0 / 995.005)
    y, used = scaling.forward(mr_volume())
    assert used == scale
    assert y[0] == -1.0  # background -> bottom of the window
    assert y[-1] == 1.0  # above the percentile -> clipped to the top
    assert np.interp(995.005 * 0.5, mr_volume()[3000:], y[3000:]) == pytest.approx(0.0, abs=1e-4)


def test_mr_scale_ignores_the_amount_of_background():
    scaling = MRScaling()
    more_air = np.concatenate([np.zeros(50_000, np.float32), mr_volume()])
    assert scaling.scale_of(more_air) == pytest.approx(scaling.scale_of(mr_volume()))


def test_mr_inverse_returns_the_source_scale():
    scaling = MRScaling(percentile=99.0, target=100.0)
    x = mr_volume()
    y, scale = scaling.forward(x)
    back = scaling.inverse(y, scale)
    inside = x <= np.percentile(x[x > 0], 99.0)
    assert np.allclose(back[inside], x[inside], atol=1e-3)
    assert np.allclose(back[~inside], 100.0 / scale, atol=1e-3)


def test_mr_forward_accepts_a_given_scale_and_torch():
    y, scale = MRScaling().forward(torch.tensor([0.0, 10.0, 20.0]), scale=5.0)
    assert scale == 5.0 and torch.allclose(y, torch.tensor([-1.0, 0.0, 1.0]))


def test_mr_without_foreground_is_an_error():
    with pytest.raises(ImtransError, match="no voxel above 0"):
        MRScaling().scale_of(np.zeros((4, 4, 4)))
