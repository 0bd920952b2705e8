"""Export a trained generator to ONNX, verify it against torch, and make fp16 / int8 variants.

``export_model(RUN, "g.onnx")`` writes one self-contained ONNX file (weights
inside) of G_CT (``mr2ct``) or G_MR (``ct2mr``) with dynamic batch, height and
width, checked by ``onnx.checker`` and compared with the torch network it came
from. The metadata (:data:`METADATA_KEYS`, every value JSON text) says what the
graph takes and returns, so another tool needs nothing but onnxruntime.

Graph units. By default the graph is the network alone: ``(N, C, H, W)`` float32
in [-1, 1] in and out (C = 1, or 2 context + 1 slices for a 2.5-D generator; the
metadata's ``context``), the windows of :mod:`imtrans_core.data.intensity` applied
outside it. With ``with_intensity=True`` the windows are in the graph: MR comes
in *after* the per-volume MR scaling (foreground 99.5th percentile -> 100; a
reduction over the whole volume, which a slice graph cannot do), CT in HU; the
graph clips to the source window, runs the network and maps its output to HU
within [-150, 350] (or to scaled MR units within [0, 100]).

The network exported is :func:`imtrans_core.onnx.rewrite.for_export`'s copy: convolutions with
few output channels split into forms the runtimes compute faster, the same numbers (the checks
compare the graph with the network as trained).

Precisions and checks. :mod:`imtrans_core.onnx.quantize` makes the fp16 and int8
variants of the exported fp32 graph, :mod:`imtrans_core.onnx.verify` compares each
with torch and holds the :data:`~imtrans_core.onnx.verify.TOLERANCES` that fail an
export, and :mod:`imtrans_core.onnx.sample_data` picks the slices both use.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from .. import defaults
from ..choices import CALIBRATIONS, EXPORT_PRECISIONS
from ..data.intensity import CT_WINDOW, MRScaling, Window
from ..errors import ImtransError
from ..inference.models import TrainedGenerator, direction_of, load_generator
from .graph import INPUT_NAME, OUTPUT_NAME, WINDOWS, quiet
from .quantize import INT8_OPERATORS, to_fp16
from .rewrite import for_export
from .sample_data import SampleData, body_of, sample_data
from .sensitivity import Error, quantize_within
from .verify import TOLERANCES, Measurement, Pair, verify

METADATA_VERSION = 1
LEGACY_OPSET = 17

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
        # (N, C, H, W) source units -> [-1, 1] -> network -> (N, C, H, W) target units
        return self.target.inverse(self.net(self.source.forward(x)))


def _dynamo_export(module: Any, path: Path, opset: int | None, channels: int) -> None:
    dims = {0: torch.export.Dim("batch"), 2: torch.export.Dim("height"), 3: torch.export.Dim("width")}
    example = torch.rand(2, channels, 64, 64) * 2 - 1  # >= 2 on every dynamic axis, or that size is baked in
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


def _legacy_export(module: Any, path: Path, opset: int | None, channels: int) -> None:
    axes = {0: "batch", 2: "height", 3: "width"}
    example = torch.rand(2, channels, 64, 64) * 2 - 1
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


def export_graph(
    module: Any, path: Path, opset: int | None = None, legacy: bool = False, channels: int = 1
) -> None:
    """``module`` to one self-contained ONNX file with dynamic batch, height and width; checked.

    ``channels``: slices per input stack (1, or 2 context + 1 for a 2.5-D generator).
    """
    import onnx

    try:
        with quiet():
            (_legacy_export if legacy else _dynamo_export)(module, path, opset, channels)
    except Exception as err:
        text = " ".join(str(err).split())[:300]
        other = "without --legacy" if legacy else "with --legacy (opset 17)"
        raise ImtransError(
            f"the ONNX exporter failed ({type(err).__name__}: {text}); try again {other}"
        ) from err
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


# ----------------------------------------------------------------------------- the whole export


def _resolved_config(tg: TrainedGenerator, model: Path) -> dict[str, Any]:
    """The run's configuration with every spec resolved (defaults filled in), as far as the plugins allow;
    ``gen`` is the exported network's."""
    run = model if model.is_dir() else model.parent.parent
    stored = run / "config.json"
    if stored.is_file():
        try:
            data = json.loads(stored.read_text())
            resolved = data.pop("resolved", {}) or {}
            return {**data, **{k: v for k, v in resolved.items() if v not in (None, "")}, "gen": tg.spec}
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
    return [*specs, defaults.DATASET] if defaults.DATASET not in specs else specs


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
    stack = f"(N, {2 * tg.context + 1}, H, W) float32"
    if intensity_in_graph:
        input_layout = (
            f"{stack}, {units[tg.source]}; clipped to [{source.low:g}, {source.high:g}] in the graph"
        )
        output_layout = f"{stack}, {units[tg.target]} within [{target.low:g}, {target.high:g}]"
    else:
        input_layout = output_layout = f"{stack} in [-1, 1]"
    return {
        "imtrans_metadata_version": METADATA_VERSION,
        "direction": tg.direction,
        "source": tg.source,
        "target": tg.target,
        "orientation": tg.orientation,
        "input_contract": tg.contract.to_dict(),
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
    or when a check fails its :data:`~imtrans_core.onnx.verify.TOLERANCES`; ``out`` is written only then.
    """
    started = time.perf_counter()
    say = report or (lambda text: logging.getLogger("imtrans").info(text))
    if precision not in EXPORT_PRECISIONS:
        raise ImtransError(f"--precision {precision}: choose {', '.join(EXPORT_PRECISIONS)}")
    direction_of(direction)
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
    net = for_export(tg.net)  # the same numbers, faster in the runtimes; checked against tg.net below
    module = WithIntensity(net, source, target).eval() if with_intensity else net

    data, plan = None, None
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
        export_graph(module, fp32, opset, legacy, 2 * tg.context + 1)
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
                pair = Pair(tg, None, with_intensity)
                batches = [pair.feed(s[None]) for s in data.calibration]
                body = [body_of(s[None], pair.source, tg.context) for s in data.calibration]
                units = (pair.target.high - pair.target.low) / 2 if with_intensity else 1.0
                plan = quantize_within(fp32, final, batches, int8_budget(units), calibration, where=body)
                level = "" if plan.percentile is None else f", calibration percentile {plan.percentile:g}"
                say(
                    f"int8: {len(plan.keep_float)} of {len(plan.convolutions)} convolutions kept in fp32 "
                    f"by the sensitivity analysis ({plan.trials} trials{level})"
                )
            if verify_model:
                variant = verify(tg, final, precision, with_intensity, data)
                measurements += variant
                _fail_on(variant, precision)
        metadata = build_metadata(tg, config, precision, with_intensity, exporter, _opset_of(final))
        if precision == "int8":
            assert data is not None and plan is not None
            metadata["quantization"] = {
                "format": "QDQ",
                "activations": "uint8 per tensor",
                "weights": "int8 per channel",
                "outputs": "float",  # the convolutions' (imtrans_core.onnx.quantize.to_int8)
                "calibration": calibration,
                "operators": list(INT8_OPERATORS),
                **plan.summary(),
                "calibration_slices": len(data.calibration),
                "calibration_data": data.description,
                "calibration_volumes": data.calibration_volumes,
            }
        metadata["verification"] = {
            m.what: {
                "precision": m.precision,
                "max_abs": m.max_abs,
                "mean_abs": m.mean_abs,
                "p999_abs": m.p999_abs,
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
            return sample_data(spec, tg.source, tg.orientation, n_slices, tg.context)
        except ImtransError as err:
            if required:
                raise ImtransError(f"--calib {spec}: {err}") from err
            problems.append(f"{spec}: {err}")
    logging.getLogger("imtrans").warning(
        "no dataset for the image checks (" + "; ".join(problems) + "); checking on random inputs only"
    )
    return None


#: the share of the int8 tolerance the sensitivity analysis aims at on the calibration slices, so that the
#: held-out volume, which it never saw, has room under the tolerance itself
INT8_AIM = 0.75


def int8_budget(units: float = 1.0) -> Error:
    """What the int8 sensitivity analysis aims at: :data:`INT8_AIM` of :data:`TOLERANCES`' int8 bounds,
    times ``units``: the graph's output units per [-1, 1] unit (250 for HU with the windows in the graph)."""
    limit = TOLERANCES["int8"]
    assert limit.p999_abs is not None
    return Error(INT8_AIM * limit.mean_abs * units, INT8_AIM * limit.p999_abs * units)


def _fail_on(measurements: list[Measurement], precision: str) -> None:
    bad = [m for m in measurements if m.precision == precision and not m.ok]
    if bad:
        limit = TOLERANCES[precision]
        bound = f"max {limit.max_abs:g}, " if limit.max_abs is not None else ""
        bound += f"99.9th percentile {limit.p999_abs:g}, " if limit.p999_abs is not None else ""
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
