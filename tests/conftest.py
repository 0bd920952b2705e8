"""Shared fixtures. Tests see only imtrans' own plugins unless a test adds more."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Like datasette's test suite: do not load whatever third-party plugins happen to
# be installed; a test that wants one says so.
os.environ["IMTRANS_PLUGINS"] = "imtrans"
os.environ.pop("IMTRANS_DISABLE_PLUGINS", None)
# Slices and checkpoints cut by tests go to a folder of this session, never the user's cache: a
# cache left by another version of the code must not change what a test sees.
os.environ["IMTRANS_CACHE"] = tempfile.mkdtemp(prefix="imtrans-test-cache-")

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = REPO.parent / "shared" / "data" / "real"


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The folder of real public CT/MR volumes; the test skips where it is absent."""
    if not REAL_DATA.is_dir():
        pytest.skip(f"real data folder {REAL_DATA} is absent")
    return REAL_DATA


@pytest.fixture(scope="session")
def load_benchmark():
    """``load(name)``: the script ``benchmarks/<name>.py`` as a module. The scripts are not a package and
    import their siblings (``from machine import ...``), so their folder goes on ``sys.path`` once."""
    import importlib.util
    import sys

    folder = REPO / "benchmarks"
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture
def fresh_plugins(monkeypatch):
    """Reload plugins from scratch for this test and again afterwards."""
    import imtrans_core as ic

    ic.plugins.reset()
    yield ic.plugins
    monkeypatch.undo()
    ic.plugins.reset()


@pytest.fixture
def run_ranks():
    """``run(script, out)``: ``python script out`` as two DDP ranks on this machine (gloo), both asserted to exit 0."""
    import socket
    import subprocess
    import sys

    def run(script: Path, out: Path, world: int = 2) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": str(world)}
        procs = [
            subprocess.Popen(
                [sys.executable, str(script), str(out)],
                env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for r in range(world)
        ]
        outputs = [p.communicate(timeout=240)[0] for p in procs]
        assert [p.returncode for p in procs] == [0] * world, outputs

    return run


KILLER = """
import os, signal, sys
from pathlib import Path
import imtrans_core as ic
from imtrans_core.training import TrainConfig, train

class Killer:
    @ic.hookimpl
    def imtrans_step_end(self, run, step, metrics):
        if step == {step}:
            os.kill(os.getpid(), signal.SIGKILL)

ic.plugins.add_plugin(Killer(), "killer")
train(TrainConfig(**{config}), out=Path(sys.argv[1]))
"""


@pytest.fixture
def killed_run(tmp_path):
    """``killed_run(config, step)``: a run of ``config`` SIGKILLed in a subprocess after iteration ``step``
    (logged: ``log_every`` must divide it); returns its folder, asserted killed."""
    import subprocess
    import sys

    def kill(config: dict, step: int) -> Path:
        script, out = tmp_path / "killed.py", tmp_path / "killed"
        script.write_text(KILLER.format(step=step, config=repr(config)))
        proc = subprocess.run([sys.executable, str(script), str(out)], capture_output=True, text=True)
        assert proc.returncode == -9, proc.stderr
        return out

    return kill


DDP_WORKER = """
import os, sys
from pathlib import Path
import torch
import imtrans_core as ic
from imtrans_core.training import TrainConfig, train

out = Path(sys.argv[1])
class Dump:
    @ic.hookimpl
    def imtrans_run_end(self, run, status):
        state = {{k: v.state_dict() for k, v in run.networks.items()}}
        torch.save(state, out.parent / f"rank{{os.environ['RANK']}}.pt")

ic.plugins.add_plugin(Dump(), "dump")
torch.set_num_threads(1)
train(TrainConfig(**{config}), out=out)
"""


@pytest.fixture
def ddp_ranks(tmp_path, run_ranks):
    """``ddp_ranks(config, out)``: ``config`` trained by two DDP ranks into ``out``; each rank's final networks."""
    import torch

    def train_on_two(config: dict, out: Path) -> tuple[dict, dict]:
        script = tmp_path / "worker.py"
        script.write_text(DDP_WORKER.format(config=repr(config)))
        run_ranks(script, out)
        return tuple(torch.load(out.parent / f"rank{r}.pt", weights_only=True) for r in range(2))

    return train_on_two
