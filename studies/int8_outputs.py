"""What do the export's four graph choices buy: convolution outputs left in float in the int8 graph,
inputs rounded before the reflection Pads, transposed convolutions left in float, and the last
convolution split into rows and columns?

Question. onnxruntime's static QDQ quantization rounds each convolution's output to uint8 as well
as its input, by default; the int8 export leaves the outputs in float (``to_int8``), as OpenVINO
and TensorRT run int8 convolutions; it rounds a convolution's input before the reflection Pad
that feeds it, where onnxruntime rounds after (the same numbers); it leaves the transposed
convolutions in float, where onnxruntime would quantize them. And the export splits a
convolution with few output channels (the generator's last, 64 -> 1 over 7 x 7) into a 1 x k and
a one-hot k x 1 convolution (``imtrans_core.onnx.rewrite``). What does each change in error and speed?

Method. Seven graphs of one trained generator: fp32 with the last convolution whole or split,
and int8 (split): outputs rounded and inputs rounded after the Pads (onnxruntime's form), outputs
in float with inputs rounded after or before the Pads (the export's form), and the export's form
with the transposed convolutions quantized too, their inputs rounded to uint8 as every other
convolution's or to int8 about zero (a symmetric range, no zero point), all quantized like the
given int8 export (the convolutions it keeps in fp32, its calibration percentile, calibrated on
the run's data as the export calibrates). Each int8 graph's error against torch fp32 in HU over
the held-out volume, in the body (as ``benchmarks/inference.py``), computed by onnxruntime; each
graph's time per slice (batches of eight slices of that volume, interleaved rounds) under
OpenVINO at its own precision and under onnxruntime. A speed is the median over rounds of its
ratio to the whole-convolution fp32 graph's on the same runtime in the same round (the VM's
speed drifts between rounds). Which kernel OpenVINO runs each transposed convolution with, and
its time, come from OpenVINO's per-node counters (``kernels`` in the JSON). ``--cap avx2`` runs
OpenVINO in f32 under the AVX2 cap (``studies/avx2_paths.py`` says how) and leaves onnxruntime
out (its kernels cannot be capped).

    python studies/int8_outputs.py --model runs/paper-sup --int8 runs/paper-sup-int8.onnx [--cap avx2]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from inference import hu_errors  # noqa: E402
from machine import describe_machine, int8_study_parser, print_table, results_path, run_capped, write_json  # noqa: E402

GRAPHS = (
    "fp32, last convolution whole",
    "fp32, split",
    "int8, outputs rounded, Pad then rounding",
    "int8, outputs float, Pad then rounding",
    "int8, outputs float, rounding then Pad",
    "int8, transposed too, uint8 inputs",
    "int8, transposed too, int8 inputs",
)
BATCH = 8


def make_graphs(model: Path, int8: Path, work: Path) -> tuple[dict[str, Path], np.ndarray, object]:
    """The graphs under ``work``, the held-out volume's slices and the torch network."""
    from imtrans_core.inference.models import load_generator
    from imtrans_core.onnx.export import export_graph, write_metadata
    from imtrans_core.onnx.exported import read_metadata
    from imtrans_core.onnx.graph import WINDOWS
    from imtrans_core.onnx.quantize import INT8_OPERATORS, to_int8
    from imtrans_core.onnx.rewrite import for_export
    from imtrans_core.onnx.sample_data import sample_data

    tg = load_generator(model, "mr2ct", device="cpu")
    plan = read_metadata(int8)["quantization"]
    if plan.get("calibration") != "percentile" or plan.get("outputs") != "float":
        sys.exit(
            f"{int8}: not a percentile-calibrated export with float outputs (its fp32 names would not match)"
        )
    files = {name: work / f"{i}.onnx" for i, name in enumerate(GRAPHS)}
    export_graph(tg.net, files[GRAPHS[0]])
    export_graph(for_export(tg.net), files[GRAPHS[1]])
    data = sample_data(tg.config["data"], "mr", tg.orientation)
    batches = [
        np.ascontiguousarray(WINDOWS["mr"].forward(s[None]), dtype=np.float32) for s in data.calibration
    ]
    forms = {GRAPHS[2]: (True, False), GRAPHS[3]: (False, False), GRAPHS[4]: (False, True)}
    forms |= {GRAPHS[5]: (False, True), GRAPHS[6]: (False, True)}
    for name, (rounded, before_pads) in forms.items():
        operators = (*INT8_OPERATORS, "ConvTranspose") if "transposed" in name else INT8_OPERATORS
        to_int8(
            files[GRAPHS[1]], files[name], batches, "percentile", plan["percentile"],
            keep_float=plan["fp32_convolutions"], round_outputs=rounded, before_pads=before_pads,
            operators=operators,
        )  # fmt: skip
    symmetric_transposed_inputs(files[GRAPHS[6]])
    metadata = read_metadata(int8)  # what the backends read: the direction, windows, orientation
    for name, path in files.items():
        outputs = "uint8" if name == GRAPHS[2] else "float"
        precision = (
            {"precision": "int8", "quantization": {**plan, "outputs": outputs}} if "int8" in name else {}
        )
        write_metadata(
            path,
            {**{k: v for k, v in metadata.items() if k != "quantization"}, "precision": "fp32", **precision},
        )
    stack = np.ascontiguousarray(WINDOWS["mr"].forward(data.volume)[:, None], dtype=np.float32)
    return files, stack, tg.net.eval()


