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
from .config import TrainConfig, default_of, flag, preset_options
from .distributed import device_kind
from .objective import compose_loss_specs, compose_losses
from .precision import resolve_amp
from .trainable import MODEL_OPTIONS, Network, TrainableModel

REFERENCE_SIZE = 256  # the paper's slice size: networks that fail on it fail for another reason


def check(config: TrainConfig) -> dict[str, Any]:
    """Every check that needs the registries or the machine; returns the resolved specs."""
    model = build_model(config.model)
    check_options(config, model)
    resolved = resolve_specs(config, model)
    for spec in config.log:  # built once now: a logger missing its package says so before any work
        ic.LOGGERS.build(spec)
    check_size(model, config)
    resolve_amp(config.amp, torch.device(device_kind(config.device)))
    return resolved


def check_data(config: TrainConfig, model: TrainableModel, source: Any) -> None:
    """Refuse a model or a paired loss that trains on aligned pairs when the data has none."""
    if not model.data_needs()[1] or source.train_pairs:
        return
    given = {ic.parse(spec).name for spec in config.loss}  # what the person added, not the model's own
    losses = compose_losses(config.loss, ic.LOSSES, model) if given else {}
    paired = [
        name for name, loss in losses.items() if getattr(loss, "kind", "") == "paired" and name in given
    ]
    why = f"--loss {paired[0]}" if paired else f"--model {config.model}"
    raise ImtransError(
        f"{why} trains on aligned CT/MR pairs, and --data {config.data} has none; "
        "give data with training pairs (phantom:n_train_pairs=N, folder:ct=DIR,mr=DIR,pairs=DIR, "
        "synthrad:root=DIR)" + (" or drop the paired loss" if why.startswith("--loss") else "")
    )


def resolve_specs(config: TrainConfig, model: TrainableModel) -> dict[str, Any]:
    """Every spec of the config checked against its registry and resolved (defaults filled in).

    ``networks``: what ``model`` builds, by its names, as it resolves them (a conditional
    discriminator's channels included): what was trained, not what was typed.
    """
    networks = model.resolve_networks(config)
    losses = compose_loss_specs(config.loss, ic.LOSSES, model) if "loss" in model.reads else []
    return {
        "model": str(ic.MODELS.resolve(config.model)),
        "networks": {name: str(spec) for name, spec in networks.items()},
        "data": str(ic.DATASETS.resolve(config.data)),
        "loss": [str(s) for s in losses],
        "log": [str(ic.LOGGERS.resolve(s)) for s in config.log],
    }


def build_model(model: str) -> TrainableModel:
    """The ``--model`` built from its spec (cheap: no networks yet); one another command trains is refused."""
    spec = ic.MODELS.resolve(model)
    trained_by = getattr(ic.MODELS.get(spec.name), "trained_by", "imtrans train")
    if trained_by != "imtrans train":
        raise ImtransError(f"--model {model}: this model is trained with `{trained_by}`, not `imtrans train`")
    built = ic.MODELS.build(spec)
    built.name = spec.name
    return built


def check_options(config: TrainConfig, model: TrainableModel) -> None:
    """Refuse an option only some models read (``MODEL_OPTIONS``) given for one that does not: it would be ignored.

    A value the preset sets is not the user's choice and passes (a preset may set ``--disc``).
    """
    # the preset a run was trained with may since have been uninstalled: then nothing is the preset's
    preset = preset_options(config.preset) if config.preset in ic.PRESETS else {}
    for name in MODEL_OPTIONS:
        value = getattr(config, name)
        if name in model.reads or value == default_of(name) or preset.get(name) == value:
            continue
        shown = " ".join(value) if isinstance(value, list) else value
        reads = ", ".join(f"--{flag(n)}" for n in MODEL_OPTIONS if n in model.reads) or "none of them"
        raise ImtransError(
            f"--{flag(name)} {shown}: --model {config.model} does not read it (of the options only some "
            f"models read, it reads {reads}); drop --{flag(name)}"
        )


def generator_spec(gen: str, context: int = 0) -> ic.Spec:
    """The generator spec resolved for stacks of ``2 * context + 1`` slices in and out (2.5-D)."""
    return _stacked(ic.GENERATORS, "--gen", gen, context, 1, ("in_ch", "out_ch"))


