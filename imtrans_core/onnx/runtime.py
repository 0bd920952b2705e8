"""Run an exported generator with onnxruntime: the ``onnx`` translation backend.

:class:`OnnxBackend` satisfies the translation engine's backend protocol: it has
``direction``, ``source``, ``target`` and ``orientation`` (read from the model's
metadata, see :mod:`imtrans_core.onnx.export`) and is called on a batch
``(N, C, H, W)`` float32 in [-1, 1] (C = 2 context + 1), returning the same shape in [-1, 1].

Providers are tried in the order TensorRT -> CUDA -> CPU, but only those that can
really load (:mod:`.providers`), and the session's ``get_providers()`` is checked
afterwards.

What the backend shares with the OpenVINO one (the metadata, the intensity
windows of a model exported ``--with-intensity``) is :class:`.exported.ExportedGenerator`.
"""

from __future__ import annotations

import importlib.util
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ImtransError, ImtransWarning
from .exported import ExportedGenerator, check_onnx_file, decode_metadata, read_metadata
from .providers import (
    CUDA,
    TENSORRT,
    physical_cores,
    provider_options,
    providers_for_device,
    resolve_providers,
)

log = logging.getLogger("imtrans")


# ----------------------------------------------------------------------------- providers


def session_options(threads: int | None = None, spinning: bool = False) -> Any:
    """All graph optimisations, sequential execution, intra-op threads = physical cores; errors only.

    Idle worker threads sleep rather than spin (``spinning=False``): spinning
    buys little for convolutions that take milliseconds each, and it takes the
    cores away from whatever else runs in the process (torch, the volume reader)
    or on the machine.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = int(threads) if threads else physical_cores()
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    # errors only: the CPU provider's fall-back notes are not the user's business
    options.log_severity_level = 3
    return options


def available() -> bool:
    """Whether onnxruntime is installed (without importing it)."""
    return importlib.util.find_spec("onnxruntime") is not None


def open_session(
    path: str | Path, providers: str | Sequence[str] | None = None, threads: int | None = None
) -> Any:
    """An ``InferenceSession`` on the best providers that load; warns when a GPU provider fell back."""
    import onnxruntime as ort

    names = resolve_providers(providers)
    fp16 = TENSORRT in names and _precision_of(path) == "fp16"
    chosen = [(name, provider_options(name, fp16=fp16)) for name in names]
    try:
        session = ort.InferenceSession(str(path), sess_options=session_options(threads), providers=chosen)
    except Exception as err:
        text = " ".join(str(err).split())[:300]
        raise ImtransError(
            f"{path}: onnxruntime cannot load it ({text}) — is it an ONNX model written by `imtrans export`?"
        ) from err
    active = session.get_providers()
    missing = [n for n in names if n not in active]
    if missing:
        log.warning(f"{path}: {', '.join(missing)} did not start; running on {', '.join(active)}")
    return session


# ----------------------------------------------------------------------------- metadata


def _precision_of(path: str | Path) -> str:
    """The ``precision`` an imtrans export recorded (fp32 when unreadable)."""
    try:
        return str(read_metadata(path).get("precision", "fp32"))
    except Exception:
        return "fp32"


# ----------------------------------------------------------------------------- backend


class OnnxBackend(ExportedGenerator):
    """A translation backend on an exported generator, run by onnxruntime (see the module docstring).

    ``backend(batch)`` takes ``(N, C, H, W)`` float32 in [-1, 1] and returns the
    translation, same shape, in [-1, 1]. ``providers`` lists what the session
    really runs on.
    """

    def __init__(self, session: Any, metadata: dict[str, Any], path: Path | None = None):
        super().__init__(metadata, path)
        self.session = session
        inputs, outputs = session.get_inputs(), session.get_outputs()
        self.input_name: str = inputs[0].name
        self.output_name: str = outputs[0].name
        self.providers: list[str] = list(session.get_providers())
        self._device = "cuda" if self.providers[0] in (CUDA, TENSORRT) else "cpu"

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        providers: str | Sequence[str] | None = None,
        threads: int | None = None,
        device: str | None = None,
    ) -> OnnxBackend:
        """Open ``path`` (an ONNX file from ``imtrans export``) on the best loadable providers.

        ``providers`` names them (``"cpu"``, ``"cuda"``, ``"tensorrt,cuda"``, or
        onnxruntime's names); or ``device`` says ``auto``, ``cpu`` or ``cuda``
        (TensorRT and CUDA, whichever load) as the torch backend's option does.
        ``threads``: intra-op threads (default: the physical cores).
        """
        path = Path(path)
        check_onnx_file(path)
        if providers is None and device not in (None, "auto"):
            providers = providers_for_device(device)
        session = open_session(path, providers, threads)
        metadata = decode_metadata(session.get_modelmeta().custom_metadata_map)
        backend = cls(session, metadata, path)
        if backend._device == "cpu" and metadata.get("quantization", {}).get("outputs") == "float":
            warnings.warn(
                f"{path}: onnxruntime's CPU provider runs this int8 file's convolutions dequantized, slower "
                "than the fp32 export; translate it with --backend openvino, or export fp32 for onnxruntime",
                ImtransWarning,
                stacklevel=2,
            )
        return backend

    def run(self, x: np.ndarray) -> np.ndarray:
        """The graph as exported: its own input and output units (see ``metadata['input_layout']``)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        if self._device == "cpu":
            return self.session.run([self.output_name], {self.input_name: x})[0]
        import onnxruntime as ort

        # I/O binding: the input goes to the GPU once, the output stays there until the one copy back.
        binding = self.session.io_binding()
        binding.bind_ortvalue_input(self.input_name, ort.OrtValue.ortvalue_from_numpy(x, "cuda", 0))
        binding.bind_output(self.output_name, "cuda", 0)
        self.session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()[0]

    def __repr__(self) -> str:
        return (
            f"OnnxBackend({self.path}, {self.direction}, {self.precision}, "
            f"providers={','.join(self.providers)})"
        )
