"""fp16 and int8 variants of an exported fp32 graph: the precision conversions, apart from export and checks.

``fp16`` converts weights and activations to half precision except
InstanceNormalization (kept in fp32: its fp16 kernels have a history of wrong
results); inputs and outputs stay float32. ``int8`` is onnxruntime's static QDQ
quantization of the convolutions' inputs (per tensor) and weights (per channel),
calibrated on slices of the source modality (:mod:`imtrans_core.onnx.sample_data`).
Their outputs stay float, as OpenVINO and TensorRT run int8 convolutions, and
their inputs are rounded before the reflection Pads that feed them. Transposed
convolutions stay float (:data:`INT8_OPERATORS` says why). Which convolutions
stay in fp32 the export leaves to :mod:`imtrans_core.onnx.sensitivity`."""

from __future__ import annotations

import functools
import inspect
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..choices import CALIBRATIONS
from ..errors import ImtransError
from .graph import INPUT_NAME, quiet

#: what the int8 export quantizes. Not ConvTranspose: OpenVINO runs one whose rounded input has a
#: zero point in float, and where it runs one in int8 the gain is small against the error it adds
#: (docs/benchmarks.md, the exported graph's form, measures both)
INT8_OPERATORS = ("Conv",)


def to_fp16(src: Path, dst: Path) -> None:
    """Half-precision weights and activations, InstanceNormalization kept in fp32, float32 I/O."""
    import onnx
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    model = convert_float_to_float16(
        onnx.load(str(src)),
        keep_io_types=True,
        op_block_list=[*DEFAULT_OP_BLOCK_LIST, "InstanceNormalization"],
    )
    _tidy(model)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))


def _tidy(model: Any) -> None:
    """Repair what ``convert_float_to_float16`` leaves behind: duplicate Cast nodes, unsorted nodes.

    A weight shared by several blocked nodes (one InstanceNormalization scale
    used by every block) gets an identical Cast per consumer, and the input
    casts are appended last; onnxruntime rejects both.
    """
    graph = model.graph
    seen: set[tuple[str, tuple[str, ...]]] = set()
    nodes = []
    for node in graph.node:
        key = (node.name, tuple(node.output))
        if key not in seen:
            seen.add(key)
            nodes.append(node)
    ready = {v.name for v in graph.input} | {t.name for t in graph.initializer} | {""}
    ordered = []
    while nodes:
        waiting = []
        for node in nodes:
            if all(name in ready for name in node.input):
                ordered.append(node)
                ready.update(node.output)
            else:
                waiting.append(node)
        if len(waiting) == len(nodes):
            raise ImtransError(
                "fp16 conversion produced a graph with a cycle or a missing input; export fp32"
            )
        nodes = waiting
    del graph.node[:]
    graph.node.extend(ordered)


def to_int8(
    src: Path,
    dst: Path,
    batches: list[np.ndarray],
    method: str = "percentile",
    percentile: float = 99.999,
    keep_float: Sequence[str] = (),
    only: Sequence[str] | None = None,
    ranges: Path | None = None,
    round_outputs: bool = False,
    before_pads: bool = True,
    operators: Sequence[str] = INT8_OPERATORS,
) -> None:
    """Static QDQ quantization of the convolutions' inputs (u8) and weights (s8 per channel), calibrated
    on ``batches``. Their outputs stay float: rounded to uint8 too, right before the instance norm
    that amplifies the rounding, they add error (docs/deploy.md, int8, measures how much).
    onnxruntime's CPU provider fuses only convolutions whose outputs are quantized, so it runs such
    a file dequantized (:class:`~imtrans_core.onnx.runtime.OnnxBackend` warns);
    ``round_outputs=True, before_pads=False`` makes the graph it fuses, as exports made before did.
    A convolution's input is rounded before the reflection Pad that feeds it
    (:func:`_quantize_before_pads`); ``before_pads=False`` leaves it after, where onnxruntime puts it.

    ``batches`` are graph inputs (N, C, H, W) float32. ``operators`` are the node types to
    quantize. ``keep_float`` names the
    convolutions left in fp32 (:func:`conv_names` lists them all); ``only``, when given,
    quantizes those convolutions alone. ``ranges`` caches the
    calibrated ranges in a file: a later call with the same file skips calibration.
    """
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    if method not in CALIBRATIONS:
        raise ImtransError(f"--calibration {method}: choose {', '.join(CALIBRATIONS)}")
    if not batches:
        raise ImtransError("int8 needs calibration slices and none were found; give --calib DATASPEC")

    class Reader(CalibrationDataReader):
        """One batch per pass (``set_range``): the calibrator keeps one batch's activations at a time."""

        def __init__(self) -> None:
            self.batches: Iterator[np.ndarray] = iter(batches)

        def __len__(self) -> int:
            return len(batches)

        def set_range(self, start_index: int, end_index: int) -> None:
            self.batches = iter(batches[start_index:end_index])

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.batches, None)
            return None if batch is None else {INPUT_NAME: batch}

    methods = {
        "percentile": CalibrationMethod.Percentile,
        "entropy": CalibrationMethod.Entropy,
        "minmax": CalibrationMethod.MinMax,
    }
    cache = {"calibration_cache_path": str(ranges)} if ranges and _caches_ranges() else {}
    with tempfile.TemporaryDirectory(prefix="imtrans-int8-") as tmp, quiet():
        pre = _prepared(src, Path(tmp))
        quantize_static(
            str(pre),
            str(dst),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=methods[method],
            nodes_to_quantize=list(only) if only is not None else None,
            nodes_to_exclude=list(keep_float),
            op_types_to_quantize=list(operators),
            calibration_providers=["CPUExecutionProvider"],
            extra_options={
                "CalibPercentile": percentile,
                "CalibTensorRangeSymmetric": False,
                "OpTypesToExcludeOutputQuantization": [] if round_outputs else list(operators),
                # histograms (or ranges) merged batch by batch: the memory of one batch's activations,
                # not of every batch's (docs/deploy.md, int8)
                "CalibStridedMinMax": 1,
            },
            **cache,
        )
    model = onnx.load(str(dst))
    if before_pads:
        _quantize_before_pads(model.graph)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))


