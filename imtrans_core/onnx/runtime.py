"""Run an exported generator with onnxruntime: the ``onnx`` translation backend.

:class:`OnnxBackend` satisfies the translation engine's backend protocol: it has
``direction``, ``source``, ``target`` and ``orientation`` (read from the model's
metadata, see :mod:`imtrans_core.onnx.export`) and is called on a batch
``(N, C, H, W)`` float32 in [-1, 1] (C = 2 context + 1), returning the same shape in [-1, 1].

Providers are tried in the order TensorRT -> CUDA -> CPU, but only those that can
really load. ``onnxruntime-gpu`` lists CUDA and TensorRT as available on any
machine, then logs a load error at session creation and silently runs on the
CPU; so a GPU provider is asked for only when the CUDA driver finds a device and
the provider's library loads with all the libraries it needs, and the session's
``get_providers()`` is checked afterwards. On a machine without a GPU this is
quiet.

What the backend shares with the OpenVINO one (the metadata, the intensity
windows of a model exported ``--with-intensity``) is :class:`.exported.ExportedGenerator`.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ImtransError
from .exported import ExportedGenerator, check_onnx_file, decode_metadata, read_metadata

log = logging.getLogger("imtrans")

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"
PREFERENCE = (TENSORRT, CUDA, CPU)
_SHORT = {"cpu": CPU, "cuda": CUDA, "tensorrt": TENSORRT, "trt": TENSORRT}
_PROVIDER_LIBRARY = {
    CUDA: "libonnxruntime_providers_cuda.so",
    TENSORRT: "libonnxruntime_providers_tensorrt.so",
}

# TensorRT builds one engine per shape profile: slices from 32 x 32 to 1024 x 1024, batches up to 16.
TRT_PROFILE = {"min": (1, 1, 32, 32), "opt": (4, 1, 256, 256), "max": (16, 1, 1024, 1024)}


# ----------------------------------------------------------------------------- providers


def physical_cores() -> int:
    """Physical cores this process may run on (hyper-threads counted once); onnxruntime's best thread count."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return max(1, (os.cpu_count() or 2) // 2)
    cores = set()
    for cpu in cpus:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            cores.add(
                (
                    (topology / "physical_package_id").read_text().strip(),
                    (topology / "core_id").read_text().strip(),
                )
            )
        except OSError:
            cores.add(("cpu", str(cpu)))
    return max(1, len(cores))


@cache
def gpu_count() -> int:
    """CUDA devices the driver sees (0 without a driver); never initialises torch."""
    if "torch" in sys.modules:  # torch already loaded: its answer is authoritative and cheap
        torch = sys.modules["torch"]
        try:
            if torch.cuda.is_available():
                return int(torch.cuda.device_count())
        except Exception:
            pass
    try:
        driver = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return 0
    count = ctypes.c_int(0)
    try:
        if driver.cuInit(0) != 0 or driver.cuDeviceGetCount(ctypes.byref(count)) != 0:
            return 0
    except AttributeError:
        return 0
    return int(count.value)


@cache
def _library_loads(provider: str) -> bool:
    """Whether onnxruntime's library for ``provider`` finds every shared library it links against.

    dlopen resolves the needed libraries before any symbol, so a missing cuBLAS,
    cuDNN or TensorRT shows as 'cannot open shared object file'; an undefined
    symbol error comes later and means the dependencies were all found
    (onnxruntime resolves those symbols itself when it loads the provider).
    """
    import onnxruntime as ort

    if sys.platform != "linux":  # other systems: trust the session's get_providers() check
        return True
    library = Path(ort.__file__).parent / "capi" / _PROVIDER_LIBRARY[provider]
    if not library.is_file():
        return False
    try:
        ctypes.CDLL(str(library))
    except OSError as err:
        return "undefined symbol" in str(err)
    return True


def loadable_providers() -> list[str]:
    """The providers that can run here, best first (TensorRT, CUDA, CPU); always ends with the CPU."""
    import onnxruntime as ort

    listed = set(ort.get_available_providers())
    usable = []
    for provider in (TENSORRT, CUDA):
        if provider in listed and gpu_count() > 0 and _library_loads(provider):
            usable.append(provider)
    return [*usable, CPU]


def resolve_providers(requested: str | Sequence[str] | None) -> list[str]:
    """Provider names from a request: ``None`` (best loadable), ``"cpu"``, ``"cuda,cpu"``, full names...

    A GPU provider that was asked for by name but cannot load here is an error,
    not a silent fall-back.
    """
    usable = loadable_providers()
    if requested is None:
        return usable
    items = requested.split(",") if isinstance(requested, str) else list(requested)
    names = []
    for item in (i.strip() for i in items if i and i.strip()):
        name = _SHORT.get(item.lower(), item)
        if name not in PREFERENCE:
            raise ImtransError(
                f"provider '{item}': choose from cpu, cuda, tensorrt (or their onnxruntime names)"
            )
        if name not in usable:
            raise ImtransError(
                f"provider '{item}' cannot run here (usable: {', '.join(usable)}); a GPU provider needs an NVIDIA "
                "driver, the CUDA / cuDNN (and TensorRT) libraries onnxruntime-gpu was built for, and a GPU"
            )
        if name not in names:
            names.append(name)
    if CPU not in names:
        names.append(CPU)  # nodes a GPU provider cannot take run on the CPU
    return names


def providers_for_device(device: str) -> list[str]:
    """``cpu`` -> the CPU; ``cuda`` -> TensorRT and CUDA where they load (an error where neither does)."""
    if device == "cpu":
        return [CPU]
    if device != "cuda":
        raise ImtransError(f"--device {device}: choose auto, cpu or cuda")
    gpu = [p for p in loadable_providers() if p != CPU]
    if not gpu:
        raise ImtransError(
            "--device cuda: no GPU provider of onnxruntime can run here (needs onnxruntime-gpu, an "
            "NVIDIA driver with a GPU, and the CUDA / cuDNN libraries it was built for)"
        )
    return [*gpu, CPU]


def provider_options(provider: str, cache_dir: Path | None = None, fp16: bool = False) -> dict[str, Any]:
    """Tuned options: HEURISTIC cuDNN algorithm search for dynamic shapes; TensorRT profiles and an engine cache."""
    if provider == CUDA:
        return {"device_id": 0, "cudnn_conv_algo_search": "HEURISTIC", "do_copy_in_default_stream": True}
    if provider == TENSORRT:
        from ..data.slices import cache_root

        folder = cache_dir or cache_root() / "tensorrt"
        folder.mkdir(parents=True, exist_ok=True)
        shape = {k: "x:" + "x".join(str(d) for d in v) for k, v in TRT_PROFILE.items()}
        return {
            "device_id": 0,
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": str(folder),
            "trt_timing_cache_enable": True,
            "trt_timing_cache_path": str(folder),
            "trt_fp16_enable": fp16,
            "trt_profile_min_shapes": shape["min"],
            "trt_profile_opt_shapes": shape["opt"],
            "trt_profile_max_shapes": shape["max"],
        }
    return {}


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
        return cls(session, metadata, path)

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
