"""What GAN methods share, for models to build on: a base model that keeps their bookkeeping
(``GANModel``), optimisers on the paper's schedule, the discriminator's loss, compilation and
sample images.

A model keeps its method (its networks, its objective, the order of its updates); these
helpers keep the bookkeeping that every GAN of the field does the same way (Adam with a
constant then linearly decaying rate, one GradScaler for fp16, the rate restored on resume).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from .ema import WeightAverage
from .precision import resolve_amp
from .schedule import linear_decay, lr_factor
from .trainable import Network, TrainableModel

log = logging.getLogger("imtrans")


class Optimizers:
    """Adam with the linear decay for each named group of parameters, under one GradScaler.

    ``groups`` maps a name (``g``, ``d``, ...) to the parameters it updates; ``config`` gives
    ``lr``, ``beta1``, ``beta2``, ``iters``, ``turn`` and ``amp``. ``state_dict`` holds
    ``opt_<name>``, ``sched_<name>`` and ``scaler``: everything resuming bit for bit needs.
    """

    def __init__(self, config: Any, device: torch.device, groups: dict[str, Iterable[nn.Parameter]]):
        self.config = config
        self.amp = resolve_amp(config.amp, device)  # the autocast dtype; None: fp32
        betas = (config.beta1, config.beta2)
        self.adam = {
            name: torch.optim.Adam(params, lr=config.lr, betas=betas) for name, params in groups.items()
        }
        self.schedules = {
            name: linear_decay(opt, config.iters, config.turn) for name, opt in self.adam.items()
        }
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp == torch.float16)
        self.stepped: set[str] = set()  # the groups updated in this iteration

    @property
    def done(self) -> int:
        """Iterations completed, counted from the run's start (the first group is updated in every one)."""
        return next(iter(self.schedules.values())).last_epoch

    def step(self, names: str | tuple[str, ...], loss: torch.Tensor) -> None:
        """Back-propagate ``loss`` (scaled for fp16) once and update the parameters of group(s) ``names``."""
        names = (names,) if isinstance(names, str) else names
        for name in names:
            self.adam[name].zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        for name in names:
            self.scaler.step(self.adam[name])
        self.stepped.update(names)

    def end_iteration(self) -> None:
        """Update the loss scale and move the rate of each group updated in this iteration one on.

        A group not updated (a discriminator in supervised training) keeps its rate until it is.
        """
        self.scaler.update()
        for name in self.stepped:
            self.schedules[name].step()
        self.stepped.clear()

    def lr(self) -> float:
        """The first group's current learning rate (all follow one schedule)."""
        return next(iter(self.adam.values())).param_groups[0]["lr"]

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"scaler": self.scaler.state_dict()}
        for name in self.adam:
            state[f"opt_{name}"] = self.adam[name].state_dict()
            state[f"sched_{name}"] = self.schedules[name].state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()``'s entries, then follow the config's schedule from ``state["step"]``."""
        for name in self.adam:
            self.adam[name].load_state_dict(state[f"opt_{name}"])
            self.schedules[name].load_state_dict(state[f"sched_{name}"])
        if state["scaler"]:  # empty when saved without fp16 (e.g. on a CPU, now resumed on a GPU)
            self.scaler.load_state_dict(state["scaler"])
        self._follow_schedule(int(state["step"]))

    def _follow_schedule(self, step: int) -> None:
        """Set the rates the config's schedule gives at ``step``: a run resumed with more ``iters``
        (or another ``decay_from``) follows its new schedule; unchanged, the saved rate is recomputed exactly."""
        factor = lr_factor(step, self.config.iters, self.config.turn)
        saved = self.lr()
        for name, optimizer in self.adam.items():
            for group, base in zip(optimizer.param_groups, self.schedules[name].base_lrs, strict=True):
                group["lr"] = base * factor
        if self.lr() != saved:
            log.info(
                f"learning rate at iteration {step}: {saved:.2e} -> {self.lr():.2e} (the schedule of "
                f"--iters {self.config.iters}, decay from {self.config.turn})"
            )


class GANModel(TrainableModel):
    """A model with the bookkeeping GAN methods share; a method sets it up in its ``setup`` with
    ``build_networks`` and ``self.optimizers = Optimizers(...)``, and ``update_averages()`` after its
    generator's update.

    It gives ``networks`` (what ``resolve_networks`` resolved, built in its order), their specs,
    the learning rate, the weight averages of ``averaged`` (``--ema``: what translation then loads)
    and the state that resumes all of them; a method that keeps more (an image pool, a loss's
    parameters) adds it to ``state_dict`` and ``load_state_dict``.
    """

    averaged: ClassVar[tuple[str, ...]] = ()  # the networks --ema averages (the translators, as a rule)
    optimizers: Optimizers

    def build_networks(self, config: Any, device: torch.device) -> dict[str, nn.Module]:
        """Build each network of ``resolve_networks(config)`` on ``device`` (in its order: the weights'
        initial draws follow it) and, with ``config.ema``, an average of each of ``averaged``."""
        self.specs: dict[str, Network] = self.resolve_networks(config)
        self.built = {name: network.build().to(device) for name, network in self.specs.items()}
        decay = config.ema
        self.averages = (
            {name: WeightAverage(self.built[name], decay) for name in self.averaged} if decay else {}
        )
        return self.built

    def update_averages(self) -> None:
        """Move each weight average towards its network (call after the generators' update)."""
        for name, average in self.averages.items():
            average.update(self.built[name], self.optimizers.done + 1)

    @property
    def networks(self) -> dict[str, nn.Module]:
        return dict(self.built)

    def network_specs(self) -> dict[str, str]:
        return {name: str(network) for name, network in self.specs.items()}

    def lr(self) -> float:
        return self.optimizers.lr()

    def state_dict(self) -> dict[str, Any]:
        state = {"models": {name: net.state_dict() for name, net in self.built.items()}}
        if self.averages:
            state["ema"] = {name: average.module.state_dict() for name, average in self.averages.items()}
        return {**state, **self.optimizers.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, net in self.built.items():
            net.load_state_dict(state["models"][name])
        for name, average in self.averages.items():
            average.module.load_state_dict(state["ema"][name])
        self.optimizers.load_state_dict(state)


def discriminator_loss(adversarial: nn.Module, scores: torch.Tensor, n_real: int) -> torch.Tensor:
    """A discriminator's loss on ``scores`` of ``n_real`` real images first, synthetic ones after.

    Halved as in the reference CycleGAN and pix2pix, so the discriminator learns at half the
    generator's pace; ``adversarial(scores, is_real)`` is an adversarial loss (lsgan, vanilla).
    """
    return 0.5 * (adversarial(scores[:n_real], True) + adversarial(scores[n_real:], False))


def compiled(module: nn.Module, mode: str) -> nn.Module:
    """``module`` under ``torch.compile`` in ``mode`` (``off``: as it is).

    Only the module that runs is compiled; the networks inside keep their own state dicts,
    so checkpoints do not depend on whether a run was compiled.
    """
    return module if mode == "off" else torch.compile(module, mode=mode)


def middle_slices(images: dict[str, torch.Tensor], middle: int) -> dict[str, np.ndarray]:
    """The first sample's slice ``middle`` of each (N, C, H, W) batch: what ``samples`` returns."""
    return {name: image[0, middle].float().cpu().numpy() for name, image in images.items()}
