"""The phantom's MR as a scanner makes it: fat and water signal, coils, bias, ghosts, Rician noise.

The paper's MR is a 3-D spoiled gradient echo at 1.0 T with TE 3.08 ms: fat and
water precess apart by about 147 Hz there, so at TE the fat signal lags the water
signal by about 163 degrees (nearly opposed phase). ``weighting="t2"`` renders a
T2-weighted turbo spin echo instead, as pelvis and prostate protocols acquire
(the real prostate T2 of ``../shared/data/real`` is one): the spin echo refocuses
fat and water in phase, fat stays bright, muscle is darker than on T1, urine and
hydrated discs are the brightest tissues, flowing blood is void. From a tissue
map, in order:

1. **signal**: each tissue's brightness for this subject and weighting (plus the anatomy's
   texture field, the same one the CT sees), as a complex value whose phase is
   ``fat_phase`` for fat-dominated tissues and 0 for water; the fat part is
   displaced by ``fat_shift`` voxels along the readout (left-right) axis
   (chemical shift of the first kind);
2. **partial volume**: the complex image is blurred like the CT and then
   magnitude-taken, so a voxel holding fat and water cancels: the dark
   "India-ink" line along every fat/water boundary of an opposed-phase image;
3. **motion ghosting** (``ghosting`` > 0): periodic motion modulates k-space
   along the phase-encode (inferior-superior) axis, which leaves faint shifted
   copies of the body;
4. **receive coils**: a phased array around the body is brighter near its
   elements (``coil`` scales the fall-off), times a smooth bias field and a
   random global scale;
5. **Rician noise**: the magnitude of complex Gaussian noise.
"""

from __future__ import annotations

import numpy as np

from .anatomy import TISSUES, Painted, Subject, tissue_tables
from .shapes import F32, Grid

# Per tissue: T1 brightness (fat about 95 before the global scale), between-subject SD, grain SD,
# gain on the anatomy's texture field, and whether its signal is fat (True) or water.
MR_VALUES: dict[str, tuple[float, float, float, float, bool]] = {
    "air": (0, 0, 0, 0, False),
    "gas": (0, 0, 0, 0, False),
    "fat": (95, 4, 3, 2, True),
    "skin": (55, 5, 3, 0, False),
    "gluteus_maximus": (42, 2, 3, 2.5, False),
    "gluteus_medius": (37, 2, 3, 2, False),
    "gluteus_minimus": (36, 2, 3, 2, False),
    "iliopsoas": (33, 2, 3, 1.5, False),
    "adductors": (34, 2, 3, 1.5, False),
    "quadriceps": (33, 2, 3, 1.5, False),
    "other_muscle": (35, 2, 3, 1.5, False),
    "urine": (12, 3, 1, 0, False),
    "cortical": (5, 1, 1, 0, False),
    "cancellous_pelvis": (68, 6, 8, 7, False),
    "cancellous_sacrum": (66, 6, 8, 6, False),
    "cancellous_femur": (80, 5, 8, 7, False),
    "marrow": (88, 4, 4, 3, True),
    "cartilage": (45, 4, 3, 0, False),
    "bowel": (38, 5, 6, 3, False),
    "disc": (38, 4, 3, 0, False),
    "fascia": (20, 4, 3, 0, False),
    "vessel": (15, 4, 4, 0, False),  # flowing blood: dark on a spoiled gradient echo without contrast
    "metal": (0, 0, 0, 0, False),  # signal void
}
# The same for a T2-weighted turbo spin echo without fat suppression, as prostate and pelvis
# protocols acquire it (TE about 100 ms): long-T2 fluid brightest (urine 120), fat and fatty marrow
# bright (fat 80), red marrow in between, muscle (T2 about 35 ms) dark at about a tenth of fat, as in
# the real T2 of ../shared/data/real (tests/test_phantom_scanner.py compares the two).
MR_T2_VALUES: dict[str, tuple[float, float, float, float, bool]] = {
    "air": (0, 0, 0, 0, False),
    "gas": (0, 0, 0, 0, False),
    "fat": (80, 5, 3, 2, True),
    "skin": (40, 5, 3, 0, False),
    "gluteus_maximus": (9, 2, 3, 2, False),
    "gluteus_medius": (8, 2, 3, 1.5, False),
    "gluteus_minimus": (8, 2, 3, 1.5, False),
    "iliopsoas": (8, 2, 3, 1.5, False),
    "adductors": (8, 2, 3, 1.5, False),
    "quadriceps": (8, 2, 3, 1.5, False),
    "other_muscle": (8, 2, 3, 1.5, False),
    "urine": (120, 5, 2, 0, False),
    "cortical": (3, 1, 1, 0, False),
    "cancellous_pelvis": (52, 6, 8, 6, False),
    "cancellous_sacrum": (50, 6, 8, 5, False),
    "cancellous_femur": (62, 5, 8, 6, False),
    "marrow": (72, 4, 4, 3, True),
    "cartilage": (50, 4, 3, 0, False),
    "bowel": (45, 8, 8, 4, False),
    "disc": (70, 6, 4, 0, False),
    "fascia": (5, 2, 2, 0, False),
    "vessel": (4, 2, 2, 0, False),  # flow void
    "metal": (0, 0, 0, 0, False),
}
WEIGHTINGS = {"t1": MR_VALUES, "t2": MR_T2_VALUES}
_FAT = np.array([MR_VALUES[t][4] for t in TISSUES])  # which tissues' signal is fat: the same in both

