"""Export a trained generator to ONNX, verify it against torch, and make fp16 / int8 variants.

``export_model(RUN, "g.onnx")`` writes one self-contained ONNX file (weights
inside) of G_CT (``mr2ct``) or G_MR (``ct2mr``) with dynamic batch, height and
width, checked by ``onnx.checker`` and compared with the torch network it came
from. The metadata (:data:`METADATA_KEYS`, every value JSON text) says what the
graph takes and returns, so another tool needs nothing but onnxruntime.

Graph units. By default the graph is the network alone: ``(N, 1, H, W)`` float32
in [-1, 1] in and out, the windows of :mod:`imtrans_core.intensity` applied
outside it. With ``with_intensity=True`` the windows are in the graph: MR comes
in *after* the per-volume MR scaling (foreground 99.5th percentile -> 100; a
reduction over the whole volume, which a slice graph cannot do), CT in HU; the
graph clips to the source window, runs the network and maps its output to HU
within [-150, 350] (or to scaled MR units within [0, 100]).

Precisions. ``fp32`` is the exported graph. ``fp16`` converts weights and
activations to half precision except InstanceNormalization (kept in fp32: its
fp16 kernels have a history of wrong results); inputs and outputs stay float32.
``int8`` is onnxruntime's static QDQ quantization of the convolutions, weights
per channel, calibrated on slices of the source modality (the run's own dataset
unless ``calib`` names another); the first and last convolutions stay in fp32
(they carry the intensities in and out; quantizing them costs accuracy and buys
little speed). It is 2-2.6x faster than fp32 on a CPU with AMX but about
7 HU off on a trained model: see :data:`TOLERANCES`.

Verification. Every export compares onnxruntime with torch on random inputs at
two sizes (one not a multiple of 4) and on slices of a held-out volume, and
translates that whole volume both ways; :data:`TOLERANCES` states what fails
the export (an :class:`~imtrans_core.errors.ImtransError`). Errors are measured
on the [-1, 1] scale and reported in the target's units as well (HU for CT: 250
HU per unit; scaled MR: 50 per unit).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import ImtransError
from .intensity import CT_WINDOW, MR_WINDOW, MRScaling, Window
from .models import DIRECTIONS, TrainedGenerator, load_generator

PRECISIONS = ("fp32", "fp16", "int8")
CALIBRATIONS = ("percentile", "entropy", "minmax")
METADATA_VERSION = 1
WINDOWS = {"ct": CT_WINDOW, "mr": MR_WINDOW}
UNITS = {"ct": "HU", "mr": "MR units"}
INPUT_NAME, OUTPUT_NAME = "x", "y"
NORMALIZED_LAYOUT = "(N, 1, H, W) float32 in [-1, 1]"
LEGACY_OPSET = 17
INT8_OPERATORS = ("Conv", "ConvTranspose")

#: The keys ``export_model`` writes into ``metadata_props`` (values are JSON text).
METADATA_KEYS = (
    "imtrans_metadata_version",
    "direction",
    "source",
    "target",
    "orientation",
    "input_layout",
    "output_layout",
    "intensity_in_graph",
    "source_window",
    "target_window",
    "ct_window",
    "mr_scaling",
    "precision",
    "generator",
    "step",
    "config",
    "imtrans_version",
    "exporter",
    "opset",
    "verification",
)


@dataclass(frozen=True)
class Tolerance:
    """What fails an export, on the networks' [-1, 1] scale (CT: x 250 for HU).

    ``max_abs`` bounds single voxels on the check batches (None: reported only);
    ``mean_abs`` bounds the mean absolute error on the phantom slices and over
    the translated volume.
    """

    max_abs: float | None
    mean_abs: float


#: fp32: max 1e-3 (0.25 HU), mean 2e-3 (0.5 HU); measured: max about 5e-6.
#: fp16: max 2e-2 (5 HU), mean 2e-3 (0.5 HU); measured: mean under 0.001 HU.
#: int8: mean 4e-2 (10 HU), single voxels not bounded. Measured on a paper-size ResNet-9
#: trained 7k iterations on the phantom: 6.1 and 7.4 HU mean over two held-out volumes
#: (p99 26-30 HU, max 116-189 HU) — int8 does NOT meet a 2 HU budget (docs/deploy.md).
TOLERANCES = {
    "fp32": Tolerance(max_abs=1e-3, mean_abs=2e-3),
    "fp16": Tolerance(max_abs=2e-2, mean_abs=2e-3),
    "int8": Tolerance(max_abs=None, mean_abs=4e-2),
}


@dataclass
class Measurement:
    """One comparison of the ONNX graph with torch fp32."""

    what: str  # e.g. "random 2x64x64", "phantom slices 4x256x256", "volume mr-003"
    precision: str
    max_abs: float  # [-1, 1] scale
    mean_abs: float  # [-1, 1] scale
    scale: float  # target units per [-1, 1] unit (250 for HU)
    unit: str  # "HU" or "MR units"
    limit: Tolerance
    volume: bool = False

    @property
    def ok(self) -> bool:
        if self.mean_abs > self.limit.mean_abs:
            return False
        return self.volume or self.limit.max_abs is None or self.max_abs <= self.limit.max_abs

    def describe(self) -> str:
        return (
            f"{self.what}: max {self.max_abs:.2e} ({self.max_abs * self.scale:.3g} {self.unit}), "
            f"mean {self.mean_abs:.2e} ({self.mean_abs * self.scale:.3g} {self.unit})"
        )


@dataclass
class ExportResult:
    path: Path
    precision: str
    metadata: dict[str, Any]
    measurements: list[Measurement] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def size_mb(self) -> float:
        return self.path.stat().st_size / 1e6


# ----------------------------------------------------------------------------- the graph


class WithIntensity(torch.nn.Module):
    """A generator with the windows around it (``--with-intensity``).

    Source units in (MR after scaling, or HU), clipped to the source window and
    mapped to [-1, 1]; the network's output mapped to the target's units.
    """

    def __init__(self, net: torch.nn.Module, source: Window, target: Window):
        super().__init__()
        self.net = net
        self.source, self.target = source, target

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (N, 1, H, W) source units -> [-1, 1] -> network -> (N, 1, H, W) target units
        return self.target.inverse(self.net(self.source.forward(x)))


def _dynamo_export(module: Any, path: Path, opset: int | None) -> None:
    dims = {0: torch.export.Dim("batch"), 2: torch.export.Dim("height"), 3: torch.export.Dim("width")}
    example = torch.rand(2, 1, 64, 64) * 2 - 1  # >= 2 on every dynamic axis, or that size is baked in
    kwargs: dict[str, Any] = {"opset_version": opset} if opset else {}
    torch.onnx.export(
        module,
        (example,),
        str(path),
        dynamo=True,
        dynamic_shapes={"x": dims},
        external_data=False,
        verbose=False,
        **kwargs,
    )


def _legacy_export(module: Any, path: Path, opset: int | None) -> None:
    axes = {0: "batch", 2: "height", 3: "width"}
    example = torch.rand(2, 1, 64, 64) * 2 - 1
    torch.onnx.export(
        module,
        (example,),
        str(path),
        dynamo=False,
        opset_version=opset or LEGACY_OPSET,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: axes},
    )


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporters' and quantizer's chatter (warnings, prints, torch.onnx log lines)."""
    # "" is the root logger: the quantizer logs its per-tensor notes there.
    names = ("torch.onnx", "torch.export", "torch._export", "onnxscript", "")
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def export_graph(module: Any, path: Path, opset: int | None = None, legacy: bool = False) -> None:
    """``module`` to one self-contained ONNX file with dynamic batch, height and width; checked."""
    import onnx

    try:
        with _quiet():
            (_legacy_export if legacy else _dynamo_export)(module, path, opset)
    except Exception as err:
        text = " ".join(str(err).split())[:300]
        other = "without --legacy" if legacy else "with --legacy (opset 17)"
        raise ImtransError(
            f"the ONNX exporter failed ({type(err).__name__}: {text}); try again {other}"
        ) from None
    model = onnx.load(str(path))
    _rename_io(model, INPUT_NAME, OUTPUT_NAME)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _rename_io(model: Any, input_name: str, output_name: str) -> None:
    """Name the graph's one input ``x`` and one output ``y`` whatever the exporter chose."""
    graph = model.graph
    renames = {graph.input[0].name: input_name, graph.output[0].name: output_name}
    renames = {old: new for old, new in renames.items() if old != new}
    if not renames:
        return
    for node in graph.node:
        node.input[:] = [renames.get(n, n) for n in node.input]
        node.output[:] = [renames.get(n, n) for n in node.output]
    for value in (*graph.input, *graph.output, *graph.value_info):
        value.name = renames.get(value.name, value.name)


