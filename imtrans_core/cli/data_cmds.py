"""``imtrans data``: look at volumes and prepare folders of them for training.

Volume I/O (nibabel, SimpleITK) is imported inside the commands, so ``--help`` does not wait for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table

from ..choices import ORIENTATIONS
from ..errors import batch_error
from .types import PATH, FiniteFloatRange

if TYPE_CHECKING:
    import numpy as np

    from ..data.volume import Volume


@click.group("data", help="Inspect and prepare CT/MR volumes (NIfTI, MHA/MHD/NRRD, DICOM series folders).")
def data() -> None:
    """The ``data`` command group."""


@data.command("show")
@click.argument("files", nargs=-1, required=True, type=PATH)
def show(files: tuple[Path, ...]) -> None:
    """Print each volume's geometry, dtype and intensity statistics."""
    from ..data.io import read_volume

    console = Console()
    for path in files:
        console.print(volume_table(read_volume(path), str(path)))


@data.command("prepare")
@click.argument("in_dir", type=PATH)
@click.argument("out_dir", type=PATH)
@click.option("--modality", type=click.Choice(["mr", "ct"]), required=True, help="What the folder holds.")
@click.option("--size", type=click.IntRange(8, 2048), default=256, show_default=True, help="In-plane voxels.")
@click.option(
    "--spacing",
    type=FiniteFloatRange(min=0, min_open=True),
    default=1.25,
    show_default=True,
    help="In-plane spacing (mm); 256 x 1.25 mm is the paper's 320 mm MR field of view.",
)
@click.option(
    "--slice-axis",
    type=click.Choice(ORIENTATIONS),
    default="coronal",
    show_default=True,
    help="The plane the 2-D networks see.",
)
@click.option(
    "--slice-spacing",
    type=FiniteFloatRange(min=0.1),
    default=None,
    help="Distance between slices (mm); default: the input's spacing across the plane.",
)
@click.option("--n4/--no-n4", default=True, show_default=True, help="N4 bias correction (MR only).")
@click.option("--overwrite", is_flag=True, help="Redo outputs that already exist.")
def prepare(
    in_dir: Path,
    out_dir: Path,
    modality: str,
    size: int,
    spacing: float,
    slice_axis: str,
    slice_spacing: float | None,
    n4: bool,
    overwrite: bool,
) -> None:
    """Resample every volume in IN_DIR to the training grid (N4 first for MR) and write OUT_DIR/<id>.nii.gz.

    Existing outputs are skipped, so an interrupted run resumes. A file that fails is reported
    and the rest go on; the failed ones are listed at the end, and the exit status is 1.
    """
    from ..data.preprocess import prepare_folder

    report = prepare_folder(
        in_dir,
        out_dir,
        modality,
        size=size,
        spacing=spacing,
        slice_axis=slice_axis,
        slice_spacing=slice_spacing,
        n4=n4,
        overwrite=overwrite,
        console=Console(),
    )
    if report.failed:
        total = len(report.done) + len(report.skipped) + len(report.failed)
        raise batch_error([(str(path), reason) for path, reason in report.failed], total)


def volume_table(volume: Volume, title: str) -> Table:
    """Geometry and intensity statistics of one volume as a two-column table."""
    table = Table("", "", title=title, show_header=False, title_justify="left")
    for name, value in _geometry_rows(volume) + _statistics_rows(volume.array):
        table.add_row(name, value)
    return table


def _geometry_rows(volume: Volume) -> list[tuple[str, str]]:
    import nibabel as nib

    direction = "\n".join(" ".join(f"{v:+.4f}" for v in row) for row in volume.direction)
    return [
        ("shape", " x ".join(str(n) for n in volume.shape)),
        ("spacing (mm)", _numbers(volume.spacing)),
        ("origin (mm, LPS)", _numbers(volume.origin)),
        ("direction (LPS, columns i j k)", direction),
        ("axes i j k point to", "".join(nib.aff2axcodes(volume.affine))),
        ("dtype", str(volume.array.dtype)),
    ]


def _statistics_rows(array: np.ndarray) -> list[tuple[str, str]]:
    import numpy as np

    p1, p50, p99 = np.percentile(array, [1, 50, 99])
    return [
        ("min / max", f"{_number(array.min())} / {_number(array.max())}"),
        ("mean ± std", f"{_number(array.mean(dtype=np.float64))} ± {_number(array.std(dtype=np.float64))}"),
        ("percentiles 1 / 50 / 99", f"{_number(p1)} / {_number(p50)} / {_number(p99)}"),
    ]


def _numbers(values: tuple[float, ...]) -> str:
    return " ".join(_number(v) for v in values)


def _number(value: float) -> str:
    return f"{float(value):.6g}"
