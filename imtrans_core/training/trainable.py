"""What a trainable model is: the part of training that the engine does not own.

A model (an entry of ``imtrans_core.MODELS``) declares its networks and
optimisers, performs one training step, and saves and restores its own state;
the engine (:mod:`.engine`) owns everything else: the loop, checkpoints written
atomically, resume after a kill, the NaN stop, Ctrl-C, progress, the event hooks
and the loggers. ``cyclegan`` (:mod:`.cyclegan`) and the segmentation plugin's
``segment`` are two; a third-party package adds its own through the ``imtrans``
entry points exactly as they do (see ``plugins/examples/imtrans-example``).

The registry builds a model from its spec (``--model cyclegan``) with only the
spec's parameters: it is cheap and holds no networks. The command that trains it
(``trained_by``) then calls ``setup`` with its settings and the process group.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

OPTIONAL_FEATURES = ("ema",)  # TrainConfig fields off by default that only some models read


class TrainableModel(ABC):
    """The interface the engine trains; subclass it and implement the abstract methods below
    (a subclass that misses one cannot be built, and the error names it).

    ``train_step`` returns its loss terms detached and named for the log; the
    terms named ``total...`` are the ones the engine checks for NaN/inf after
    every step (the first non-finite term is named in the error).
    """

    trained_by: ClassVar[str] = "imtrans train"  # the command whose settings ``setup`` reads
    label: ClassVar[str] = "train"  # the progress line's name
    shown: ClassVar[tuple[str, ...]] = ()  # the terms the progress line shows, in order
    # which of ``imtrans train``'s optional features (OPTIONAL_FEATURES) ``setup`` reads: one set
    # for a model that ignores it is refused before any work rather than silently dropped
    features: ClassVar[frozenset[str]] = frozenset()

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
