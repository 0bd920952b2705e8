"""Is this volume the modality the model translates from? (:func:`check_source`)

An explicit modality tag that contradicts the model (a DICOM series tagged CT given to
``mr2ct``) is an error, because tags are reliable; intensities that merely *look* wrong only
warn, since preprocessing can leave legitimate MR with negative values.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..data.io import subsample
from ..data.volume import Volume
from ..errors import ImtransError, ImtransWarning

# An MR has (almost) nothing below this; a CT in HU has all its air there.
CT_AIR_BELOW = -500.0


# The share of voxels below CT_AIR_BELOW above which an "MR" is taken for a CT (a few interpolation
# undershoots at edges of a preprocessed MR stay far below it).
CT_AIR_SHARE = 0.01


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
    sample = subsample(volume.array, 1_000_000)
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
