"""``imtrans segment train | predict | evaluate``: the paper's segmentation application (§3.2)."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from imtrans_core.api import AMP_MODES, DEVICES, PATH, FiniteFloatRange, ImtransError

from .config import SegmentConfig

_DEFAULTS = {f.name: f.default for f in fields(SegmentConfig) if not callable(f.default_factory)}  # type: ignore[misc]
_AMP = click.Choice(AMP_MODES)
_DEVICE = click.Choice(DEVICES)


@click.group("segment", short_help="Segment MR through synthetic CT (paper §3.2): train, predict, evaluate.")
def segment() -> None:
    """Segment MR through synthetic CT (Hiasa et al. 2018, §3.2).

    A 2-D U-Net learns from labelled CT with a second channel holding the synthetic MR that a
    trained CycleGAN's G_MR makes of it; on MR it sees the MR and its synthetic CT from G_CT.
    With --channels ct it learns from the CT alone and segments any model's synthetic CT.

    \b
      imtrans segment train --cyclegan RUN --data phantom:n_paired=20 --out SEGRUN
      imtrans segment predict SEGRUN mr/ --out labels/
      imtrans segment evaluate labels/ reference/ --json dice.json --plot dice.png
    """


def _opt(name: str, kind: Any, text: str) -> Any:
    return click.option(
        f"--{name.replace('_', '-')}",
        name,
        type=kind,
        default=None,
        help=f"{text} [default: {_DEFAULTS[name]}]",
    )


@segment.command("train")
@_opt(
    "channels",
    click.Choice(["ct,mr", "ct"]),
    "ct,mr: CT and the synthetic MR of --cyclegan's G_MR (the paper's); ct: CT alone, to segment "
    "the synthetic CT of any model.",
)
@click.option(
    "--cyclegan",
    type=PATH,
    default=None,
    help="CycleGAN run directory or checkpoint; its G_MR makes the synthetic-MR channel (--channels ct,mr).",
)
@click.option(
    "--orientation",
    type=click.Choice(["coronal", "axial", "sagittal"]),
    default=None,
    help="Slicing plane [default: the CycleGAN's; coronal for --channels ct].",
)
@click.option(
    "--data",
    default=None,
    help="Dataset spec whose paired subjects have CT and labels, e.g. phantom:n_paired=20.",
)
@click.option(
    "--ct",
    type=PATH,
    default=None,
    help="Folder of labelled CT volumes (instead of --data).",
)
@click.option(
    "--labels",
    type=PATH,
    default=None,
    help="Folder of label volumes matched to --ct by name (labels.json in it may name the values).",
)
@click.option(
    "--structures",
    default=None,
    help="Structures to learn: names (femur = femur_left + femur_right), name:values (femur:3+4) or all; "
    "default: pelvis,femur,gluteus_medius,gluteus_minimus (Fig. 6).",
)
@_opt(
    "net",
    str,
    "Segmentation network spec; in_ch, out_ch=K+1 and final=none are filled in, e.g. unet:base=32.",
)
@_opt("iters", click.IntRange(min=1), "Iterations (the paper: 1e5).")
@_opt("lr", float, "Adam learning rate (the paper: 1e-4).")
@_opt("size", click.IntRange(min=16), "Training crop size (slices are cropped or padded to it).")
@_opt("batch", click.IntRange(min=1), "Slices per iteration.")
@_opt("dice_loss", FiniteFloatRange(min=0), "Weight of a soft Dice loss added to the cross-entropy.")
@_opt("amp", _AMP, "Mixed precision (auto: bf16 where it is fast).")
@_opt("device", _DEVICE, "Where to train.")
@_opt("seed", int, "Random seed.")
@_opt("log_every", click.IntRange(min=1), "Log every N iterations (metrics.jsonl and the progress bar).")
@_opt("ckpt_every", click.IntRange(min=1), "Write a checkpoint every N iterations.")
@_opt("keep", click.IntRange(min=1), "Checkpoints to keep.")
@click.option(
    "--log",
    "log",
    multiple=True,
    help="Extra logger spec, repeatable, e.g. tensorboard (a JSONL log and sample PNGs are always written).",
)
@click.option(
    "--out",
    type=PATH,
    default=None,
    help="Run directory (default runs/segment-<time>).",
)
@click.option(
    "--resume",
    type=PATH,
    default=None,
    help="Continue the segmentation run in this directory.",
)
@click.pass_context
def train_cmd(
    ctx: click.Context,
    cyclegan: Path | None,
    data: str | None,
    ct: Path | None,
    labels: Path | None,
    structures: str | None,
    log: tuple[str, ...],
    out: Path | None,
    resume: Path | None,
    **values: Any,
) -> None:
    """Train the U-Net on labelled CT: CT + synthetic MR from G_MR (the paper's), or CT alone."""
    from .train import train

    given = {
        k: v
        for k, v in values.items()
        if v is not None and ctx.get_parameter_source(k) == ParameterSource.COMMANDLINE
    }
    if resume is not None:
        if given or cyclegan or data or ct or labels or structures or log or out:
            raise ImtransError(
                f"--resume {resume} continues the run as it was configured; drop the other options"
            )
        result = train(None, resume=resume)
    else:
        if data and (ct or labels):
            raise ImtransError("give --data SPEC or --ct DIR --labels DIR, not both")
        if bool(ct) != bool(labels):
            raise ImtransError(
                "--ct and --labels go together: a folder of CT volumes and one of their label volumes"
            )
        config = SegmentConfig(
            cyclegan=str(cyclegan or ""),
            data=data or "",
            ct=str(ct or ""),
            labels=str(labels or ""),
            structures=[structures] if structures else [],
            log=list(log),
            **given,
        )
        result = train(config, out=out)
    rate = (result.step - result.start) / result.seconds if result.seconds > 0 else 0.0
    if result.status == "interrupted":
        click.echo(
            f"interrupted at iteration {result.step}; checkpoint saved. Continue with: "
            f"imtrans segment train --resume {result.run_dir}",
            err=True,
        )
        ctx.exit(130)
    loss = "  ".join(f"{k} {result.last[k]:.4f}" for k in ("ce", "dice") if k in result.last)
    click.echo(
        f"finished {result.step} iterations ({result.step - result.start} in {result.seconds:.0f} s, "
        f"{rate:.2f} it/s)  {loss}"
    )
    click.echo(f"segmentation run: {result.run_dir}")


@segment.command("predict")
@click.argument("segrun", type=PATH)
@click.argument("mr", nargs=-1, required=True, type=PATH)
@click.option(
    "--out",
    type=PATH,
    required=True,
    help="Folder for the label volumes (<id>.nii.gz).",
)
@click.option(
    "--cyclegan",
    type=PATH,
    default=None,
    help="G_CT to use: a CycleGAN run, checkpoint or exported .onnx (default: the run SEGRUN was trained with).",
)
@click.option("--ct-out", type=PATH, default=None, help="Also write each synthetic CT (HU) here.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["nii.gz", "nii", "mha", "nrrd"]),
    default="nii.gz",
    show_default=True,
)
@click.option(
    "--batch", type=click.IntRange(min=1), default=8, show_default=True, help="Slices per forward pass."
)
@click.option("--amp", type=_AMP, default="auto", show_default=True, help="Mixed precision.")
@click.option("--device", type=_DEVICE, default="auto", show_default=True)
@click.option("--force", is_flag=True, help="Go on when an input is tagged as another modality than MR.")
def predict_cmd(
    segrun: Path,
    mr: tuple[Path, ...],
    out: Path,
    cyclegan: Path | None,
    ct_out: Path | None,
    fmt: str,
    batch: int,
    amp: str,
    device: str,
    force: bool,
) -> None:
    """Segment MR volumes (files or folders): MR + synthetic CT in, labels on the MR grid out."""
    from .predict import predict

    written = predict(segrun, mr, out, cyclegan, batch, device, amp, ct_out, fmt, force)
    click.echo(
        f"wrote {len(written)} label volume{'s' * (len(written) != 1)} to {out} (values named in {out / 'labels.json'})"
    )


@segment.command("evaluate")
@click.argument("pred", type=PATH)
@click.argument("ref", type=PATH)
@click.option(
    "--structures",
    default=None,
    help="What to score: names from PRED's labels.json, or name:values (pelvis:1,femur:3+4); default: all it names.",
)
@click.option(
    "--json",
    "json_path",
    type=PATH,
    default=None,
    help="Write rows and mean ± SD as JSON.",
)
@click.option(
    "--plot",
    "plot_path",
    type=PATH,
    default=None,
    help="Write a box plot (PNG), like Fig. 6.",
)
def evaluate_cmd(
    pred: Path, ref: Path, structures: str | None, json_path: Path | None, plot_path: Path | None
) -> None:
    """Dice per structure of predicted label volumes against reference ones; mean ± SD over subjects."""
    from rich.console import Console

    from .evaluate import evaluate, report

    rows, chosen = evaluate(pred, ref, structures)
    Console().print(report(rows, chosen, json_path, plot_path))
    for path in (json_path, plot_path):
        if path:
            click.echo(f"wrote {path}")
