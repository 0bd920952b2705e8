"""Which loss terms a model trains with: its ``default_losses``, then the ``--loss`` specs.

Each spec adds its term or replaces the term of the same name (weight and options);
weight 0 removes it; a term of a kind the model takes one of (``single_kinds``, e.g. the
adversarial term) replaces the earlier term of that kind. Terms are told apart by their
class attribute ``kind``, not by name, so losses from any plugin compose the same way; a
model names the kinds it reads (``loss_kinds``) and any other is refused in one line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from ..errors import SpecError


def compose_loss_specs(specs: Sequence[str], registry: Any, model: Any) -> list[Any]:
    """The resolved specs (every parameter filled in) of ``model``'s terms, in order.

    ``registry`` is the loss registry (``imtrans_core.LOSSES``) and ``model`` a
    :class:`~.trainable.TrainableModel`; for cyclegan, ``['gc:0.3']`` gives
    ``['lsgan:weight=1.0', 'cycle:weight=3.0', 'gc:weight=0.3,op=sobel,abs=true']``.
    """
    terms: dict[str, tuple[Any, nn.Module]] = {}
    removed: dict[str, str] = {}  # kind -> the --loss that removed the last term of that kind
    for text in (*model.default_losses, *specs):
        spec = registry.resolve(text)
        loss = registry.build(spec)
        kind = _kind(loss)
        if kind not in model.loss_kinds:
            raise SpecError(_not_read(text, kind, model))
        if loss.weight == 0:
            if terms.pop(spec.name, None) is not None:
                removed[kind] = text
            continue
        if kind in model.single_kinds:
            terms = {name: term for name, term in terms.items() if _kind(term[1]) != kind}
        terms[spec.name] = (spec, loss)
    model.check_losses({name: _kind(loss) for name, (_, loss) in terms.items()}, removed)
    return [spec for spec, _ in terms.values()]


def compose_losses(specs: Sequence[str], registry: Any, model: Any) -> dict[str, nn.Module]:
    """``model``'s loss modules by registry name, each with its ``weight``, ``name`` and ``kind``.

    See :func:`compose_loss_specs` for the rules.
    """
    losses = {}
    for spec in compose_loss_specs(specs, registry, model):
        loss = registry.build(spec)
        loss.name = spec.name
        losses[spec.name] = loss
    return losses


def _not_read(text: str, kind: str, model: Any) -> str:
    name = model.name or type(model).__name__
    if not model.loss_kinds:
        return f"--loss {text}: --model {name} reads no --loss (its objective is fixed); drop --loss"
    return (
        f"--loss {text}: a loss of kind {kind!r}, which --model {name} does not read; it reads losses of "
        f"kind {', '.join(sorted(model.loss_kinds))} (see `imtrans plugins losses`)"
    )


def _kind(loss: nn.Module) -> str:
    return getattr(loss, "kind", "")
