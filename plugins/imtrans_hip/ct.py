"""The phantom's CT as a scanner makes it: tissue values with texture, the scanner's blur, its noise, streaks.

From a tissue map, in order:

1. **values**: each tissue's mean HU for this subject, plus the anatomy's smooth
   texture field times a per-tissue gain (marrow fat lowers bone HU, fatty
   infiltration lowers muscle HU; the MR sees the same field) and a fine grain;
2. **partial volume**: a Gaussian blur of the system's resolution (1.3 mm FWHM
   in-plane: the paper's 0.7 mm CT pixels resized to the MR's 1.25 mm; the axial
   slice profile along the body axis);
3. **quantum noise** with a CT noise-power spectrum: ramp-shaped in the axial
   plane (filtered back-projection suppresses low frequencies, the
   reconstruction kernel the highest), correlated along the body axis by the slice
   profile; its level grows with the body's water-equivalent diameter (thicker
   bodies attenuate more photons; tube-current modulation makes up half of that);
4. optionally **beam hardening and metal streaks**: per axial slice, the
   line integrals of dense material are projected at many angles, their
   polychromatic error (growing with the square of the dense path) is
   reconstructed by filtered back-projection and added, giving the dark bands
   between femoral heads and the streaks around a prosthesis.
"""

from __future__ import annotations

import numpy as np

from .anatomy import Painted, tissue_tables
from .shapes import F32, Grid

# Per tissue: mean HU, its between-subject SD, a fine grain SD (per voxel, before the blur) and
# the gain on the anatomy's texture field (HU per unit SD). Muscle HU follow a real pelvis CT
# (gluteus maximus is the fattiest, iliopsoas the leanest); fat strands and partial volume pull
# the muscles' medians down by a few HU.
CT_VALUES: dict[str, tuple[float, float, float, float]] = {
    "air": (-1000, 0, 0, 0),
    "gas": (-960, 15, 10, 0),
    "fat": (-108, 8, 10, 6),
    "skin": (40, 10, 10, 0),
    "gluteus_maximus": (26, 4, 12, -4),
    "gluteus_medius": (38, 4, 12, -4),
    "gluteus_minimus": (42, 4, 12, -4),
    "iliopsoas": (64, 4, 10, -4),
    "adductors": (50, 4, 10, -4),
    "quadriceps": (52, 4, 10, -4),
    "other_muscle": (46, 4, 10, -4),
    "urine": (10, 4, 5, 0),
    "cortical": (1100, 80, 100, 60),
    "cancellous_pelvis": (75, 20, 50, -110),
    "cancellous_sacrum": (35, 25, 50, -60),
    "cancellous_femur": (110, 20, 60, -135),
    "marrow": (-30, 20, 20, -20),
    "cartilage": (90, 10, 10, 0),
    "bowel": (35, 10, 20, 10),
    "disc": (80, 10, 10, 0),
    "fascia": (30, 8, 10, 0),
    "vessel": (42, 4, 6, 0),
    "metal": (3071, 0, 0, 0),
}
CT_RANGE = (-1024.0, 3071.0)

PSF_FWHM_MM = (1.3, 1.3, 1.5)  # in-plane: 0.7 mm pixels resized to the MR's 1.25; z: the slice profile
NPS_PEAK = 0.12  # cycles/mm: where the noise-power spectrum of a standard body kernel peaks
NOISE_HU = (22.0, 32.0)  # noise SD at the reference diameter and 1.25 mm voxels, per subject
REFERENCE_DIAMETER = 280.0  # mm
MU_WATER = 0.019  # 1/mm at about 70 keV
STREAK_ANGLES = 60


