"""Translate volumes with a trained generator: volume in, volume out, same grid, values back in HU.

The networks are 2-D (Hiasa et al. 2018, §2.3), so a volume is cut into slices across the
plane the model was trained on (``orientation`` in its config, coronal by default), the slices
go through the generator in batches, and the stack is put back with :func:`slices.from_slices`,
the exact inverse of the cut (:func:`translate_volume`). The output is ``volume.with_array(...)``:
shape, spacing, origin and direction are the input's, so the translation overlays its input in
any viewer. :func:`translate_on_grid` (what ``imtrans translate`` runs) first brings the volume
onto the grid the model was trained on, its input contract (:mod:`.contract`), and the result
back onto the input's grid.

Intensities follow the training windows (:mod:`.intensity`):

* ``mr2ct`` (G_CT): the MR is scaled per volume (robust percentile -> 100) and windowed to
  [-1, 1]; the output is mapped back with ``CT_WINDOW.inverse``. A synthetic CT therefore lives
  **within [-150, 350] HU**, the paper's window (§2.2): air, lung and cortical bone, which lie
  outside it, come out at the window's bounds (-150 and 350 HU). Compare it with a real CT on
  the paper's scale (``imtrans evaluate``), where the real CT is clipped the same way.
* ``ct2mr`` (G_MR): the CT is windowed to [-1, 1]; the output is put on the [0, 100] MR scale
  (``MR_WINDOW.inverse``). No source MR exists to borrow a scale from, so this is the scale
  every training MR was normalised to.

What runs the network is a *backend*: any object with ``direction``, ``source``, ``target``
and ``orientation`` attributes that maps a float32 batch ``(N, C, H, W)`` in [-1, 1] to one of
the same shape. C is 1, or for a 2.5-D model (one trained with ``--context k``, which the
backend's ``context`` attribute says) each slice with its k neighbours on each side, C = 2k + 1:
every slice is then predicted in each of the 2k + 1 stacks that hold it, and those predictions
are averaged, which smooths what a single 2-D pass leaves as stripes across slices. A backend's
``contract`` (:class:`~.contract.InputContract`) says what grid its inputs should be on.
:class:`TorchBackend` runs a checkpoint with PyTorch;
``imtrans_core.onnx.runtime.OnnxBackend`` (``OnnxBackend.from_file(path, device=...)``) and
``imtrans_core.onnx.openvino.OpenVinoBackend`` run an exported ``.onnx`` file and read the
same four attributes from its metadata. :func:`make_backend` picks one for a MODEL argument.

A model fed the wrong modality (see :func:`check_source`): an explicit modality tag that
contradicts the model (a DICOM series tagged CT given to ``mr2ct``) is an error, because tags are
reliable; intensities that merely *look* wrong only warn, since preprocessing can leave
legitimate MR with negative values.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np

from ..choices import BACKENDS, OUTPUT_FORMATS
from ..data.contract import InputContract, conform, restore
from ..data.intensity import CT_WINDOW, MR_WINDOW
from ..data.io import list_volumes, read_volume, volume_id, write_volume
from ..data.slices import Plane, from_slices, normalize, to_slices, window_indices
from ..data.volume import Volume
from ..errors import ImtransError, ImtransWarning
from .models import DIRECTIONS

# An MR has (almost) nothing below this; a CT in HU has all its air there.
CT_AIR_BELOW = -500.0
# The share of voxels below CT_AIR_BELOW above which an "MR" is taken for a CT (a few interpolation
# undershoots at edges of a preprocessed MR stay far below it).
CT_AIR_SHARE = 0.01


@runtime_checkable
class Backend(Protocol):
    """Runs one generator: ``(N, C, H, W)`` float32 in [-1, 1] -> the same shape, [-1, 1].

    ``direction`` is ``mr2ct`` or ``ct2mr``; ``source`` / ``target`` the modalities in and out
    (``mr``/``ct``); ``orientation`` the slicing plane the model was trained on. A 2.5-D
    backend also has ``context`` (neighbours on each side; C = 2 context + 1); without it, 0.
    """

    direction: str
    source: str
    target: str
    orientation: str

    def __call__(self, batch: np.ndarray) -> np.ndarray: ...


class TorchBackend:
    """A generator run by PyTorch under ``torch.inference_mode`` and, optionally, autocast.

    ``amp``: ``off`` (fp32), ``bf16`` (3-4x faster on CPUs with AMX; on a full ResNet-9 volume
    it differed from fp32 by 2.5 HU on average, 20 HU at worst), ``fp16`` (CUDA only) or ``auto``.
    """

    def __init__(
        self,
        net: Any,
        direction: str = "mr2ct",
        orientation: str = "coronal",
        device: Any = "cpu",
        amp: str = "off",
        compile_net: bool = False,
        contract: InputContract | None = None,
    ):
        import torch

        from ..training.distributed import pick_device
        from ..training.precision import resolve_amp

        if direction not in DIRECTIONS:
            raise ImtransError(f"--direction {direction}: choose mr2ct or ct2mr")
        self.direction = direction
        _, self.source, self.target = DIRECTIONS[direction]
        self.orientation = orientation
        self.contract = contract or InputContract(orientation)  # without a recorded grid: slices as given
        self.context = self.contract.context
        named = isinstance(device, str) and device in ("auto", "cpu", "cuda")
        self.device = pick_device(device) if named else torch.device(device)
        self.amp = resolve_amp(amp, self.device)
        self.net = net.to(self.device).eval()
        if compile_net:  # compiled once per process (~30 s on a CPU); with bf16 the fastest CPU path
            self.net = torch.compile(self.net)

    @classmethod
    def from_model(
        cls,
        model: str | Path,
        direction: str = "mr2ct",
        device: str = "auto",
        amp: str = "off",
        compile_net: bool = False,
    ) -> TorchBackend:
        """G_CT (``mr2ct``) or G_MR (``ct2mr``) of a run directory or checkpoint file."""
        from ..training.distributed import pick_device
        from .models import load_generator

        target = pick_device(device)
        generator = load_generator(Path(model), direction, device=str(target))
        return cls(
            generator.net, direction, generator.orientation, target, amp, compile_net, generator.contract
        )

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        import torch

        from ..training.precision import autocast

        with torch.inference_mode(), autocast(self.device, self.amp):
            x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)
            y = self.net(x)
        return y.float().cpu().numpy()

    def __repr__(self) -> str:
        amp = "fp32" if self.amp is None else str(self.amp).replace("torch.", "")
        return f"TorchBackend({self.direction}, {self.orientation}, {self.device}, {amp})"


def make_backend(
    model: str | Path,
    direction: str | None = None,
    backend: str = "auto",
    device: str = "auto",
    amp: str = "off",
    compile_net: bool = False,
    precision: str = "auto",
) -> Backend:
    """The backend for a MODEL argument: a run directory or checkpoint (torch), or an ``.onnx`` file.

    ``backend="auto"`` means torch for a run or checkpoint; for a file ending in ``.onnx``,
    OpenVINO when it is installed and the model runs on the CPU, else onnxruntime.
    ``direction`` defaults to ``mr2ct`` for torch and to the exported direction for ONNX (a
    different one is an error: an ONNX file holds one generator). ``precision`` is OpenVINO's
    (``auto``, ``bf16``, ``f32``); ``amp`` and ``compile_net`` are torch's.
    """
    if backend not in BACKENDS:
        raise ImtransError(f"--backend {backend}: choose {', '.join(BACKENDS)}")
    model = Path(model)
    is_onnx = model.name.lower().endswith(".onnx")
    if backend == "auto" and is_onnx:
        backend = "openvino" if _openvino_fits(device) else "onnx"
    if backend in ("onnx", "openvino"):
        if compile_net:
            raise ImtransError("--compile applies to the torch backend only; an ONNX model runs as exported")
        if amp not in ("off", "auto"):
            warnings.warn(
                f"--amp {amp} applies to the torch backend only; for ONNX see --precision (OpenVINO)",
                ImtransWarning,
                stacklevel=2,
            )
        runner = (
            _openvino_backend(model, precision)
            if backend == "openvino"
            else _onnx_backend(model, device, precision)
        )
        return _check_direction(runner, model, direction)
    if is_onnx:
        raise ImtransError(f"{model}: an ONNX file needs --backend onnx, openvino or auto, not torch")
    if precision != "auto":
        raise ImtransError("--precision applies to the openvino backend; for torch use --amp")
    return TorchBackend.from_model(model, direction or "mr2ct", device, amp, compile_net)


def _openvino_fits(device: str) -> bool:
    """OpenVINO for an ONNX file: installed, and the model is to run on the CPU."""
    from ..onnx.openvino import available

    if device == "cuda" or not available():
        return False
    from ..onnx.runtime import gpu_count

    return device == "cpu" or gpu_count() == 0


def _openvino_backend(model: Path, precision: str) -> Backend:
    from ..onnx.openvino import OpenVinoBackend

    return OpenVinoBackend.from_file(model, precision)


def _onnx_backend(model: Path, device: str, precision: str) -> Backend:
    if precision != "auto":
        raise ImtransError(
            "--precision applies to the openvino backend; onnxruntime runs the file as exported"
        )
    try:
        from ..onnx.runtime import OnnxBackend  # type: ignore[import-not-found]
    except ImportError as exc:
        raise ImtransError(
            f"onnx backend not available ({exc}) — install onnxruntime, or use --backend torch with the run directory"
        ) from exc
    if not model.is_file():
        raise ImtransError(f"{model}: no such ONNX file — export one with `imtrans export`")
    return OnnxBackend.from_file(model, device=device)


def _check_direction(runner: Backend, model: Path, direction: str | None) -> Backend:
    if direction is not None and direction != runner.direction:
        raise ImtransError(
            f"{model}: this ONNX file is the {runner.direction} generator, not {direction} — "
            f"drop --direction or export the {direction} generator"
        )
    return runner


def check_source(volume: Volume, source: str, name: str = "", strict: bool = True) -> None:
    """Refuse (or warn about) a volume that is not the modality the model translates from.

    * A modality tag (``volume.modality``, e.g. from a DICOM series' Modality) that contradicts
      ``source`` is an :class:`ImtransError`, or only a warning with ``strict=False``.
    * Intensities: an "MR" with more than 1 % of its voxels below -500 looks like a CT in HU
      (its air); a "CT" without a single negative value looks like an MR (or a CT whose rescale
      intercept was never applied). These only warn: N4 and resampling can leave a few negative
      values in a legitimate MR, and the user may know better.
    """
    name = name or volume.meta.get("path", "input volume")
    other = {"ct": "ct2mr", "mr": "mr2ct"}  # the direction that translates from the tagged modality
    tag = volume.modality
    if tag in ("ct", "mr") and tag != source:
        message = (
            f"{name}: is tagged {tag.upper()} but the model translates {source.upper()} -> "
            f"{'CT' if source == 'mr' else 'MR'} — pass --direction {other[tag]} (or --force if the tag is wrong)"
        )
        if strict:
            raise ImtransError(message)
        warnings.warn(message, ImtransWarning, stacklevel=2)
        return
    sample = _subsample(volume.array)
    if source == "mr":
        share = float(np.mean(sample < CT_AIR_BELOW))
        if share > CT_AIR_SHARE:
            warnings.warn(
                f"{name}: {share:.0%} of its voxels are below {CT_AIR_BELOW:g} (min {float(sample.min()):g}), "
                "like the air of a CT in HU, but the model expects an MR — if it is a CT, pass --direction ct2mr",
                ImtransWarning,
                stacklevel=2,
            )
    elif float(volume.array.min()) >= 0:
        warnings.warn(
            f"{name}: no negative values (min {float(volume.array.min()):g}), so no air or fat in HU, but the model "
            "expects a CT in HU — if it is an MR, pass --direction mr2ct; if a CT, apply its rescale intercept",
            ImtransWarning,
            stacklevel=2,
        )


def translate_volume(
    volume: Volume, backend: Backend, batch: int = 8, progress: Callable[[int], None] | None = None
) -> Volume:
    """``volume`` translated by ``backend`` slice by slice, on exactly the input's grid.

    The output is float32: HU within [-150, 350] for a synthetic CT, the [0, 100] MR scale for a
    synthetic MR; its modality is the backend's target. A 2.5-D backend's predictions of each
    slice (one per stack holding it) are averaged. ``progress(n)`` is called after each batch
    with the number of slices done in it.
    """
    if batch < 1:
        raise ImtransError(f"--batch {batch}: give at least 1")
    plane = Plane.of(volume, backend.orientation)
    stack = to_slices(normalize(volume, backend.source), plane)  # (n, rows, cols), [-1, 1]
    context = int(getattr(backend, "context", 0))
    n = stack.shape[0]
    total = np.zeros(stack.shape, dtype=np.float32)  # the sum of each slice's predictions
    counts = np.zeros(n, dtype=np.float32)
    for start in range(0, n, batch):
        centres = np.arange(start, min(start + batch, n))
        rows = window_indices(n, centres, context)  # (N, C): the slices of each stack
        chunk = np.ascontiguousarray(stack[rows], dtype=np.float32)  # (N, C, H, W)
        result = np.asarray(backend(chunk))
        if result.shape != chunk.shape:
            raise ImtransError(
                f"the model returned shape {result.shape} for a batch of shape {chunk.shape} — "
                "it must map (N, C, H, W) to the same shape"
            )
        for channel in range(rows.shape[1]):  # channel c of stack i predicts slice i + c - context
            target = centres + channel - context
            inside = (target >= 0) & (target < n)  # not the repeated end slices
            total[target[inside]] += result[inside, channel]
            counts[target[inside]] += 1
        if progress is not None:
            progress(len(centres))
    out = total / counts[:, None, None]
    window = CT_WINDOW if backend.target == "ct" else MR_WINDOW
    values = np.asarray(window.inverse(from_slices(out, plane)), dtype=np.float32)
    translated = volume.with_array(np.ascontiguousarray(values), modality=backend.target)
    translated.meta = {"source": volume.meta.get("path", ""), "direction": backend.direction}
    return translated


def translate_on_grid(
    volume: Volume,
    backend: Backend,
    batch: int = 8,
    progress_for: Callable[[int], Callable[[int], None] | None] | None = None,
    name: str = "",
) -> Volume:
    """``volume`` translated on the grid the model was trained on, returned on the input's own grid.

    The input is brought onto the backend's input contract (:func:`contract.conform`: N4
    where training used it, the training plane's pixel spacing, patient-aligned), translated,
    and resampled back onto exactly the input's grid; a volume already on such a grid is
    translated as it is. ``progress_for(n_slices)`` may return a per-batch progress callback.
    """
    contract = getattr(backend, "contract", None) or InputContract(backend.orientation)
    conformed = conform(volume, contract, backend.source, name)
    progress = progress_for(_slice_count(conformed, backend)) if progress_for is not None else None
    translated = translate_volume(conformed, backend, batch, progress)
    low = (CT_WINDOW if backend.target == "ct" else MR_WINDOW).low
    return restore(translated, volume, low)


# ----------------------------------------------------------------------------- files and folders


@dataclass
class Job:
    """One input volume and where its translation goes."""

    input: Path
    output: Path


def expand_inputs(inputs: Iterable[str | Path]) -> list[Path]:
    """Files as given; folders expanded to the volumes inside them (see :func:`io.list_volumes`)."""
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if not path.exists():
            raise ImtransError(f"{path}: no such file or folder — check the path")
        found.extend(list_volumes(path) if path.is_dir() else [path])  # a DICOM series folder lists itself
    if not found:
        raise ImtransError("no input volumes given")
    return found


def plan_jobs(inputs: Iterable[str | Path], out: str | Path, fmt: str = "nii.gz") -> list[Job]:
    """``OUT/<id>.<fmt>`` for every input; two inputs with one id, or an output over its input, are errors."""
    if fmt not in OUTPUT_FORMATS:
        raise ImtransError(f"--format {fmt}: choose {', '.join(OUTPUT_FORMATS)}")
    out = Path(out)
    jobs: list[Job] = []
    seen: dict[str, Path] = {}
    for path in expand_inputs(inputs):
        vid = volume_id(path)
        if vid in seen:
            raise ImtransError(
                f"{path} and {seen[vid]} would both be written to {out / vid}.{fmt} — translate them into different --out folders"
            )
        seen[vid] = path
        target = out / f"{vid}.{fmt}"
        if target.resolve() == path.resolve():
            raise ImtransError(f"{path}: the output would overwrite the input — choose another --out folder")
        jobs.append(Job(path, target))
    return jobs


class Outcome(NamedTuple):
    """What became of one job: ``written``, ``skipped`` (the output exists) or ``failed`` (``error`` says why)."""

    job: Job
    status: str
    seconds: float
    error: str = ""


def translate_files(
    jobs: list[Job],
    backend: Backend,
    batch: int = 8,
    force: bool = False,
    skip_existing: bool = False,
    on_volume: Callable[[Job, int], Callable[[int], None] | None] | None = None,
    resample: bool = True,
) -> Iterator[Outcome]:
    """Translate each job's volume and write it; yields an :class:`Outcome` after each one.

    Volumes stream one at a time (read, translate, write, release), so a folder larger than
    memory is fine. A volume that cannot be used (unreadable, the wrong modality, too thin for the network) is reported
    as ``failed`` and the others go on. ``on_volume(job, n_slices)`` may return a per-batch
    progress callback. ``resample`` (default) translates on the model's training grid
    (:func:`translate_on_grid`); without it, slices are cut from the input's own grid.
    """
    for job in jobs:
        started = time.perf_counter()
        if skip_existing and job.output.exists():
            yield Outcome(job, "skipped", 0.0)
            continue
        try:
            volume = read_volume(job.input)
            check_source(volume, backend.source, str(job.input), strict=not force)
        except ImtransError as err:
            yield Outcome(job, "failed", time.perf_counter() - started, str(err))
            continue
        progress_for = partial(on_volume, job) if on_volume is not None else None
        try:
            if resample:
                translated = translate_on_grid(volume, backend, batch, progress_for, str(job.input))
            else:
                progress = progress_for(_slice_count(volume, backend)) if progress_for is not None else None
                translated = translate_volume(volume, backend, batch, progress)
        except RuntimeError as err:  # e.g. slices thinner than the network's padding
            detail = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
            yield Outcome(
                job, "failed", time.perf_counter() - started, f"{job.input}: cannot translate it ({detail})"
            )
            continue
        del volume
        write_volume(translated, job.output)
        yield Outcome(job, "written", time.perf_counter() - started)


def _slice_count(volume: Volume, backend: Backend) -> int:
    return volume.shape[Plane.of(volume, backend.orientation).axes[0]]


def _subsample(array: np.ndarray, limit: int = 1_000_000) -> np.ndarray:
    step = max(1, int(np.ceil((array.size / limit) ** (1 / 3))))
    return np.asarray(array[::step, ::step, ::step])
