"""Which backend runs a MODEL argument: torch for a run directory or checkpoint, OpenVINO or
onnxruntime for an exported ``.onnx`` file.

It lives beside the exported runners because it knows all of them; :mod:`imtrans_core.inference`
knows only torch, so the two folders import one way (onnx -> inference).
"""

from __future__ import annotations

import warnings
from pathlib import Path

from ..choices import BACKENDS
from ..errors import ImtransError, ImtransWarning
from ..inference.backends import Backend, TorchBackend
from . import openvino, runtime
from .providers import gpu_count


def make_backend(
    model: str | Path,
    direction: str | None = None,
    backend: str = "auto",
    device: str = "auto",
    amp: str = "off",
    compile_net: bool = False,
    precision: str = "auto",
) -> Backend:
    """The backend for a MODEL argument: a run directory or checkpoint (torch), or an ``.onnx`` file.

    ``backend="auto"`` means torch for a run or checkpoint; for a file ending in ``.onnx``,
    OpenVINO when it is installed and the model runs on the CPU, else onnxruntime.
    ``direction`` defaults to ``mr2ct`` for torch and to the exported direction for ONNX (a
    different one is an error: an ONNX file holds one generator). ``precision`` is OpenVINO's
    (``auto``, ``bf16``, ``f32``); ``amp`` and ``compile_net`` are torch's.
    """
    if backend not in BACKENDS:
        raise ImtransError(f"--backend {backend}: choose {', '.join(BACKENDS)}")
    model = Path(model)
    is_onnx = model.name.lower().endswith(".onnx")
    if backend == "auto":
        backend = auto_backend(is_onnx, device)
    if backend in ("onnx", "openvino"):
        if compile_net:
            raise ImtransError("--compile applies to the torch backend only; an ONNX model runs as exported")
        if amp not in ("off", "auto"):
            warnings.warn(
                f"--amp {amp} applies to the torch backend only; for ONNX see --precision (OpenVINO)",
                ImtransWarning,
                stacklevel=2,
            )
        runner = (
            _openvino_backend(model, precision)
            if backend == "openvino"
            else _onnx_backend(model, device, precision)
        )
        return _check_direction(runner, model, direction)
    if is_onnx:
        raise ImtransError(f"{model}: an ONNX file needs --backend onnx, openvino or auto, not torch")
    if precision != "auto":
        raise ImtransError("--precision applies to the openvino backend; for torch use --amp")
    return TorchBackend.from_model(model, direction or "mr2ct", device, amp, compile_net)


def auto_backend(is_onnx: bool, device: str) -> str:
    """What ``--backend auto`` runs: torch for a run or checkpoint; for an ``.onnx`` file OpenVINO where
    it is installed and the model runs on the CPU, else onnxruntime.

    The rule holds on every CPU class benchmarked (docs/benchmarks.md, ``volume-*.json``): OpenVINO at
    its own precision (bf16 where the CPU has bf16 units, f32 elsewhere) and onnxruntime fp32 both
    run the whole command at least as fast as torch fp32, within 2 HU; a test keeps it so.
    """
    if not is_onnx:
        return "torch"
    return "openvino" if _openvino_fits(device) else "onnx"


def _openvino_fits(device: str) -> bool:
    """OpenVINO for an ONNX file: installed, and the model is to run on the CPU."""
    if device == "cuda" or not openvino.available():
        return False
    return device == "cpu" or gpu_count() == 0


def _openvino_backend(model: Path, precision: str) -> Backend:
    return openvino.OpenVinoBackend.from_file(model, precision)


def _onnx_backend(model: Path, device: str, precision: str) -> Backend:
    if precision != "auto":
        raise ImtransError(
            "--precision applies to the openvino backend; onnxruntime runs the file as exported"
        )
    if not runtime.available():
        raise ImtransError(
            "onnx backend not available (onnxruntime is not installed) — pip install onnxruntime, "
            "or use --backend torch with the run directory"
        )
    if not model.is_file():
        raise ImtransError(f"{model}: no such ONNX file — export one with `imtrans export`")
    return runtime.OnnxBackend.from_file(model, device=device)


def _check_direction(runner: Backend, model: Path, direction: str | None) -> Backend:
    if direction is not None and direction != runner.direction:
        raise ImtransError(
            f"{model}: this ONNX file is the {runner.direction} generator, not {direction} — "
            f"drop --direction or export the {direction} generator"
        )
    return runner
