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
into streams (two on a two-core machine), and each slice of a batch is a
request of its own, taken in turn by one request per stream. Compiled models are kept in the
imtrans cache (``openvino/``), so a second run of a file loads rather than
compiles it.

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
import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ..cache import cache_root
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


def _compiled_models_cache() -> dict[str, str]:
    """OpenVINO's ``CACHE_DIR`` under the imtrans cache, where that folder can be written: a later
    run of the same file, precision and threads loads the compiled model instead of compiling it."""
    folder = cache_root() / "openvino"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return {}
    return {"CACHE_DIR": str(folder)} if os.access(folder, os.W_OK) else {}


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
        self.streams = int(on_openvino_thread(compiled.get_property, "OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        self._requests = on_openvino_thread(
            lambda: [compiled.create_infer_request() for _ in range(self.streams)]
        )

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
            **_compiled_models_cache(),
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
        return on_openvino_thread(self._run_queued, x)

    def _run_queued(self, x: np.ndarray) -> np.ndarray:
        """Each slice a request of its own, taken in turn by the streams' requests, gathered in order.

        One slice per request keeps its activations in cache, and a request takes the next slice as
        soon as its last one is collected rather than waiting for the other's share of the batch
        (``studies/openvino_requests.py`` measures it against one part of the batch per stream).
        Plain requests, not OpenVINO's ``AsyncInferQueue``: releasing a queue whose callback is Python
        could hang the OpenVINO thread.
        """
        count, outputs = len(self._requests), []
        for index in range(len(x) + count):
            request = self._requests[index % count]
            if index >= count:  # it ran slice index - count: collect that first
                request.wait()
                outputs.append(np.array(request.get_output_tensor(0).data, dtype=np.float32))
            if index < len(x):
                request.start_async({0: x[index : index + 1]})
        return np.concatenate(outputs)

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
            f"{self.threads} threads in {self.streams} streams)"
        )
