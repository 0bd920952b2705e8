"""Evaluation rows summarised and written: mean and sample SD, a rich table, JSON and CSV.

Summary statistics: mean and sample standard deviation (n - 1) over volumes. The paper's SD
column cannot be recomputed from its per-patient rows with either n or n - 1 (e.g. MAE 30.121,
26.927, 33.651 gives SD 3.36 or 2.75, the table says 2.177), so it probably used something else.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.markup import escape
from rich.table import Table

from ..errors import ImtransError
from .scoring import INFO_KEYS, LABELS


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, tuple[float, float]]:
    """``{metric: (mean, sd)}`` over rows; sd is the sample SD (n - 1), NaN for a single row."""
    keys = [k for k in (rows[0] if rows else {}) if k not in INFO_KEYS]
    out = {}
    for key in keys:
        values = np.array([float(row[key]) for row in rows if key in row], dtype=np.float64)
        sd = float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
        out[key] = (float(np.mean(values)), sd)
    return out


def results_table(rows: Sequence[dict[str, Any]], title: str = "") -> Any:
    """A rich Table: one row per volume, then mean ± SD."""
    keys = [k for k in (rows[0] if rows else {}) if k not in INFO_KEYS]
    table = Table(title=title or None, show_footer=len(rows) > 1)
    summary = summarize(rows)
    table.add_column("subject", footer="mean ± SD", style="bold")
    for key in keys:
        mean, sd = summary[key]
        footer = _format(mean) + ("" if math.isnan(sd) else f" ± {_format(sd)}")
        table.add_column(escape(LABELS.get(key, key)), footer=footer, justify="right")
    table.add_column("voxels", justify="right", style="dim")
    for row in rows:
        table.add_row(escape(row["id"]), *(_format(row[k]) for k in keys), f"{row.get('voxels', '')}")
    return table


def write_json(
    rows: Sequence[dict[str, Any]], path: str | Path, settings: dict[str, Any] | None = None
) -> None:
    """``{"settings", "rows", "summary": {metric: {mean, sd, n}}}``; non-finite numbers become null."""
    summary = {
        k: {"mean": _finite(m), "sd": _finite(s), "n": len(rows)} for k, (m, s) in summarize(rows).items()
    }
    payload = {
        "settings": settings or {},
        "rows": [{k: _finite(v) for k, v in row.items() if k != "baseline"} for row in rows],
        "summary": summary,
    }
    if rows and "baseline" in rows[0]:
        payload["baselines"] = {"constant": _baseline_means(rows)}
    _write(path, lambda f: json.dump(payload, f, indent=2, allow_nan=False))


def baseline_line(rows: Sequence[dict[str, Any]]) -> str:
    """One line for under the results table: what a constant image scores on the same subjects."""
    if not rows or "baseline" not in rows[0]:
        return ""
    means = _baseline_means(rows)
    scores = ", ".join(f"{LABELS.get(k, k)} {_format(v)}" for k, v in means.items())
    return f"baseline, a constant image (each REF's median HU in the mask): {scores}"


def _baseline_means(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    keys = list(rows[0]["baseline"])
    return {k: _finite(float(np.mean([row["baseline"][k] for row in rows]))) for k in keys}


def write_csv(rows: Sequence[dict[str, Any]], path: str | Path) -> None:
    """One line per volume: id, the scores, the voxel count and the files."""
    keys = [k for k in (rows[0] if rows else {}) if k not in INFO_KEYS]
    fields = ["id", *keys, "voxels", "pred", "ref", "mask", "source"]

    def write(f: Any) -> None:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)

    _write(path, write, newline="")


def _format(value: Any) -> str:
    if isinstance(value, float):
        return (
            "inf"
            if math.isinf(value)
            else "nan"
            if math.isnan(value)
            else f"{value:.4g}"
            if abs(value) < 1
            else f"{value:.3f}"
        )
    return str(value)


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _write(path: str | Path, write: Callable[[Any], None], newline: str | None = None) -> None:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline=newline) as f:
            write(f)
    except OSError as exc:
        raise ImtransError(
            f"{path}: cannot write it ({exc.strerror}) — check the folder is writable"
        ) from exc
