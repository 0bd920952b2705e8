"""``imtrans train``: set up a run (new or resumed), its model, data and loggers, and drive the engine."""

from __future__ import annotations

import logging
import signal
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

import imtrans_core as ic

from .. import defaults
from ..data.contract import InputContract, measure
from ..data.slices import PairedSlices, SliceStacks, StepSampler, TrainingSlices, UnpairedSlices, fit_to
from ..errors import ImtransError
from ..vml import settle_vml_dispatch
from . import checkpoint
from .config import TrainConfig, resume_config
from .distributed import Distributed
from .engine import Engine
from .rundir import RunDir, new_run_path
from .validate import build_model, check, check_data, describe_resolved

log = logging.getLogger("imtrans")


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    status: str  # finished | interrupted


def train(
    config: TrainConfig | None,
    out: Path | None = None,
    resume: Path | None = None,
    changes: dict[str, Any] | None = None,
) -> TrainResult:
    """Train from scratch into ``out``, or continue the run in ``resume``.

    A resumed run keeps its own configuration except for ``changes`` to the
    options that may change on resume (``iters``, ``device``, loggers, ...; see
    :func:`~.config.resume_config`), which ``config.json`` then records. Every
    option is checked before any data is read or any folder is made.
    """
    if resume is not None:
        run_dir, config = open_run(resume, changes or {})
    else:
        out = new_run_path(out)
    assert config is not None, "give a config or a run directory to resume"
    settle_vml_dispatch()  # check() already runs the networks: before their first threaded call
    resolved = check(config)
    dist = Distributed.setup(config.device)
    try:
        source = ic.DATASETS.build(config.data)  # a bad folder fails here, before the run directory exists
        torch.manual_seed(config.seed if config.init_seed is None else config.init_seed)
        model = build_model(config.model)
        model.setup(config, dist)
        check_data(config, model, source)
        if resume is None:
            run_dir = RunDir.create(out, config, resolved, write=dist.is_main)
        elif config != run_dir.config:  # config.json records the changes once the data is read
            run_dir = RunDir(run_dir.path, config, run_dir.versions)
        dist.barrier()
        log.info(f"configuration: {describe_resolved(resolved)}")  # every check passed: the run starts
        engine = Engine(model, resolved["model"], config, run_dir.path, dist)
        if resume is not None:
            engine.resume()
        dataset, fixed, stacks = build_data(source, config, dist, model.data_needs())
        model.observe_data(stacks)
        contract = input_contract(stacks, config, source)
        engine.extras = {"contract": contract.to_dict(), "versions": run_dir.versions}
        if dist.is_main:
            run_dir.write_config(resolved, contract)
        loader = torch.utils.data.DataLoader(
            dataset,
            batch_size=config.batch,
            sampler=StepSampler(engine.step, config.iters, config.batch, dist.rank, dist.world),
            num_workers=config.workers,
            pin_memory=dist.device.type == "cuda",
            generator=torch.Generator(),  # keeps the global RNG untouched (resume is exact)
        )
        fixed = tuple(t.to(dist.device) for t in fixed)
        with loggers(config.log, dist), StopRequest() as stop:
            status = engine.fit(loader, fixed, stop)
        return TrainResult(run_dir.path, engine.step, status)
    finally:
        dist.close()


def open_run(path: Path, changes: dict[str, Any]) -> tuple[RunDir, TrainConfig]:
    """The run to resume and its configuration with ``changes`` applied, checked against its progress."""
    run_dir = RunDir.open(path)
    config = resume_config(run_dir.config, changes)
    done = checkpoint.latest_step(path)
    if config.iters < done:
        raise ImtransError(
            f"--iters {config.iters}: {path} has already trained {done} iterations; "
            f"give --iters {done} or more to continue it"
        )
    return run_dir, config


def build_data(
    source: Any, config: TrainConfig, dist: Distributed, needs: tuple[bool, bool]
) -> tuple[TrainingSlices, tuple[torch.Tensor, torch.Tensor], list[SliceStacks]]:
    """The slices the model reads (``needs``: unpaired, paired), a fixed (CT, MR) for sample images, the stacks."""
    parts: list[UnpairedSlices | PairedSlices] = []
    stacks = []
    unpaired, pairs = needs
    if unpaired:
        ct = SliceStacks(source.ct, "ct", config.orientation, source.fingerprint, progress=dist.is_main)
        mr = SliceStacks(source.mr, "mr", config.orientation, source.fingerprint, progress=dist.is_main)
        parts.append(
            UnpairedSlices(
                ct, mr, config.size, seed=config.seed, context=config.context, pairing=config.pairing
            )
        )
        stacks.append((ct, mr))
    if pairs:
        key = f"{source.fingerprint}|train-pairs" if source.fingerprint else ""
        ct, mr = (
            SliceStacks(source.pair_pool(m), m, config.orientation, key, progress=dist.is_main)
            for m in ("ct", "mr")
        )
        parts.append(PairedSlices(ct, mr, config.size, seed=config.seed, context=config.context))
        stacks.append((ct, mr))
    fixed = tuple(
        torch.from_numpy(
            np.ascontiguousarray(
                fit_to(s.around(*s.index[len(s) // 2], config.context), config.size, None), dtype=np.float32
            )
        )[None]
        for s in stacks[0]
    )
    return TrainingSlices(*parts), fixed, [s for pair in stacks for s in pair]  # type: ignore[return-value]


def input_contract(stacks: list[SliceStacks], config: TrainConfig, source: Any) -> InputContract:
    """What every input of the trained generators must look like: measured on the training slices."""
    spacings = [spacing for stack in stacks for spacing in stack.spacings]
    return measure(
        spacings, config.orientation, config.context, config.size, source.mr_n4, source.mr_weighting
    )


@contextmanager
def loggers(specs: list[str], dist: Distributed):
    """Build the default loggers and ``specs`` and register them for the run's events (rank 0 only)."""
    built = []
    if dist.is_main:
        for spec in (*defaults.LOGGERS, *specs):
            if (
                spec.split(":")[0] not in ic.LOGGERS
            ):  # only a default one can be missing: check() saw the rest
                log.warning(
                    f"logger '{spec}' is not registered; its output is skipped (see 'imtrans plugins loggers')"
                )
                continue
            logger = ic.LOGGERS.build(spec)
            ic.plugins.manager.register(logger, name=f"logger:{spec}:{id(logger)}")
            built.append(logger)
    try:
        yield built
    finally:
        for logger in built:
            ic.plugins.manager.unregister(logger)


class StopRequest:
    """Ctrl-C or SIGTERM asks the loop to stop after the current iteration; a second Ctrl-C stops at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested = False
        self.previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        log.warning("stopping after this iteration and saving a checkpoint (Ctrl-C again to stop at once)")

    def __enter__(self) -> StopRequest:
        try:
            self.previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        except ValueError:  # not the main thread: signals stay as they are
            self.previous = {}
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