def draw_noise(grid: Grid, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The random fields of one CT on ``grid``: white grain and quantum noise, both unit SD.

    They need no anatomy, so they can be drawn while the anatomy is painted.
    """
    return rng.standard_normal(grid.shape, dtype=F32), correlated_noise(grid.shape, grid, rng)


def render(
    body: Painted,
    rng: np.random.Generator,
    fields: tuple[np.ndarray, np.ndarray],
    noise: float = 1.0,
    streaks: float = 0.0,
    texture: float = 1.0,
) -> np.ndarray:
    """CT in HU of a painted body.

    ``fields`` come from :func:`draw_noise`; ``noise`` scales the quantum noise (0:
    none), ``streaks`` the beam-hardening and metal streaks (0: none, 1: like a
    standard 120 kV scan without correction), ``texture`` the tissues' texture and
    grain (0: each tissue flat at this subject's mean HU, the same draws otherwise).
    """
    white, quantum = fields
    mean, grain, gain = tissue_tables(CT_VALUES, rng, muscle_sd=6.0)
    tissue, grid = body.tissue, body.grid
    img = mean[tissue] + F32(texture) * gain[tissue] * body.texture
    img += F32(texture) * grain[tissue] * white
    img = gaussian(img, grid, PSF_FWHM_MM)
    sd = rng.uniform(*NOISE_HU) * np.exp(0.25 * MU_WATER * (body.subject.diameter() - REFERENCE_DIAMETER))
    if noise > 0:
        img += F32(noise * sd) * quantum
    if streaks > 0:
        img += F32(streaks) * beam_hardening(img, grid)
    return np.clip(img, *CT_RANGE).astype(F32)


def gaussian(img: np.ndarray, grid: Grid, fwhm_mm) -> np.ndarray:
    """Blur by a Gaussian of ``fwhm_mm`` per axis (edges replicated); sub-voxel widths use 3 taps."""
    for axis, fwhm in enumerate(fwhm_mm):
        sigma = fwhm / 2.3548 / grid.spacing[axis]
        if sigma < 0.2 or img.shape[axis] < 3:
            continue
        radius = max(1, int(np.ceil(2.5 * sigma)))
        taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
        taps = (taps / taps.sum()).astype(F32)
        img = _convolve(img, taps, axis)
    return img


def _convolve(img: np.ndarray, taps: np.ndarray, axis: int) -> np.ndarray:
    """``img`` convolved with symmetric ``taps`` along ``axis``, edges replicated (shifted adds, no copies)."""
    radius = len(taps) // 2
    n = img.shape[axis]

    def at(start: int, stop: int) -> tuple[slice, ...]:
        index = [slice(None)] * img.ndim
        index[axis] = slice(start, stop)
        return tuple(index)

    out = img * taps[radius]
    for offset in range(1, min(radius, n - 1) + 1):
        weight = taps[radius + offset]
        out[at(offset, n)] += weight * img[at(0, n - offset)]  # the neighbour before
        out[at(0, n - offset)] += weight * img[at(offset, n)]  # the neighbour after
        out[at(0, offset)] += weight * img[at(0, 1)]  # past the first voxel: the first voxel
        out[at(n - offset, n)] += weight * img[at(n - 1, n)]
    return out


def correlated_noise(shape: tuple[int, ...], grid: Grid, rng: np.random.Generator) -> np.ndarray:
    """Unit-SD noise with a CT noise-power spectrum in the axial plane, correlated along the body axis.

    The axial plane of the coronal grid is (i, j); white noise is shaped there to
    ``NPS(f) ~ f exp(-f^2 / (2 f_peak^2))`` (the ramp of filtered back-projection
    rolled off by the kernel, peaking at ``f_peak = NPS_PEAK``) and blurred along k
    by the slice profile.
    """
    white = rng.standard_normal(shape, dtype=F32)
    fi = np.fft.fftfreq(shape[0], grid.spacing[0])[:, None]
    fj = np.fft.rfftfreq(shape[1], grid.spacing[1])[None, :]
    f = np.sqrt(fi * fi + fj * fj)
    amplitude = np.sqrt(f * np.exp(-0.5 * (f / NPS_PEAK) ** 2)).astype(F32)
    spectrum = np.fft.rfft2(white, axes=(0, 1))
    spectrum *= amplitude[:, :, None]
    shaped = np.fft.irfft2(spectrum, s=shape[:2], axes=(0, 1)).astype(F32)
    shaped = gaussian(shaped, grid, (0.0, 0.0, PSF_FWHM_MM[2]))
    return shaped / max(float(shaped.std()), 1e-6)


def beam_hardening(ct: np.ndarray, grid: Grid) -> np.ndarray:
    """The streak image (HU) of beam hardening and metal in each axial slice of ``ct``.

    Dense material (HU above 300, in mm of cortical-bone equivalent) is projected
    along ``STREAK_ANGLES`` directions; a polychromatic beam loses its soft photons
    along dense paths, which reads as a line-integral error growing with the square
    of the dense path; filtered back-projection of that error is the streak image
    (a dark band between two femoral heads; dark and bright streaks around metal).
    """
    dense = np.clip((ct - 300.0) / 1000.0, 0.0, None).astype(F32)
    out = np.zeros_like(ct)
    projector = _Projector(ct.shape[:2], grid.spacing[:2])
    for k in np.nonzero(dense.any(axis=(0, 1)))[0]:
        p = projector.project(dense[:, :, k])
        out[:, :, k] = projector.back_project(-STREAK_HU * p * p)
    return out


STREAK_HU = 0.4  # HU x mm of line-integral error per mm^2 of squared dense path (uncorrected 120 kV)


class _Projector:
    """Parallel-beam projection and filtered back-projection of one axial slice (linear interpolation)."""

    def __init__(self, shape: tuple[int, int], spacing: tuple[float, float]) -> None:
        self.shape = shape
        self.bin_mm = min(spacing)
        x = (np.arange(shape[0]) - (shape[0] - 1) / 2) * spacing[0]
        y = (np.arange(shape[1]) - (shape[1] - 1) / 2) * spacing[1]
        xx, yy = (c.ravel() for c in np.meshgrid(x, y, indexing="ij"))
        angles = np.linspace(0.0, np.pi, STREAK_ANGLES, endpoint=False)
        t = (np.outer(np.cos(angles), xx) + np.outer(np.sin(angles), yy)) / self.bin_mm
        self.bins = 2 * int(np.ceil(np.abs(t).max())) + 3
        t += self.bins // 2
        lower = np.floor(t).astype(np.int64)
        self.frac = (t - lower).astype(F32)  # (angles, pixels)
        self.index = lower + (np.arange(STREAK_ANGLES) * self.bins)[:, None]
        self.pixel_mm = spacing[0] * spacing[1] / self.bin_mm
        self.ramp = np.fft.rfftfreq(2 * self.bins, self.bin_mm).astype(F32)

    def project(self, image: np.ndarray) -> np.ndarray:
        """Line integrals (mm x value) per angle and detector bin."""
        w = np.broadcast_to(image.ravel() * F32(self.pixel_mm), self.frac.shape)
        size = STREAK_ANGLES * self.bins
        p = np.bincount(self.index.ravel(), (w * (1 - self.frac)).ravel(), size)
        p += np.bincount(self.index.ravel() + 1, (w * self.frac).ravel(), size)
        return p.reshape(STREAK_ANGLES, self.bins)

    def back_project(self, sinogram: np.ndarray) -> np.ndarray:
        """Ramp-filtered back-projection of ``sinogram`` onto the slice."""
        spectrum = np.fft.rfft(sinogram, 2 * self.bins, axis=1) * self.ramp
        filtered = np.fft.irfft(spectrum, axis=1)[:, : self.bins].ravel()
        values = filtered[self.index] * (1 - self.frac) + filtered[self.index + 1] * self.frac
        return (values.sum(axis=0) * (np.pi / STREAK_ANGLES)).reshape(self.shape).astype(F32)