# ----------------------------------------------------------------------------- precisions


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

    ``batches`` are graph inputs (N, 1, H, W) float32. ``keep_ends`` leaves the
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
    with tempfile.TemporaryDirectory(prefix="imtrans-int8-") as tmp, _quiet():
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


# ----------------------------------------------------------------------------- data for checks


@dataclass
class SampleData:
    """Slices of the source modality in its own units (HU, or MR after scaling), for checks and calibration."""

    description: str
    calibration: list[np.ndarray]  # (H, W) slices from the calibration volumes
    volume_id: str  # the held-out volume
    volume: np.ndarray  # its slice stack (n, H, W)


def sample_data(spec: str, modality: str, orientation: str, n_slices: int = 32) -> SampleData:
    """Calibration slices from the first two volumes of ``spec``'s ``modality`` pool, and a held-out volume.

    The held-out volume is the pool's third (its last when it has fewer), so a
    model is checked on anatomy it was not calibrated on where the pool allows.
    """
    import imtrans_core as ic

    from .slices import Plane, to_slices

    source = ic.DATASETS.build(spec)
    pool = source.mr if modality == "mr" else source.ct
    if len(pool) == 0:
        raise ImtransError(f"--calib {spec}: its {modality.upper()} pool is empty")
    window = WINDOWS[modality]

    def stack(index: int) -> np.ndarray:
        volume = pool.load(pool.ids[index])
        data = np.asarray(volume.array, dtype=np.float32)
        if modality == "mr":
            data = data * MRScaling().scale_of(data)
        return np.ascontiguousarray(to_slices(data, Plane.of(volume, orientation)), dtype=np.float32)

    calib_ids = list(range(min(2, len(pool))))
    held_out = 2 if len(pool) > 2 else len(pool) - 1
    stacks = {i: stack(i) for i in {*calib_ids, held_out}}
    slices = []
    for i in calib_ids:
        body = (window.forward(stacks[i]) > -0.9).mean(axis=(1, 2))
        slices += [stacks[i][s] for s in np.flatnonzero(body >= 0.05)]
    if len(slices) > n_slices:
        slices = [slices[int(k)] for k in np.linspace(0, len(slices) - 1, n_slices).round()]
    return SampleData(f"{spec} ({modality.upper()})", slices, pool.ids[held_out], stacks[held_out])


