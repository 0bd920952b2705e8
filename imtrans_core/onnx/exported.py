"""An exported generator, whatever runs it: its ``.onnx`` file, metadata and intensity windows.

``imtrans export`` writes one ONNX file whose ``metadata_props`` say what the
graph does (direction, modalities, slicing plane, precision, windows; see
:mod:`imtrans_core.onnx.export`). onnxruntime (:mod:`.runtime`) and OpenVINO
(:mod:`.openvino`) both run that file; :class:`ExportedGenerator` is
what they share: the metadata read once, and the translation backend protocol
(``(N, C, H, W)`` float32 in [-1, 1] in, the same out; C = 2 context + 1) around the runtime's
own :meth:`~ExportedGenerator.run`.

A model exported ``--with-intensity`` takes raw intensities (MR in scaled units,
CT in HU) and returns the target modality's units; the backend still speaks
[-1, 1] to its caller: it maps the batch back to the source's units through the
source window, runs the graph, and maps the output through the target window.
Both windows are linear and the graph's own clipping is then a no-op, so this
equals the plain graph up to float rounding.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

from ..data.contract import InputContract
from ..data.intensity import Window
from ..errors import ImtransError


def decode_metadata(props: dict[str, str]) -> dict[str, Any]:
    """``metadata_props`` values are JSON text; strings that are not JSON are kept as they are."""
    out: dict[str, Any] = {}
    for key, text in props.items():
        try:
            out[key] = json.loads(text)
        except (TypeError, ValueError):
            out[key] = text
    return out


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The decoded ``metadata_props`` of an ONNX file (the weights are not loaded)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return decode_metadata({p.key: p.value for p in model.metadata_props})


def check_onnx_file(path: Path) -> None:
    """A one-line error unless ``path`` is a file that starts like an ONNX model."""
    if not path.is_file():
        raise ImtransError(f"{path}: no such ONNX model file")
    with open(path, "rb") as handle:
        head = handle.read(64)
    if head[:1] != b"\x08":  # an ONNX ModelProto starts with its ir_version field (tag 1, varint)
        raise ImtransError(f"{path}: not an ONNX model — give a file written by `imtrans export`")


class ExportedGenerator(ABC):
    """A translation backend on an exported generator; subclasses say how the graph runs (:meth:`run`)."""

    def __init__(self, metadata: dict[str, Any], path: Path | None = None):
        self.metadata = metadata
        self.path = path
        missing = [k for k in ("direction", "source", "target", "orientation") if k not in metadata]
        if missing:
            raise ImtransError(
                f"{path or 'the model'}: no imtrans metadata ({', '.join(missing)} missing) — export the "
                "model with `imtrans export`"
            )
        self.direction: str = metadata["direction"]
        self.source: str = metadata["source"]
        self.target: str = metadata["target"]
        self.orientation: str = metadata["orientation"]
        self.contract = InputContract.from_dict(
            metadata.get("input_contract") or {"orientation": self.orientation}
        )
        self.context = self.contract.context  # 2.5-D: neighbours each side of a slice
        self.precision: str = metadata.get("precision", "fp32")
        self.intensity_in_graph: bool = bool(metadata.get("intensity_in_graph", False))
        self.source_window = Window(*metadata.get("source_window", (-1.0, 1.0)))
        self.target_window = Window(*metadata.get("target_window", (-1.0, 1.0)))

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """``(N, C, H, W)`` in [-1, 1] -> the translation, same shape, in [-1, 1] (C = 2 context + 1)."""
        x = np.ascontiguousarray(batch, dtype=np.float32)
        channels = 2 * self.context + 1
        if x.ndim != 4 or x.shape[1] != channels:
            raise ImtransError(
                f"{type(self).__name__} takes (N, {channels}, H, W) batches, got shape {x.shape}"
            )
        if not self.intensity_in_graph:
            return self.run(x)
        raw = self.source_window.inverse(x)  # source units: MR after scaling, or HU
        return self.target_window.forward(self.run(raw.astype(np.float32))).astype(np.float32)

    @abstractmethod
    def run(self, x: np.ndarray) -> np.ndarray:
        """The graph as exported: its own input and output units (see ``metadata['input_layout']``)."""
