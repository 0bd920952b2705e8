"""Box-and-whisker plots of per-volume scores, like the paper's Fig. 4 (MI) and Fig. 6 (Dice).

One subplot per metric; within a subplot one box per group (e.g. one per trained model, as
Fig. 4 sets "20 volumes" against ">300 volumes", with and without GC), each box drawn over
the volumes' scores with the individual volumes as dots on top. matplotlib runs with the
Agg canvas (no pyplot), so this works on machines without a display.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ImtransError

MAX_COLUMNS = 4  # subplots per row


def box_plot(
    groups: Mapping[str, Sequence[Mapping[str, Any]]],
    keys: Sequence[str],
    path: str | Path,
    labels: Mapping[str, str] | None = None,
    title: str = "",
) -> Path:
    """Write a PNG with one box plot per metric in ``keys``; ``groups`` maps a name to its rows.

    Non-finite scores (an infinite PSNR of identical volumes) are left out of the boxes.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not keys:
        raise ImtransError("nothing to plot: no metric was computed")
    labels = labels or {}
    names = list(groups)
    columns = min(len(keys), MAX_COLUMNS)
    rows = math.ceil(len(keys) / columns)
    fig = Figure(figsize=(max(3.0, 1.2 * len(names) + 1.6) * columns, 3.6 * rows + 0.4))
    FigureCanvasAgg(fig)  # no pyplot: an interactive session's backend is left alone
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax in axes[len(keys) :]:
        ax.set_visible(False)
    for ax, key in zip(axes, keys, strict=False):
        data = [
            [float(row[key]) for row in groups[name] if key in row and math.isfinite(float(row[key]))]
            for name in names
        ]
        ax.boxplot(data, widths=0.5, showfliers=False)
        ax.set_xticks(range(1, len(names) + 1), names, rotation=20 if len(names) > 2 else 0)
        for position, values in enumerate(data, start=1):
            ax.plot([position] * len(values), values, "o", ms=4, alpha=0.6, color="tab:blue")
        ax.set_title(labels.get(key, key))
        ax.grid(axis="y", alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
    except OSError as exc:
        raise ImtransError(
            f"{path}: cannot write the plot ({exc.strerror}) — check the folder is writable"
        ) from exc
    return path
