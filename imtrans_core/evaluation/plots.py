"""Pictures of results: box plots of per-volume scores, and synthetic CTs beside the real ones.

``box_plot``: one subplot per metric, one box per group (e.g. one per trained model, as the
paper's Fig. 4 sets "20 volumes" against ">300 volumes"), the volumes as dots on top.
``translation_figure``: per subject, the MR, each synthetic CT, the real CT and each one's error
map, on one slice. matplotlib runs with the Agg canvas (no pyplot), so this works on machines
without a display.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ImtransError

MAX_COLUMNS = 4  # box plots per row
CT_SHOWN = (-250.0, 750.0)  # HU: fat, muscle and bone apart; cortex saturates
ERROR_SHOWN = 300.0  # HU: |synthetic - real| at or above this is the brightest colour


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)  # no pyplot: an interactive session's backend is left alone
    return fig


def _save(fig: Any, path: str | Path, what: str) -> Path:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
    except OSError as exc:
        raise ImtransError(
            f"{path}: cannot write the {what} ({exc.strerror}) — check the folder is writable"
        ) from exc
    return path


def translation_figure(
    subjects: Sequence[tuple[str, np.ndarray, Mapping[str, np.ndarray], np.ndarray, np.ndarray]],
    path: str | Path,
) -> Path:
    """A row per subject: its MR, each synthetic CT, the real CT, then each one's |error| in HU.

    ``subjects``: ``(id, mr, {name: synthetic CT}, real CT, body mask)``, 2-D slices in display
    order, CTs in HU. CTs share one window (``CT_SHOWN``), errors one scale (0 to
    ``ERROR_SHOWN`` HU) and are drawn inside the mask, where they are scored.
    """
    names = list(subjects[0][2])
    columns = 2 + 2 * len(names)
    fig = _figure(1.8 * columns + 0.8, 1.9 * len(subjects) + 0.3)
    axes = fig.subplots(len(subjects), columns, squeeze=False)
    for row, (subject, mr, synthetic, ct, mask) in zip(axes, subjects, strict=True):
        low, high = np.percentile(mr, (1, 99.5))
        images = [(f"{subject}: MR", mr, "gray", (low, high))]
        images += [(name, image, "gray", CT_SHOWN) for name, image in synthetic.items()]
        images.append(("real CT", ct, "gray", CT_SHOWN))
        images += [
            (f"error: {name}", np.where(mask, np.abs(image - ct), 0.0), "magma", (0.0, ERROR_SHOWN))
            for name, image in synthetic.items()
        ]
        for ax, (title, image, cmap, (vmin, vmax)) in zip(row, images, strict=True):
            shown = ax.imshow(image, cmap=cmap, vmin=vmin, vmax=vmax)
            ax.set_title(title, fontsize=8)
            ax.set_axis_off()
    fig.subplots_adjust(left=0.01, right=0.9, bottom=0.02, top=0.9, wspace=0.05, hspace=0.15)
    fig.colorbar(shown, cax=fig.add_axes((0.92, 0.1, 0.012, 0.75)), label="|error| [HU]")
    return _save(fig, path, "figure")


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
    if not keys:
        raise ImtransError("nothing to plot: no metric was computed")
    labels = labels or {}
    names = list(groups)
    columns = min(len(keys), MAX_COLUMNS)
    rows = math.ceil(len(keys) / columns)
    fig = _figure(max(3.0, 1.2 * len(names) + 1.6) * columns, 3.6 * rows + 0.4)
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
    return _save(fig, path, "plot")
