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
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import imtrans_core as ic

from ..errors import ImtransError
from . import checkpoint
from .checkpoint import atomic_write
from .config import TrainConfig


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
        """A new run directory (only rank 0 writes); refuses one that already holds checkpoints."""
        path = path or Path("runs") / time.strftime("%Y%m%d-%H%M%S")
        if checkpoint.list_checkpoints(path):
            raise ImtransError(
                f"--out {path} already holds a run; continue it with --resume {path} or choose another --out"
            )
        run = cls(path, config, collect_versions(config.seed))
        if write:
            path.mkdir(parents=True, exist_ok=True)
            checkpoint.write_json(path / "config.json", {**config.to_dict(), "resolved": resolved})
            checkpoint.write_json(path / "versions.json", run.versions)
        return run

    def update(self, config: TrainConfig, resolved: dict[str, Any]) -> RunDir:
        """Record a resumed run's new configuration (a longer schedule, another device, ...)."""
        checkpoint.write_json(self.path / "config.json", {**config.to_dict(), "resolved": resolved})
        return RunDir(self.path, config, self.versions)

    @classmethod
    def open(cls, path: Path) -> RunDir:
        """An existing run, with the configuration it was started with."""
        config_file = path / "config.json"
        if not config_file.is_file():
            raise ImtransError(f"--resume {path}: not a run directory (no config.json)")
        try:
            data = json.loads(config_file.read_text())
        except json.JSONDecodeError as err:
            raise ImtransError(f"--resume {path}: {config_file} is not valid JSON ({err})") from err
        if not isinstance(data, dict):
            raise ImtransError(f"--resume {path}: {config_file} does not hold a configuration")
        data.pop("resolved", None)
        versions_file = path / "versions.json"
        versions = json.loads(versions_file.read_text()) if versions_file.is_file() else {}
        return cls(path, TrainConfig.from_dict(data, source=str(config_file)), versions)


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
