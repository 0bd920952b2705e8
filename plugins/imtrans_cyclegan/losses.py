"""Loss terms of Hiasa et al. 2018 Eq. 1-6, one ``nn.Module`` per term.

Every loss carries ``weight`` (its lambda in Eq. 6), ``name`` (its registry
name) and a class attribute ``kind`` that tells the objective how to feed it:

- ``"adversarial"``: ``loss(logits, target_is_real) -> scalar`` (Eq. 1-2);
  the objective keeps exactly one of these.
- ``"cycle"``: ``loss(real, reconstructed)``, e.g. ``(x_ct, g_ct(g_mr(x_ct)))`` (Eq. 3).
- ``"identity"``: ``loss(real, mapped)``, e.g. ``(x_ct, g_ct(x_ct))``.
- ``"gradient"``: ``loss(real, translated)``, e.g. ``(x_ct, g_mr(x_ct))`` (Eq. 5).
- ``"distribution"``: ``loss(real, translated)`` with ``real`` a real batch of the
  *target* domain, e.g. ``(x_ct, g_ct(y_mr))``: the two batches' intensity
  distributions compared (not in the paper).
- ``"paired"``: ``loss(target, translated)`` on an aligned pair, e.g.
  ``(x_ct, g_ct(y_mr))`` with ``y_mr`` the MR of ``x_ct``'s subject; not in the
  paper: the supervised upper bound and the hybrid of later MR-to-CT work.

``forward`` returns the *unweighted* term for one translation direction
(averaged over the batch); the objective sums the two directions (halving
them for GC, as Eq. 5 does) and multiplies by ``weight``. Every value is
computed in float32, also under autocast.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from imtrans_core.api import SpecError

from .networks import GaussianBlur

GradientOp = Literal["sobel", "diff", "prewitt"]

# Kernels of the derivative along x (columns), applied by cross-correlation, so
# d/dx A at column j is A[j + 1] - A[j - 1] up to a factor; d/dy uses the transpose.
_KERNELS_X = {
    "sobel": [[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]],
    "prewitt": [[-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0]],
    "diff": [[-1.0, 0.0, 1.0]],  # central difference
}


class WeightedLoss(nn.Module):
    """Base of the loss terms: validates and stores ``weight``."""

    kind: ClassVar[str] = ""
    name: str = ""

    def __init__(self, weight: float):
        super().__init__()
        if not weight >= 0:  # also rejects NaN
            raise SpecError(f"weight must be >= 0, got {weight}")
        self.weight = float(weight)

    def extra_repr(self) -> str:
        return f"weight={self.weight}"


# ----------------------------------------------------------------------------- adversarial, Eq. 1-2


class AdversarialLoss(WeightedLoss):
    """Base of the adversarial terms: what the discriminators are shown as real.

    ``denoise_ct``, ``denoise_mr`` > 0 (not in the paper): each real image of that
    domain reaches its discriminator through an edge-preserving filter
    (:func:`bilateral`, range SD ``denoise_*`` on the networks' [-1, 1] scale:
    0.15 is 37.5 HU of the CT window), the synthetic ones as they are. A scan's
    quantum noise cannot be predicted from the other modality, so a generator
    asked to imitate it draws noise of its own, independent of the real scan's,
    which only adds to the error; shown denoised reals, the discriminator asks
    for a clean image instead and still judges every pixel of the synthetic one
    (blurring both sides lets the generator hide patterns finer than the blur:
    docs/studies/quality-variants.md, cause 7). On the phantom it did not lower the error (cause
    13: one seed, 29.0 against 29.3): the soft tissue's error is not imitated noise.
    """

    kind = "adversarial"

    def __init__(self, weight: float = 1.0, denoise_ct: float = 0.0, denoise_mr: float = 0.0):
        super().__init__(weight)
        for key, value in (("denoise_ct", denoise_ct), ("denoise_mr", denoise_mr)):
            if not value >= 0:
                raise SpecError(f"{key} must be >= 0 (0: off), got {value}")
        self.denoise = {"ct": float(denoise_ct), "mr": float(denoise_mr)}

    def real(self, image: torch.Tensor, domain: Literal["ct", "mr"]) -> torch.Tensor:
        """``image``, a batch of real images of ``domain``, as its discriminator sees it."""
        sd = self.denoise[domain]
        return bilateral(image, sd) if sd > 0 else image

    def extra_repr(self) -> str:
        return f"weight={self.weight}, denoise_ct={self.denoise['ct']}, denoise_mr={self.denoise['mr']}"


@torch.no_grad()
def bilateral(image: torch.Tensor, range_sd: float, space_sd: float = 1.5, radius: int = 2) -> torch.Tensor:
    """Each pixel of ``image`` (N, C, H, W) as the mean of its (2 radius + 1)^2 neighbours, weighted
    by distance (Gaussian of ``space_sd`` pixels) and by value difference (Gaussian of ``range_sd``).

    Noise well below ``range_sd`` is averaged away; an edge of a much larger step (fat to
    muscle, the cortex) keeps its neighbours across it out of the mean, so it stays sharp.
    Each channel (a 2.5-D stack's slice) is filtered alone; borders are mirrored. No gradient
    flows through it: it prepares data (the real images), never a network's output.
    """
    n, c, h, w = image.shape
    flat = image.float().reshape(n * c, 1, h, w)
    size = 2 * radius + 1
    padded = F.pad(flat, (radius,) * 4, mode="reflect")
    neighbours = F.unfold(padded, size).view(n * c, size * size, h, w)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32, device=image.device)
    distance2 = (offsets[:, None] ** 2 + offsets[None, :] ** 2).reshape(1, -1, 1, 1)
    weights = torch.exp(-distance2 / (2 * space_sd**2) - (neighbours - flat) ** 2 / (2 * range_sd**2))
    filtered = (weights * neighbours).sum(1, keepdim=True) / weights.sum(1, keepdim=True)
    return filtered.reshape(n, c, h, w).to(image.dtype)


class LSGANLoss(AdversarialLoss):
    """Least-squares GAN loss (Mao et al.), the paper's adversarial loss: mean (D(x) - target)^2.

    Replaces the log terms of Eq. 1-2 with squared distances to the targets
    1 (real) and 0 (fake): steadier gradients than the log form.
    """

    name = "lsgan"

    def forward(self, logits: torch.Tensor, target_is_real: bool) -> torch.Tensor:
        logits = logits.float()  # (N, 1, H', W') discriminator outputs
        return torch.mean((logits - float(target_is_real)) ** 2)


class VanillaGANLoss(AdversarialLoss):
    """Vanilla GAN loss, Eq. 1-2 as printed: binary cross-entropy on the discriminator's logits.

    ``binary_cross_entropy_with_logits`` evaluates log(sigmoid) stably, so
    large logits do not overflow to inf.
    """

    name = "vanilla"

    def forward(self, logits: torch.Tensor, target_is_real: bool) -> torch.Tensor:
        logits = logits.float()
        target = torch.full_like(logits, float(target_is_real))
        return F.binary_cross_entropy_with_logits(logits, target)


# ----------------------------------------------------------------------------- L1 terms: cycle, identity, paired


class L1Term(WeightedLoss):
    """Base of the L1 terms (cycle, identity, paired): mean |output - target| over pixels and batch, float32."""

    def forward(self, target: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
        return F.l1_loss(output.float(), target.float())


class CycleLoss(L1Term):
    """Cycle consistency, Eq. 3: L1 between a real image and its reconstruction (lambda_cycle = 3).

    The mean absolute difference over pixels and batch, as the reference
    CycleGAN computes it (Eq. 3 writes a sum; the scale is absorbed by the weight).

    ``noise`` > 0 (not in the paper) adds Gaussian noise of that SD (in the
    [-1, 1] units of the images) to each translation before it is translated
    back. A CycleGAN can pass the cycle by hiding its input in a faint pattern
    of the translation that the other generator reads back (Chu et al. 2017,
    "CycleGAN, a master of steganography"); noise stronger than such a pattern
    makes the translation carry its input in what it shows. On the phantom it
    did not rescue a failed run (``noise=0.1`` on seed 1 of docs/studies/quality-variants.md's
    ``gc1``: 53.3 against 50.8), whose pattern is no faint one.
    """

    kind = "cycle"
    name = "cycle"

    def __init__(self, weight: float = 3.0, noise: float = 0.0):  # loss(real, reconstructed)
        super().__init__(weight)
        if not noise >= 0:
            raise SpecError(f"noise must be >= 0, got {noise}")
        self.noise = float(noise)

    def extra_repr(self) -> str:
        return f"weight={self.weight}, noise={self.noise}"


class IdentityLoss(L1Term):
    """Identity mapping (reference CycleGAN, off by default): L1 |g(x) - x| for g translating into x's domain.

    Not in the paper: the reference's lambda_identity term, e.g.
    |g_ct(x_ct) - x_ct|, which discourages changing an image that already
    looks like the target domain. The reference multiplies its 0.5 by
    lambda_cycle; here ``weight`` is the term's whole lambda, so the
    reference's balance against ``cycle:3`` is ``identity:1.5``.
    """

    kind = "identity"
    name = "identity"

    def __init__(self, weight: float = 0.5):  # loss(real, mapped)
        super().__init__(weight)


class PairedL1Loss(L1Term):
    """Supervised L1 on aligned pairs: |G_CT(y) - x| + |G_MR(x) - y| for the CT x and MR y of one subject.

    Alone (with ``lsgan:0 cycle:0``) it trains the generators as plain
    regressors, the supervised upper bound of an unpaired model; added to the
    CycleGAN terms it makes the hybrid that recent MR-to-CT work trains where
    some registered pairs exist. The weight 10 makes it the largest term beside
    ``cycle:3``, as pix2pix's L1 dominates its GAN term. Needs training pairs
    from the data spec (the phantom's ``n_train_pairs``, SynthRAD's patients).
    """

    kind = "paired"
    name = "paired"

    def __init__(self, weight: float = 10.0):  # loss(target, translated)
        super().__init__(weight)


# ----------------------------------------------------------------------------- contrast prior


class ContrastPriorLoss(WeightedLoss):
    """Contrast prior (not in the paper): L1 to the source's values mapped monotonically onto the target's,
    strongest at the start and gone after ``until`` iterations (``0``: held throughout).

    Nothing in Eq. 6 ties a tissue to its value, so an unpaired run may swap them.
    Both MR weightings of the hip are dark where CT is bright inside the body, so
    ``order=inverse`` maps the k-th highest source value onto the k-th lowest target
    value, fitted once on the training pools' body voxels (``fit``; no pairs).
    ``blur`` compares the two low-passed (a Gaussian SD in px); ``marrow=true`` maps
    the inside of a CT's bone (a region enclosed by cortex above ``CORTEX_HU``) in
    direct rank in the CT -> MR direction, as fatty marrow shows on MR; ``only``
    holds one generator alone. What each does on the phantom: docs/training.md.
    """

    kind = "prior"
    name = "prior"
    knots = 257  # quantiles of each domain's body values that define the map

    def __init__(
        self,
        weight: float = 10.0,
        until: int = 400,
        order: Literal["inverse", "direct"] = "inverse",
        blur: float = 0.0,
        marrow: bool = False,
        only: Literal["both", "ct", "mr"] = "both",
    ):
        super().__init__(weight)
        if until < 0:
            raise SpecError(f"until must be >= 0 (0: the full weight throughout), got {until}")
        if order not in ("inverse", "direct"):
            raise SpecError(f"order must be inverse or direct, got {order!r}")
        if not 0 <= blur <= 8:
            raise SpecError(f"blur must be a Gaussian SD in px in 0..8 (0: off), got {blur}")
        self.until, self.order, self.blur = int(until), order, float(blur)
        if only not in ("both", "ct", "mr"):
            raise SpecError(f"only must be both, ct or mr (the generators held), got {only!r}")
        if marrow and only == "ct":
            raise SpecError("marrow=true holds G_MR, which only=ct leaves free: drop one of them")
        self.marrow, self.only = bool(marrow), only
        self.low_pass = GaussianBlur(blur) if blur > 0 else nn.Identity()
        self.register_buffer("ct_knots", torch.zeros(0))
        self.register_buffer("mr_knots", torch.zeros(0))

    def fit(self, ct: np.ndarray, mr: np.ndarray) -> None:
        """The map from each domain's values (in [-1, 1]) inside the body: their quantiles, ranked."""
        levels = np.linspace(0.0, 1.0, self.knots)
        for name, values in (("ct_knots", ct), ("mr_knots", mr)):
            body = values[self.body(values)]
            if body.size < self.knots:
                raise SpecError(f"the {name[:2]} pool has too few body voxels to fit the contrast prior")
            setattr(self, name, torch.from_numpy(np.quantile(body, levels).astype(np.float32)))

    def factor(self, step: int) -> float:
        """The share of ``weight`` the term carries at iteration ``step``."""
        return 1.0 if self.until == 0 else max(0.0, 1.0 - step / self.until)

    def forward(
        self, source: torch.Tensor, translated: torch.Tensor, to: Literal["ct", "mr"]
    ) -> torch.Tensor:
        """Mean |translated - map(source)| (low-passed by ``blur``) over the source's body; ``to``: the translated image's domain (0 for the generator ``only`` leaves free)."""
        if self.only not in ("both", to):
            return translated.new_zeros(())
        body = self.body(source).float()
        target = self.mapped(source, to)
        if self.marrow and to == "mr":
            target = torch.where(bone_inside(source), self.mapped(source, to, direct=True), target)
        difference = self.low_pass(body * (translated.float() - target)).abs()
        return (body * difference).sum() / body.sum().clamp(min=1.0)

    def mapped(self, source: torch.Tensor, to: Literal["ct", "mr"], direct: bool = False) -> torch.Tensor:
        """The prior's image of ``source`` in domain ``to`` (float32, [-1, 1]; meaningful in the body);
        ``direct``: in direct rank whatever ``order`` says."""
        if self.ct_knots.numel() == 0:
            raise SpecError("the contrast prior was not fitted to the training pools (call fit first)")
        src, dst = (self.mr_knots, self.ct_knots) if to == "ct" else (self.ct_knots, self.mr_knots)
        return _interp(source.float(), src, dst.flip(0) if self.order == "inverse" and not direct else dst)

    @staticmethod
    def body(image: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        """Where an image (tensor or array) on the [-1, 1] scale is inside the body: above the air at -1."""
        return image > BODY_ABOVE

    def extra_repr(self) -> str:
        return (
            f"weight={self.weight}, until={self.until}, order={self.order}, blur={self.blur}, "
            f"marrow={self.marrow}, only={self.only}"
        )


# On the [-1, 1] scale, values above this are "inside the body" (air is -1 in both windows). An MR's
# background noise lies above it too, and is ranked with the body: that helps the map, whose CT side
# has cancellous bone at its dense end where a T1 has it at its bright one (docs/studies/quality-variants.md, cause 10).
BODY_ABOVE = -0.98


CORTEX_HU = 250.0  # cortical bone in a CT slice: above cancellous bone's 150-250 HU, far above soft tissue


def bone_inside(ct: torch.Tensor) -> torch.Tensor:
    """Where each slice of a CT batch ([-1, 1], N x C x H x W) is enclosed by cortex, the cortex excluded.

    Holes in the cortex mask, filled per slice on the CPU, as the body masks of
    ``imtrans data prepare`` are.
    """
    from imtrans_core.api import CT_WINDOW, fill_holes_per_slice

    cortex = (ct.detach().float() > CT_WINDOW.forward(CORTEX_HU)).cpu().numpy()
    filled = fill_holes_per_slice(cortex.reshape(-1, *cortex.shape[2:]).astype(np.uint8), axis=0)
    return torch.from_numpy(filled.reshape(cortex.shape).astype(bool) & ~cortex).to(ct.device)


def _interp(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear interpolation of (xp, fp) at x, as numpy.interp (xp increasing; flat past the ends)."""
    x = x.clamp(xp[0], xp[-1])
    right = torch.searchsorted(xp, x.contiguous(), right=True).clamp(1, len(xp) - 1)
    x0, x1, f0, f1 = xp[right - 1], xp[right], fp[right - 1], fp[right]
    t = torch.where(x1 > x0, (x - x0) / (x1 - x0).clamp(min=1e-12), torch.zeros_like(x))
    return f0 + t * (f1 - f0)


# ----------------------------------------------------------------------------- intensity distribution


class IntensityDistributionLoss(WeightedLoss):
    """Intensity distribution (not in the paper): the 1-D Wasserstein distance between a translated batch's
    values and a real batch's of the target domain.

    Nothing in Eq. 6 ties a tissue to its value: the cycle holds for any
    invertible mapping and a PatchGAN judges texture in 70 x 70 windows, so an
    unpaired run can settle on subcutaneous fat drawn near muscle's HU (four of
    five training seeds of docs/studies/quality-variants.md's ``gc1``). Comparing the two
    batches' sorted values rank by rank is the exact W1 distance between their
    value distributions; ``quantiles`` evenly spaced ranks of each keep it
    cheap. Both batches are random slices of their domains, so a term holds
    only the marginal distributions together, and needs no pairs. A histogram
    can match while values go to the wrong tissues: ``hist:3`` did not rescue
    that failed seed (51.9 against 50.8).
    """

    kind = "distribution"
    name = "hist"

    def __init__(self, weight: float = 1.0, quantiles: int = 1024):
        super().__init__(weight)
        if quantiles < 2:
            raise SpecError(f"quantiles must be at least 2, got {quantiles}")
        self.quantiles = quantiles

    def forward(self, real: torch.Tensor, translated: torch.Tensor) -> torch.Tensor:
        return torch.mean(torch.abs(self._ranked(real.float()) - self._ranked(translated.float())))

    def _ranked(self, batch: torch.Tensor) -> torch.Tensor:
        values = torch.sort(batch.flatten()).values
        ranks = torch.linspace(0, len(values) - 1, self.quantiles, device=values.device).round().long()
        return values[ranks]

    def extra_repr(self) -> str:
        return f"weight={self.weight}, quantiles={self.quantiles}"


# ----------------------------------------------------------------------------- gradient consistency, Eq. 4-5


def _gradients(image: torch.Tensor, op: str) -> tuple[torch.Tensor, torch.Tensor]:
    """d/dx and d/dy of every channel, over the 'valid' region of the kernel.

    'valid' (no padding) means no made-up values at the border, so no border
    edges that zero padding would add; the outermost pixel row/column only
    enters as a neighbour. Returns (N*C, 1, H', W') maps.
    """
    n, c, h, w = image.shape
    kernel_x = torch.tensor(_KERNELS_X[op], dtype=image.dtype, device=image.device)[None, None]
    flat = image.reshape(n * c, 1, h, w)
    return F.conv2d(flat, kernel_x), F.conv2d(flat, kernel_x.transpose(-1, -2))


def _ncc(a: torch.Tensor, b: torch.Tensor, n: int, eps: float) -> torch.Tensor:
    """NCC of Eq. 4 per sample over all its channels and pixels: (N*C, ...) maps -> (N,).

    Uses means (covariance over the product of variances) so that ``eps`` is
    independent of the image size; with ``eps`` under the square root a flat
    map gives NCC 0 with finite gradients (sqrt is not differentiable at 0).
    """
    a = a.reshape(n, -1)
    b = b.reshape(n, -1)
    a = a - a.mean(dim=1, keepdim=True)
    b = b - b.mean(dim=1, keepdim=True)
    covariance = (a * b).mean(dim=1)
    return covariance / torch.sqrt(a.pow(2).mean(dim=1) * b.pow(2).mean(dim=1) + eps)


def gradient_correlation(
    a: torch.Tensor,
    b: torch.Tensor,
    op: GradientOp = "sobel",
    abs: bool = False,
    eps: float = 1e-8,
) -> torch.Tensor:
    """GC(A, B) of Eq. 4, one value in [-1, 1] per image: (N, C, H, W) x 2 -> (N,), float32.

    1/2 [NCC(d/dx A, d/dx B) + NCC(d/dy A, d/dy B)], each NCC over all
    channels and pixels of one sample. ``op`` picks the derivative kernel
    (3x3 Sobel by default, 3x3 Prewitt, or the central difference
    [-1, 0, 1]); gradients are taken over the kernel's valid region, so the
    maps shrink by 2 px along the derivative (and by 2 px across it for the
    3x3 kernels). Signed gradients by default, as Eq. 4 is printed;
    ``abs=True`` correlates their magnitudes, as the authors' public
    pytorch_similarity code does. A flat image correlates 0 with anything.
    Computed in float32 with autocast off: the variances of small gradients
    underflow in half precision.
    """
    if a.shape != b.shape or a.dim() != 4:
        raise ValueError(
            f"gradient_correlation needs two (N, C, H, W) tensors of one shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    if op not in _KERNELS_X:
        raise ValueError(f"op must be one of {', '.join(_KERNELS_X)}, got {op!r}")
    if min(a.shape[-2:]) < 3:
        raise ValueError(f"gradient_correlation needs images of at least 3x3 px, got {tuple(a.shape[-2:])}")
    with torch.autocast(device_type=a.device.type, enabled=False):
        grads_a = _gradients(a.float(), op)
        grads_b = _gradients(b.float(), op)
        if abs:
            grads_a = tuple(g.abs() for g in grads_a)
            grads_b = tuple(g.abs() for g in grads_b)
        n = a.shape[0]
        return 0.5 * (_ncc(grads_a[0], grads_b[0], n, eps) + _ncc(grads_a[1], grads_b[1], n, eps))


class GradientConsistencyLoss(WeightedLoss):
    """Gradient consistency, Eq. 5 (lambda_GC = 0.3): 1 - GC(real, translated) of Sobel gradient magnitudes.

    The paper's addition to CycleGAN: it keeps edges of the input (bone
    boundaries, muscles) in place in the translated image. ``forward`` gives
    one direction, mean over the batch of 1 - GC(x, g(x)); Eq. 5 is half
    the sum of the two directions. ``op`` and ``abs`` as in
    :func:`gradient_correlation`.

    Magnitudes by default (``abs=True``), as the authors' public code computes
    it: an edge's polarity flips between MR and CT from one tissue pair to the
    next, and Eq. 4 as printed (``abs=False``) rewards keeping the MR's
    polarity. How the two compare on the phantom: docs/reproduction.md.
    """

    kind = "gradient"
    name = "gc"

    def __init__(self, weight: float = 0.3, op: GradientOp = "sobel", abs: bool = True):
        super().__init__(weight)
        if op not in _KERNELS_X:
            raise SpecError(f"op must be one of {', '.join(_KERNELS_X)}, got {op!r}")
        self.op = op
        self.abs = abs

    def forward(self, real: torch.Tensor, translated: torch.Tensor) -> torch.Tensor:
        # (N, C, H, W) x 2 -> scalar in [0, 2]
        return torch.mean(1.0 - gradient_correlation(real, translated, self.op, self.abs))

    def extra_repr(self) -> str:
        return f"weight={self.weight}, op={self.op!r}, abs={self.abs}"


# ----------------------------------------------------------------------------- local self-similarity (MIND)


def _shifted(image: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``image`` moved by (dy, dx) pixels, the border repeated: out[y, x] = image[y + dy, x + dx]."""
    r = max(abs(dy), abs(dx))
    h, w = image.shape[-2:]
    padded = F.pad(image, (r, r, r, r), mode="replicate")
    return padded[..., r + dy : r + dy + h, r + dx : r + dx + w]


def self_similarity(image: torch.Tensor, radius: int = 2, patch: int = 5) -> torch.Tensor:
    """MIND descriptors (Heinrich et al. 2012) of every channel: (N, C, H, W) -> (N, C * 8, H, W), float32.

    For each pixel and each of its 8 neighbours ``radius`` px away (the 3 x 3
    grid scaled by ``radius``), the sum of squared differences between the
    ``patch`` x ``patch`` patches around the two, turned into a similarity
    exp(-D / V) with V the pixel's mean distance over its neighbours, then
    scaled so the most similar neighbour scores 1. It says which neighbours
    look like the pixel, not how bright either is, so it is the same for a T1
    MR and a CT of one anatomy wherever their tissues differ, whatever the
    contrast, polarity or window. Computed in float32 with autocast off.
    """
    if image.dim() != 4:
        raise ValueError(f"self_similarity needs an (N, C, H, W) tensor, got {tuple(image.shape)}")
    with torch.autocast(device_type=image.device.type, enabled=False):
        n, c, h, w = image.shape
        flat = image.float().reshape(n * c, 1, h, w)
        offsets = [(dy, dx) for dy in (-radius, 0, radius) for dx in (-radius, 0, radius) if dy or dx]
        distances = torch.cat([(flat - _shifted(flat, dy, dx)) ** 2 for dy, dx in offsets], dim=1)
        pad = patch // 2
        distances = F.avg_pool2d(F.pad(distances, (pad,) * 4, mode="replicate"), patch, stride=1)
        distances = distances - distances.amin(dim=1, keepdim=True)  # the nearest neighbour at 0
        variance = distances.mean(dim=1, keepdim=True)
        mean = variance.mean(dim=(2, 3), keepdim=True)  # keeps V away from 0 in flat regions
        variance = torch.maximum(torch.minimum(variance, mean * 1e3), mean * 1e-3 + 1e-6)
        similarity = torch.exp(-distances / variance)
        similarity = similarity / similarity.amax(dim=1, keepdim=True)
        return similarity.reshape(n, c * len(offsets), h, w)


class SelfSimilarityLoss(WeightedLoss):
    """Structure consistency by MIND (not in the paper): mean |MIND(real) - MIND(translated)|.

    The structure-constrained CycleGAN of MR-to-CT work (Yang et al. 2018) puts
    this beside the cycle: where GC correlates the two images' gradients over
    the whole slice, MIND compares, pixel by pixel, which neighbours resemble
    each pixel (:func:`self_similarity`). A boundary the MR has must be drawn
    at the same place in the CT, and a boundary the MR lacks must not be
    drawn, whatever values the two tissues get. ``radius`` is the
    neighbours' distance in pixels, ``patch`` the patch's width.
    """

    kind = "gradient"
    name = "mind"

    def __init__(self, weight: float = 3.0, radius: int = 2, patch: int = 5):
        super().__init__(weight)
        if not 1 <= radius <= 16:
            raise SpecError(f"radius must be from 1 to 16 px, got {radius}")
        if patch < 1 or patch % 2 == 0:
            raise SpecError(f"patch must be an odd width of at least 1 px, got {patch}")
        self.radius, self.patch = int(radius), int(patch)

    def forward(self, real: torch.Tensor, translated: torch.Tensor) -> torch.Tensor:
        mind_real = self_similarity(real, self.radius, self.patch)
        mind_translated = self_similarity(translated, self.radius, self.patch)
        return F.l1_loss(mind_translated, mind_real)

    def extra_repr(self) -> str:
        return f"weight={self.weight}, radius={self.radius}, patch={self.patch}"
