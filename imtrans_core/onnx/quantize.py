"""fp16 and int8 variants of an exported fp32 graph: the precision conversions, apart from export and checks.

``fp16`` converts weights and activations to half precision except
InstanceNormalization (kept in fp32: its fp16 kernels have a history of wrong
results); inputs and outputs stay float32. ``int8`` is onnxruntime's static QDQ
quantization of the convolutions, weights per channel, calibrated on slices of
the source modality (:mod:`imtrans_core.onnx.sample_data`); the first and last
convolutions stay in fp32 (they carry the intensities in and out; quantizing
them costs accuracy and buys little speed). It is 2-2.6x faster than fp32 on a
CPU with AMX but about 7 HU off on a trained model: see
:data:`imtrans_core.onnx.verify.TOLERANCES`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..choices import CALIBRATIONS
from ..errors import ImtransError
from .graph import INPUT_NAME, quiet

INT8_OPERATORS = ("Conv", "ConvTranspose")


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
    keep_ends: bool = True,
    percentile: float = 99.999,
    op_types: tuple[str, ...] | None = INT8_OPERATORS,
) -> None:
    """Static QDQ quantization (u8 activations, s8 per-channel weights) calibrated on ``batches``.

    ``batches`` are graph inputs (N, C, H, W) float32. ``keep_ends`` leaves the
    first and last convolution in fp32. ``op_types``: what is quantized (None:
    every operator onnxruntime can quantize; the default, convolutions only, was
    both faster and closer to fp32 on a trained ResNet-9).
    """
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if method not in CALIBRATIONS:
        raise ImtransError(f"--calibration {method}: choose {', '.join(CALIBRATIONS)}")
    if not batches:
        raise ImtransError("int8 needs calibration slices and none were found; give --calib DATASPEC")

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.batches, None)
            return None if batch is None else {INPUT_NAME: batch}

    methods = {
        "percentile": CalibrationMethod.Percentile,
        "entropy": CalibrationMethod.Entropy,
        "minmax": CalibrationMethod.MinMax,
    }
    with tempfile.TemporaryDirectory(prefix="imtrans-int8-") as tmp, quiet():
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        convs = [n.name for n in onnx.load(str(pre)).graph.node if n.op_type in ("Conv", "ConvTranspose")]
        exclude = [convs[0], convs[-1]] if keep_ends and len(convs) > 2 else []
        quantize_static(
            str(pre),
            str(dst),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=methods[method],
            nodes_to_exclude=exclude,
            op_types_to_quantize=list(op_types) if op_types else None,
            calibration_providers=["CPUExecutionProvider"],
            extra_options={"CalibPercentile": percentile, "CalibTensorRangeSymmetric": False},
        )
    onnx.checker.check_model(str(dst))
