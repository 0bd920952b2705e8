"""``imtrans translate``, ``imtrans evaluate`` and ``imtrans register``: use a trained model and score it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from ..choices import BACKENDS, OUTPUT_FORMATS, SCALES, SCORE_ORIENTATIONS
from ..errors import ImtransError, batch_error
from ..progress import file_bar
from .warnings_shown import shown_warnings

_PATH = click.Path(path_type=Path)


@click.command("translate")
@click.argument("model", type=_PATH)
@click.argument("inputs", nargs=-1, required=True, type=_PATH)
@click.option("--out", type=_PATH, required=True, help="Folder for the outputs, one <id>.<format> per input.")
@click.option(
    "--direction",
    type=click.Choice(["mr2ct", "ct2mr"]),
    default=None,
    help="mr2ct (G_CT, default) or ct2mr (G_MR); an ONNX file knows its own.",
)
@click.option(
    "--backend",
    type=click.Choice(BACKENDS),
    default="auto",
    show_default=True,
    help="torch for a run directory or checkpoint; onnx (onnxruntime) or openvino for an exported .onnx "
    "(auto: torch for a run, openvino for .onnx on a CPU where it is installed, else onnx).",
)
@click.option(
    "--precision",
    type=click.Choice(["auto", "bf16", "f32"]),
    default="auto",
    show_default=True,
    help="OpenVINO's: bf16 (its choice on CPUs with AMX or AVX512-BF16) or f32 (the exported numbers).",
)
@click.option(
    "--amp",
    type=click.Choice(["off", "bf16", "fp16", "auto"]),
    default="off",
    show_default=True,
    help="Autocast for torch: bf16 is 3-4x faster on CPUs with AMX (~2.5 HU mean difference); fp16 needs CUDA.",
)
@click.option(
    "--compile",
    "compile_net",
    is_flag=True,
    help="torch.compile the generator: ~30 s once, then with --amp bf16 about 4.4x fp32 per slice (docs/benchmarks.md).",
)
@click.option(
    "--batch", type=click.IntRange(min=1), default=8, show_default=True, help="Slices per forward pass."
)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(OUTPUT_FORMATS),
    default="nii.gz",
    show_default=True,
    help="Output file format.",
)
@click.option("--skip-existing", is_flag=True, help="Leave outputs that already exist (resume a folder).")
@click.option("--force", is_flag=True, help="Translate volumes whose modality tag contradicts the model.")
@click.option(
    "--no-resample",
    "native",
    is_flag=True,
    help="Cut slices from each input's own grid instead of the model's training grid (its input contract).",
)
def translate(
    model: Path,
    inputs: tuple[Path, ...],
    out: Path,
    direction: str | None,
    backend: str,
    precision: str,
    amp: str,
    compile_net: bool,
    batch: int,
    device: str,
    fmt: str,
    skip_existing: bool,
    force: bool,
    native: bool,
) -> None:
    """Translate MR volumes to synthetic CT (or CT to MR) with a trained MODEL.

    MODEL is a run directory (its newest checkpoint), a checkpoint file or an exported .onnx.
    INPUT is volumes (NIfTI, MHA/MHD/NRRD, DICOM series folders) or folders of them. Each input
    is resampled onto the grid the model was trained on (its plane and pixel spacing, N4 where
    training used it), translated, and the result resampled back: each output lies on exactly
    its input's grid. A synthetic CT is in HU within the paper's
    window [-150, 350] (what the model was trained on); a synthetic MR is on the [0, 100] MR scale.
    """
    from ..inference.backends import make_backend
    from ..inference.jobs import plan_jobs, translate_files

    console = Console(stderr=True, highlight=False)
    with shown_warnings(console):
        jobs = plan_jobs(inputs, out, fmt)
        runner = make_backend(model, direction, backend, device, amp, compile_net, precision)
        console.print(
            f"{runner.direction} with {_describe(runner)}: {len(jobs)} volume(s), {_grid(runner, native)} -> {out}"
        )
        counts = {"written": 0, "skipped": 0, "failed": 0}
        failures: list[tuple[str, str]] = []
        with file_bar(console) as bar:
            volumes = bar.add_task("volumes", total=len(jobs))
            slices = bar.add_task("slices", total=None, visible=False, unit="slice")

            def on_volume(job: Any, n_slices: int) -> Any:
                bar.reset(slices, total=n_slices, description=escape(job.input.name), visible=True)
                return lambda n: bar.update(slices, advance=n)

            for outcome in translate_files(jobs, runner, batch, force, skip_existing, on_volume, not native):
                counts[outcome.status] += 1
                if outcome.error:
                    console.print(f"[red]failed:[/] {escape(outcome.error)}")
                    failures.append((str(outcome.job.input), outcome.error))
                bar.update(volumes, advance=1)
            bar.update(slices, visible=False)
    skipped = f" ({counts['skipped']} existing skipped)" if counts["skipped"] else ""
    click.echo(f"wrote {counts['written']} volume(s) to {out}{skipped}")
    if failures:
        raise batch_error(failures, len(jobs))


def _describe(runner: Any) -> str:
    """The backend's own repr when it has one (TorchBackend(mr2ct, coronal, cpu, bf16)), else its class name."""
    return escape(repr(runner) if type(runner).__repr__ is not object.__repr__ else type(runner).__name__)


