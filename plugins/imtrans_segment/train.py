"""``imtrans segment train``: the labelled slices and the run directory around the core training engine.

The §3.2 network is the ``segment`` model (:mod:`.model`); this module prepares what it learns
from (labelled CT with the synthetic MR a CycleGAN's G_MR makes of it, or with ``--channels ct``
the CT alone), writes ``segment.json``
and hands the rest to ``imtrans_core.api.Engine``: the loop, checkpoints, resume
after a kill, Ctrl-C, DDP, the NaN stop, the event hooks and the loggers (``--log tensorboard``).

Iteration ``i`` draws its batch from ``numpy.random.default_rng([seed, i])`` (a random labelled
volume, a random slice with body in it, a random crop of ``size``; rank ``r`` of ``w`` draws
``[seed, i * w + r]``), so a run resumed from its checkpoint sees the same data an uninterrupted
one would.

::

    SEGRUN/
      segment.json        structures, label values, orientation, CycleGAN run, U-Net spec, settings
      checkpoints/        ckpt-00001000.pt ... (atomic; the newest `keep`)
      metrics.jsonl       one line per log interval: ce, dice, total, lr, it_per_s
      samples/            PNGs: CT | synthetic MR (ct,mr) | reference classes, then the U-Net's classes
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

import imtrans_core as ic
from imtrans_core.api import (
    Distributed,
    Engine,
    ImtransError,
    StopRequest,
    TorchBackend,
    checkpoint_of,
    fit_to,
    list_checkpoints,
    loggers,
    write_json,
)

from . import data as segdata
from .config import SegmentConfig
from .model import CHANNEL_SETS, with_net
from .rundir import SEGMENT_JSON, read_meta
from .structures import resolve


@dataclass
class SegmentResult:
    run_dir: Path
    start: int  # the iteration it started (resumed) at
    step: int  # the iteration it stopped at
    status: str  # finished | interrupted
    seconds: float
    last: dict[str, float] = field(default_factory=dict)


def train(
    config: SegmentConfig | None, out: Path | None = None, resume: Path | None = None, progress: bool = True
) -> SegmentResult:
    """Train (or resume) a segmentation run; returns where it went and how far it got."""
    run_dir, config = _run_and_config(config, out, resume)
    _check(config)
    dist = Distributed.setup(config.device)
    try:
        volumes, meta = _labelled_volumes(config, dist, progress)

        torch.manual_seed(config.seed)
        model = ic.MODELS.build("segment")
        model.setup(with_net(config, len(meta["structures"])), dist)
        engine = Engine(model, "segment", config, run_dir, dist)
        if resume is not None:
            engine.resume()
        engine.extras = {"segment": meta}
        if dist.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            write_json(run_dir / SEGMENT_JSON, {**meta, "step": engine.step, "status": "running"})
        start, started, status = engine.step, time.perf_counter(), "failed"
        fixed = _tensors(sample_batch(volumes, config.size, 1, config.seed, 0))  # drawn in the samples
        batches = (
            _tensors(
                sample_batch(volumes, config.size, config.batch, config.seed, step * dist.world + dist.rank)
            )
            for step in range(engine.step, config.iters)
        )
        try:
            with loggers(config.log, dist), StopRequest() as stop:
                status = engine.fit(batches, fixed, stop)
        finally:
            if dist.is_main:
                write_json(run_dir / SEGMENT_JSON, {**meta, "step": engine.step, "status": status})
        return SegmentResult(run_dir, start, engine.step, status, time.perf_counter() - started, engine.last)
    finally:
        dist.close()


def _run_and_config(
    config: SegmentConfig | None, out: Path | None, resume: Path | None
) -> tuple[Path, SegmentConfig]:
    """The run directory and the settings: a resumed run's own, or new ones for a new folder."""
    if resume is not None:
        meta = read_meta(Path(resume), option="--resume")
        return Path(resume), SegmentConfig.from_dict(meta["config"], source=str(Path(resume) / SEGMENT_JSON))
    if config is None:
        raise ValueError("train() needs a config or resume=")
    run_dir = Path(out) if out is not None else Path("runs") / time.strftime("segment-%Y%m%d-%H%M%S")
    if list_checkpoints(run_dir):
        raise ImtransError(
            f"--out {run_dir} already holds a segmentation run; continue it with --resume {run_dir} "
            "or choose another --out"
        )
    return run_dir, config


