"""Run an exported generator with OpenVINO: the ``openvino`` translation backend, fastest on Intel CPUs.

The same ``.onnx`` file and metadata that onnxruntime runs (no conversion, no
second artifact): OpenVINO reads the ONNX graph and compiles it for the CPU in
a fraction of a second. Its CPU plugin runs convolutions in bf16 on CPUs with
AMX or AVX512-BF16 unless told otherwise, which is where its speed comes from
(``benchmarks/volume.py`` measures it); ``precision`` chooses: ``auto``
(OpenVINO's choice for this CPU), ``bf16`` (warned and run as ``f32`` on a CPU without bf16
units, as torch's ``--amp bf16``) or ``f32`` (the exported numbers, to
float rounding). Threads default to the physical cores, as for the other
backends. The model is compiled for throughput: OpenVINO splits the threads
into streams (two on a two-core machine), and each batch of slices is split
among as many requests, run at once, which kept two cores busier than one
request over both threads did.

Every OpenVINO call runs on one thread of its own, with every signal blocked
there. Why: compiling a model installs an alternate signal stack on the calling
thread, and releasing compiled models in another order than they were made
(OpenVINO 2026.4) puts back a stack it has already freed. The next signal
that thread handles (a DataLoader worker's SIGCHLD, Ctrl-C) is delivered onto
unmapped memory and the kernel kills the process: the test suite died that
way when a long-lived process translated with OpenVINO and then trained.
Confined to a thread that takes no signal, OpenVINO cannot touch the main
thread's signal stack (a test in ``tests/test_export.py``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ..choices import OPENVINO_PRECISIONS
from ..cpu import cpu_has_fast_bf16, say_no_bf16_units
from ..errors import ImtransError
from .exported import ExportedGenerator, check_onnx_file, decode_metadata
from .providers import physical_cores

_THREAD: list[ThreadPoolExecutor] = []  # the one thread that calls OpenVINO, made on first use
_THREAD_ID: list[int] = []


def _start_thread() -> None:
    if hasattr(signal, "pthread_sigmask"):  # POSIX; Windows has no signal stacks to protect
        signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    _THREAD_ID.append(threading.get_ident())


def on_openvino_thread(function: Any, *args: Any) -> Any:
    """``function(*args)`` run on the OpenVINO thread (see the module's docstring), its result or error."""
    if _THREAD_ID and threading.get_ident() == _THREAD_ID[0]:  # already there (a collection run on it)
        return function(*args)
    if not _THREAD:
        _THREAD.append(ThreadPoolExecutor(1, thread_name_prefix="openvino", initializer=_start_thread))
    return _THREAD[0].submit(function, *args).result()


def metadata_of(model: Any) -> dict[str, Any]:
    """The imtrans metadata of an ONNX file as OpenVINO read it (its ``metadata_props``, kept in the
    model's ``framework`` runtime info): the same as ``read_metadata`` without parsing the file twice."""
    info = model.get_rt_info()
    keys = list(info["framework"].keys()) if "framework" in info else []
    return decode_metadata({key: model.get_rt_info(["framework", key]).astype(str) for key in keys})


def available() -> bool:
    """Whether OpenVINO is installed (without importing it)."""
    return importlib.util.find_spec("openvino") is not None


class OpenVinoBackend(ExportedGenerator):
    """An exported generator compiled by OpenVINO for the CPU; ``precision`` and ``threads`` as it ran."""

    def __init__(self, compiled: Any, metadata: dict[str, Any], path: Path | None = None):
        super().__init__(metadata, path)
        self._compiled = [compiled]  # emptied on the OpenVINO thread, so that OpenVINO releases it there
        self.runs_in: str = on_openvino_thread(
            lambda: compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()  # bf16, f32
        )
        self.threads = int(on_openvino_thread(compiled.get_property, "INFERENCE_NUM_THREADS"))
        count = int(on_openvino_thread(compiled.get_property, "OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        self._requests = on_openvino_thread(lambda: [compiled.create_infer_request() for _ in range(count)])

    @classmethod
    def from_file(
        cls, path: str | Path, precision: str = "auto", threads: int | None = None
    ) -> OpenVinoBackend:
        """Read and compile ``path`` (an ONNX file from ``imtrans export``) for the CPU."""
        if precision not in OPENVINO_PRECISIONS:
            raise ImtransError(f"--precision {precision}: choose {', '.join(OPENVINO_PRECISIONS)}")
        path = Path(path)
        check_onnx_file(path)
        try:
            import openvino as ov
        except ImportError as exc:
            raise ImtransError(
                f"openvino backend not available ({exc}) — pip install openvino, or use --backend onnx"
            ) from exc
        config: dict[str, Any] = {
            "INFERENCE_NUM_THREADS": threads or physical_cores(),
            "PERFORMANCE_HINT": "THROUGHPUT",
        }
        if precision == "bf16" and not cpu_has_fast_bf16():  # the rule torch's --amp follows too
            say_no_bf16_units("--precision bf16")
            precision = "f32"
        if precision != "auto":
            config["INFERENCE_PRECISION_HINT"] = precision

        def compile_model() -> tuple[dict[str, Any], Any]:
            core = ov.Core()
            model = core.read_model(str(path))
            return metadata_of(model), core.compile_model(model, "CPU", config)

        try:
            metadata, compiled = on_openvino_thread(compile_model)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise ImtransError(f"{path}: OpenVINO cannot compile it ({first}) — try --backend onnx") from exc
        return cls(compiled, metadata, path)

    def run(self, x: np.ndarray) -> np.ndarray:
        """The graph as exported: its own input and output units (see ``metadata['input_layout']``)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        return on_openvino_thread(self._run_split, x)

    def _run_split(self, x: np.ndarray) -> np.ndarray:
        """The batch split among the infer requests (one per stream), all started, then gathered in order."""
        parts = np.array_split(x, max(1, min(len(self._requests), len(x))))
        requests = self._requests[: len(parts)]
        for request, part in zip(requests, parts, strict=True):
            request.start_async({0: np.ascontiguousarray(part)})
        for request in requests:
            request.wait()
        return np.concatenate([np.array(r.get_output_tensor(0).data, dtype=np.float32) for r in requests])

    def close(self) -> None:
        """Release the compiled model on the OpenVINO thread (also done when the backend is collected)."""
        if getattr(self, "_compiled", None) and _THREAD:
            with contextlib.suppress(RuntimeError):  # at exit the pool refuses work; the process ends
                on_openvino_thread(self._release)

    def _release(self) -> None:
        """Drop the requests, then the compiled model, so that OpenVINO frees them (on its thread)."""
        getattr(self, "_requests", []).clear()
        self._compiled.clear()

    def __del__(self) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"OpenVinoBackend({self.path}, {self.direction}, {self.runs_in}, "
            f"{self.threads} threads in {len(self._requests)} streams)"
        )
