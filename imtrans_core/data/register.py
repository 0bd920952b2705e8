"""Register a CT onto its MR: the ground truth of paired evaluation.

The paper's ground-truth CT is "a CT registered to the MR of the same patient ... aligned using
landmark-based registration as initialization, and then aligned using rigid and non-rigid
registration" (§3.1). Without landmarks, here (SimpleITK):

1. rigid: ``Euler3DTransform`` started by ``CenteredTransformInitializer`` (the image centres, or
   their centres of mass with ``init="moments"``), Mattes mutual information (CT and MR
   intensities are related, not equal), regular-step gradient descent, three resolution levels
   (shrink 4, 2, 1; smoothing 2, 1, 0 mm);
2. B-spline (optional): a cubic ``BSplineTransformInitializer`` grid of ``mesh`` control-point
   intervals per axis over the MR, L-BFGS-B on Mattes MI, two levels, on top of the rigid result.

The CT is then resampled onto the MR's grid (linear; -1024 HU, air, outside the CT) and the
transform, which maps MR (fixed) points to CT (moving) points, can be written with
``sitk.WriteTransform``. Sampling is random with a fixed seed (never ITK's 0, which means the wall clock).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import ImtransError
from .intensity import CT_PADDING
from .io import from_sitk, to_sitk
from .volume import Volume

INITIALIZERS = {
    "geometry": sitk.CenteredTransformInitializerFilter.GEOMETRY,
    "moments": sitk.CenteredTransformInitializerFilter.MOMENTS,
}


def register_ct_to_mr(
    fixed: Volume,
    moving: Volume,
    bspline: bool = True,
    mesh: int = 6,
    rigid_iterations: int = 200,
    bspline_iterations: int = 50,
    bins: int = 50,
    sampling: float = 0.1,
    shrink: tuple[int, ...] = (4, 2, 1),
    init: str = "geometry",
    default: float = CT_PADDING,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> tuple[Volume, sitk.Transform]:
    """The CT ``moving`` registered and resampled onto the MR ``fixed``'s grid, and the transform.

    ``mesh``: B-spline control-point intervals per axis; ``sampling``: the fraction of voxels
    Mattes MI samples per iteration; ``shrink``: the rigid stage's resolution levels.
    ``progress(line)`` hears about each new level and the final metric values. The output keeps
    an integer CT's dtype (rounded) and is float32 otherwise; its modality is ``ct``.
    """
    if init not in INITIALIZERS:
        raise ImtransError(f"--init {init}: choose {', '.join(INITIALIZERS)}")
    if mesh < 1:
        raise ImtransError(f"--mesh {mesh}: give at least 1 control-point interval per axis")
    fixed_image = sitk.Cast(to_sitk(fixed), sitk.sitkFloat32)
    moving_image = sitk.Cast(to_sitk(moving), sitk.sitkFloat32)
    say = progress or (lambda line: None)

    rigid = sitk.Euler3DTransform(
        sitk.CenteredTransformInitializer(
            fixed_image, moving_image, sitk.Euler3DTransform(), INITIALIZERS[init]
        )
    )
    method = _method(bins, sampling, seed, shrink, "rigid", say)
    method.SetOptimizerAsRegularStepGradientDescent(
        learningRate=2.0,
        minStep=1e-3,
        numberOfIterations=rigid_iterations,
        relaxationFactor=0.5,
        gradientMagnitudeTolerance=1e-6,
    )
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetInitialTransform(rigid, inPlace=True)
    _execute(method, fixed_image, moving_image, "rigid")
    say(
        f"rigid: MI {method.GetMetricValue():.4f} after {method.GetOptimizerIteration()} iterations "
        f"({method.GetOptimizerStopConditionDescription()})"
    )
    transform: sitk.Transform = sitk.CompositeTransform([rigid])

    if bspline:
        grid = sitk.BSplineTransformInitializer(fixed_image, [mesh] * 3, order=3)
        method = _method(bins, sampling, seed, (2, 1), "b-spline", say)
        method.SetOptimizerAsLBFGSB(
            gradientConvergenceTolerance=1e-5,
            numberOfIterations=bspline_iterations,
            maximumNumberOfCorrections=5,
            maximumNumberOfFunctionEvaluations=2 * bspline_iterations,
            costFunctionConvergenceFactor=1e7,
        )
        method.SetMovingInitialTransform(rigid)
        method.SetInitialTransform(grid, inPlace=True)
        _execute(method, fixed_image, moving_image, "b-spline")
        say(f"b-spline: MI {method.GetMetricValue():.4f} after {method.GetOptimizerIteration()} iterations")
        transform = sitk.CompositeTransform([rigid, grid])  # applied last-first: B-spline, then rigid

    return resample_moving(moving, fixed, transform, default), transform


def resample_moving(
    moving: Volume, fixed: Volume, transform: sitk.Transform, default: float = CT_PADDING
) -> Volume:
    """``moving`` seen through ``transform`` (fixed -> moving points) on ``fixed``'s grid, linearly."""
    image = sitk.Resample(
        sitk.Cast(to_sitk(moving), sitk.sitkFloat32),
        to_sitk(fixed),
        transform,
        sitk.sitkLinear,
        float(default),
        sitk.sitkFloat32,
    )
    array = from_sitk(image).array
    if np.issubdtype(moving.array.dtype, np.integer):
        info = np.iinfo(moving.array.dtype)
        array = np.clip(np.rint(array), info.min, info.max).astype(moving.array.dtype)
    out = fixed.with_array(array, modality="ct")
    out.meta = {"source": moving.meta.get("path", "")}
    return out


def write_transform(transform: sitk.Transform, path: str | Path) -> None:
    """Write the transform (``.tfm``, ``.txt`` or ``.h5``); it maps MR (fixed) points to CT points."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        sitk.WriteTransform(transform, str(path))
    except (OSError, RuntimeError) as exc:
        raise ImtransError(
            f"{path}: cannot write the transform ({str(exc).splitlines()[-1][:160]}) — "
            "name it .tfm, .txt or .h5 in a writable folder"
        ) from exc


def _method(
    bins: int, sampling: float, seed: int, shrink: tuple[int, ...], stage: str, say: Callable[[str], None]
) -> sitk.ImageRegistrationMethod:
    """Mattes MI on a random sample, multi-resolution: smoothing sigma log2(shrink) mm per level."""
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=bins)
    method.SetMetricSamplingStrategy(method.RANDOM)
    method.SetMetricSamplingPercentage(float(sampling), seed + 1)  # ITK reads seed 0 as 'the wall clock'
    method.SetInterpolator(sitk.sitkLinear)
    method.SetShrinkFactorsPerLevel(list(shrink))
    method.SetSmoothingSigmasPerLevel([float(np.log2(max(1, n))) for n in shrink])
    method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    levels = len(shrink)
    method.AddCommand(
        sitk.sitkMultiResolutionIterationEvent,
        lambda: say(f"{stage}: level {method.GetCurrentLevel() + 1}/{levels}"),
    )
    return method


def _execute(
    method: sitk.ImageRegistrationMethod, fixed: sitk.Image, moving: sitk.Image, stage: str
) -> sitk.Transform:
    try:
        return method.Execute(fixed, moving)
    except RuntimeError as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        detail = next(
            (line for line in lines if "Description" in line or "too many samples" in line.lower()),
            lines[-1] if lines else "",
        )
        raise ImtransError(
            f"{stage} registration failed ({detail[:200]}) — check that the CT and MR overlap (same patient, "
            "sensible origins), or start from --init moments"
        ) from exc
