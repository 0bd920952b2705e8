"""``imtrans register``: a patient's CT registered onto their MR, to make aligned pairs."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

from .types import PATH
from .warnings_shown import shown_warnings


@click.command("register")
@click.option("--fixed", type=PATH, required=True, help="The MR (its grid is the output's).")
@click.option("--moving", type=PATH, required=True, help="The CT of the same patient, in HU.")
@click.option(
    "--out", type=PATH, required=True, help="The registered CT, on the MR's grid (-1024 HU outside the CT)."
)
@click.option(
    "--transform",
    "transform_out",
    type=PATH,
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