def _foreground_batch(stack: np.ndarray, window: Window, count: int = 4) -> np.ndarray:
    """``count`` slices spread over the body of a stack, as a batch (count, 1, H, W)."""
    body = np.flatnonzero((window.forward(stack) > -0.9).mean(axis=(1, 2)) >= 0.05)
    body = body if body.size else np.arange(len(stack))
    picks = body[np.linspace(0, body.size - 1, min(count, body.size)).round().astype(int)]
    return np.ascontiguousarray(stack[picks][:, None], dtype=np.float32)


# ----------------------------------------------------------------------------- comparisons


class _Pair:
    """torch fp32 and an ONNX session side by side, both fed source units and answering target units."""

    def __init__(self, tg: TrainedGenerator, session: Any, intensity_in_graph: bool):
        self.net = tg.net
        self.session = session
        self.source, self.target = WINDOWS[tg.source], WINDOWS[tg.target]
        self.intensity_in_graph = intensity_in_graph

    def reference(self, raw: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            y = self.net(torch.from_numpy(np.ascontiguousarray(self.source.forward(raw), dtype=np.float32)))
        return self.target.inverse(y.float().numpy())

    def onnx(self, raw: np.ndarray) -> np.ndarray:
        x = raw if self.intensity_in_graph else self.source.forward(raw)
        y = self.session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(x, dtype=np.float32)})[0]
        return y if self.intensity_in_graph else self.target.inverse(y)

    def feed(self, raw: np.ndarray) -> np.ndarray:
        """What the graph takes for these source-unit slices."""
        return np.ascontiguousarray(
            raw if self.intensity_in_graph else self.source.forward(raw), dtype=np.float32
        )

    def compare(self, raw: np.ndarray, batch: int = 4) -> tuple[float, float]:
        """Max and mean |onnx - torch| on the [-1, 1] scale over ``raw`` (n, 1, H, W), in batches."""
        half = (self.target.high - self.target.low) / 2
        worst, total = 0.0, 0.0
        for start in range(0, len(raw), batch):
            part = raw[start : start + batch]
            diff = np.abs(self.onnx(part) - self.reference(part)) / half
            worst, total = max(worst, float(diff.max())), total + float(diff.sum())
        return worst, total / raw.size


