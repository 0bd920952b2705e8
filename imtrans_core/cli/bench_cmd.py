"""``imtrans bench``: the quick set of the benchmark scripts in a source checkout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click

from ..errors import ImtransError

QUICK_SET = ("inference.py", "training.py", "volume.py")


def benchmarks_folder() -> Path:
    folder = Path(__file__).resolve().parents[2] / "benchmarks"
    if not folder.is_dir():
        raise ImtransError(
            "benchmarks/ is not beside this installation: run `imtrans bench` from a source checkout "
            "(pip install -e .)"
        )
    return folder


@click.command("bench")
@click.option(
    "--full", is_flag=True, help="The full-size runs (256 x 256, the paper's networks) instead of --quick."
)
def bench(full: bool) -> None:
    """Run the benchmark scripts (inference, training, one volume); each prints a table and writes JSON.

    Speeds are ratios measured side by side in one run (never single absolute
    times); results go to docs/results/benchmarks/*-CLASS_quick.json (--full: *-CLASS.json; CLASS: this CPU's). See docs/benchmarks.md.
    """
    folder = benchmarks_folder()
    for script in QUICK_SET:
        click.echo(f"== {script}")
        command = [sys.executable, str(folder / script), *([] if full else ["--quick"])]
        if subprocess.run(command).returncode != 0:
            raise ImtransError(f"benchmarks/{script} failed; run it alone to see why")
