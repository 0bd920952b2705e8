"""``imtrans demo``: the newcomer's whole job on the built-in phantom, in minutes.

phantom -> a short ``--preset paired`` training (the supervised U-Net on four
aligned pairs: the recipe of docs/quality.md that beats the contrast prior's map
in minutes) -> translate the paired test MRs -> evaluate against their CTs,
beside the baselines -> export ONNX -> translate again with onnxruntime and
compare -> a summary table and a picture of each test subject (MR, synthetic CT,
real CT, error). Each step uses the same library functions as the commands.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import imtrans_core as ic

from . import defaults
from .data.intensity import CT_WINDOW
from .data.io import write_volume
from .data.slices import Plane, normalize, to_slices
from .evaluation.plots import translation_figure
from .evaluation.report import summarize
from .evaluation.scoring import constant_baseline, evaluate_pair, require_metrics
from .inference.backends import TorchBackend
from .inference.translate import translate_volume
from .onnx.choose import make_backend
from .onnx.export import export_model
from .training import resolve_config, train

PRESET = "paired"
# A third of the preset's 1200, to keep the training within minutes on 2 cores without bf16 units;
# what it scores is in docs/quickstart.md. --iters 1200 trains the preset's own length.
ITERS = 400


@dataclass
class DemoReport:
    """What the demo did, how long each step took, and where its outputs are."""

    out: Path
    steps: list[tuple[str, float, str]] = field(default_factory=list)  # (step, seconds, result)
    rows: list[dict[str, Any]] = field(default_factory=list)
    baselines: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    pictures: dict[str, Path] = field(default_factory=dict)

    def step(self, name: str, run: Callable[[], str]) -> str:
        start = time.perf_counter()
        result = run()
        self.steps.append((name, time.perf_counter() - start, result))
        return result


def baseline_rows(
    spec: str,
    pools: str | None = None,
    extra: Callable[[Any, dict[str, Any]], dict[str, float]] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Per paired subject of phantom data ``spec``: reference images, scored as a model would be.

    ``extra(image, volumes)``: more scores of each reference image but the constant one, given the
    subject's volumes (``ct``, ``mr``, ``labels``, ``mask``), e.g. errors by tissue.

    Rows: ``constant image`` (the real CT's median HU in the mask: a model must beat it),
    ``contrast prior`` (the MR mapped in inverse rank onto the CT values of ``pools``, default
    ``spec``'s own; no network), ``tissue means`` (the CT with each tissue flat at its mean),
    ``second scan`` (``repeat=1``: only noise and grain drawn anew) and ``noise floor`` (the CT
    without quantum noise: no model beats it). What each stands for: docs/studies/quality-variants.md.
    """
    renders = {
        "tissue means": ic.DATASETS.build(f"{spec},ct_noise=0,ct_texture=0").paired,
        "second scan": ic.DATASETS.build(f"{spec},repeat=1").paired,
        "noise floor": ic.DATASETS.build(f"{spec},ct_noise=0").paired,
    }
    prior = contrast_prior_map(pools or spec)
    rows: dict[str, list[dict[str, Any]]] = {"constant image": [], **{name: [] for name in renders}}
    if prior is not None:
        rows["contrast prior"] = []
    for i, subject in enumerate(ic.DATASETS.build(spec).paired):
        vols = subject.load()
        ct, mr, mask = vols["ct"], vols["mr"], vols["mask"]
        rows["constant image"].append({"id": subject.id, **constant_baseline(ct, mask)})
        images = {name: paired[i].load()["ct"] for name, paired in renders.items()}
        if prior is not None:
            images["contrast prior"] = prior(mr)
        for name, image in images.items():
            scores = evaluate_pair(image, ct, mask=mask, source=mr)
            rows[name].append({"id": subject.id, **scores, **(extra(image, vols) if extra else {})})
    return rows


def contrast_prior_map(
    spec: str, mr_body: Callable[[np.ndarray], np.ndarray] | None = None
) -> Callable[[Any], Any] | None:
    """MR volume -> HU volume by the contrast prior fitted on ``spec``'s unpaired pools (None: it has none).

    The map works on the networks' [-1, 1] scale, as ``--loss prior`` does: its CT side spans
    the CT window ([-150, 350] HU), so it never writes cortical bone's full density, which the
    paper's scale clips anyway (MAE in HU counts it). ``mr_body``: which voxels of a scaled MR
    volume the fit ranks (default: the prior's own test, above the air's -1), for
    ``studies/prior_mask.py``.
    """
    import torch

    source = ic.DATASETS.build(spec)
    if not (len(source.ct) and len(source.mr)):
        return None
    prior = ic.LOSSES.build("prior")

    def ranked(volume: Any, modality: str) -> np.ndarray:
        scaled = normalize(volume, modality)
        return scaled[mr_body(scaled)] if mr_body and modality == "mr" else scaled.ravel()

    values = [
        np.concatenate([ranked(v, m) for v in pool]) for m, pool in (("ct", source.ct), ("mr", source.mr))
    ]
    prior.fit(*values)

    def translate(mr: Any) -> Any:
        scaled = torch.from_numpy(normalize(mr, "mr"))
        mapped = prior.mapped(scaled, to="ct").numpy()
        body = prior.body(scaled).numpy()
        return mr.with_array(np.where(body, CT_WINDOW.inverse(mapped), -1000.0).astype(np.float32))

    return translate


