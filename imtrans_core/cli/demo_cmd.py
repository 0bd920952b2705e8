"""``imtrans demo``: train, translate, evaluate and export on the phantom, in minutes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from .types import PATH


@click.command("demo")
@click.option(
    "--out",
    type=PATH,
    default=Path("imtrans-demo"),
    show_default=True,
    help="Folder for the run, the translated volumes, the model and the pictures.",
)
@click.option(
    "--iters",
    type=click.IntRange(min=1),
    default=None,
    help="Training iterations (default 400: 1 to 4 minutes on 2 idle cores; the paired preset trains 1200).",
)
def demo(out: Path, iters: int | None) -> None:
    """The whole job on the built-in hip phantom: train, translate, evaluate, export, onnxruntime.

    A short `--preset paired` training (the supervised U-Net on four of the
    phantom's aligned pairs), then the paired test MRs translated to synthetic CT,
    scored against their CTs beside the baselines a model must beat (a constant
    image, the contrast prior's map), and drawn beside them (subjects.png); the
    generator exported to ONNX and the MRs translated again with onnxruntime.
    Run it again to continue the same training.
    """
    from ..demo import run_demo
    from ..evaluation.report import results_table

    console = Console()
    report = run_demo(out, iters, echo=lambda text: console.print(f"[bold]>[/] {text}"))
    console.print(results_table(report.rows, title="synthetic CT vs real CT (paired phantom subjects)"))
    console.print(_beside_baselines(report))
    table = Table(title="imtrans demo", title_justify="left")
    for column in ("step", "seconds", "result"):
        table.add_column(column)
    for name, seconds, result in report.steps:
        table.add_row(name, f"{seconds:.0f}", result)
    console.print(table)
    for name, path in report.pictures.items():
        console.print(f"{name}: {path}")


def _beside_baselines(report: Any) -> Table:
    """The model's mean scores between the least it must beat and the best it could reach."""
    from ..evaluation.report import summarize
    from ..evaluation.scoring import LABELS

    keys = ("mae", "psnr", "ssim")
    table = Table(title="the model beside its baselines (mean over subjects)", title_justify="left")
    table.add_column("")
    for key in keys:
        table.add_column(LABELS[key], justify="right")
    rows = {
        "constant image (must beat)": report.baselines["constant image"],
        "contrast prior's map, no network (must beat)": report.baselines["contrast prior"],
        "this model": report.rows,
        "second scan (a perfect GAN: its own noise)": report.baselines["second scan"],
        "tissue means (a perfect tissue classifier)": report.baselines["tissue means"],
        "noise floor (best possible)": report.baselines["noise floor"],
    }
    for name, scored in rows.items():
        means = summarize(scored)
        table.add_row(name, *(f"{means[k][0]:.2f}" for k in keys))
    return table