def _labelled_volumes(config: SegmentConfig, dist: Any, progress: bool) -> tuple[list[Any], dict[str, Any]]:
    """The labelled CT volumes with their synthetic MR, and what ``segment.json`` records of the run.

    Rank 0 translates (and caches) first; the other ranks then read the cache.
    """
    gen_ckpt = checkpoint_of(Path(config.cyclegan)) if config.cyclegan else None
    g_mr = TorchBackend.from_model(gen_ckpt, "ct2mr", config.device, config.amp) if gen_ckpt else None
    orientation = config.orientation or (g_mr.orientation if g_mr else "coronal")
    if config.data:
        items, names, groups = segdata.from_source(ic.DATASETS.build(config.data), f"--data {config.data}")
    elif config.ct and config.labels:
        items, names, groups = segdata.from_folders(Path(config.ct), Path(config.labels))
    else:
        raise ImtransError(
            "labelled CT: give --data SPEC (a dataset with labelled subjects) or --ct DIR with --labels DIR"
        )
    structures = resolve(config.structures, names, groups)
    key = segdata.generator_key(gen_ckpt, g_mr) if gen_ckpt else ""
    volumes: list[Any] = []
    for turn in (True, False):  # rank 0 first, then the others
        if dist.is_main == turn:
            volumes = segdata.prepare(
                items, structures, g_mr, key, orientation, config.batch, progress and dist.is_main
            )
        dist.barrier()
    meta = {
        "structures": [s.to_dict() for s in structures],
        "classes": ["background", *(s.name for s in structures)],
        "label_names": names,
        "channels": list(CHANNEL_SETS[config.channels]),
        "orientation": orientation,
        "cyclegan": str(Path(config.cyclegan).resolve()) if gen_ckpt else "",
        "cyclegan_checkpoint": str(gen_ckpt.resolve()) if gen_ckpt else "",
        "net": with_net(config, len(structures)).net,
        "volumes": [v.id for v in volumes],
        "slices": int(sum(len(v.usable) for v in volumes)),
        "config": config.to_dict(),
    }
    return volumes, meta


def sample_batch(
    volumes: list[segdata.TrainingVolume], size: int, batch: int, seed: int, step: int
) -> tuple[np.ndarray, np.ndarray]:
    """Iteration ``step``'s batch: ``x`` (N, C, S, S) float32 [-1, 1] (CT, synthetic MR); ``y`` (N, S, S) int64."""
    rng = np.random.default_rng([seed, step])
    usable = [v for v in volumes if len(v.usable)]
    xs, ys = [], []
    for _ in range(batch):
        volume = usable[int(rng.integers(len(usable)))]
        index = int(volume.usable[int(rng.integers(len(volume.usable)))])
        crop = int(rng.integers(2**31))  # one crop offset for all three images
        images = (volume.ct,) if volume.mr is None else (volume.ct, volume.mr)
        xs.append(
            np.stack(
                [fit_to(np.asarray(a[index], np.float32), size, np.random.default_rng(crop)) for a in images]
            )
        )
        labels = fit_to(volume.classes[index].astype(np.float32), size, np.random.default_rng(crop))
        ys.append(np.maximum(labels, 0))  # padding comes in as the image background (-1): make it class 0
    return np.stack(xs).astype(np.float32), np.stack(ys).astype(np.int64)


def _tensors(batch: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
    x, y = batch
    return {"x": torch.from_numpy(x), "y": torch.from_numpy(y)}


def _check(config: SegmentConfig) -> None:
    for name in ("iters", "batch", "size", "log_every", "ckpt_every"):
        if getattr(config, name) < 1:
            raise ImtransError(f"--{name.replace('_', '-')} {getattr(config, name)}: must be at least 1")
    if config.size < 16:
        raise ImtransError(f"--size {config.size}: too small for a U-Net; use 16 or more (the paper: 256)")
    if config.lr <= 0 or config.dice_loss < 0:
        raise ImtransError("--lr must be > 0 and --dice-loss >= 0")
    if config.channels not in CHANNEL_SETS:
        raise ImtransError(f"--channels {config.channels}: choose {' or '.join(CHANNEL_SETS)}")
    if config.channels == "ct,mr" and not config.cyclegan:
        raise ImtransError(
            "--cyclegan: give the CycleGAN run (directory or checkpoint) whose G_MR makes the MR channel "
            "(or --channels ct for a CT-only segmenter)"
        )
    if config.channels == "ct" and config.cyclegan:
        raise ImtransError(
            "--cyclegan: a CT-only segmenter (--channels ct) makes no synthetic MR; leave it out"
        )
    if config.orientation not in ("", "coronal", "axial", "sagittal"):
        raise ImtransError(f"--orientation {config.orientation}: choose coronal, axial or sagittal")
    for spec in config.log:  # built once now: a logger missing its package says so before any work
        ic.LOGGERS.build(spec)
