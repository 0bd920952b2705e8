"""What this machine can run an ONNX file on: its physical cores and the onnxruntime execution
providers that really load (TensorRT -> CUDA -> CPU).

``onnxruntime-gpu`` lists CUDA and TensorRT as available on any machine, then logs a load error at
session creation and silently runs on the CPU; so a GPU provider is offered only when the CUDA
driver finds a device and the provider's library loads with all the libraries it needs. On a
machine without a GPU this is quiet.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from ..cache import cache_root
from ..errors import ImtransError

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
