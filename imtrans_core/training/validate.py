"""What a config needs from the registries and the machine, checked before any work.

:class:`~.config.TrainConfig` checks each value on its own (types, ranges,
choices). This module checks what needs more: that every spec names a
registered component whose factory accepts its values, that the networks accept
the slice size, and that the device and precision exist here. ``train`` calls
:func:`check` before it reads any data or makes any folder, so a bad option
costs a second, not a cached data set and an empty run directory.
"""

from __future__ import annotations

import functools
from typing import Any

import torch

import imtrans_core as ic

from ..errors import ImtransError
from .config import FIELDS, TrainConfig, flag
from .distributed import device_kind
from .objective import compose_loss_specs, compose_losses
from .precision import resolve_amp
from .trainable import OPTIONAL_FEATURES

REFERENCE_SIZE = 256  # the paper's slice size: networks that fail on it fail for another reason


def check(config: TrainConfig) -> dict[str, Any]:
    """Every check that needs the registries or the machine; returns the resolved specs."""
    resolved = resolve_specs(config)
    check_features(config)
    for spec in config.log:  # built once now: a logger missing its package says so before any work
        ic.LOGGERS.build(spec)
    check_size(config.gen, config.disc, config.size, config.context)
    resolve_amp(config.amp, torch.device(device_kind(config.device)))
    return resolved


def check_data(config: TrainConfig, source: Any, needs_pairs: bool) -> None:
    """Refuse a model or a paired loss that trains on aligned pairs when the data has none."""
    if not needs_pairs or source.train_pairs:
        return
    losses = compose_losses(config.loss, ic.LOSSES)
    paired = [name for name, loss in losses.items() if getattr(loss, "kind", "") == "paired"]
    why = f"--loss {paired[0]}" if paired else f"--model {config.model}"
    raise ImtransError(
        f"{why} trains on aligned CT/MR pairs, and --data {config.data} has none; "
        "give data with training pairs (phantom:n_train_pairs=N, folder:ct=DIR,mr=DIR,pairs=DIR, "
        "synthrad:root=DIR)" + (" or drop the paired loss" if paired else "")
    )


def resolve_specs(config: TrainConfig) -> dict[str, Any]:
    """Every spec of the config checked against its registry and resolved (defaults filled in)."""
    return {
        "model": str(model_spec(config.model)),
        "gen": str(generator_spec(config.gen, config.context)),
        "disc": str(discriminator_spec(config.disc, config.context)),
        "data": str(ic.DATASETS.resolve(config.data)),
        "loss": [str(s) for s in compose_loss_specs(config.loss, ic.LOSSES)],
        "log": [str(ic.LOGGERS.resolve(s)) for s in config.log],
    }


def model_spec(model: str) -> ic.Spec:
    """The ``--model`` spec resolved; a model that another command trains is refused, naming that command."""
    spec = ic.MODELS.resolve(model)
    trained_by = getattr(ic.MODELS.get(spec.name), "trained_by", "imtrans train")
    if trained_by != "imtrans train":
        raise ImtransError(f"--model {model}: this model is trained with `{trained_by}`, not `imtrans train`")
    return spec


def check_features(config: TrainConfig) -> None:
    """Refuse an optional feature (``--ema``) that ``--model`` does not read: it would be ignored."""
    model = ic.MODELS.get(ic.MODELS.resolve(config.model).name)
    for name in OPTIONAL_FEATURES:
        value = getattr(config, name)
        if value != FIELDS[name].default and name not in getattr(model, "features", frozenset()):
            raise ImtransError(
                f"--{flag(name)} {value}: --model {config.model} does not use it (only models that declare "
                f"it do, e.g. cyclegan); drop --{flag(name)}"
            )


def generator_spec(gen: str, context: int = 0) -> ic.Spec:
    """The generator spec resolved for stacks of ``2 * context + 1`` slices in and out (2.5-D)."""
    return _stacked(ic.GENERATORS, "--gen", gen, context, ("in_ch", "out_ch"))


