"""How the phantom's volumes are acquired: the knobs of the ``phantom`` dataset spec beyond its size.

Kept apart from the renderer so that the command line can list them (names,
ranges, help) without importing numpy's rendering code or torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from numbers import Real

from imtrans_core.api import ImtransError


def _knob(default: float, low: float, high: float, help: str) -> float:
    """A :class:`Scan` field with its accepted range and a line of help (shown by ``imtrans data phantom``)."""
    return field(default=default, metadata={"range": (low, high), "help": help})


def _count(default: int, high: int, help: str) -> int:
    """A :class:`Scan` field that takes a whole number in 0..``high``."""
    return field(default=default, metadata={"range": (0, high), "integer": True, "help": help})


def _choice(default: str, choices: tuple[str, ...], help: str) -> str:
    """A :class:`Scan` field that takes one of ``choices``."""
    return field(default=default, metadata={"choices": choices, "help": help})


def _text(value: object) -> str:
    return value if isinstance(value, str) else f"{value:g}"


@dataclass(frozen=True)
class Scan:
    """How the phantom's volumes are acquired: every knob of the ``phantom`` dataset spec beyond its size.

    The defaults are the paper's protocol where it says (a 76 mm coronal slab, a
    1.0 T spoiled gradient echo with TE 3.08 ms) and a typical scanner elsewhere.
    """

    thickness: float = _knob(
        76.0, 4.0, 320.0, "Front-to-back extent of the coronal slab, mm (256: the whole pelvis)."
    )
    ct_noise: float = _knob(1.0, 0.0, 10.0, "CT quantum noise, times the typical level (0: none).")
    ct_texture: float = _knob(
        1.0,
        0.0,
        10.0,
        "CT tissue texture and grain, times the typical level (0: each tissue flat at its mean).",
    )
    streaks: float = _knob(
        0.0, 0.0, 10.0, "CT beam-hardening and metal streaks (1: an uncorrected 120 kV scan)."
    )
    metal: float = _knob(0.0, 0.0, 1.0, "Share of subjects with a metal hip prosthesis.")
    weighting: str = _choice(
        "t1",
        ("t1", "t2"),
        "MR contrast: t1, the paper's spoiled gradient echo; t2, a T2-weighted turbo spin echo like a "
        "prostate or pelvis protocol's (fat and water in phase: fat_phase does not apply).",
    )
    fat_phase: float = _knob(163.0, 0.0, 180.0, "MR fat-water phase at the echo time, degrees (0: in phase).")
    fat_shift: float = _knob(0.5, -4.0, 4.0, "MR chemical shift of fat along the readout, voxels.")
    coil: float = _knob(0.3, 0.0, 1.0, "MR receive-coil fall-off (0: flat sensitivity).")
    ghosting: float = _knob(0.0, 0.0, 0.5, "MR motion ghosts, twice each copy's amplitude (0.05: mild).")
    misregistration: float = _knob(
        0.0, 0.0, 10.0, "Paired subjects: RMS residual misregistration of CT to MR, mm."
    )
    fov_sd: float = _knob(15.0, 0.0, 100.0, "Cranio-caudal SD of the field of view within an archive, mm.")
    cohort_offset: float = _knob(
        25.0, -150.0, 150.0, "How much higher the MR archive frames the hip than the CT's, mm."
    )
    repeat: int = _count(
        0,
        1_000_000,
        "Which scan of each subject: 1, 2, ... scan it again, the same anatomy with the noise and "
        "grain drawn anew (0: the first scan).",
    )

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if "choices" in f.metadata:
                if value not in f.metadata["choices"]:
                    choices = ", ".join(f.metadata["choices"])
                    raise ImtransError(f"phantom: {f.name} must be one of {choices}, got {value!r}")
                continue
            low, high = f.metadata["range"]
            number = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
            whole = not f.metadata.get("integer") or (number and float(value).is_integer())
            if not number or not whole or not low <= value <= high:
                kind = "a whole number" if f.metadata.get("integer") else "a number"
                raise ImtransError(f"phantom: {f.name} must be {kind} in {low:g}..{high:g}, got {value!r}")

    def key(self) -> str:
        """The settings that differ from the defaults, as ``name=value`` (``""`` for all defaults)."""
        default = Scan()
        return ",".join(
            f"{f.name}={_text(getattr(self, f.name))}"
            for f in fields(self)
            if getattr(self, f.name) != getattr(default, f.name)
        )
