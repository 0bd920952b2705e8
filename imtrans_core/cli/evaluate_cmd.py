"""``imtrans evaluate``: synthetic CTs scored against their references, per subject and in summary."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from ..choices import (
    SCALES,
    SCORE_ORIENTATIONS,
)
from ..errors import ImtransError, batch_error
from ..progress import file_bar
from .types import PATH
from .warnings_shown import shown_warnings


@click.command("evaluate")
@click.argument("pred", type=PATH)
@click.argument("ref", type=PATH, required=False)
@click.option(
    "--mask",
    type=str,
    default=None,
    help="Mask file or folder (non-zero voxels are scored), or 'fov' (where REF is not -1024 HU padding).",
)
@click.option(
    "--source",
    type=PATH,
    default=None,
    help="The source volume(s) PRED was translated from: adds MI(PRED, source), the paper's unpaired score.",
)
@click.option(
    "--scale",
    type=click.Choice(SCALES),
    default="paper",
    show_default=True,
    help="paper: [-150,350] HU -> [0,255]; synthrad: as the SynthRAD2023 challenge scores (MAE in HU; PSNR, SSIM on HU clipped to [-1024,3000]); both.",
)
@click.option(
    "--mi-bins",
    type=click.IntRange(2, 1024),
    default=32,
    show_default=True,
    help="Histogram bins per image for MI.",
)
@click.option(
    "--orientation",
    type=click.Choice(list(SCORE_ORIENTATIONS)),
    default="coronal",
    show_default=True,
    help="MI is the mean over slices of this plane (the model's); none: one 3-D histogram.",
)
@click.option(
    "--resample", is_flag=True, help="Resample PRED (and mask, source) onto REF's grid when they differ."
)
@click.option("--json", "json_out", type=PATH, default=None, help="Write rows and summary as JSON.")
@click.option("--csv", "csv_out", type=PATH, default=None, help="Write one CSV line per volume.")
@click.option(
    "--plot",
    type=PATH,
    default=None,
    help="Write box plots (one per metric) as PNG, like the paper's Fig. 4.",
)
@click.option(
    "--label", type=str, default="", help="Name of this result set in the plot and JSON (e.g. the model)."
)
def evaluate(
    pred: Path,
    ref: Path | None,
    mask: str | None,
    source: Path | None,
    scale: str,
    mi_bins: int,
    orientation: str,
    resample: bool,
    json_out: Path | None,
    csv_out: Path | None,
    plot: Path | None,
    label: str,
) -> None:
    """Score synthetic volumes PRED against real ones REF, and/or against their --source by MI.

    PRED and REF are two files, or two folders matched by subject id (file name without
    suffix, or SynthRAD-style <id>/ct.nii.gz). MAE and PSNR on the paper's scale
    (PSNR = 20 log10(255 / sqrt(MSE))), MAE in HU and SSIM; inside --mask only, if given.
    """
    from ..evaluation.evaluate import iter_evaluate
    from ..evaluation.report import baseline_line, results_table, write_csv, write_json
    from ..evaluation.scoring import LABELS, metric_keys, require_metrics
    from ..evaluation.subjects import match_subjects

    console = Console(
        highlight=False, width=None if sys.stdout.isatty() else 160
    )  # piped: no wrapped columns
    err = Console(stderr=True, highlight=False)
    if ref is None and source is None:
        raise ImtransError(
            "give REF (the real CT) and/or --source (the MR PRED was made from) to compare PRED with"
        )
    require_metrics(scale, source is not None, "imtrans evaluate")
    with shown_warnings(err):
        subjects = match_subjects(pred, ref, mask, Path(source) if source else None)
        rows: list[dict[str, Any]] = []
        failures: list[tuple[str, str]] = []
        options = {"mi_bins": mi_bins, "orientation": orientation, "resample": resample}
        with file_bar(err) as bar:
            task = bar.add_task("evaluating", total=len(subjects))
            for row in iter_evaluate(subjects, scale, mask == "fov", failures, **options):
                rows.append(row)
                bar.update(task, advance=1)
            bar.update(task, completed=len(subjects))
    if not rows:
        raise batch_error(failures, len(subjects), "subject(s)")
    console.print(results_table(rows, title=label))
    if baseline_line(rows):
        console.print(baseline_line(rows), style="dim")
    settings = {
        "label": label,
        "scale": scale,
        "mask": mask or "",
        "mi_bins": mi_bins,
        "orientation": orientation,
        "resample": resample,
        "pred": str(pred),
        "ref": str(ref or ""),
        "source": str(source or ""),
    }
    if json_out:
        write_json(rows, json_out, settings)
    if csv_out:
        write_csv(rows, csv_out)
    if plot:
        from ..evaluation.plots import box_plot

        keys = metric_keys(scale, mi=source is not None) if ref is not None else ["mi"]
        box_plot({label or "volumes": rows}, keys, plot, LABELS, title=label)
    for path in (json_out, csv_out, plot):
        if path:
            click.echo(f"wrote {path}")
    if failures:
        raise batch_error(failures, len(subjects), "subject(s)")
