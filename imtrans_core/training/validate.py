"""What a config needs from the registries and the machine, checked before any work.

:class:`~.config.TrainConfig` checks each value on its own (types, ranges,
choices). This module checks what needs more: that every spec names a
registered component whose factory accepts its values, that the networks accept
the slice size, and that the device and precision exist here. ``train`` calls
:func:`check` before it reads any data or makes any folder, so a bad option
costs a second, not a cached data set and an empty run directory.
"""

from __future__ import annotations

from typing import Any

import torch

import imtrans_core as ic

from ..errors import ImtransError
from .config import TrainConfig
from .objective import compose_loss_specs
from .precision import resolve_amp

LARGEST_PROBE = 512  # sizes tried when looking for the smallest one the networks accept


def check(config: TrainConfig) -> dict[str, Any]:
    """Every check that needs the registries or the machine; returns the resolved specs."""
    resolved = resolve_specs(config)
    for spec in config.log:  # built once now: a logger missing its package says so before any work
        ic.LOGGERS.build(spec)
    check_size(config.gen, config.disc, config.size)
    resolve_amp(config.amp, training_device(config.device))
    return resolved


def resolve_specs(config: TrainConfig) -> dict[str, Any]:
    """Every spec of the config checked against its registry and resolved (defaults filled in)."""
    return {
        "gen": str(ic.GENERATORS.resolve(config.gen)),
        "disc": str(ic.DISCRIMINATORS.resolve(config.disc)),
        "data": str(ic.DATASETS.resolve(config.data)),
        "loss": [str(s) for s in compose_loss_specs(config.loss, ic.LOSSES)],
        "log": [str(ic.LOGGERS.resolve(s)) for s in config.log],
    }


def training_device(device: str) -> torch.device:
    """The device ``--device`` asks for, if this machine has it (no side effects, unlike set_device)."""
    if device == "cuda" or (device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ImtransError("--device cuda: no CUDA device is visible; use --device cpu")
        return torch.device("cuda")
    return torch.device("cpu")


def check_size(gen: str, disc: str, size: int) -> None:
    """Refuse a ``--size`` the networks cannot train on, naming the smallest they accept.

    The networks are built on the ``meta`` device (shapes only, no memory, no
    arithmetic) and run on a size x size slice: the generator must give back a
    slice of the same size and the discriminator must accept it. Nothing about
    the architectures is hard-coded, so a plugin's network is checked the same way.
    """
    with torch.device("meta"):
        networks, device = (ic.GENERATORS.build(gen), ic.DISCRIMINATORS.build(disc)), "meta"
    try:
        problem = _probe(networks, size, device)
    except NotImplementedError:  # an operation without a meta kernel: run them for real, on the CPU
        networks, device = (ic.GENERATORS.build(gen), ic.DISCRIMINATORS.build(disc)), "cpu"
        problem = _probe(networks, size, device)
    if problem is None:
        return
    smallest = next((s for s in range(2, LARGEST_PROBE + 1) if _probe(networks, s, device) is None), None)
    accepted = (
        f"the smallest size they accept is {smallest}"
        if smallest is not None
        else f"they accept no size up to {LARGEST_PROBE}"
    )
    raise ImtransError(
        f"--size {size}: {gen} with {disc} cannot train on {size} x {size} slices ({problem}); {accepted}"
    )


@torch.no_grad()
def _probe(networks: tuple[torch.nn.Module, torch.nn.Module], size: int, device: str) -> str | None:
    """None when both networks train on size x size slices, else the reason in a few words."""
    generator, discriminator = networks
    x = torch.zeros(1, 1, size, size, device=device)
    try:
        y = generator(x)
        if tuple(y.shape) != tuple(x.shape):
            return f"the generator returns {tuple(y.shape[-2:])} for {tuple(x.shape[-2:])}"
        discriminator(y)
    except (RuntimeError, ValueError, IndexError) as err:
        return str(err).strip().splitlines()[0][:120]
    return None
