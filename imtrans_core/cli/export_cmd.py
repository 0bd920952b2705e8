"""``imtrans export``: a trained generator to one verified ONNX file."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from ..choices import CALIBRATIONS, DIRECTIONS, EXPORT_PRECISIONS
from .types import PATH

PRECISION_HELP = (
    "fp32 (default), fp16 (GPU speed; InstanceNorm kept fp32) or int8 (static QDQ, CPU speed; "
    "the convolutions a 2 HU budget needs stay fp32)."
)


@click.command("export")
@click.argument("model", type=PATH)
@click.option(
    "--out",
    type=PATH,
    default=None,
    help="ONNX file to write (default: <run>/<direction>-<precision>.onnx).",
)
@click.option(
    "--direction",
    type=click.Choice(DIRECTIONS),
    default="mr2ct",
    show_default=True,
    help="mr2ct exports G_CT, ct2mr exports G_MR.",
)
@click.option(
    "--precision",
    type=click.Choice(EXPORT_PRECISIONS),
    default="fp32",
    show_default=True,
    help=PRECISION_HELP,
)
@click.option(
    "--opset",
    type=click.IntRange(min=7),
    default=None,
    help="ONNX opset (default: the exporter's; 17 with --legacy).",
)
@click.option(
    "--with-intensity",
    is_flag=True,
    help="Put the windows in the graph: MR after scaling (or HU) in, HU (or scaled MR) out.",
)
@click.option("--legacy", is_flag=True, help="Use the TorchScript exporter (opset 17) for older runtimes.")
@click.option(
    "--calib",
    default=None,
    metavar="DATASPEC",
    help="Dataset for int8 calibration and the image checks (default: the run's, else phantom).",
)
@click.option(
    "--calib-slices",
    type=click.IntRange(1, 4096),
    default=32,
    show_default=True,
    help="Calibration slices for int8.",
)
@click.option(
    "--calibration",
    type=click.Choice(CALIBRATIONS),
    default="percentile",
    show_default=True,
    help="int8 range calibration (percentile: 99.999, 99.99 or 99.9999, whichever first meets the budget).",
)
@click.option("--no-verify", is_flag=True, help="Skip the comparison with torch (not recommended).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def export(
    model: Path,
    out: Path | None,
    direction: str,
    precision: str,
    opset: int | None,
    with_intensity: bool,
    legacy: bool,
    calib: str | None,
    calib_slices: int,
    calibration: str,
    no_verify: bool,
    as_json: bool,
) -> None:
    """Export MODEL's generator (a run directory or checkpoint) to ONNX and verify it.

    One self-contained file with dynamic batch, height and width, its
    windows, orientation and training config in the metadata; compared with
    torch on random inputs, phantom slices and one whole volume (mean error in
    HU). Run it with `imtrans translate --backend onnx` or with onnxruntime
    alone (docs/deploy.md).
    """
    from ..onnx.export import export_model, summary

    if out is None:
        folder = model if model.is_dir() else model.parent
        out = folder / f"{direction}-{precision}.onnx"
    console = Console(stderr=as_json, highlight=False)
    result = export_model(
        model,
        out,
        direction=direction,
        precision=precision,
        opset=opset,
        with_intensity=with_intensity,
        legacy=legacy,
        calib=calib,
        calib_slices=calib_slices,
        calibration=calibration,
        verify_model=not no_verify,
        report=lambda text: console.print(f"[dim]{text}[/]"),
    )
    if as_json:
        click.echo(json.dumps(summary(result), indent=2, default=str))
        return
    if result.measurements:
        unit = result.measurements[0].unit.replace("MR units", "MR")
        table = Table(
            title="ONNX vs torch fp32 (errors on [-1, 1] and in " + unit + ")", title_justify="left"
        )
        table.add_column("check", no_wrap=True)
        table.add_column("prec")
        for name in ("max", f"max {unit}", "mean", f"mean {unit}", "ok"):
            table.add_column(name, justify="right", no_wrap=True)
        for m in result.measurements:
            table.add_row(
                m.what,
                m.precision,
                f"{m.max_abs:.1e}",
                f"{m.max_abs * m.scale:.3g}",
                f"{m.mean_abs:.1e}",
                f"{m.mean_abs * m.scale:.3g}",
                "yes" if m.ok else "NO",
            )
        console.print(table)
    meta = result.metadata
    console.print(
        f"wrote {result.path} ({result.size_mb:.1f} MB, {result.precision}, {meta['direction']}, "
        f"opset {meta['opset']}, input {meta['input_layout']}) in {result.seconds:.1f} s"
    )
