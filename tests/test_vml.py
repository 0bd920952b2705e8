"""MKL's vector math is settled before torch's threads share it (imtrans_core.vml)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

FIRST_CALLS = """
    import json, sys
    from pathlib import Path
    import torch
    from torch.overrides import TorchFunctionMode
    from imtrans_core.inference.models import load_generator
    from imtrans_core.training import TrainConfig, train
    from imtrans_core.vml import VML_FUNCTIONS

    first = {}  # "function dtype" -> how many values its first call had

    class Record(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            name = getattr(func, "__name__", "").rstrip("_")
            if name in VML_FUNCTIONS and args and isinstance(args[0], torch.Tensor) and args[0].is_floating_point():
                first.setdefault(f"{name} {args[0].dtype}", args[0].numel())
            return func(*args, **(kwargs or {}))

    with Record():
        WORK
    print(json.dumps(first))
"""
TRAIN = "train(TrainConfig(**CONFIG), out=Path(sys.argv[1]))"
TRANSLATE = "load_generator(Path(sys.argv[1])).net(torch.rand(1, 1, 64, 64))"
CONFIG = dict(
    gen="resnet9:ngf=8,n_blocks=2",
    disc="patchgan:ndf=8",
    data="phantom:n_ct=2,n_mr=2,n_paired=1,size=64,slices=4",
    size=64,
    iters=2,
    workers=0,
)


def first_calls(tmp_path: Path, work: str, run: Path) -> dict[str, int]:
    """The size of each VML function's first call in a fresh process that does ``work`` on ``run``."""
    script = tmp_path / "first_calls.py"
    code = textwrap.dedent(FIRST_CALLS).replace("WORK", work).replace("CONFIG", repr(CONFIG))
    script.write_text(code)
    proc = subprocess.run(
        [sys.executable, str(script), str(run)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def test_training_and_translation_call_each_vml_function_first_on_one_value(tmp_path):
    """The generators' tanh (4096 values a slice here) would otherwise make the first, threaded call:
    the one that can run at low accuracy in a fresh process."""
    for work in (TRAIN, TRANSLATE):
        first = first_calls(tmp_path, work, tmp_path / "run")
        assert "tanh torch.float32" in first  # the generators' last layer
        assert {call: n for call, n in first.items() if n != 1} == {}
