"""Progress on a terminal, the same for every command; plain lines where stderr is not one.

- :func:`file_bar`: a bar over volumes (or subjects), each task's rate in its ``unit``
  (``translate``, ``evaluate``, ``data prepare``);
- :func:`track`: a transient bar over items that take a while (slice caches, synthetic MR);
- :class:`TrainingProgress`: the training loop's bar, with its losses, rate and ETA.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichProgress
from rich.progress import track as rich_track
from rich.text import Text


class _Rate(ProgressColumn):
    """The task's rate in its ``unit`` field: ``2.31 slice/s``, or ``3.2 s/volume`` when under one a second."""

    def render(self, task: Task) -> Text:
        speed, unit = task.speed, task.fields.get("unit", "volume")
        if not speed:
            return Text("")
        text = f"{speed:.2f} {unit}/s" if speed >= 1 else f"{1 / speed:.1f} s/{unit}"
        return Text(text, style="progress.data.speed")


def file_bar(console: Console) -> RichProgress:
    """A bar for a batch of files: add tasks with ``unit="volume"`` (the default) or ``"slice"``."""
    return RichProgress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _Rate(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


def track(items: Iterable[Any], label: str, enabled: bool = True) -> Iterator[Any]:
    """``items`` one by one, under a transient bar named ``label`` when ``enabled``."""
    if not enabled:
        yield from items
        return

    yield from rich_track(list(items), description=label, transient=True)


def describe(metrics: dict[str, float], terms: tuple[str, ...] = ()) -> str:
    """The loss terms ``terms`` of ``metrics`` (all of them when empty) and the iteration rate."""
    names = terms or tuple(k for k in metrics if k not in ("it_per_s", "lr"))
    shown = [f"{k} {metrics[k]:.3f}" for k in names if k in metrics]
    return "  ".join(shown) + f"  {metrics.get('it_per_s', 0.0):.2f} it/s"


class TrainingProgress:
    """The training loop's progress, a context manager: ``update(step, metrics)`` at each log interval.

    ``label`` names the loop and ``terms`` are the metrics shown, in order.
    """

    def __init__(
        self,
        total: int,
        start: int,
        enabled: bool = True,
        stream: Any = None,
        label: str = "train",
        terms: tuple[str, ...] = (),
    ):
        self.total, self.start, self.enabled = total, start, enabled
        self.label, self.terms = label, terms
        self.stream = stream or sys.stderr
        self.bar: RichProgress | None = None

    def __enter__(self) -> TrainingProgress:
        if self.enabled and self.stream.isatty():
            self.bar = RichProgress(
                TextColumn(f"[bold]{self.label}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
                transient=False,
            )
            self.bar.__enter__()
            self.task = self.bar.add_task("", total=self.total, completed=self.start)
        return self

    def update(self, step: int, metrics: dict[str, float]) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(self.task, completed=step, description=describe(metrics, self.terms))
        else:
            print(
                f"{self.label} {step}/{self.total}  {describe(metrics, self.terms)}  lr {metrics.get('lr', 0):.2e}",
                file=self.stream,
                flush=True,
            )

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)
