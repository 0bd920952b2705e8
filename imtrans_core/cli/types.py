"""Option types the command line shares beyond click's own."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

PATH = click.Path(path_type=Path)  # a path argument or option, given to the command as a Path


class FiniteFloatRange(click.FloatRange):
    """click's FloatRange that also refuses nan and inf: nan passes every bound (it compares false)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


class LazyChoice(click.Choice):
    """click's Choice over names read when first needed (a registry's: plugins load then, not at import)."""

    def __init__(self, names: Callable[[], list[str]]) -> None:
        self._names = names
        super().__init__(())

    @property  # type: ignore[override]
    def choices(self) -> tuple[str, ...]:
        return tuple(self._names())

    @choices.setter
    def choices(self, _: Any) -> None:
        """click's __init__ assigns the choices; the names are read from ``names`` instead."""
