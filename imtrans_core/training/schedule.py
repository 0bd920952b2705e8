"""The paper's learning-rate schedule: constant, then linear decay to zero.

Hiasa et al. train "for the first 1e5 iterations at fixed learning rate of
0.0002, and the last 1e5 iterations at learning rate which linearly reducing to
zero". ``factor(step)`` multiplies the base rate at (0-based) iteration
``step``; it is 1 up to the turn and reaches exactly 0 at ``iters``.
"""

from __future__ import annotations

import torch


def lr_factor(step: int, iters: int, turn: int) -> float:
    """Multiplier of the base learning rate at iteration ``step``."""
    if step < turn or iters <= turn:
        return 1.0
    return max(0.0, 1.0 - (step - turn) / (iters - turn))


def linear_decay(
    optimizer: torch.optim.Optimizer, iters: int, turn: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A scheduler stepped once per iteration."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, iters, turn))