def _grid(runner: Any, native: bool) -> str:
    """Where the slices are cut: ``coronal slices at 2.5 x 2.5 mm`` (the contract), or on each input's grid."""
    contract = getattr(runner, "contract", None)
    if native or contract is None or contract.spacing is None:
        return f"{runner.orientation} slices of each input's own grid"
    rows, cols = contract.spacing
    return f"{runner.orientation} slices at {rows:g} x {cols:g} mm"


@click.command("evaluate")
@click.argument("pred", type=_PATH)
@click.argument("ref", type=_PATH, required=False)
@click.option(
    "--mask",
    type=str,
    default=None,
    help="Mask file or folder (non-zero voxels are scored), or 'fov' (where REF is not -1024 HU padding).",
)
@click.option(
    "--source",
    type=_PATH,
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
@click.option("--json", "json_out", type=_PATH, default=None, help="Write rows and summary as JSON.")
@click.option("--csv", "csv_out", type=_PATH, default=None, help="Write one CSV line per volume.")
@click.option(
    "--plot",
    type=_PATH,
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


@click.command("register")
@click.option("--fixed", type=_PATH, required=True, help="The MR (its grid is the output's).")
@click.option("--moving", type=_PATH, required=True, help="The CT of the same patient, in HU.")
@click.option(
    "--out", type=_PATH, required=True, help="The registered CT, on the MR's grid (-1024 HU outside the CT)."
)
@click.option(
    "--transform",
    "transform_out",
    type=_PATH,
    default=None,
    help="Also write the transform (.tfm), MR -> CT points.",
)
@click.option(
    "--bspline/--rigid-only",
    default=True,
    show_default=True,
    help="Add a B-spline stage after the rigid one.",
)
@click.option(
    "--mesh",
    type=click.IntRange(1, 64),
    default=6,
    show_default=True,
    help="B-spline control-point intervals per axis.",
)
@click.option(
    "--iterations",
    type=click.IntRange(min=1),
    default=200,
    show_default=True,
    help="Rigid iterations per level.",
)
@click.option(
    "--bspline-iterations",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="B-spline iterations per level.",
)
@click.option(
    "--init",
    type=click.Choice(["geometry", "moments"]),
    default="geometry",
    show_default=True,
    help="Start by aligning the image centres (geometry) or the centres of mass (moments).",
)
def register(
    fixed: Path,
    moving: Path,
    out: Path,
    transform_out: Path | None,
    bspline: bool,
    mesh: int,
    iterations: int,
    bspline_iterations: int,
    init: str,
) -> None:
    """Register a CT (--moving) onto its MR (--fixed): rigid, then B-spline, by mutual information.

    This makes the paired ground truth of `imtrans evaluate` (the paper registers each test CT
    to the MR of the same patient). The CT is resampled onto the MR's grid.
    """
    from ..data.io import read_volume, write_volume
    from ..data.register import register_ct_to_mr, write_transform

    err = Console(stderr=True, highlight=False)
    with shown_warnings(err):
        mr = read_volume(fixed, modality="mr")
        ct = read_volume(moving, modality="ct")
        with err.status("registering") as status:

            def say(line: str) -> None:
                status.update(escape(line))
                if ":" in line and "level" not in line:
                    err.print(escape(line))

            registered, transform = register_ct_to_mr(
                mr,
                ct,
                bspline=bspline,
                mesh=mesh,
                rigid_iterations=iterations,
                bspline_iterations=bspline_iterations,
                init=init,
                progress=say,
            )
        write_volume(registered, out)
        if transform_out:
            write_transform(transform, transform_out)
    click.echo(f"wrote {out}" + (f" and {transform_out}" if transform_out else ""))
