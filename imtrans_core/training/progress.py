"""Progress on a terminal (a rich bar with losses, rate and ETA), plain lines in logs."""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress

MAIN_TERMS = ("g_ct", "g_mr", "cycle", "gc", "paired", "d_ct", "d_mr")


def describe(metrics: dict[str, float], terms: tuple[str, ...] = MAIN_TERMS) -> str:
    shown = [f"{k} {metrics[k]:.3f}" for k in terms if k in metrics]
    return "  ".join(shown) + f"  {metrics.get('it_per_s', 0.0):.2f} it/s"


class Progress:
    """A context manager: ``update(step, metrics)`` at each log interval.

    ``label`` names the loop and ``terms`` are the metrics shown, in order.
    """

    def __init__(
        self,
        total: int,
        start: int,
        enabled: bool = True,
        stream: Any = None,
        label: str = "train",
        terms: tuple[str, ...] = MAIN_TERMS,
    ):
        self.total, self.start, self.enabled = total, start, enabled
        self.label, self.terms = label, terms
        self.stream = stream or sys.stderr
        self.bar: RichProgress | None = None

    def __enter__(self) -> Progress:
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
