"""Checkpoints written atomically, so that a kill at any moment leaves a usable run.

A checkpoint is written to a temporary file in the run directory, flushed to
disk, then renamed into place: a reader sees either the old set of checkpoints
or the new one, never half a file. Only the newest ``keep`` are kept.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import re
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch.torch_version import TorchVersion

from ..errors import ImtransError

log = logging.getLogger("imtrans")
_NAME = re.compile(r"^ckpt-(\d{8})\.pt$")


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return run_dir / "checkpoints" / f"ckpt-{step:08d}.pt"


def atomic_write(path: Path, write: Any) -> None:
    """Call ``write(file)`` on a temporary file, fsync it, and rename it to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    atomic_write(path, lambda f: f.write((json.dumps(data, indent=2, default=str) + "\n").encode()))


def save(run_dir: Path, step: int, state: dict[str, Any], keep: int) -> Path:
    """Write the checkpoint for ``step`` and delete all but the newest ``keep``."""
    path = checkpoint_path(run_dir, step)
    atomic_write(path, lambda f: torch.save(state, f))
    for old in list_checkpoints(run_dir)[:-keep]:  # keep >= 1: the configs refuse less
        old.unlink(missing_ok=True)
    return path


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    folder = run_dir / "checkpoints"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _NAME.match(p.name))


def latest_step(run_dir: Path) -> int:
    """The iteration of the newest checkpoint (0 when there is none), read from its name."""
    found = list_checkpoints(run_dir)
    return int(_NAME.match(found[-1].name).group(1)) if found else 0


def load_latest(run_dir: Path, map_location: str | torch.device = "cpu") -> dict[str, Any] | None:
    """The newest readable checkpoint's state, or None when there is none yet."""
    for path in reversed(list_checkpoints(run_dir)):
        try:
            return _load(path, map_location)
        except ImtransError:  # holds more than tensors and plain values: never fall back silently
            raise
        except Exception as err:  # a damaged file (disk error): fall back to the one before
            log.warning(f"checkpoint {path} is unreadable ({err}); trying an older one")
    return None


def load_file(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint file given by a person: a clear error when it is not one."""
    try:
        state = _load(path, map_location)
    except FileNotFoundError:
        raise ImtransError(f"{path}: no such checkpoint file") from None
    except ImtransError:
        raise
    except Exception as err:
        raise ImtransError(
            f"{path}: not a readable imtrans checkpoint ({type(err).__name__}: {err})"
        ) from err
    if not isinstance(state, dict) or "models" not in state:
        raise ImtransError(f"{path}: not an imtrans checkpoint (no 'models' entry)")
    return state


def _load(path: Path, map_location: str | torch.device) -> Any:
    """``torch.load`` with ``weights_only=True``: tensors and plain values, never code.

    Our checkpoints hold nothing else, so a file that needs more was not written
    by imtrans as it is, and unpickling it could run whatever it carries.
    """
    try:
        # v0.1 stored torch.__version__ itself, a str subclass: allowed, so old runs still load.
        with torch.serialization.safe_globals([TorchVersion]):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if "Weights only load failed" not in str(err):  # a damaged file, not a refused one
            raise
        reason = str(err).strip().splitlines()
        detail = next((line for line in reason if "Unsupported global" in line), reason[0] if reason else "")
        raise ImtransError(
            f"{path}: refused; it holds Python objects besides tensors and plain values, and loading it "
            f"could run code ({detail.strip()[:160]}); imtrans checkpoints never do"
        ) from err
