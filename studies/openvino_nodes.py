"""Where does OpenVINO spend a slice's time, node type by node type, and how near the machine's limit
do its convolutions run?

Question. The int8 export under OpenVINO is the fastest path within the accuracy budget on every CPU
class measured (docs/benchmarks.md), yet short of issue #37's 2.5x torch fp32 on an AVX2 CPU
emulated on the Xeon. Is the time in the int8 convolutions, and do they run near what the CPU can
do, or is it elsewhere (normalisations, Pads, the convolutions kept in float)?

Method. The fp32 graph of a trained generator as the export writes it, and its int8 export, each
compiled by OpenVINO at its own precision (f32 under ``--cap avx2``) with per-node counters on; a
batch of eight slices of the held-out volume, run five times after a warm-up on one request with
all threads, the median time of each node. Nodes are summed by type and kernel. A convolution's
multiply-adds come from the graph's shapes as OpenVINO works them out (each convolution by its
node name; the transposed ones in graph order); their rate is set beside the GEMM rates of ``benchmarks/peak.py``
measured in the same process on the same threads (under the AVX2 cap the int8 GEMM, which torch
runs, is slower than what OpenVINO's kernels reach, so both ratios are given; bf16, emulated there,
is not measured).

    python studies/openvino_nodes.py --model runs/paper-sup --int8 runs/paper-sup-int8.onnx [--cap avx2]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from machine import describe_machine, int8_study_parser, print_table, results_path, run_capped, write_json  # noqa: E402
from peak import peaks  # noqa: E402

from imtrans_core.onnx.providers import physical_cores  # noqa: E402

BATCH = 8
RUNS = 5
TRANSPOSED = ("ConvolutionBackpropData", "Deconvolution")


def precision_of(kernel: str) -> str:
    """int8, bf16 or fp32, from an OpenVINO kernel name (``jit_avx2_I8``, ``brgconv_avx512_amx_bf16``)."""
    name = kernel.lower()
    return "int8" if name.endswith(("_i8", "_u8")) else "bf16" if name.endswith("_bf16") else "fp32"


def multiply_adds(path: Path, batch: int) -> tuple[dict[str, int], list[int]]:
    """Multiply-adds of each convolution of the graph by OpenVINO's node name, and of each transposed
    one in graph order, for ``batch`` slices of 256 x 256 (OpenVINO works the sizes out)."""
    import openvino as ov

    model = ov.Core().read_model(str(path))
    model.reshape({0: [batch, 1, 256, 256]})
    convs, transposed = {}, []
    for op in model.get_ordered_ops():
        if op.get_type_name() == "Convolution":
            _, cin, kh, kw = op.input_value(1).get_shape()
            convs[op.get_friendly_name()] = int(np.prod(op.get_output_shape(0))) * cin * kh * kw
        elif op.get_type_name() in TRANSPOSED:
            _, cout, kh, kw = op.input_value(1).get_shape()
            transposed.append(int(np.prod(op.input_value(0).get_shape())) * cout * kh * kw)
    return convs, transposed


def profile(path: Path, batch: np.ndarray, capped: bool) -> list[dict]:
    """Each node OpenVINO ran, in order: its name, type, kernel and median ms per slice."""
    import openvino as ov

    config = {"PERF_COUNT": "YES", "PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": physical_cores()}
    config |= {"INFERENCE_PRECISION_HINT": "f32"} if capped else {}
    core = ov.Core()
    request = core.compile_model(core.read_model(str(path)), "CPU", config).create_infer_request()
    request.infer({0: batch})  # warm-up
    times: dict[str, list] = {}
    for _ in range(RUNS):
        request.infer({0: batch})
        for node in request.profiling_info:
            entry = times.setdefault(node.node_name, [node.node_type, node.exec_type, []])
            entry[2].append(node.real_time.total_seconds() * 1000 / len(batch))
    return [
        {"node": name, "type": kind, "kernel": kernel, "ms": statistics.median(ms)}
        for name, (kind, kernel, ms) in times.items()
    ]


def by_kind(nodes: list[dict], convs: dict[str, int], transposed: list[int], batch: int) -> list[dict]:
    """The nodes summed by type and kernel: ms per slice, share, and for convolutions GMAC per slice."""
    later = iter(transposed)
    rows: dict[tuple[str, str], dict] = {}
    total = sum(n["ms"] for n in nodes)
    for node in nodes:
        gmac = convs.get(node["node"], 0) if node["type"] == "Convolution" else 0
        gmac = next(later, 0) if node["type"] in TRANSPOSED else gmac  # in order, idle ones too
        if node["ms"] <= 0:  # folded away or not run: no row
            continue
        row = rows.setdefault((node["type"], node["kernel"]), {"ms": 0.0, "gmac": 0.0, "nodes": 0})
        row["ms"] += node["ms"]
        row["nodes"] += 1
        row["gmac"] += gmac / batch / 1e9
    return [
        {"type": kind, "kernel": kernel, "precision": precision_of(kernel), **row, "share": row["ms"] / total}
        for (kind, kernel), row in sorted(rows.items(), key=lambda item: -item[1]["ms"])
    ]


def main() -> None:
    args = int8_study_parser(__doc__, "openvino_nodes").parse_args()
    cap = run_capped(args.cap)
    from imtrans_core.inference.models import load_generator
    from imtrans_core.onnx.export import export_graph
    from imtrans_core.onnx.graph import WINDOWS
    from imtrans_core.onnx.rewrite import for_export
    from imtrans_core.onnx.sample_data import sample_data

    out = args.out or results_path("openvino_nodes", args.cap, ROOT / "docs" / "results")
    tg = load_generator(args.model, "mr2ct", device="cpu")
    volume = sample_data(tg.config["data"], "mr", tg.orientation).volume
    stack = np.ascontiguousarray(WINDOWS["mr"].forward(volume)[:, None], dtype=np.float32)
    batch = stack[len(stack) // 2 - BATCH // 2 :][:BATCH]
    rates = peaks(physical_cores(), ("fp32", "int8") if args.cap else ("fp32", "bf16", "int8"))
    graphs = {}
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        export_graph(for_export(tg.net), fp32)
        for name, path in {"fp32 export": fp32, "int8 export": args.int8}.items():
            rows = by_kind(profile(path, batch, bool(args.cap)), *multiply_adds(path, BATCH), BATCH)
            for row in rows:
                if row["gmac"]:
                    row["gop_per_s"] = 2 * row["gmac"] / (row["ms"] / 1000)
                    row["vs_fp32_gemm"] = row["gop_per_s"] / rates["fp32"]
                    row["vs_own_gemm"] = row["gop_per_s"] / rates[row["precision"]]
            mapped = sum(r["gmac"] for r in rows)
            graphs[name] = {"ms_per_slice": sum(r["ms"] for r in rows), "gmac_found": mapped, "kinds": rows}
            print_table(f"{name}: OpenVINO per slice by node type", rows[:12])
    write_json(
        out,
        {
            "study": "openvino_nodes",
            "model": str(args.model),
            "int8": str(args.int8),
            "cap": cap or None,
            "batch": BATCH,
            "gemm_rates": rates,
            "graphs": graphs,
            "machine": describe_machine(),
        },
    )


if __name__ == "__main__":
    main()
