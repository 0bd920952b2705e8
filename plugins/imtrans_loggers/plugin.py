"""Registers the loggers: ``jsonl`` and ``samples`` (always on), ``tensorboard`` (on request)."""

from __future__ import annotations

from imtrans_core import hookimpl


def jsonl(filename: str = "metrics.jsonl"):
    """Metrics log: one JSON line per log interval (iter, each loss term, lr, it/s)."""
    from .loggers import JsonlLogger

    return JsonlLogger(filename)


def samples(every: int = 0):
    """PNG sample grids (MR, synthetic CT, reconstruction; CT, synthetic MR, reconstruction)."""
    from .loggers import SampleLogger

    return SampleLogger(every)


def tensorboard(logdir: str = ""):
    """TensorBoard scalars for every loss term and the learning rate (needs `pip install tensorboard`)."""
    try:
        from .loggers import TensorBoardLogger

        return TensorBoardLogger(logdir)
    except ImportError as err:
        from imtrans_core.api import ImtransError

        raise ImtransError(
            f"--log tensorboard needs the tensorboard package: pip install tensorboard ({err})"
        ) from err


@hookimpl
def imtrans_register(registries) -> None:
    registries.loggers.add("jsonl", jsonl)
    registries.loggers.add("samples", samples)
    registries.loggers.add("tensorboard", tensorboard)
