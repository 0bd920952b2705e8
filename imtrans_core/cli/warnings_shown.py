"""Warnings for people: each :class:`ImtransWarning` is one ``warning:`` line on the console.

Python shows a warning once per place in the code by default, with the file and
line of the code that raised it; ours name the data file at fault, and every
one of them counts (the tenth CT not in HU matters as much as the first).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.markup import escape

from ..errors import ImtransWarning


@contextmanager
def shown_warnings(console: Console) -> Iterator[None]:
    """Print ImtransWarnings as one yellow ``warning:`` line each (every time, not once per place)."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", ImtransWarning)
        original = warnings.showwarning

        def show(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
            if issubclass(category, ImtransWarning):
                console.print(f"[yellow]warning:[/] {escape(str(message))}", highlight=False)
            else:
                original(message, category, *args, **kwargs)

        warnings.showwarning = show
        yield
