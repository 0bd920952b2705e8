"""Translating many files: one output name per input, every good file translated and written
atomically, the failed ones listed with their reason at the end (:func:`translate_files`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import NamedTuple

from ..choices import OUTPUT_FORMATS
from ..data.io import list_volumes, read_volume, volume_id, write_volume
from ..errors import ImtransError
from .backends import Backend
from .modality import check_source
from .translate import slice_count, translate_on_grid, translate_volume


@dataclass
class Job:
    """One input volume and where its translation goes."""

    input: Path
    output: Path


def expand_inputs(inputs: Iterable[str | Path]) -> list[Path]:
    """Files as given; folders expanded to the volumes inside them (see :func:`imtrans_core.data.io.list_volumes`)."""
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if not path.exists():
            raise ImtransError(f"{path}: no such file or folder — check the path")
        found.extend(list_volumes(path) if path.is_dir() else [path])  # a DICOM series folder lists itself
    if not found:
        raise ImtransError("no input volumes given")
    return found


def plan_jobs(inputs: Iterable[str | Path], out: str | Path, fmt: str = "nii.gz") -> list[Job]:
    """``OUT/<id>.<fmt>`` for every input; two inputs with one id, or an output over its input, are errors."""
    if fmt not in OUTPUT_FORMATS:
        raise ImtransError(f"--format {fmt}: choose {', '.join(OUTPUT_FORMATS)}")
    out = Path(out)
    jobs: list[Job] = []
    seen: dict[str, Path] = {}
    for path in expand_inputs(inputs):
        vid = volume_id(path)
        if vid in seen:
            raise ImtransError(
                f"{path} and {seen[vid]} would both be written to {out / vid}.{fmt} — translate them into different --out folders"
            )
        seen[vid] = path
        target = out / f"{vid}.{fmt}"
        if target.resolve() == path.resolve():
            raise ImtransError(f"{path}: the output would overwrite the input — choose another --out folder")
        jobs.append(Job(path, target))
    return jobs


class Outcome(NamedTuple):
    """What became of one job: ``written``, ``skipped`` (the output exists) or ``failed`` (``error`` says why)."""

    job: Job
    status: str
    seconds: float
    error: str = ""


def translate_files(
    jobs: list[Job],
    backend: Backend,
    batch: int = 8,
    force: bool = False,
    skip_existing: bool = False,
    on_volume: Callable[[Job, int], Callable[[int], None] | None] | None = None,
    resample: bool = True,
) -> Iterator[Outcome]:
    """Translate each job's volume and write it; yields an :class:`Outcome` after each one.

    Volumes stream one at a time (read, translate, write, release), so a folder larger than
    memory is fine. A volume that cannot be used (unreadable, the wrong modality, too thin for the network) is reported
    as ``failed`` and the others go on. ``on_volume(job, n_slices)`` may return a per-batch
    progress callback. ``resample`` (default) translates on the model's training grid
    (:func:`translate_on_grid`); without it, slices are cut from the input's own grid.
    """
    for job in jobs:
        started = time.perf_counter()
        if skip_existing and job.output.exists():
            yield Outcome(job, "skipped", 0.0)
            continue
        try:
            volume = read_volume(job.input)
            check_source(volume, backend.source, str(job.input), strict=not force)
        except ImtransError as err:
            yield Outcome(job, "failed", time.perf_counter() - started, str(err))
            continue
        progress_for = partial(on_volume, job) if on_volume is not None else None
        try:
            if resample:
                translated = translate_on_grid(volume, backend, batch, progress_for, str(job.input))
            else:
                progress = progress_for(slice_count(volume, backend)) if progress_for is not None else None
                translated = translate_volume(volume, backend, batch, progress)
        except RuntimeError as err:  # e.g. slices thinner than the network's padding
            detail = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
            yield Outcome(
                job, "failed", time.perf_counter() - started, f"{job.input}: cannot translate it ({detail})"
            )
            continue
        del volume
        write_volume(translated, job.output)
        yield Outcome(job, "written", time.perf_counter() - started)