def discriminator_spec(disc: str, context: int = 0, images: int = 1) -> ic.Spec:
    """The discriminator spec resolved for ``images`` stacks of ``2 * context + 1`` slices in.

    ``images`` 2: a conditional discriminator that judges (source, target) as channels (pix2pix's).
    """
    return _stacked(ic.DISCRIMINATORS, "--disc", disc, context, images, ("in_ch",))


def _stacked(
    registry: ic.Registry, option: str, spec: str, context: int, images: int, keys: tuple[str, ...]
) -> ic.Spec:
    """``spec`` resolved with ``keys`` set to the channels of ``images`` stacks; a spec that sets them otherwise
    is refused. One image of one slice (``context`` 0) is resolved as written (every network's default)."""
    if context == 0 and images == 1:
        return registry.resolve(spec)
    channels = images * (2 * context + 1)
    typed = registry.resolve(spec).kwargs
    for key in sorted(set(keys) & set(ic.parse(spec).kwargs)):
        if typed[key] != channels:
            why = (
                f"--context {context} feeds stacks of {2 * context + 1} slices"
                if images == 1
                else (
                    f"the model feeds it {images} images of {2 * context + 1} slice(s) as {channels} channels"
                )
            )
            raise ImtransError(
                f"{option} {spec}: {key}={typed[key]}, but {why}; drop {key} from the spec (it follows from them)"
            )
    return registry.resolve(spec, **dict.fromkeys(keys, channels))


def describe_resolved(resolved: dict[str, Any]) -> str:
    """The resolved specs on one line, as ``train --dry-run`` prints them and a run logs them.

    Networks built from one spec are named together (``g_ct,g_mr=resnet9:...``).
    """
    named: dict[str, list[str]] = {}
    for name, spec in resolved.get("networks", {}).items():
        named.setdefault(spec, []).append(name)
    items = {k: v for k, v in resolved.items() if k != "networks"}
    items = {"model": items.pop("model", ""), **{",".join(n): s for s, n in named.items()}, **items}
    return "  ".join(f"{k}={' '.join(v) if isinstance(v, list) else v}" for k, v in items.items() if v)


def check_size(model: TrainableModel, config: TrainConfig) -> None:
    """Refuse a ``--size`` the model's networks cannot train on, naming the smallest they accept.

    The networks run once, as ``model.probe`` runs them, on a size x size slice (a stack of
    ``2 * context + 1`` for 2.5-D). They are built on the ``meta`` device first (shapes only);
    what fails there is tried again on the CPU, since code that looks at values cannot run on
    ``meta``. Nothing about the architectures is hard-coded, so a plugin's network and method
    are checked the same way.
    """
    networks = tuple(model.resolve_networks(config).items())
    if not networks:
        return
    size, context = config.size, config.context

    def probe(side: int, device: str) -> str | None:
        return _probe(model, networks, side, device, context)

    problem = probe(size, "meta") and probe(size, "cpu")
    if problem is None:
        return
    kinds = ", ".join(dict.fromkeys(network.spec.name for _, network in networks))
    shown = f"the networks of {model.name or type(model).__name__} ({kinds})"
    device = next((d for d in ("meta", "cpu") if probe(REFERENCE_SIZE, d) is None), None)
    if device is None:  # not the size: the networks themselves
        raise ImtransError(
            f"{shown} cannot train on {size} x {size} slices, nor on {REFERENCE_SIZE} x "
            f"{REFERENCE_SIZE} ({problem}); check their specs (in_ch, out_ch, ...)"
        )
    smallest = next(s for s in range(2, REFERENCE_SIZE + 1) if probe(s, device) is None)
    raise ImtransError(
        f"--size {size}: {shown} cannot train on {size} x {size} slices ({problem}); "
        f"the smallest size they accept is {smallest}"
    )


Networks = tuple[tuple[str, Network], ...]


@functools.lru_cache(maxsize=4)
def _built(networks: Networks, device: str) -> dict[str, torch.nn.Module]:
    with torch.device(device):
        return {name: network.build() for name, network in networks}


@torch.no_grad()
def _probe(model: TrainableModel, networks: Networks, size: int, device: str, context: int) -> str | None:
    """None when the networks train on stacks of size x size slices on ``device``, else why not in a few words."""
    x = torch.zeros(1, 2 * context + 1, size, size, device=device)
    try:
        return model.probe(_built(networks, device), x)
    except Exception as err:  # whatever a network raises on a slice it cannot take
        text = str(err).strip()
        return f"{type(err).__name__}: {text.splitlines()[0][:120]}" if text else type(err).__name__
