"""``imtrans translate``: a trained model (run directory, checkpoint or ONNX file) over volumes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from ..choices import (
    AMP_MODES,
    BACKENDS,
    DEVICES,
    DIRECTIONS,
    OPENVINO_PRECISIONS,
    OUTPUT_FORMATS,
)
from ..errors import batch_error
from ..progress import file_bar
from .types import PATH
from .warnings_shown import shown_warnings


@click.command("translate")
@click.argument("model", type=PATH)
@click.argument("inputs", nargs=-1, required=True, type=PATH)
@click.option("--out", type=PATH, required=True, help="Folder for the outputs, one <id>.<format> per input.")
@click.option(
    "--direction",
    type=click.Choice(DIRECTIONS),
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
    type=click.Choice(OPENVINO_PRECISIONS),
    default="auto",
    show_default=True,
    help="OpenVINO's: bf16 (its choice on CPUs with AMX or AVX512-BF16) or f32 (the exported numbers).",
)
@click.option(
    "--amp",
    type=click.Choice(AMP_MODES),
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
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)
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
    from ..inference.jobs import plan_jobs, translate_files
    from ..onnx.choose import make_backend

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