PSF_FWHM_MM = (1.9, 2.4, 1.9)  # 1.5 of the paper's 1.25 mm pixels in-plane (k-space filtering); 2 mm slices
COILS = 8  # receive elements spaced around the body
COIL_REACH = 0.45  # an element's sensitivity halves at this fraction of the body's half-width


def draw_noise(grid: Grid, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The random fields of one MR on ``grid``: white grain and the two channels of complex noise.

    They need no anatomy, so they can be drawn while the anatomy is painted.
    """
    return tuple(rng.standard_normal(grid.shape, dtype=F32) for _ in range(3))


def render(
    body: Painted,
    rng: np.random.Generator,
    fields: tuple[np.ndarray, np.ndarray, np.ndarray],
    fat_phase: float = 163.0,
    fat_shift: float = 0.5,
    coil: float = 0.3,
    ghosting: float = 0.0,
    weighting: str = "t1",
) -> np.ndarray:
    """MR (about [0, 100]) of a painted body; the keyword arguments are the scanner's knobs.

    ``fields`` come from :func:`draw_noise`; a T2 spin echo ignores ``fat_phase`` (in phase).
    """
    from .ct import gaussian

    white, n1, n2 = fields
    mean, grain, gain = tissue_tables(WEIGHTINGS[weighting], rng, muscle_sd=2.5)
    np.maximum(mean, 0, out=mean)
    tissue, grid = body.tissue, body.grid
    magnitude = mean[tissue] + gain[tissue] * body.texture
    magnitude += grain[tissue] * white
    np.maximum(magnitude, 0, out=magnitude)
    fat = np.where(_FAT[tissue], magnitude, F32(0))
    water = magnitude - fat
    if fat_shift:
        fat = _shift(fat, fat_shift, axis=0)
    phase = np.deg2rad(fat_phase if weighting == "t1" else 0.0)
    real = gaussian(water + fat * F32(np.cos(phase)), grid, PSF_FWHM_MM)
    imag = gaussian(fat * F32(np.sin(phase)), grid, PSF_FWHM_MM)
    if ghosting > 0:
        real, imag = (_ghosts(c, ghosting, rng) for c in (real, imag))
    img = np.sqrt(real * real + imag * imag)
    img *= sensitivity(grid, body.subject, coil) * bias_field(grid, rng) * F32(rng.uniform(0.75, 1.3))
    sigma = F32(rng.uniform(1.5, 3.0))
    img += sigma * n1
    imag = sigma * n2
    return np.sqrt(img * img + imag * imag)  # Rician: magnitude of a complex Gaussian


def _shift(a: np.ndarray, voxels: float, axis: int) -> np.ndarray:
    """``a`` moved by ``voxels`` (may be fractional) along ``axis``, linear interpolation, zeros coming in."""
    whole = int(np.floor(voxels))
    frac = F32(voxels - whole)
    out = np.zeros_like(a)
    for step, weight in ((whole, 1 - frac), (whole + 1, frac)):
        if weight == 0 or abs(step) >= a.shape[axis]:
            continue
        src = [slice(None)] * a.ndim
        dst = [slice(None)] * a.ndim
        src[axis] = slice(max(-step, 0), a.shape[axis] - max(step, 0))
        dst[axis] = slice(max(step, 0), a.shape[axis] - max(-step, 0))
        out[tuple(dst)] += weight * a[tuple(src)]
    return out


def _ghosts(a: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Periodic motion along the phase-encode axis (k): k-space lines modulated by ``1 + g cos``.

    Modulating the lines with period ``P`` adds two copies shifted by ``+-n / P``
    voxels at ``g / 2`` each (circularly, as a discrete Fourier transform does).
    """
    period = rng.uniform(3.0, 6.0)
    shift = round(a.shape[2] / period)
    return a + F32(strength / 2) * (np.roll(a, shift, axis=2) + np.roll(a, -shift, axis=2))


def sensitivity(grid: Grid, subject: Subject, strength: float) -> np.ndarray:
    """Receive sensitivity of ``COILS`` elements on an ellipse around the hips, mean 1 over the body.

    Each element falls off as ``1 / (1 + (r / reach)^2)`` with its distance ``r``;
    the array is the root sum of squares. ``strength`` blends it with a flat
    sensitivity (0: none). It varies in the axial plane only: the coils are long.
    """
    if strength <= 0:
        return np.ones((1, 1, 1), F32)
    half_x = 0.5 * subject.diameter() * 1.15
    half_y = 0.5 * subject.diameter() / 1.15
    x = grid.axis(0)[:, None].astype(np.float64)
    y = grid.axis(1)[None, :].astype(np.float64)
    reach = COIL_REACH * half_x
    total = np.zeros((x.size, y.size))
    for angle in np.linspace(0, 2 * np.pi, COILS, endpoint=False):
        cx, cy = 1.1 * half_x * np.cos(angle), 1.1 * half_y * np.sin(angle)
        r2 = (x - cx) ** 2 + (y - cy) ** 2
        total += (1.0 / (1.0 + r2 / reach**2)) ** 2
    s = np.sqrt(total)
    inside = (x / half_x) ** 2 + (y / half_y) ** 2 < 1
    s /= s[inside].mean() if inside.any() else s.mean()
    return ((1.0 - strength) + strength * s).astype(F32)[:, :, None]


def bias_field(grid: Grid, rng: np.random.Generator) -> np.ndarray:
    """A smooth multiplicative bias field: exp of a random quadratic over the field of view (about +-25 %).

    Across slices (v) it varies little; the quadratic is summed per plane and
    across slices separately, so only the last sum and the exp touch every voxel.
    """
    x, y, z = grid.coords(tuple(slice(None) for _ in range(3)))
    half = [0.5 * grid.shape[a] * grid.spacing[a] for a in range(3)]
    u, v, w = x / F32(half[0]), y / F32(half[1]), z / F32(half[2])
    c = rng.normal(0.0, 1.0, 8) * (0.12, 0.04, 0.12, 0.05, 0.02, 0.05, 0.05, 0.05)
    plane = F32(c[0]) * u + F32(c[2]) * w + F32(c[3]) * u * u + F32(c[5]) * w * w + F32(c[6]) * u * w
    across = F32(c[1]) * v + F32(c[4]) * v * v  # (1, nj, 1)
    log = plane + across + F32(c[7]) * u * v
    return np.exp(log.astype(F32))