def discriminator_spec(disc: str, context: int = 0) -> ic.Spec:
    """The discriminator spec resolved for stacks of ``2 * context + 1`` slices in."""
    return _stacked(ic.DISCRIMINATORS, "--disc", disc, context, ("in_ch",))


def _stacked(registry: ic.Registry, option: str, spec: str, context: int, keys: tuple[str, ...]) -> ic.Spec:
    """``spec`` resolved with ``keys`` set to the stack's channels; a spec that sets them otherwise is refused.

    With ``context`` 0 the spec is resolved as written (one slice: every
    network's default).
    """
    if context == 0:
        return registry.resolve(spec)
    channels = 2 * context + 1
    typed = registry.resolve(spec).kwargs
    for key in sorted(set(keys) & set(ic.parse(spec).kwargs)):
        if typed[key] != channels:
            raise ImtransError(
                f"{option} {spec}: {key}={typed[key]}, but --context {context} feeds stacks of {channels} "
                f"slices; drop {key} from the spec (it follows from --context)"
            )
    return registry.resolve(spec, **dict.fromkeys(keys, channels))


def describe_resolved(resolved: dict[str, Any]) -> str:
    """The resolved specs on one line, as ``train --dry-run`` prints them and a run logs them."""
    return "  ".join(f"{k}={v}" for k, v in resolved.items() if v)


def check_size(gen: str, disc: str, size: int, context: int = 0) -> None:
    """Refuse a ``--size`` the networks cannot train on, naming the smallest they accept.

    The networks run once on a size x size slice (a stack of ``2 * context + 1``
    of them for 2.5-D): the generator must give back the same shape and the discriminator must accept it. They are built
    on the ``meta`` device first (shapes only: no memory, no arithmetic); what
    fails there is tried again on the CPU, since code that looks at values (an
    ``.item()``, an ``if`` on a tensor) cannot run on ``meta``. Nothing about the
    architectures is hard-coded, so a plugin's network is checked the same way.
    """
    problem = _probe(gen, disc, size, "meta", context) and _probe(gen, disc, size, "cpu", context)
    if problem is None:
        return
    # Look for the smallest size where the networks run: on meta if they run there at all.
    device = next((d for d in ("meta", "cpu") if _probe(gen, disc, REFERENCE_SIZE, d, context) is None), None)
    if device is None:  # not the size: the networks themselves
        raise ImtransError(
            f"{gen} with {disc} cannot train on {size} x {size} slices, nor on {REFERENCE_SIZE} x "
            f"{REFERENCE_SIZE} ({problem}); check their specs (in_ch, out_ch, ...)"
        )
    smallest = next(s for s in range(2, REFERENCE_SIZE + 1) if _probe(gen, disc, s, device, context) is None)
    raise ImtransError(
        f"--size {size}: {gen} with {disc} cannot train on {size} x {size} slices ({problem}); "
        f"the smallest size they accept is {smallest}"
    )


@functools.lru_cache(maxsize=4)
def _networks(gen: str, disc: str, device: str, context: int) -> tuple[torch.nn.Module, torch.nn.Module]:
    with torch.device(device):
        return (
            ic.GENERATORS.build(generator_spec(gen, context)),
            ic.DISCRIMINATORS.build(discriminator_spec(disc, context)),
        )


@torch.no_grad()
def _probe(gen: str, disc: str, size: int, device: str, context: int = 0) -> str | None:
    """None when the networks train on stacks of size x size slices on ``device``, else why not in a few words."""
    generator, discriminator = _networks(gen, disc, device, context)
    x = torch.zeros(1, 2 * context + 1, size, size, device=device)
    try:
        y = generator(x)
        if tuple(y.shape) != tuple(x.shape):
            return f"the generator returns {tuple(y.shape)} for {tuple(x.shape)}"
        discriminator(y)
    except Exception as err:  # whatever a network raises on a slice it cannot take
        text = str(err).strip()
        return f"{type(err).__name__}: {text.splitlines()[0][:120]}" if text else type(err).__name__
    return None
