"""How should OpenVINO run a batch of slices, and what does its compiled-model cache save?

The backend compiles for throughput: on two cores, two streams of one thread. Until now each
batch of ``translate`` (8 slices) was split in two, one part per stream, both started, both
waited for (``split``). This study times that against each slice a request of its own, taken
in turn by one request per stream (``queued``, what
:class:`~imtrans_core.onnx.openvino.OpenVinoBackend` does now), and against one stream over
both threads taking the batch whole (``latency``): 38 slices of 256 x 256
in batches of 8, as ``translate`` feeds them, interleaved rounds after a warm-up, medians; the
outputs of all three are compared. It also times compiling each file against loading it from
OpenVINO's cache (``CACHE_DIR``).

    python studies/openvino_requests.py --fp32 runs/paper-sup.onnx --int8 runs/paper-sup-int8.onnx
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from machine import describe_machine, print_table, write_json  # noqa: E402

from imtrans_core.cpu import cpu_class  # noqa: E402
from imtrans_core.onnx.openvino import OpenVinoBackend  # noqa: E402
from imtrans_core.onnx.providers import physical_cores  # noqa: E402

SLICES, BATCH, SIZE = 38, 8, 256


def compiled(path: Path, hint: str, cache: str | None = None) -> Any:
    import openvino as ov

    config: dict[str, Any] = {"INFERENCE_NUM_THREADS": physical_cores(), "PERFORMANCE_HINT": hint}
    if cache:
        config["CACHE_DIR"] = cache
    core = ov.Core()
    return core.compile_model(core.read_model(str(path)), "CPU", config)


def split_runner(model: Any) -> Callable[[np.ndarray], np.ndarray]:
    """The batch split among one request per stream, all started, then all waited for."""
    count = int(model.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
    requests = [model.create_infer_request() for _ in range(count)]

    def run(batch: np.ndarray) -> np.ndarray:
        parts = np.array_split(batch, min(count, len(batch)))
        for request, part in zip(requests, parts, strict=False):
            request.start_async({0: np.ascontiguousarray(part)})
        for request in requests[: len(parts)]:
            request.wait()
        return np.concatenate([np.array(r.get_output_tensor(0).data) for r in requests[: len(parts)]])

    return run


def volume_time(run: Callable[[np.ndarray], np.ndarray], slices: np.ndarray) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    out = np.concatenate([run(slices[i : i + BATCH]) for i in range(0, len(slices), BATCH)])
    return time.perf_counter() - start, out


def schedules(path: Path, slices: np.ndarray, rounds: int) -> list[dict[str, Any]]:
    """The three schedules on one file: median seconds for the volume, and the outputs' largest difference."""
    runners = {
        "split": split_runner(compiled(path, "THROUGHPUT")),
        "queued": OpenVinoBackend.from_file(path).run,
        "latency": split_runner(compiled(path, "LATENCY")),
    }
    outputs = {name: volume_time(run, slices)[1] for name, run in runners.items()}  # warm-up
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            times[name].append(volume_time(run, slices)[0])
    base = statistics.median(times["split"])
    return [
        {
            "file": path.name,
            "variant": name,
            "seconds": round(statistics.median(t), 2),
            "vs_split": round(base / statistics.median(t), 2),
            "max_diff": float(np.abs(outputs[name] - outputs["split"]).max()),
            "times": [round(x, 3) for x in t],
        }
        for name, t in times.items()
    ]


def compile_times(path: Path, rounds: int) -> dict[str, Any]:
    """Seconds to compile ``path`` without a cache, and to load it from a filled one (medians)."""
    with tempfile.TemporaryDirectory() as cache:
        compiled(path, "THROUGHPUT", cache)  # fills the cache
        fresh, cached = [], []
        for _ in range(rounds):
            for target, folder in ((fresh, None), (cached, cache)):
                start = time.perf_counter()
                compiled(path, "THROUGHPUT", folder)
                target.append(time.perf_counter() - start)
    return {
        "file": path.name,
        "compile_s": statistics.median(fresh),
        "from_cache_s": statistics.median(cached),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--fp32", type=Path, required=True, help="an fp32 export (OpenVINO runs it in bf16 on AMX)"
    )
    parser.add_argument("--int8", type=Path, required=True, help="an int8 export of the same run")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, help="default: docs/results/openvino_requests-CLASS.json")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    slices = np.clip(rng.normal(-0.3, 0.5, (SLICES, 1, SIZE, SIZE)), -1, 1).astype(np.float32)
    rows = [row for path in (args.fp32, args.int8) for row in schedules(path, slices, args.rounds)]
    shown = [{k: v for k, v in row.items() if k != "times"} for row in rows]
    print_table(f"OpenVINO, {SLICES} slices of {SIZE} x {SIZE} in batches of {BATCH}", shown)
    loading = [compile_times(path, args.rounds) for path in (args.fp32, args.int8)]
    for row in loading:
        print(
            f"{row['file']}: compiled in {row['compile_s']:.2f} s, loaded from the cache in {row['from_cache_s']:.2f} s"
        )
    out = args.json or ROOT / "docs" / "results" / f"openvino_requests-{cpu_class()}.json"
    write_json(
        out, {"study": "openvino_requests", "rows": rows, "compile": loading, "machine": describe_machine()}
    )


if __name__ == "__main__":
    main()