def _random_inputs(window: Window, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Uniform over the source window widened by 10% each side (the graph's clipping is exercised)."""
    span = window.high - window.low
    out = {}
    for shape in ((2, 1, 64, 64), (1, 1, 50, 70)):  # 50 x 70: not a multiple of 4 on either side
        x = rng.uniform(window.low - 0.1 * span, window.high + 0.1 * span, size=shape).astype(np.float32)
        out["random " + "x".join(str(d) for d in (shape[0], *shape[2:]))] = x
    return out


def verify(
    tg: TrainedGenerator,
    path: Path,
    precision: str,
    intensity_in_graph: bool,
    data: SampleData | None,
    seed: int = 0,
    volume_check: bool = True,
) -> list[Measurement]:
    """Compare the ONNX file with torch: random inputs (not for int8), phantom slices, one whole volume."""
    from .onnx_runtime import open_session

    pair = _Pair(tg, open_session(path, providers="cpu"), intensity_in_graph)
    limit = TOLERANCES[precision]
    scale = (pair.target.high - pair.target.low) / 2
    unit = UNITS[tg.target]
    inputs: dict[str, np.ndarray] = {}
    if precision != "int8":  # noise is far outside the calibrated ranges; int8 is checked on images
        inputs.update(_random_inputs(pair.source, np.random.default_rng(seed)))
    if data is not None:
        batch = _foreground_batch(data.volume, pair.source)
        inputs[f"{data.volume_id} slices {batch.shape[0]}x{batch.shape[2]}x{batch.shape[3]}"] = batch
    out = [Measurement(what, precision, *pair.compare(x), scale, unit, limit) for what, x in inputs.items()]
    if data is not None and volume_check:
        stack = data.volume[:, None]
        out.append(
            Measurement(
                f"volume {data.volume_id} ({len(stack)} slices)",
                precision,
                *pair.compare(stack),
                scale,
                unit,
                limit,
                volume=True,
            )
        )
    return out


# ----------------------------------------------------------------------------- the whole export


def _resolved_config(tg: TrainedGenerator, model: Path) -> dict[str, Any]:
    """The run's configuration with every spec resolved (defaults filled in), as far as the plugins allow."""
    run = model if model.is_dir() else model.parent.parent
    stored = run / "config.json"
    if stored.is_file():
        try:
            data = json.loads(stored.read_text())
            resolved = data.pop("resolved", {}) or {}
            return {**data, **{k: v for k, v in resolved.items() if v not in (None, "")}}
        except (OSError, ValueError):
            pass
    import imtrans_core as ic

    config = dict(tg.config)
    config["gen"] = tg.spec
    for key, registry in (("disc", ic.DISCRIMINATORS), ("data", ic.DATASETS)):
        with contextlib.suppress(Exception):
            config[key] = str(registry.resolve(config[key]))
    return config


def _default_calib(config: dict[str, Any]) -> list[str]:
    specs = [config["data"]] if config.get("data") else []
    return [*specs, "phantom"] if "phantom" not in specs else specs


def build_metadata(
    tg: TrainedGenerator,
    config: dict[str, Any],
    precision: str,
    intensity_in_graph: bool,
    exporter: str,
    opset: int,
) -> dict[str, Any]:
    """Everything a consumer needs to use the graph (values before JSON encoding)."""
    import imtrans_core as ic

    scaling = MRScaling()
    source, target = WINDOWS[tg.source], WINDOWS[tg.target]
    units = {"ct": "CT in HU", "mr": "MR after scaling (foreground 99.5th percentile -> 100)"}
    if intensity_in_graph:
        input_layout = f"(N, 1, H, W) float32, {units[tg.source]}; clipped to [{source.low:g}, {source.high:g}] in the graph"
        output_layout = f"(N, 1, H, W) float32, {units[tg.target]} within [{target.low:g}, {target.high:g}]"
    else:
        input_layout = output_layout = NORMALIZED_LAYOUT
    return {
        "imtrans_metadata_version": METADATA_VERSION,
        "direction": tg.direction,
        "source": tg.source,
        "target": tg.target,
        "orientation": tg.orientation,
        "input_layout": input_layout,
        "output_layout": output_layout,
        "intensity_in_graph": intensity_in_graph,
        "source_window": [source.low, source.high],
        "target_window": [target.low, target.high],
        "ct_window": [CT_WINDOW.low, CT_WINDOW.high],
        "mr_scaling": {
            "percentile": scaling.percentile,
            "target": scaling.target,
            "foreground": "voxels > 0",
            "window": [scaling.window.low, scaling.window.high],
        },
        "precision": precision,
        "generator": tg.spec,
        "step": tg.step,
        "config": config,
        "imtrans_version": ic.__version__,
        "exporter": exporter,
        "opset": opset,
    }


def write_metadata(path: Path, metadata: dict[str, Any], dst: Path | None = None) -> None:
    """Store ``metadata`` (JSON-encoded values) in the model's ``metadata_props``; write ``dst`` (default: in place)."""
    import onnx

    model = onnx.load(str(path))
    onnx.helper.set_model_props(model, {k: json.dumps(v, default=str) for k, v in metadata.items()})
    model.producer_name = "imtrans"
    model.doc_string = (
        f"imtrans generator {metadata.get('direction')} ({metadata.get('precision')}); "
        f"input {metadata.get('input_layout')}; see metadata_props"
    )
    onnx.save(model, str(dst or path))


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The decoded ``metadata_props`` of an ONNX file."""
    import onnx

    from .onnx_runtime import decode_metadata

    model = onnx.load(str(path), load_external_data=False)
    return decode_metadata({p.key: p.value for p in model.metadata_props})


def _opset_of(path: Path) -> int:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def export_model(
    model: str | Path,
    out: str | Path,
    *,
    direction: str = "mr2ct",
    precision: str = "fp32",
    opset: int | None = None,
    with_intensity: bool = False,
    legacy: bool = False,
    calib: str | None = None,
    calib_slices: int = 32,
    calibration: str = "percentile",
    verify_model: bool = True,
    report: Callable[[str], None] | None = None,
) -> ExportResult:
    """Export a run's (or checkpoint's) generator to ``out`` and verify it; see the module docstring.

    ``calib`` is a dataset spec for calibration and checks (default: the run's
    own dataset, else the phantom). Raises :class:`ImtransError` on bad input
    or when a check fails its :data:`TOLERANCES`; ``out`` is written only then.
    """
    started = time.perf_counter()
    say = report or (lambda text: logging.getLogger("imtrans").info(text))
    if precision not in PRECISIONS:
        raise ImtransError(f"--precision {precision}: choose {', '.join(PRECISIONS)}")
    if direction not in DIRECTIONS:
        raise ImtransError(f"--direction {direction}: choose mr2ct or ct2mr")
    if calibration not in CALIBRATIONS:
        raise ImtransError(f"--calibration {calibration}: choose {', '.join(CALIBRATIONS)}")
    model, out = Path(model), Path(out)
    if out.suffix.lower() != ".onnx":
        raise ImtransError(f"--out {out}: name the file *.onnx")
    if not out.parent.is_dir():
        raise ImtransError(f"--out {out}: folder {out.parent} does not exist")
    tg = load_generator(model, direction)
    config = _resolved_config(tg, model)
    source, target = WINDOWS[tg.source], WINDOWS[tg.target]
    module = WithIntensity(tg.net, source, target).eval() if with_intensity else tg.net

    data = None
    if verify_model or precision == "int8":
        data = _load_samples(
            [calib] if calib else _default_calib(config), tg, calib_slices, required=bool(calib)
        )
        if data is None and precision == "int8":
            raise ImtransError(
                "int8 needs calibration slices: give --calib DATASPEC (e.g. phantom, or folder:ct=DIR,mr=DIR)"
            )
        if data is not None:
            say(f"check data: {data.description}, held-out volume {data.volume_id}")

    with tempfile.TemporaryDirectory(prefix="imtrans-export-", dir=out.parent) as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        exporter = "legacy" if legacy else "dynamo"
        say(f"exporting {tg.direction} ({tg.spec}, step {tg.step}) with the {exporter} exporter")
        export_graph(module, fp32, opset, legacy)
        measurements: list[Measurement] = []
        if verify_model:
            measurements += verify(tg, fp32, "fp32", with_intensity, data, volume_check=precision == "fp32")
            _fail_on(measurements, "fp32")
        final = fp32
        if precision != "fp32":
            final = Path(tmp) / f"{precision}.onnx"
            say(f"converting to {precision}")
            if precision == "fp16":
                to_fp16(fp32, final)
            else:
                assert data is not None
                pair = _Pair(tg, None, with_intensity)
                batches = [pair.feed(s[None, None]) for s in data.calibration]
                to_int8(fp32, final, batches, calibration)
            if verify_model:
                variant = verify(tg, final, precision, with_intensity, data)
                measurements += variant
                _fail_on(variant, precision)
        metadata = build_metadata(tg, config, precision, with_intensity, exporter, _opset_of(final))
        if precision == "int8":
            assert data is not None
            metadata["quantization"] = {
                "format": "QDQ",
                "activations": "uint8 per tensor",
                "weights": "int8 per channel",
                "calibration": calibration,
                "percentile": 99.999 if calibration == "percentile" else None,
                "operators": list(INT8_OPERATORS),
                "fp32_ends": True,
                "calibration_slices": len(data.calibration),
                "calibration_data": data.description,
            }
        metadata["verification"] = {
            m.what: {
                "precision": m.precision,
                "max_abs": m.max_abs,
                "mean_abs": m.mean_abs,
                "unit_scale": m.scale,
                "unit": m.unit,
            }
            for m in measurements
        }
        staged = Path(tmp) / "final.onnx"
        write_metadata(final, metadata, staged)
        os.replace(staged, out)
    return ExportResult(out, precision, metadata, measurements, time.perf_counter() - started)


def _load_samples(specs: list[str], tg: TrainedGenerator, n_slices: int, required: bool) -> SampleData | None:
    """The first dataset spec that builds; an error only when the person named it (``required``)."""
    problems = []
    for spec in specs:
        try:
            return sample_data(spec, tg.source, tg.orientation, n_slices)
        except ImtransError as err:
            if required:
                raise ImtransError(f"--calib {spec}: {err}") from None
            problems.append(f"{spec}: {err}")
    logging.getLogger("imtrans").warning(
        "no dataset for the image checks (" + "; ".join(problems) + "); checking on random inputs only"
    )
    return None


def _fail_on(measurements: list[Measurement], precision: str) -> None:
    bad = [m for m in measurements if m.precision == precision and not m.ok]
    if bad:
        limit = TOLERANCES[precision]
        bound = f"max {limit.max_abs:g}, " if limit.max_abs is not None else ""
        raise ImtransError(
            f"the {precision} ONNX model differs from torch beyond its tolerance ({bound}mean "
            f"{limit.mean_abs:g} on [-1, 1]): {bad[0].describe()}; nothing was written"
        )


def summary(result: ExportResult) -> dict[str, Any]:
    """A JSON-friendly account of an export (what ``imtrans export --json`` prints)."""
    return {
        "path": str(result.path),
        "precision": result.precision,
        "size_mb": round(result.size_mb, 3),
        "seconds": round(result.seconds, 2),
        "measurements": [{**asdict(m), "limit": asdict(m.limit), "ok": m.ok} for m in result.measurements],
        "metadata": {k: v for k, v in result.metadata.items() if k != "config"},
    }
