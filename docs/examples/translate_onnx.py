"""Translate a volume with an exported imtrans generator, using only onnxruntime, numpy and SimpleITK.

    python translate_onnx.py mr2ct.onnx mr.nii.gz synthetic_ct.nii.gz [--batch 8] [--providers cpu]

Everything the model needs is in its metadata (``imtrans export`` writes it; every value is
JSON text), above all its ``input_contract``: the grid its training slices were cut from. This
script does what ``imtrans translate`` does:

1. Bring the volume onto the contract's grid: N4 first for an MR when training used it
   (``mr_n4``); unless the volume is already on such a grid (axes along the patient's, spacing
   within 2 %), a Gaussian low-pass along the axes that get coarser, then a linear resampling
   onto a patient-aligned grid with the training plane's pixel ``spacing`` and ``slice_spacing``
   between slices, from the low corner of the volume's bounding box.
2. MR: scale so that the 99.5th percentile of the voxels > 0 becomes 100 (``mr_scaling``); CT:
   HU as stored. Unless the graph holds the windows, clip to the source window, map to [-1, 1].
3. Cut slices across the trained plane in radiological display order (coronal: head up,
   patient's right on the left), run them in batches, put them back. A 2.5-D model (``context``
   k > 0) takes each slice with its k neighbours on each side as channels (the end slices
   repeated past the volume) and returns as many; each slice's predictions are averaged.
4. Map the output to the target's units (HU within [-150, 350], or MR on the [0, 100] scale) and
   resample it back onto the input's own grid, so it overlays the input in any viewer.

No imtrans import: copy this file next to a model and it runs anywhere onnxruntime does.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import onnxruntime as ort
import SimpleITK as sitk

# World axes (LPS: 0 left, 1 posterior, 2 superior) of each plane's (slice, row, column) axes,
# and whether rows / columns run against their world axis (as imtrans_core.data.slices does).
PLANES = {"coronal": (1, 2, 0), "axial": (2, 1, 0), "sagittal": (0, 2, 1)}
ROW_FLIP = {"coronal": True, "axial": False, "sagittal": True}
COL_FLIP = {"coronal": False, "axial": False, "sagittal": False}
TOLERANCE = 0.02  # relative spacing difference below which a volume is used as it is


def read_metadata(session: ort.InferenceSession) -> dict:
    return {key: json.loads(value) for key, value in session.get_modelmeta().custom_metadata_map.items()}


def direction_of(image: sitk.Image) -> np.ndarray:
    """Column v is the LPS direction of voxel axis v (SimpleITK's geometry is LPS already)."""
    return np.reshape(image.GetDirection(), (3, 3))


def axis_of(image: sitk.Image, world: int) -> int:
    """The voxel axis best aligned with LPS world axis ``world``."""
    return int(np.argmax(np.abs(direction_of(image)[world, :])))


def conform(image: sitk.Image, contract: dict, source: str) -> sitk.Image:
    """Step 1: the volume on the contract's grid (unchanged when the contract records no grid)."""
    if not contract.get("spacing"):
        return image
    if contract.get("mr_n4") and source == "mr":
        image = n4(image)
    slice_world, row_world, col_world = PLANES[contract["orientation"]]
    wanted = np.empty(3)
    wanted[[slice_world, row_world, col_world]] = [
        contract.get("slice_spacing") or image.GetSpacing()[axis_of(image, slice_world)],
        *contract["spacing"],
    ]
    have = np.array([image.GetSpacing()[axis_of(image, w)] for w in range(3)])
    aligned = np.allclose(np.abs(direction_of(image)).max(axis=0), 1.0, atol=1e-6)
    if aligned and np.all(np.abs(have / wanted - 1) <= TOLERANCE):
        return image
    sigma = np.zeros(3)  # mm, per voxel axis: (factor - 1) / 2 voxels where the grid gets coarser
    for world in range(3):
        axis = axis_of(image, world)
        spacing = image.GetSpacing()[axis]
        sigma[axis] = max(0.0, (wanted[world] / spacing - 1) / 2) * spacing
    if np.any(sigma > 0):
        image = sitk.DiscreteGaussian(image, [float(s) ** 2 for s in sigma], 64, 0.01, True)
    size = np.array(image.GetSize()) - 1
    corners = np.array([[a, b, c] for a in (0, size[0]) for b in (0, size[1]) for c in (0, size[2])], float)
    world = corners @ (direction_of(image) @ np.diag(image.GetSpacing())).T + np.array(image.GetOrigin())
    low, high = world.min(axis=0), world.max(axis=0)
    shape = np.ceil((high - low) / wanted - 1e-6).astype(int) + 1
    grid = sitk.Image([int(n) for n in shape], sitk.sitkUInt8)
    grid.SetSpacing([float(s) for s in wanted])
    grid.SetOrigin([float(o) for o in low])
    grid.SetDirection(np.eye(3).ravel().tolist())
    padding = -1024.0 if source == "ct" else 0.0  # air
    return sitk.Resample(image, grid, sitk.Transform(), sitk.sitkLinear, padding)


def n4(image: sitk.Image) -> sitk.Image:
    """N4 bias correction as ``imtrans data prepare`` does it: fitted on a 4x shrunken copy inside Otsu's foreground."""
    factors = [max(1, min(4, n // 4)) for n in image.GetSize()]
    mask = sitk.OtsuThreshold(image, 0, 1, 200) & (image > 0)
    corrector = sitk.N4BiasFieldCorrectionImageFilter()
    corrector.SetMaximumNumberOfIterations([50, 50, 30, 20])
    corrector.Execute(sitk.Shrink(image, factors), sitk.Shrink(mask, factors))
    return sitk.Cast(image / sitk.Exp(corrector.GetLogBiasFieldAsImage(image)), sitk.sitkFloat32)


def plane_of(image: sitk.Image, orientation: str) -> tuple[tuple[int, int, int], tuple[bool, bool]]:
    """Voxel axes of (slice, row, column) and the row / column flips."""
    direction = direction_of(image)
    worlds = PLANES[orientation]
    axes = tuple(axis_of(image, w) for w in worlds)
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


def run_slices(session: ort.InferenceSession, stack: np.ndarray, context: int, batch: int) -> np.ndarray:
    """Step 3: every slice through the graph, with ``context`` neighbours each side; predictions averaged."""
    name_in, name_out = session.get_inputs()[0].name, session.get_outputs()[0].name
    n, offsets = len(stack), np.arange(-context, context + 1)
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
    return total / counts[:, None, None]


def translate(session: ort.InferenceSession, meta: dict, image: sitk.Image, batch: int = 8) -> sitk.Image:
    """The translated volume (float32) on ``image``'s own grid."""
    contract = meta.get("input_contract") or {"orientation": meta["orientation"]}
    grid = conform(sitk.Cast(image, sitk.sitkFloat32), contract, meta["source"])
    data = sitk.GetArrayFromImage(grid).transpose(2, 1, 0)  # [i, j, k] voxel order
    if meta["source"] == "mr":
        scaling = meta["mr_scaling"]
        foreground = data[data > 0]
        if foreground.size == 0:
            raise SystemExit("the MR volume has no voxel above 0")
        data = data * (scaling["target"] / float(np.percentile(foreground, scaling["percentile"])))
    in_graph = meta["intensity_in_graph"]
    values = data if in_graph else to_unit(data, meta["source_window"])
    axes, flips = plane_of(grid, meta["orientation"])
    out = run_slices(session, to_slices(values, axes, flips), int(contract.get("context", 0)), batch)
    result = out if in_graph else from_unit(out, meta["target_window"])
    volume = np.ascontiguousarray(from_slices(result, axes, flips), dtype=np.float32)
    translated = sitk.GetImageFromArray(volume.transpose(2, 1, 0))
    translated.CopyInformation(grid)
    if grid is image or _same_grid(grid, image):
        return translated
    low = float(meta["target_window"][0])
    return sitk.Resample(translated, image, sitk.Transform(), sitk.sitkLinear, low, sitk.sitkFloat32)


def _same_grid(a: sitk.Image, b: sitk.Image) -> bool:
    return (
        a.GetSize() == b.GetSize()
        and np.allclose(a.GetSpacing(), b.GetSpacing(), atol=1e-4)
        and np.allclose(a.GetOrigin(), b.GetOrigin(), atol=1e-4)
        and np.allclose(a.GetDirection(), b.GetDirection(), atol=1e-4)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Translate a volume with an imtrans ONNX model.")
    parser.add_argument("model", help="ONNX file written by `imtrans export`")
    parser.add_argument("input", help="input volume (.nii, .nii.gz, .mha, .nrrd, ...)")
    parser.add_argument("output", help="output volume (its suffix picks the format)")
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
    image = sitk.ReadImage(args.input)
    if image.GetDimension() == 4 and image.GetSize()[3] == 1:  # a 4-D file with one time point
        image = image[:, :, :, 0]
    sitk.WriteImage(translate(session, meta, image, args.batch), args.output, useCompression=True)
    low, high = meta["target_window"]
    print(
        f"{args.input} -> {args.output}: {meta['direction']} on {session.get_providers()[0]}, "
        f"{meta['target'].upper()} within [{low:g}, {high:g}]"
    )


if __name__ == "__main__":
    main()
