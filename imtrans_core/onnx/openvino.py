"""Run an exported generator with OpenVINO: the ``openvino`` translation backend, fastest on Intel CPUs.

The same ``.onnx`` file and metadata that onnxruntime runs (no conversion, no
second artifact): OpenVINO reads the ONNX graph and compiles it for the CPU in
a fraction of a second. Its CPU plugin runs convolutions in bf16 on CPUs with
AMX or AVX512-BF16 unless told otherwise, which is where its speed comes from
(``benchmarks/volume.py`` measures it); ``precision`` chooses: ``auto`` (OpenVINO's choice for this CPU), ``bf16`` or ``f32`` (the
exported numbers, to float rounding). Threads default to the physical cores,
as for the other backends.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ImtransError
from .exported import ExportedGenerator, check_onnx_file, read_metadata
from .providers import physical_cores

PRECISIONS = ("auto", "bf16", "f32")


def available() -> bool:
    """Whether OpenVINO is installed (without importing it)."""
    return importlib.util.find_spec("openvino") is not None


class OpenVinoBackend(ExportedGenerator):
    """An exported generator compiled by OpenVINO for the CPU; ``precision`` and ``threads`` as it ran."""

    def __init__(self, compiled: Any, metadata: dict[str, Any], path: Path | None = None):
        super().__init__(metadata, path)
        self.compiled = compiled
        self.runs_in: str = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()  # bf16, f32
        self.threads = int(compiled.get_property("INFERENCE_NUM_THREADS"))

    @classmethod
    def from_file(
        cls, path: str | Path, precision: str = "auto", threads: int | None = None
    ) -> OpenVinoBackend:
        """Read and compile ``path`` (an ONNX file from ``imtrans export``) for the CPU."""
        if precision not in PRECISIONS:
            raise ImtransError(f"--precision {precision}: choose {', '.join(PRECISIONS)}")
        path = Path(path)
        check_onnx_file(path)
        metadata = read_metadata(path)
        try:
            import openvino as ov
        except ImportError as exc:
            raise ImtransError(
                f'openvino backend not available ({exc}) — pip install "imtrans[openvino]", or use --backend onnx'
            ) from exc
        config: dict[str, Any] = {"INFERENCE_NUM_THREADS": threads or physical_cores()}
        if precision != "auto":
            config["INFERENCE_PRECISION_HINT"] = precision
        core = ov.Core()
        try:
            compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise ImtransError(f"{path}: OpenVINO cannot compile it ({first}) — try --backend onnx") from exc
        return cls(compiled, metadata, path)

    def run(self, x: np.ndarray) -> np.ndarray:
        """The graph as exported: its own input and output units (see ``metadata['input_layout']``)."""
        return np.asarray(self.compiled(np.ascontiguousarray(x, dtype=np.float32))[0], dtype=np.float32)

    def __repr__(self) -> str:
        return f"OpenVinoBackend({self.path}, {self.direction}, {self.runs_in}, {self.threads} threads)"
