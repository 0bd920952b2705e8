"""--ema: the moving average of the generators' weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from imtrans_core.training.ema import WeightAverage


def test_the_first_updates_follow_the_module_closely_then_the_decay_holds():
    average = WeightAverage(nn.Linear(1, 1), decay=0.99)
    assert average.rate(1) == pytest.approx(2 / 11) and average.rate(10) == pytest.approx(11 / 20)
    assert average.rate(10_000) == 0.99


def test_it_averages_an_oscillating_module_and_reaches_a_still_one():
    module = nn.Linear(1, 1, bias=False)
    average = WeightAverage(module, decay=0.9)
    for step in range(1, 401):
        with torch.no_grad():
            module.weight.fill_(3.0 + (1.0 if step % 2 else -1.0))  # 4, 2, 4, 2, ...: mean 3
        average.update(module, step)
    # the steady-state amplitude of an EMA of a +-1 square wave is (1 - d) / (1 + d)
    assert abs(average.module.weight.item() - 3.0) == pytest.approx(0.1 / 1.9, rel=1e-3)
    with torch.no_grad():
        module.weight.fill_(-2.0)
    for step in range(401, 601):
        average.update(module, step)
    assert average.module.weight.item() == pytest.approx(-2.0, abs=1e-6)


def test_buffers_are_copied_and_the_average_needs_no_gradients():
    module = nn.BatchNorm1d(2)
    average = WeightAverage(module, decay=0.5)
    module.running_mean.fill_(7.0)
    average.update(module, 1)
    assert torch.equal(average.module.running_mean, module.running_mean)
    assert not any(p.requires_grad for p in average.module.parameters())
