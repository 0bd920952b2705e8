"""``imtrans data phantom``: write the procedural hip phantom as NIfTI files."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import click

from imtrans_core.api import PATH, FiniteFloatRange

from .scan import Scan


def scan_options(command):
    """One ``--name`` option per :class:`Scan` knob, with its range and help (the spec's parameters)."""
    for f in reversed(fields(Scan)):
        option = click.option(
            f"--{f.name.replace('_', '-')}",
            type=_option_type(f.metadata),
            default=f.default,
            show_default=True,
            help=f.metadata["help"],
        )
        command = option(command)
    return command


def _option_type(metadata) -> click.ParamType:
    """The click type of a knob: one of its choices, a whole number or a finite number in its range."""
    if "choices" in metadata:
        return click.Choice(metadata["choices"])
    if metadata.get("integer"):
        return click.IntRange(*metadata["range"])
    return FiniteFloatRange(*metadata["range"])


@click.command("phantom")
@click.option("--out", "out_dir", type=PATH, required=True, help="Folder to write into.")
@click.option(
    "--n-ct", type=click.IntRange(min=0), default=20, show_default=True, help="Unpaired CT volumes."
)
@click.option(
    "--n-mr", type=click.IntRange(min=0), default=20, show_default=True, help="Unpaired MR volumes."
)
@click.option(
    "--paired",
    "n_paired",
    type=click.IntRange(min=0),
    default=3,
    show_default=True,
    help="Paired test subjects (CT, MR, labels and mask on one grid).",
)
@click.option(
    "--train-pairs",
    "n_train_pairs",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Aligned training subjects, for a paired loss (supervised or hybrid training).",
)
@click.option(
    "--size",
    type=click.IntRange(16, 2048),
    default=256,
    show_default=True,
    help="In-plane voxels over the 320 mm field of view (256: 1.25 mm, the paper's MR).",
)
@click.option(
    "--slices",
    type=click.IntRange(4, 1024),
    default=38,
    show_default=True,
    help="Coronal slices over the --thickness slab (38 over 76 mm: 2 mm).",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Data set seed; the same seed writes the same voxels.",
)
@scan_options
def phantom(
    out_dir: Path,
    n_ct: int,
    n_mr: int,
    n_paired: int,
    n_train_pairs: int,
    size: int,
    slices: int,
    seed: int,
    **knobs: float | str,
) -> None:
    """Write a procedural hip phantom data set (CT, MR, labels) as NIfTI.

    Layout: OUT/ct/ct-0000.nii.gz, OUT/mr/mr-0000.nii.gz (unpaired pools, disjoint
    subjects), OUT/paired/pair-000/{ct,mr,labels,mask}.nii.gz (test subjects: the
    same body in both modalities on one grid), OUT/train-pairs/train-pair-0000/...
    (aligned training subjects: ``folder:ct=OUT/ct,mr=OUT/mr,pairs=OUT/train-pairs``
    with a paired loss), OUT/labels.json and OUT/montage.png to look at. The
    scanner options are the ``phantom`` dataset spec's (docs/data.md).
    """
    from .phantom import write_phantom

    if out_dir.exists() and not out_dir.is_dir():
        from imtrans_core.api import ImtransError

        raise ImtransError(f"--out {out_dir}: is a file, not a folder; pass a folder to write into")
    out = write_phantom(
        out_dir, n_ct, n_mr, n_paired, size, slices, seed, Scan(**knobs), n_train_pairs=n_train_pairs
    )
    pairs = f", {n_train_pairs} training pairs" if n_train_pairs else ""
    click.echo(
        f"wrote {n_ct} CT, {n_mr} MR, {n_paired} paired test subjects{pairs} to {out} "
        f"(see {out / 'montage.png'})"
    )
