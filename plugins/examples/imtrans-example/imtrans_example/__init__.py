"""An example third-party imtrans plugin: one generator, one metric, one trainable model and its preset.

Install it with ``pip install plugins/examples/imtrans-example``; then
``imtrans plugins`` lists ``tiny``, ``maxerr``, ``paired-l1`` and ``tiny-pairs`` as provided by
``example``, ``imtrans train --gen tiny:width=16`` trains CycleGAN with it and
``imtrans train --preset tiny-pairs`` trains the model of :mod:`imtrans_example.model`.
"""

from __future__ import annotations

from imtrans_core import SpecError, hookimpl


def tiny(in_ch: int = 1, out_ch: int = 1, width: int = 8):
    """Three 3x3 convolutions: a tiny generator, to show how a plugin adds a network."""
    if width < 1:
        raise SpecError(f"width must be at least 1, got {width}")
    from torch import nn  # imported when built, so `imtrans --help` stays fast

    return nn.Sequential(
        nn.Conv2d(in_ch, width, 3, padding=1, padding_mode="reflect"),
        nn.ReLU(inplace=True),
        nn.Conv2d(width, width, 3, padding=1, padding_mode="reflect"),
        nn.ReLU(inplace=True),
        nn.Conv2d(width, out_ch, 3, padding=1, padding_mode="reflect"),
        nn.Tanh(),
    )


class MaxError:
    """Largest absolute difference between prediction and reference (inside the mask)."""

    name = "maxerr"
    higher_is_better = False
    unit = "input units"

    def __call__(self, pred, ref, mask=None) -> float:
        import numpy as np

        diff = np.abs(np.asarray(pred, dtype=np.float64) - np.asarray(ref, dtype=np.float64))
        return float(diff[mask].max() if mask is not None else diff.max())


def maxerr() -> MaxError:
    """Maximum absolute error: the worst voxel, a quick check for outliers."""
    return MaxError()


def tiny_pairs() -> dict:
    """A few phantom pairs: the paired-l1 model with the tiny generator, trained in seconds."""
    return {
        "model": "paired-l1",
        "gen": "tiny:width=16",
        "data": "phantom:n_train_pairs=4",
        "size": 64,
        "iters": 50,
    }


@hookimpl
def imtrans_register(registries) -> None:
    registries.generators.add("tiny", tiny)
    registries.metrics.add("maxerr", maxerr)
    registries.models.add("paired-l1", "imtrans_example.model:PairedL1")
    registries.presets.add("tiny-pairs", tiny_pairs)