def symmetric_transposed_inputs(path: Path) -> None:
    """Round each transposed convolution's input to int8 about zero: the uint8 range it was calibrated
    to, widened to be symmetric (the larger of its ends), with no zero point."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    made_by = {out: node for node in model.graph.node for out in node.output}
    stored = {tensor.name: tensor for tensor in model.graph.initializer}
    for node in model.graph.node:
        rounding = made_by.get(node.input[0])
        if node.op_type != "ConvTranspose" or getattr(rounding, "op_type", "") != "DequantizeLinear":
            continue
        scale, zero = rounding.input[1:3]  # shared with its QuantizeLinear
        quantized = rounding.input[0]
        kept = [v for v in model.graph.value_info if v.name != quantized]  # its type changes to int8
        del model.graph.value_info[:]
        model.graph.value_info.extend(kept)
        s, z = (float(numpy_helper.to_array(stored[name])) for name in (scale, zero))
        reach = max(z * s, (255 - z) * s)
        stored[scale].CopyFrom(numpy_helper.from_array(np.array(reach / 127, np.float32), scale))
        stored[zero].CopyFrom(numpy_helper.from_array(np.array(0, np.int8), zero))
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def kernels(files: dict[str, Path], batch: np.ndarray, capped: bool) -> dict[str, list[list]]:
    """Each graph's transposed convolutions under OpenVINO, in the order they run: [kernel, ms per
    slice] from its per-node counters (``openvino_nodes.profile``)."""
    from openvino_nodes import TRANSPOSED, profile

    return {
        name: [
            [n["kernel"], round(n["ms"], 2)] for n in profile(path, batch, capped) if n["type"] in TRANSPOSED
        ]
        for name, path in files.items()
    }


def runners(files: dict[str, Path], capped: bool) -> dict[str, object]:
    """Each graph's callable by path name: OpenVINO (f32 when capped) and, uncapped, onnxruntime."""
    import warnings

    from imtrans_core.onnx.openvino import OpenVinoBackend
    from imtrans_core.onnx.runtime import OnnxBackend

    paths = {
        f"openvino, {n}": OpenVinoBackend.from_file(f, "f32" if capped else "auto") for n, f in files.items()
    }
    if not capped:
        with warnings.catch_warnings():  # the warning that onnxruntime runs float outputs dequantized
            warnings.simplefilter("ignore")
            paths |= {f"onnxruntime, {n}": OnnxBackend.from_file(f, device="cpu") for n, f in files.items()}
    return paths


def timed(paths: dict[str, object], slices: np.ndarray, rounds: int) -> dict[str, list[float]]:
    """Milliseconds per slice of each path over ``slices``, in interleaved rounds after one warm-up."""
    times: dict[str, list[float]] = {name: [] for name in paths}
    for round_ in range(rounds + 1):
        for name, run in paths.items():
            start = time.perf_counter()
            run.run(slices)
            if round_:
                times[name].append((time.perf_counter() - start) * 1000 / len(slices))
    return times


def main() -> None:
    parser = int8_study_parser(__doc__, "int8_outputs")
    parser.add_argument("--rounds", type=int, default=31)
    args = parser.parse_args()
    cap = run_capped(args.cap)
    import torch

    from imtrans_core.onnx.exported import read_metadata
    from imtrans_core.onnx.graph import INPUT_NAME
    from imtrans_core.onnx.runtime import open_session

    out = args.out or results_path("int8_outputs", args.cap, ROOT / "docs" / "results")
    with tempfile.TemporaryDirectory() as tmp:
        files, stack, net = make_graphs(args.model, args.int8, Path(tmp))
        with torch.inference_mode():
            outputs = {"torch fp32": net(torch.from_numpy(stack)).numpy()}
        for name in GRAPHS[2:]:  # by onnxruntime, whose QDQ arithmetic is the graph's, on any CPU
            session = open_session(files[name], providers="cpu")
            outputs[name] = np.concatenate(
                [
                    session.run(None, {INPUT_NAME: stack[i : i + BATCH]})[0]
                    for i in range(0, len(stack), BATCH)
                ]
            )
        errors = hu_errors(outputs, stack)
        middle = stack[len(stack) // 2 - BATCH // 2 :][:BATCH]
        found = kernels({name: files[name] for name in GRAPHS[2:]}, middle, bool(args.cap))
        times = timed(runners(files, bool(args.cap)), middle, args.rounds)
    rows = []
    for name, measured in times.items():
        runtime, graph = name.split(", ", 1)
        base = times[f"{runtime}, {GRAPHS[0]}"]  # per round: the VM's speed drifts between rounds
        row = {"path": name, "ms_per_slice": round(statistics.median(measured), 1)}
        row["vs_fp32_whole"] = round(statistics.median(b / t for b, t in zip(base, measured, strict=True)), 2)
        row |= {k: round(v, 3) for k, v in errors.get(graph, {}).items()}
        rows.append(row)
    print_table("int8 graph forms and the split last convolution, per slice", rows)
    for name, nodes in found.items():
        print(f"{name}: transposed convolutions under OpenVINO {nodes}")
    plan = read_metadata(args.int8)["quantization"]
    write_json(
        out,
        {
            "study": "int8_outputs",
            "model": str(args.model),
            "int8": str(args.int8),
            "cap": cap or None,
            "fp32_convolutions": plan["fp32_convolutions"],
            "percentile": plan["percentile"],
            "rounds": args.rounds,
            "rows": rows,
            "kernels": found,
            "times_ms": times,
            "machine": describe_machine(),
        },
    )


if __name__ == "__main__":
    main()
