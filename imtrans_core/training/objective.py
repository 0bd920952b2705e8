"""Which loss terms make up the objective, Eq. 6, from ``--loss`` specs.

The default set is the CycleGAN of Zhu et al. with the paper's weights,
``lsgan:1`` and ``cycle:3``; ``--loss gc:0.3`` then gives the paper's Eq. 6.
Each spec adds its term or replaces the term of the same name (weight and
options); weight 0 removes it; a new adversarial term replaces the old one,
since the discriminators train on exactly one. Without an adversarial term the
discriminators are not trained at all, which only makes sense for supervised
training: ``paired:1 lsgan:0 cycle:0`` is plain L1 regression on aligned pairs.
Terms are told apart by their class attribute ``kind`` (see
:mod:`imtrans_cyclegan.losses`), not by name, so losses from other plugins
compose the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from imtrans_core import SpecError

from .. import defaults

DEFAULT_LOSSES = defaults.LOSSES


def compose_loss_specs(specs: Sequence[str], registry: Any) -> list[Any]:
    """The resolved specs (every parameter filled in) of the objective's terms, in order.

    ``registry`` is the loss registry (``imtrans_core.LOSSES``); what is
    returned is what a run's config stores, e.g. ``['lsgan:weight=1.0',
    'cycle:weight=3.0', 'gc:weight=0.3,op=sobel,abs=true']`` for ``['gc:0.3']``.
    """
    terms: dict[str, tuple[Any, nn.Module]] = {}
    removed_adversarial = ""
    for text in (*DEFAULT_LOSSES, *specs):
        spec = registry.resolve(text)
        loss = registry.build(spec)
        if loss.weight == 0:
            _, old = terms.pop(spec.name, (None, None))
            removed_adversarial = text if _kind(old) == "adversarial" else removed_adversarial
            continue
        if _kind(loss) == "adversarial":
            terms = {name: term for name, term in terms.items() if _kind(term[1]) != "adversarial"}
        terms[spec.name] = (spec, loss)
    kinds = {_kind(loss) for _, loss in terms.values()}
    if "adversarial" not in kinds and "paired" not in kinds:
        raise SpecError(
            f"--loss {removed_adversarial} leaves no adversarial loss, and unpaired training needs one; "
            "to change it give another (e.g. --loss vanilla) instead of a weight of 0, "
            "or add --loss paired for supervised training on aligned pairs"
        )
    return [spec for spec, _ in terms.values()]


def compose_losses(specs: Sequence[str], registry: Any) -> dict[str, nn.Module]:
    """The objective's loss modules by registry name, each with its ``weight``, ``name`` and ``kind``.

    ``compose_losses(['gc:0.3'], ic.LOSSES)`` gives lsgan 1, cycle 3 and gc
    0.3: Eq. 6. See :func:`compose_loss_specs` for the rules.
    """
    losses = {}
    for spec in compose_loss_specs(specs, registry):
        loss = registry.build(spec)
        loss.name = spec.name
        losses[spec.name] = loss
    return losses


def _kind(loss: nn.Module) -> str:
    return getattr(loss, "kind", "")
