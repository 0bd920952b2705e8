"""What a trainable model is: the part of training that the engine does not own.

A model (an entry of ``imtrans_core.MODELS``) owns its method: it declares its
networks, default losses, the options it reads and the directions it translates,
performs one training step, and saves and restores its own state; the engine
(:mod:`.engine`) owns the rest: the loop, atomic checkpoints, resume after a kill,
the NaN stop, Ctrl-C, progress, the event hooks and the loggers. The built-in
methods (cyclegan, pix2pix, ...) are plugins written against ``imtrans_core.api``,
as a third-party one is (see ``plugins/examples/imtrans-example``).

The registry builds a model from its spec (``--model cyclegan``) with only the
spec's parameters: it is cheap and holds no networks. The command that trains it
(``trained_by``) then calls ``setup`` with its settings and the process group.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

# `imtrans train`'s options that only some models read: a model declares those it reads in
# ``reads``, and any other one given is refused before work rather than silently ignored
MODEL_OPTIONS = ("gen", "disc", "loss", "pool", "pairing", "ema", "compile")


@dataclass(frozen=True)
class Network:
    """One network a model builds: the registry that builds it and its resolved spec."""

    registry: Any  # imtrans_core.Registry: GENERATORS, DISCRIMINATORS or a plugin's
    spec: Any  # imtrans_core.Spec, every parameter filled in

    def build(self) -> nn.Module:
        return self.registry.build(self.spec)

    def __hash__(self) -> int:  # a spec's keyword values sit in a dict: hash its text
        return hash((id(self.registry), str(self.spec)))

    def __str__(self) -> str:
        return str(self.spec)


class TrainableModel(ABC):
    """The interface the engine trains; subclass it and implement the abstract methods below
    (a subclass that misses one cannot be built, and the error names it).

    ``train_step`` returns its loss terms detached and named for the log; the
    terms named ``total...`` are the ones the engine checks for NaN/inf after
    every step (the first non-finite term is named in the error).
    """

    name: str = ""  # the name it is registered under (set when built for a run)
    trained_by: ClassVar[str] = "imtrans train"  # the command whose settings ``setup`` reads
    label: ClassVar[str] = "train"  # the progress line's name
    shown: ClassVar[tuple[str, ...]] = ()  # the terms the progress line shows, in order (): all
    reads: ClassVar[frozenset[str]] = frozenset({"gen"})  # which of MODEL_OPTIONS ``setup`` reads
    default_losses: ClassVar[tuple[str, ...]] = ()  # loss specs added before --loss's
    loss_kinds: ClassVar[frozenset[str]] = frozenset()  # the ``kind`` of every loss it reads
    single_kinds: ClassVar[frozenset[str]] = frozenset()  # kinds it takes one term of: a new one replaces
    # which network translates each direction (mr2ct, ct2mr): what translate and export load
    translates: ClassVar[dict[str, str]] = {}
    roles: ClassVar[dict[str, str]] = {}  # what each network does, in a few words (``train --dry-run``)

    @abstractmethod
    def setup(self, config: Any, dist: Any) -> None:
        """Build the networks (on ``dist.device``, wrapped with ``dist.wrap`` for DDP) and optimisers."""

    @property
    @abstractmethod
    def networks(self) -> dict[str, nn.Module]:
        """The trained networks by name: what hooks see and what ``state_dict()["models"]`` saves."""

    @abstractmethod
    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One optimisation step on ``batch`` (already on the device); returns the detached loss terms."""

    @abstractmethod
    def lr(self) -> float:
        """The current learning rate, for the log."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything besides the step and the RNG that resuming bit for bit needs; ``models`` holds the networks."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()``'s entries; ``state["step"]`` says which iteration it was saved at."""

    def network_specs(self) -> dict[str, str]:
        """The resolved spec of each network of ``networks`` that a registry built, by the same names.

        Every checkpoint stores them, and inference rebuilds a network from its stored spec, so a
        default changed after training never changes the network a checkpoint loads into.
        """
        return {}

    def resolve_networks(self, config: Any) -> dict[str, Network]:
        """Each network ``setup`` builds from ``config``, by name, with its resolved spec.

        Called before any work: ``config.json`` records them and the size check builds them.
        """
        return {}

    def probe(self, networks: dict[str, nn.Module], x: torch.Tensor) -> str | None:
        """Run ``networks`` (built from ``resolve_networks``) once as a step would on input ``x``.

        Returns None when they fit together, else what went wrong in a few words; what a
        network raises is caught by the caller. The default runs each network on ``x``.
        """
        for network in networks.values():
            network(x)
        return None

    def check_losses(self, kinds: dict[str, str], removed: dict[str, str]) -> None:
        """Refuse (``SpecError``) a set of loss terms the method cannot train with.

        ``kinds``: each composed term's kind by name; ``removed``: for each kind, the
        ``--loss name:0`` that removed its last term, for the message.
        """
        return None

    def samples(self, fixed: Any) -> dict[str, np.ndarray]:
        """Sample images of ``fixed`` inputs as (H, W) float arrays in [-1, 1], three to a row when drawn."""
        return {}

    # -- what ``imtrans train`` asks of the models it trains ---------------------------------

    def data_needs(self) -> tuple[bool, bool]:
        """Whether a step reads unpaired (``ct``, ``mr``) slices and aligned (``pair_ct``, ``pair_mr``) ones."""
        return True, False

    def observe_data(self, stacks: list[Any]) -> None:
        """Called once the training slices are ready, before the first step (also on resume).

        ``stacks``: the :class:`~imtrans_core.data.slices.SliceStacks` the steps
        draw from (``modality`` says which pool). A model whose objective is
        fitted to the data (e.g. the contrast prior) does it here; the default
        needs nothing.
        """
        return None