def picture(subjects: list[dict[str, Any]], prior: Callable[[Any], Any] | None, path: Path) -> Path:
    """Each test subject's middle coronal slice: MR, synthetic CT, the prior's map, real CT, errors."""
    rows = []
    for subject in subjects:
        plane = Plane.of(subject["ct"], "coronal")
        synthetic = {"synthetic CT": _middle(subject["sct"], plane)}
        if prior is not None:
            synthetic["contrast prior's map"] = _middle(prior(subject["mr"]), plane)
        mr, ct, mask = (_middle(subject[key], plane) for key in ("mr", "ct", "mask"))
        rows.append((subject["id"], mr, synthetic, ct, mask > 0))
    return translation_figure(rows, path)


def _middle(volume: Any, plane: Plane) -> np.ndarray:
    stack = to_slices(np.asarray(volume.array, dtype=np.float32), plane)
    return stack[len(stack) // 2]


def run_demo(out: Path, iters: int | None = None, echo: Callable[[str], None] = print) -> DemoReport:
    """Run every step into ``out``; returns the report the CLI prints."""
    report = DemoReport(out)
    defaults.require(ic.MODELS, [defaults.MODEL], "imtrans demo")
    defaults.require(ic.DATASETS, [defaults.DATASET], "imtrans demo")
    require_metrics("paper", True, "imtrans demo")
    config = resolve_config({"iters": iters or ITERS}, None, PRESET)
    run_dir = out / "run"
    subjects = [s.load() | {"id": s.id} for s in ic.DATASETS.build(config.data).paired]

    def train_step() -> str:
        if (run_dir / "config.json").exists():  # run again: continue, to a new --iters if one is given
            echo(f"continuing {run_dir}" + (f" to {iters} iterations" if iters is not None else ""))
            result = train(None, resume=run_dir, changes={"iters": iters} if iters is not None else {})
        else:
            echo(f"training {config.iters} iterations of --preset {PRESET} on the phantom ({config.data})")
            result = train(config, out=run_dir)
        return f"{result.step} iterations, {run_dir}"

    def translate_torch() -> str:
        backend = TorchBackend.from_model(run_dir, "mr2ct", device="cpu")  # fp32: the reference for ONNX
        for subject in subjects:
            subject["sct"] = translate_volume(subject["mr"], backend)
            write_volume(subject["sct"], out / "translated" / "torch" / f"{subject['id']}.nii.gz")
            for key in ("mr", "ct", "mask"):
                write_volume(subject[key], out / "data" / subject["id"] / f"{key}.nii.gz")
        return f"{len(subjects)} MR volumes -> synthetic CT ({backend!r})"

    def evaluate() -> str:
        for subject in subjects:
            scores = evaluate_pair(subject["sct"], subject["ct"], mask=subject["mask"], source=subject["mr"])
            report.rows.append({"id": subject["id"], **scores})
        report.baselines = baseline_rows(config.data)
        report.pictures["subjects"] = picture(subjects, contrast_prior_map(config.data), out / "subjects.png")
        mean = summarize(report.rows)
        iterations = json.loads((run_dir / "config.json").read_text())["iters"]
        scores = {
            "preset": PRESET,
            "data": config.data,
            "iterations": iterations,
            "subjects": report.rows,
            "mean_sd": mean,
            "baselines": report.baselines,
            "baselines_mean_sd": {name: summarize(rows) for name, rows in report.baselines.items()},
            "seconds": {
                name: round(seconds, 1) for name, seconds, _ in report.steps
            },  # the steps before this one
        }
        (out / "scores.json").write_text(json.dumps(scores, indent=2, default=float) + "\n")
        return f"MAE {mean['mae'][0]:.1f} (0-255), PSNR {mean['psnr'][0]:.2f} dB, MI {mean['mi'][0]:.3f}"

    def export() -> str:
        result = export_model(run_dir, out / "model.onnx", direction="mr2ct", report=None)
        worst = max((m.max_abs for m in result.measurements), default=float("nan"))
        return f"{result.path} ({result.size_mb:.1f} MB), max error vs torch {worst:.1e}"

    def translate_onnx() -> str:
        backend = make_backend(out / "model.onnx", backend="onnx")
        diffs = []
        for subject in subjects:
            onnx_sct = translate_volume(subject["mr"], backend)
            write_volume(onnx_sct, out / "translated" / "onnx" / f"{subject['id']}.nii.gz")
            diffs.append(float(np.mean(np.abs(onnx_sct.array - subject["sct"].array))))
        return f"onnxruntime vs torch: mean |difference| {np.mean(diffs):.3f} HU"

    for name, fn in (
        ("train", train_step),
        ("translate (torch)", translate_torch),
        ("evaluate", evaluate),
        ("export ONNX", export),
        ("translate (onnxruntime)", translate_onnx),
    ):
        echo(f"{name}: {report.step(name, fn)}")
    samples = sorted((run_dir / "samples").glob("*.png"))
    if samples:
        report.pictures["samples"] = samples[-1]
    return report
