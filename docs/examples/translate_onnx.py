"""Translate a NIfTI volume with an exported imtrans generator, using only onnxruntime, numpy and nibabel.

    python translate_onnx.py mr2ct.onnx mr.nii.gz synthetic_ct.nii.gz [--batch 8] [--providers cpu]

Everything the model needs is in its metadata (``imtrans export`` writes it; every
value is JSON text): the direction and modalities, the slicing ``orientation``, the
windows, the MR scaling, and whether the windows are inside the graph
(``intensity_in_graph``). This script does what ``imtrans translate`` does:

1. MR in: scale the volume so that the 99.5th percentile of its voxels > 0 becomes 100
   (``mr_scaling``); CT in: HU as stored.
2. Unless the graph holds the windows, clip to the source window and map it to [-1, 1].
3. Cut the volume into slices across the trained plane, in radiological display order
   (coronal: head up, patient's right on the left), run them in batches, put them back.
   A 2.5-D model (``context`` k > 0) takes each slice with its k neighbours on each side as
   channels (the end slices repeated past the volume) and returns as many; every slice's
   predictions from the stacks that hold it are averaged.
4. Map the output to the target's units (HU within [-150, 350], or MR on the [0, 100] scale)
   and write it on the input's grid (same affine), so it overlays the input in any viewer.

No imtrans import: copy this file next to a model and it runs anywhere onnxruntime does.
"""

from __future__ import annotations

import argparse
import json

import nibabel as nib
import numpy as np
import onnxruntime as ort

# World axes (LPS: 0 left, 1 posterior, 2 superior) of each plane's (slice, row, column) axes,
# and whether rows / columns run against their world axis (as imtrans_core.slices does).
PLANES = {"coronal": (1, 2, 0), "axial": (2, 1, 0), "sagittal": (0, 2, 1)}
ROW_FLIP = {"coronal": True, "axial": False, "sagittal": True}
COL_FLIP = {"coronal": False, "axial": False, "sagittal": False}


def read_metadata(session: ort.InferenceSession) -> dict:
    return {key: json.loads(value) for key, value in session.get_modelmeta().custom_metadata_map.items()}


def plane_of(affine: np.ndarray, orientation: str) -> tuple[tuple[int, int, int], tuple[bool, bool]]:
    """Voxel axes of (slice, row, column) and the row / column flips, from a NIfTI (RAS) affine."""
    lps = np.diag([-1.0, -1.0, 1.0]) @ np.asarray(affine, dtype=np.float64)[:3, :3]
    spacing = np.linalg.norm(lps, axis=0)
    direction = lps / np.where(spacing == 0, 1.0, spacing)
    worlds = PLANES[orientation]
    axes = tuple(int(np.argmax(np.abs(direction[w, :]))) for w in worlds)
    if len(set(axes)) != 3:  # strongly oblique: keep the slice axis, voxel order for the rest
        axes = (axes[0], *[a for a in range(3) if a != axes[0]])
    signs = [np.sign(direction[w, a]) or 1.0 for w, a in zip(worlds[1:], axes[1:], strict=True)]
    flips = (bool((signs[0] > 0) == ROW_FLIP[orientation]), bool((signs[1] > 0) == COL_FLIP[orientation]))
    return axes, flips


def to_slices(array: np.ndarray, axes: tuple[int, int, int], flips: tuple[bool, bool]) -> np.ndarray:
    stack = np.transpose(array, axes)
    if flips[0]:
        stack = stack[:, ::-1, :]
    if flips[1]:
        stack = stack[:, :, ::-1]
    return stack


def from_slices(stack: np.ndarray, axes: tuple[int, int, int], flips: tuple[bool, bool]) -> np.ndarray:
    if flips[1]:
        stack = stack[:, :, ::-1]
    if flips[0]:
        stack = stack[:, ::-1, :]
    return np.transpose(stack, np.argsort(axes))


