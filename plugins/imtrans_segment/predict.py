"""Segmenting MR, the test phase of §3.2: MR and its synthetic CT in, a label volume out on the MR grid.

"At the test phase, a pair of MR and synthesized CT was used as two-channel input" (Hiasa et
al. 2018, §3.2). The network was trained on (CT, synthetic MR), so here channel 0 holds the
synthetic CT that G_CT makes of the MR and channel 1 the MR itself, both on the [-1, 1] scale;
a CT-only segmenter (``--channels ct``) sees the synthetic CT alone, from any model's G_CT.
Slices are whole planes of the volume (the U-Net takes any size); the argmax class of each voxel
is written with its structure's first label value (femur -> the value of femur_left), as
``uint8`` on exactly the MR's grid. ``labels.json`` beside the outputs names the values, so
``imtrans segment evaluate`` knows what each one means.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import track

import imtrans_core as ic
from imtrans_core.api import (
    CT_WINDOW,
    ImtransError,
    Plane,
    Volume,
    autocast,
    check_source,
    from_slices,
    list_checkpoints,
    load_checkpoint,
    make_backend,
    normalize,
    pick_device,
    plan_jobs,
    read_volume,
    resolve_amp,
    to_slices,
    translate_volume,
    write_json,
    write_volume,
)

from .rundir import read_meta, structures_of
from .structures import Structure, class_values, label_dtype

LABELS_JSON = "labels.json"


@dataclass
class Segmenter:
    """A trained segmentation network with what it takes to use it on volumes."""

    net: Any  # torch.nn.Module in eval mode
    structures: list[Structure]
    orientation: str
    meta: dict[str, Any]
    device: Any
    amp: Any  # torch dtype for autocast, or None
    step: int = 0

    @classmethod
    def load(cls, run: str | Path, device: str = "auto", amp: str = "auto") -> Segmenter:
        """The newest checkpoint of a segmentation run directory, or a checkpoint file of one."""
        run = Path(run)
        if run.is_file():
            state = load_checkpoint(run)
            meta = state.get("segment")
            if not isinstance(meta, dict):
                raise ImtransError(
                    f"SEGRUN {run}: a checkpoint, but not of a segmentation run (no 'segment' entry)"
                )
        else:
            meta = read_meta(run)
            found = list_checkpoints(run)
            if not found:
                raise ImtransError(
                    f"SEGRUN {run}: no checkpoints yet (checkpoints/ckpt-*.pt); train it or wait for one"
                )
            state = load_checkpoint(found[-1])
        if "unet" not in state["models"]:
            raise ImtransError(f"SEGRUN {run}: the checkpoint holds no segmentation network ('unet')")
        target = pick_device(device)
        net = ic.GENERATORS.build(meta["net"])
        net.load_state_dict(state["models"]["unet"])
        net.to(target).eval()
        return cls(
            net,
            structures_of(meta),
            meta.get("orientation", "coronal"),
            meta,
            target,
            resolve_amp(amp, target),
            int(state.get("step", 0)),
        )

    @property
    def channels(self) -> tuple[str, ...]:
        """The input channels it was trained on, in order: ``("ct", "mr")`` (the paper's) or ``("ct",)``."""
        return tuple(self.meta.get("channels", ("ct", "mr")))

    def classes(self, ct: np.ndarray, mr: np.ndarray | None, grid: Volume, batch: int = 8) -> np.ndarray:
        """Class indices (``uint8``, 0..K) of every voxel from [-1, 1] arrays on ``grid`` (``mr``: None for CT alone)."""
        plane = Plane.of(grid, self.orientation)
        stacks = [to_slices({"ct": ct, "mr": mr}[name], plane) for name in self.channels]  # (n, rows, cols)
        out = np.empty(stacks[0].shape, dtype=np.uint8)
        with torch.inference_mode(), autocast(self.device, self.amp):
            for start in range(0, len(out), max(1, batch)):
                stop = start + batch
                x = np.stack([stack[start:stop] for stack in stacks], axis=1)  # (N, C, H, W)
                logits = self.net(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device))
                out[start:stop] = logits.argmax(dim=1).to(torch.uint8).cpu().numpy()
        return np.ascontiguousarray(from_slices(out, plane))

    def segment(self, mr: Volume, synthetic_ct: Volume, batch: int = 8) -> Volume:
        """The label volume of ``mr`` given its synthetic CT (in HU, on the same grid)."""
        if not synthetic_ct.same_grid(mr):
            raise ImtransError("the synthetic CT is not on the MR's grid; translate the MR itself")
        classes = self.classes(
            np.asarray(CT_WINDOW.forward(synthetic_ct.array), dtype=np.float32),
            normalize(mr, "mr") if "mr" in self.channels else None,
            mr,
            batch,
        )
        values = class_values(self.structures).astype(label_dtype(self.structures))[classes]
        labels = mr.with_array(values, modality="labels")
        labels.meta = {"source": mr.meta.get("path", ""), "label_names": self.label_names()}
        return labels

    def label_names(self) -> dict[str, int]:
        """``{structure: written value}``."""
        return {s.name: s.value for s in self.structures}

    def describe(self, run: str | Path = "") -> dict[str, Any]:
        """What ``labels.json`` holds: the written values and the reference values of each structure."""
        return {
            "labels": self.label_names(),
            "structures": [s.to_dict() for s in self.structures],
            "segment_run": str(Path(run).resolve()) if run else "",
            "step": self.step,
        }