def _quantize_before_pads(graph: Any) -> int:
    """Move each convolution's input quantization ahead of the reflection Pad that feeds it.

    Pad -> Q -> DQ -> Conv becomes Q -> DQ -> Pad -> Conv: the same numbers, since reflecting
    copies values, so that a runtime can pad the 8-bit tensor and fold the rounding into the node
    before. The tensor's other readers (a residual Add) keep it in float: rounding the tensor
    itself would round the residual path too. Returns how many Pads moved.
    """
    outputs = {output.name for output in graph.output}  # keep their values and shapes
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    after_dq: dict[str, Any] = {}  # a moved Pad by the DQ whose output it now reads
    for pad in [n for n in graph.node if n.op_type == "Pad"]:
        mode = next((a.s for a in pad.attribute if a.name == "mode"), b"constant")
        q = _single_consumer(consumers, pad, "QuantizeLinear")
        dq = q and _single_consumer(consumers, q, "DequantizeLinear")
        if mode not in (b"reflect", b"edge") or not dq or outputs & {*pad.output, *q.output, *dq.output}:
            continue
        q.input[0], pad.input[0] = pad.input[0], dq.output[0]
        for user in consumers[dq.output[0]]:
            for i, name in enumerate(user.input):
                if name == dq.output[0]:
                    user.input[i] = pad.output[0]
        after_dq[dq.output[0]] = pad
    moved = {pad.output[0] for pad in after_dq.values()}
    ordered = []  # graph order kept: a moved Pad goes right after its DQ, whose Q reads what it read
    for node in graph.node:
        if node.output[0] not in moved:
            ordered += [node, after_dq[node.output[0]]] if node.output[0] in after_dq else [node]
    del graph.node[:]
    graph.node.extend(ordered)
    return len(after_dq)


def _single_consumer(consumers: dict[str, list[Any]], node: Any, op_type: str) -> Any:
    """The one node reading ``node``'s output, if there is exactly one and it is an ``op_type``."""
    after = consumers.get(node.output[0], [])
    return after[0] if len(after) == 1 and after[0].op_type == op_type else None


def conv_names(src: Path) -> list[str]:
    """The convolutions :func:`to_int8` can quantize, by node name in graph order (input to output)."""
    with tempfile.TemporaryDirectory(prefix="imtrans-int8-") as tmp, quiet():
        return _convs(_prepared(src, Path(tmp)))


def _prepared(src: Path, folder: Path) -> Path:
    """``src`` with shapes inferred and graph optimisations applied: what onnxruntime quantizes."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    pre = folder / "pre.onnx"
    quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
    return pre


def _convs(path: Path) -> list[str]:
    import onnx

    return [n.name for n in onnx.load(str(path)).graph.node if n.op_type in INT8_OPERATORS]


@functools.cache
def _caches_ranges() -> bool:
    """Whether this onnxruntime's ``quantize_static`` can keep calibrated ranges in a file (newer ones)."""
    from onnxruntime.quantization import quantize_static

    return "calibration_cache_path" in inspect.signature(quantize_static).parameters