def to_unit(x: np.ndarray, window: list[float]) -> np.ndarray:
    """Clip to the window and map it linearly to [-1, 1]."""
    low, high = window
    return (np.clip(x, low, high) - low) * (2.0 / (high - low)) - 1.0


def from_unit(y: np.ndarray, window: list[float]) -> np.ndarray:
    low, high = window
    return (np.clip(y, -1.0, 1.0) + 1.0) * ((high - low) / 2.0) + low


def translate(
    session: ort.InferenceSession, meta: dict, data: np.ndarray, affine: np.ndarray, batch: int = 8
) -> np.ndarray:
    """The translated volume (float32) on the input's voxel grid."""
    data = np.asarray(data, dtype=np.float32)
    if meta["source"] == "mr":
        scaling = meta["mr_scaling"]
        foreground = data[data > 0]
        if foreground.size == 0:
            raise SystemExit("the MR volume has no voxel above 0")
        data = data * (scaling["target"] / float(np.percentile(foreground, scaling["percentile"])))
    in_graph = meta["intensity_in_graph"]
    values = data if in_graph else to_unit(data, meta["source_window"])
    axes, flips = plane_of(affine, meta["orientation"])
    stack = to_slices(values, axes, flips)
    name_in, name_out = session.get_inputs()[0].name, session.get_outputs()[0].name
    n, k = len(stack), int(meta.get("context", 0))
    offsets = np.arange(-k, k + 1)
    total = np.zeros(stack.shape, dtype=np.float32)
    counts = np.zeros(n, dtype=np.float32)
    for start in range(0, n, batch):
        centres = np.arange(start, min(start + batch, n))
        rows = np.clip(centres[:, None] + offsets, 0, n - 1)
        chunk = np.ascontiguousarray(stack[rows], dtype=np.float32)  # (N, 2k + 1, H, W)
        result = session.run([name_out], {name_in: chunk})[0]
        for channel, offset in enumerate(offsets):  # channel c predicts slice centre + c - k
            target = centres + offset
            inside = (target >= 0) & (target < n)
            total[target[inside]] += result[inside, channel]
            counts[target[inside]] += 1
    out = total / counts[:, None, None]
    result = out if in_graph else from_unit(out, meta["target_window"])
    return np.ascontiguousarray(from_slices(result, axes, flips), dtype=np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description="Translate a NIfTI volume with an imtrans ONNX model.")
    parser.add_argument("model", help="ONNX file written by `imtrans export`")
    parser.add_argument("input", help="input volume (.nii or .nii.gz)")
    parser.add_argument("output", help="output volume (.nii or .nii.gz)")
    parser.add_argument("--batch", type=int, default=8, help="slices per run (default 8)")
    parser.add_argument(
        "--providers",
        default="cpu",
        help="comma-separated onnxruntime providers, e.g. cuda,cpu (default cpu)",
    )
    args = parser.parse_args()

    names = {
        "cpu": "CPUExecutionProvider",
        "cuda": "CUDAExecutionProvider",
        "tensorrt": "TensorrtExecutionProvider",
    }
    providers = [names.get(p.strip().lower(), p.strip()) for p in args.providers.split(",")]
    session = ort.InferenceSession(args.model, providers=providers)
    meta = read_metadata(session)
    image = nib.load(args.input)
    array = np.asanyarray(image.dataobj)
    while array.ndim > 3 and array.shape[-1] == 1:  # a 4-D file with one time point
        array = array[..., 0]
    result = translate(session, meta, array, image.affine, args.batch)
    output = nib.Nifti1Image(result, image.affine)
    output.set_sform(image.affine, code=1)
    output.set_qform(image.affine, code=1)
    output.header.set_xyzt_units("mm")
    nib.save(output, args.output)
    low, high = meta["target_window"]
    print(
        f"{args.input} -> {args.output}: {meta['direction']} on {session.get_providers()[0]}, "
        f"{meta['target'].upper()} within [{low:g}, {high:g}]"
    )


if __name__ == "__main__":
    main()
