"""The run directory: everything it takes to reproduce, inspect and resume a run.

::

    RUN/
      config.json         the resolved configuration (every spec with defaults filled in)
      versions.json       python, torch, imtrans and each plugin's version; the seed
      checkpoints/        ckpt-00001000.pt ... (atomic, the newest `keep` of them)
      metrics.jsonl       one JSON line per log interval (written by the `jsonl` logger)
      samples/            PNG grids (written by the `samples` logger)
"""

from __future__ import annotations

import json
import logging
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import imtrans_core as ic

from ..data.contract import InputContract
from ..errors import ImtransError
from . import checkpoint
from .checkpoint import atomic_write
from .config import TrainConfig

log = logging.getLogger("imtrans")
KEEP_ALL = 1_000_000  # what keep=0 meant in v0.1


def collect_versions(seed: int) -> dict[str, Any]:
    import torch

    return {
        "python": platform.python_version(),
        "torch": str(torch.__version__),  # a str subclass that weights_only loading refuses
        "imtrans": ic.__version__,
        "plugins": {s.name: f"{s.dist} {s.version}".strip() for s in ic.plugins.sources.values()},
        "seed": seed,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


@dataclass
class RunDir:
    path: Path
    config: TrainConfig
    versions: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, path: Path | None, config: TrainConfig, resolved: dict[str, Any], write: bool) -> RunDir:
        """A new run directory (only rank 0 writes); see :func:`new_run_path`."""
        run = cls(new_run_path(path), config, collect_versions(config.seed))
        if write:
            run.path.mkdir(parents=True, exist_ok=True)
            run.write_config(resolved)
            checkpoint.write_json(path / "versions.json", run.versions)
        return run

    def write_config(self, resolved: dict[str, Any], contract: InputContract | None = None) -> None:
        """``config.json``: every option as given, each spec resolved with its defaults, and once the
        training data is read, the generators' input contract (:mod:`imtrans_core.data.contract`)."""
        record = {**self.config.to_dict(), "resolved": resolved}
        if contract is not None:
            record["contract"] = contract.to_dict()
        checkpoint.write_json(self.path / "config.json", record)

    @classmethod
    def open(cls, path: Path) -> RunDir:
        """An existing run, with the configuration it was last run with."""
        config_file = path / "config.json"
        if not config_file.is_file():
            raise ImtransError(f"--resume {path}: not a run directory (no config.json)")
        data = _read_json(config_file)
        if not isinstance(data, dict):
            raise ImtransError(f"--resume {path}: {config_file} is damaged (not a JSON object of options)")
        data.pop("resolved", None)
        data.pop("contract", None)  # measured again from the data when the run resumes
        if data.get("keep") == 0:  # v0.1 read keep=0 as "keep every checkpoint"
            data["keep"] = KEEP_ALL
        try:
            versions = _read_json(path / "versions.json")
        except ImtransError as err:  # only informative: the run resumes without it
            log.warning(f"{err}; resuming without the recorded versions")
            versions = {}
        return cls(path, TrainConfig.from_dict(data, source=str(config_file)), versions)


def new_run_path(path: Path | None) -> Path:
    """Where a new run goes (default ``runs/<time>``): not a file, not inside one, not an existing run."""
    path = path or Path("runs") / time.strftime("%Y%m%d-%H%M%S")
    blocking = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise ImtransError(f"--out {path}: {blocking} is a file; choose a folder for the run")
    if checkpoint.list_checkpoints(path):
        raise ImtransError(
            f"--out {path} already holds a run; continue it with --resume {path} or choose another --out"
        )
    return path


def _read_json(path: Path) -> Any:
    """A JSON file of the run ({} when absent); a damaged one is an error naming it."""
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except ValueError as err:  # bad JSON or not UTF-8
        raise ImtransError(f"{path}: damaged, not JSON ({err})") from err


def truncate_metrics(path: Path, step: int) -> None:
    """Drop JSONL lines past ``step`` (and a line cut short by a kill): a resumed run rewrites them."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("iter", 0) <= step:
            kept.append(line)
    atomic_write(path, lambda f: f.write("".join(k + "\n" for k in kept).encode()))