def predict(
    run: str | Path,
    inputs: Iterable[str | Path],
    out: str | Path,
    cyclegan: str | Path | None = None,
    batch: int = 8,
    device: str = "auto",
    amp: str = "auto",
    ct_out: str | Path | None = None,
    fmt: str = "nii.gz",
    force: bool = False,
    progress: bool = True,
) -> list[Path]:
    """Segment every MR in ``inputs`` (files or folders) into ``out/<id>.<fmt>``; returns the files written.

    G_CT comes from ``cyclegan`` (a CycleGAN run, checkpoint, or exported G_CT ``.onnx``), by
    default the run the segmentation network was trained with. ``ct_out`` also keeps the
    synthetic CTs (in HU).
    """
    segmenter = Segmenter.load(run, device, amp)
    if not cyclegan and not segmenter.meta.get("cyclegan"):
        raise ImtransError(
            f"SEGRUN {run}: a CT-only segmenter; pass --cyclegan MODEL (any run, checkpoint or .onnx that translates MR to CT)"
        )
    model = Path(cyclegan) if cyclegan else Path(segmenter.meta.get("cyclegan", ""))
    if not cyclegan and not model.exists():
        raise ImtransError(
            f"SEGRUN {run}: its CycleGAN run {model} is gone; pass --cyclegan RUN (a run, checkpoint or G_CT .onnx)"
        )
    g_ct = make_backend(model, "mr2ct", "auto", device, amp)
    jobs = plan_jobs(inputs, out, fmt)
    written = []
    console = Console(stderr=True)
    for job in track(jobs, description="segment", disable=not progress, console=console, transient=True):
        mr = read_volume(job.input)
        check_source(mr, "mr", str(job.input), strict=not force)
        synthetic_ct = translate_volume(mr, g_ct, batch)
        write_volume(segmenter.segment(mr, synthetic_ct, batch), job.output)
        if ct_out is not None:
            write_volume(synthetic_ct, Path(ct_out) / job.output.name)
        written.append(job.output)
    write_json(Path(out) / LABELS_JSON, segmenter.describe(run))
    return written


def read_labels_json(folder: Path) -> dict[str, Any] | None:
    """``labels.json`` written by :func:`predict` in ``folder``, or None."""
    path = Path(folder) / LABELS_JSON
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except ValueError:
        raise ImtransError(f"{path}: damaged (not JSON); predict again or pass --structures") from None
    if not isinstance(data, dict):
        raise ImtransError(f"{path}: expected a JSON object; predict again or pass --structures")
    return data


def structures_from_labels_json(data: dict[str, Any], where: str) -> tuple[list[Structure], set[int]]:
    """The scored structures and the set of values a prediction may hold, from ``labels.json``."""
    try:
        if "structures" in data:
            structures = [Structure.from_dict(s) for s in data["structures"]]
        else:
            names = data.get("labels", data)
            structures = [Structure(str(k), (int(v),)) for k, v in names.items()]
        written = {int(v) for v in data.get("labels", {s.name: s.value for s in structures}).values()}
    except (KeyError, TypeError, ValueError):
        raise ImtransError(
            f"{where}: cannot read the structures in it; pass --structures name:values,..."
        ) from None
    return structures, written
