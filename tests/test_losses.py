"""Loss terms of the cyclegan plugin (Eq. 1-5) and the composition of the objective (Eq. 6)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import imtrans_core as ic
from imtrans_core import Registry
from imtrans_core.api import compose_losses
from imtrans_core.training.objective import compose_loss_specs
from imtrans_cyclegan.losses import (
    CycleLoss,
    GradientConsistencyLoss,
    IdentityLoss,
    LSGANLoss,
    VanillaGANLoss,
    gradient_correlation,
)
from imtrans_cyclegan.model import CycleGAN
from imtrans_cyclegan.objective import Objective

CYCLEGAN = CycleGAN()  # its default losses, kinds and checks


@pytest.fixture
def image():
    return torch.randn(2, 1, 32, 32, generator=torch.Generator().manual_seed(0))


# ----------------------------------------------------------------------------- adversarial


def test_lsgan_on_known_inputs():
    lsgan = LSGANLoss()
    half = torch.full((2, 1, 30, 30), 0.5)
    assert lsgan(half, True).item() == pytest.approx(0.25)
    assert lsgan(half, False).item() == pytest.approx(0.25)
    pred = torch.tensor([0.0, 1.0, 2.0])
    assert lsgan(pred, True).item() == pytest.approx((1 + 0 + 1) / 3)
    assert lsgan(pred, False).item() == pytest.approx((0 + 1 + 4) / 3)


def test_vanilla_on_known_inputs_and_stable_for_large_logits():
    vanilla = VanillaGANLoss()
    zero = torch.zeros(1, 1, 4, 4)
    assert vanilla(zero, True).item() == pytest.approx(math.log(2))
    assert vanilla(zero, False).item() == pytest.approx(math.log(2))
    # -log(sigmoid(x)) = log(1 + e^-x): x = 100 real -> 0, fake -> 100; no inf, no NaN
    big = torch.full((1, 1, 2, 2), 100.0)
    assert vanilla(big, True).item() == pytest.approx(0.0, abs=1e-6)
    assert vanilla(big, False).item() == pytest.approx(100.0)
    assert vanilla(-big, True).item() == pytest.approx(100.0)


# ----------------------------------------------------------------------------- cycle and identity


def _edge_with_noise(sd: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A vertical step from -0.5 to 0.5 (two 2.5-D channels), and the same with Gaussian noise of ``sd``."""
    clean = torch.full((2, 2, 32, 32), -0.5)
    clean[..., 16:] = 0.5
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(seed))
    return clean, clean + sd * noise


def test_bilateral_averages_noise_away_and_keeps_a_large_edge_sharp():
    from imtrans_cyclegan.losses import bilateral

    clean, noisy = _edge_with_noise(0.05)
    filtered = bilateral(noisy, range_sd=0.15)
    assert filtered.shape == noisy.shape
    flat = (slice(None), slice(None), slice(2, -2), slice(2, 12))  # away from the edge and the borders
    assert (filtered - clean)[flat].std() < 0.4 * (noisy - clean)[flat].std()
    edge = (slice(None), slice(None), slice(None), slice(15, 17))  # the two columns beside the step
    assert (filtered - clean)[edge].abs().max() < 0.15  # a blur of 1.5 px would put them near 0
    blurred = torch.nn.functional.avg_pool2d(noisy.reshape(4, 1, 32, 32), 5, 1, 2).reshape(noisy.shape)
    assert (blurred - clean)[edge].abs().mean() > 3 * (filtered - clean)[edge].abs().mean()
    assert torch.equal(bilateral(clean[..., :8], 0.15), clean[..., :8])  # a flat image stays as it is


def test_adversarial_denoise_shows_only_that_domains_real_images_filtered(cyclegan_only):
    _, noisy = _edge_with_noise(0.05)
    plain, clean_ct = (ic.LOSSES.build(spec) for spec in ("lsgan", "vanilla:denoise_ct=0.15"))
    assert plain.real(noisy, "ct") is noisy and plain.real(noisy, "mr") is noisy
    assert clean_ct.real(noisy, "mr") is noisy
    assert clean_ct.real(noisy, "ct").std(dim=(2, 3)).mean() < noisy.std(dim=(2, 3)).mean()
    with pytest.raises(ic.SpecError, match="denoise_mr must be >= 0"):
        ic.LOSSES.build("lsgan:denoise_mr=-1")


def test_cycle_is_mean_absolute_difference():
    real = torch.zeros(1, 1, 2, 2)
    reconstructed = torch.tensor([[[[1.0, -3.0], [0.0, 2.0]]]])
    assert CycleLoss()(real, reconstructed).item() == pytest.approx(6 / 4)
    assert IdentityLoss()(real, reconstructed).item() == pytest.approx(6 / 4)


def test_default_weights_are_the_papers_and_the_references():
    assert LSGANLoss().weight == 1.0 and VanillaGANLoss().weight == 1.0
    assert CycleLoss().weight == 3.0  # lambda_cycle
    assert GradientConsistencyLoss().weight == 0.3  # lambda_GC
    assert IdentityLoss().weight == 0.5  # reference CycleGAN's lambda_identity


def test_negative_weight_is_refused():
    with pytest.raises(ValueError, match="weight"):
        CycleLoss(-1.0)


# ----------------------------------------------------------------------------- gradient correlation


def test_gc_of_hand_computed_3x3_images_with_central_differences():
    # op='diff' over the valid region of [-1, 0, 1]: on 3x3 images d/dx is column 2 - column 0
    # (one value per row) and d/dy is row 2 - row 0 (one value per column); the centre is unused.
    a = torch.tensor([[0.0, 0.0, 1.0], [0.0, 5.0, 2.0], [0.0, 1.0, 3.0]])
    b = torch.tensor([[0.0, 0.0, 1.0], [0.0, 7.0, 3.0], [0.0, 1.0, 2.0]])
    # dx a = [1, 2, 3], centred [-1, 0, 1];  dx b = [1, 3, 2], centred [-1, 1, 0]
    #   NCC = (1 + 0 + 0) / (sqrt(2) * sqrt(2)) = 1/2
    # dy a = [0, 1, 2], centred [-1, 0, 1];  dy b = [0, 1, 1], centred [-2/3, 1/3, 1/3]
    #   NCC = (2/3 + 0 + 1/3) / (sqrt(2) * sqrt(6/9)) = 1 / sqrt(4/3) = sqrt(3)/2
    # GC = (1/2 + sqrt(3)/2) / 2 = (1 + sqrt(3)) / 4
    gc = gradient_correlation(a[None, None], b[None, None], op="diff")
    assert gc.shape == (1,)
    assert gc.item() == pytest.approx((1 + math.sqrt(3)) / 4, abs=1e-6)


@pytest.mark.parametrize("op", ["sobel", "diff", "prewitt"])
def test_gc_is_invariant_to_affine_intensity_and_flips_with_sign(image, op):
    ones = torch.ones(2)
    torch.testing.assert_close(gradient_correlation(image, image, op), ones)
    torch.testing.assert_close(gradient_correlation(image, 2 * image + 3, op), ones)
    torch.testing.assert_close(gradient_correlation(image, -image, op), -ones)


def test_gc_with_absolute_gradients_ignores_the_sign(image):
    torch.testing.assert_close(gradient_correlation(image, -image, abs=True), torch.ones(2))
    assert gradient_correlation(image, image.flip(-1), abs=True).abs().max() < 0.5


def test_gc_of_independent_noise_is_near_zero():
    gen = torch.Generator().manual_seed(1)
    a, b = torch.randn(2, 4, 1, 128, 128, generator=gen)
    assert gradient_correlation(a, b).abs().max() < 0.05


def test_gc_is_one_value_per_sample(image):
    other = torch.randn(2, 1, 32, 32, generator=torch.Generator().manual_seed(2))
    both = gradient_correlation(image, other)
    torch.testing.assert_close(both[1:], gradient_correlation(image[1:], other[1:]))
    assert both[0] != both[1]


def test_gc_pools_channels_of_a_sample():
    # per-channel averaging would give exactly 1 for [u, u] against [u, 2u]; pooling all
    # channels into one NCC gives cov/(sd sd) = 1.5 v / sqrt(v * 2.5 v) = 0.949 (zero-mean gradients)
    u = torch.randn(1, 1, 64, 64, generator=torch.Generator().manual_seed(3))
    gc = gradient_correlation(torch.cat([u, u], 1), torch.cat([u, 2 * u], 1))
    assert gc.item() == pytest.approx(1.5 / math.sqrt(2.5), abs=0.01)


def test_gc_is_safe_on_flat_images(image):
    flat = torch.full((2, 1, 32, 32), -1.0, requires_grad=True)  # e.g. air above the body
    translated = image.clone().requires_grad_(True)
    values = torch.cat(
        [
            gradient_correlation(flat, translated),
            gradient_correlation(translated, flat),
            gradient_correlation(flat, flat),
        ]
    )
    assert torch.equal(values, torch.zeros(6))
    GradientConsistencyLoss()(flat, translated).backward()
    GradientConsistencyLoss()(translated, flat).backward()
    assert torch.isfinite(flat.grad).all() and torch.isfinite(translated.grad).all()


def test_gc_is_float32_under_autocast(image):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        a, b = image.bfloat16(), (image + 0.1 * image.roll(1, -1)).bfloat16()
        gc = gradient_correlation(a, b)
        loss = GradientConsistencyLoss()(a, b)
    assert gc.dtype == torch.float32 and loss.dtype == torch.float32
    torch.testing.assert_close(gc, gradient_correlation(a.float(), b.float()))


def test_gc_refuses_mismatched_or_tiny_images(image):
    with pytest.raises(ValueError, match="shape"):
        gradient_correlation(image, image[:, :, :16])
    with pytest.raises(ValueError, match="3x3"):
        gradient_correlation(image[..., :2, :], image[..., :2, :])
    with pytest.raises(ValueError, match="op"):
        GradientConsistencyLoss(op="laplace")


def test_gc_loss_is_one_minus_gc_averaged_over_the_batch(image):
    signed = GradientConsistencyLoss(op="diff", abs=False)
    assert signed(image, image).item() == pytest.approx(0.0, abs=1e-6)
    assert signed(image, -image).item() == pytest.approx(2.0, abs=1e-6)
    half = torch.cat([image[:1], -image[1:]])
    assert signed(image, half).item() == pytest.approx(1.0, abs=1e-6)
    magnitudes = GradientConsistencyLoss(op="diff")  # the default: an inverted contrast keeps its edges
    assert magnitudes(image, -image).item() == pytest.approx(0.0, abs=1e-6)


# ----------------------------------------------------------------------------- through the registry


@pytest.fixture
def cyclegan_only(monkeypatch):
    """Registries filled by the cyclegan entry point alone, whatever else is installed."""
    monkeypatch.setenv("IMTRANS_PLUGINS", "cyclegan")
    ic.plugins.reset()
    yield
    ic.plugins.reset()


def test_registry_builds_gc_with_weight_and_options(cyclegan_only):
    gc = ic.LOSSES.build("gc:0.3,op=diff")
    assert isinstance(gc, GradientConsistencyLoss)
    assert (gc.weight, gc.op, gc.abs, gc.kind) == (0.3, "diff", True, "gradient")  # magnitudes by default
    assert ic.LOSSES.build("gc").weight == 0.3
    assert ic.LOSSES.build("cycle:10").weight == 10.0
    assert ic.LOSSES.build("gc:0.3,abs=false").abs is False  # Eq. 4 as printed: one option away


def test_spec_built_loss_equals_the_directly_built_one(cyclegan_only):
    built = ic.LOSSES.build("gc:0.5,op=prewitt,abs=true")
    direct = GradientConsistencyLoss(0.5, op="prewitt", abs=True)
    assert repr(built) == repr(direct)
    a, b = torch.randn(2, 1, 1, 16, 16)
    assert built(a, b).item() == direct(a, b).item()


# ----------------------------------------------------------------------------- composition, Eq. 6


class HingeLoss(nn.Module):
    """A third-party adversarial loss: recognised by its kind, not its name."""

    kind = "adversarial"

    def __init__(self, weight: float = 1.0):
        super().__init__()
        self.weight = weight


@pytest.fixture
def losses():
    registry = Registry("loss", "losses")
    for name, factory in [
        ("lsgan", LSGANLoss),
        ("vanilla", VanillaGANLoss),
        ("cycle", CycleLoss),
        ("identity", IdentityLoss),
        ("gc", GradientConsistencyLoss),
        ("hinge", HingeLoss),
    ]:
        registry.add(name, factory)
    return registry


def weights(terms: dict[str, nn.Module]) -> dict[str, float]:
    return {name: loss.weight for name, loss in terms.items()}


def test_default_objective_is_lsgan_and_cycle(losses):
    assert weights(compose_losses([], losses, CYCLEGAN)) == {"lsgan": 1.0, "cycle": 3.0}


def test_adding_gc_gives_the_papers_eq6(losses):
    terms = compose_losses(["gc:0.3"], losses, CYCLEGAN)
    assert weights(terms) == {"lsgan": 1.0, "cycle": 3.0, "gc": 0.3}
    assert {name: loss.name for name, loss in terms.items()} == {
        "lsgan": "lsgan",
        "cycle": "cycle",
        "gc": "gc",
    }


def test_a_spec_replaces_the_term_of_its_name(losses):
    assert weights(compose_losses(["cycle:10"], losses, CYCLEGAN)) == {"lsgan": 1.0, "cycle": 10.0}
    terms = compose_losses(["gc", "gc:0.5,op=diff"], losses, CYCLEGAN)
    assert terms["gc"].weight == 0.5 and terms["gc"].op == "diff"


def test_weight_zero_removes_a_term(losses):
    assert weights(compose_losses(["cycle:0"], losses, CYCLEGAN)) == {"lsgan": 1.0}
    assert weights(compose_losses(["gc:0.3", "gc:0"], losses, CYCLEGAN)) == {"lsgan": 1.0, "cycle": 3.0}
    assert weights(compose_losses(["identity:0"], losses, CYCLEGAN)) == {"lsgan": 1.0, "cycle": 3.0}


def test_a_new_adversarial_loss_replaces_the_old(losses):
    assert weights(compose_losses(["vanilla"], losses, CYCLEGAN)) == {"cycle": 3.0, "vanilla": 1.0}
    assert weights(compose_losses(["vanilla", "hinge:2"], losses, CYCLEGAN)) == {"cycle": 3.0, "hinge": 2.0}


def test_removing_the_only_adversarial_loss_is_an_error(losses):
    with pytest.raises(ic.SpecError, match="lsgan:0"):
        compose_losses(["lsgan:0"], losses, CYCLEGAN)


def test_composed_specs_are_resolved_for_the_config(losses):
    specs = [str(spec) for spec in compose_loss_specs(["gc:0.3", "identity"], losses, CYCLEGAN)]
    assert specs == [
        "lsgan:weight=1.0,denoise_ct=0.0,denoise_mr=0.0",
        "cycle:weight=3.0,noise=0.0",
        "gc:weight=0.3,op=sobel,abs=true",
        "identity:weight=0.5",
    ]


def test_composition_with_the_installed_registry(cyclegan_only):
    assert weights(compose_losses(["gc:0.3"], ic.LOSSES, CYCLEGAN)) == {"lsgan": 1.0, "cycle": 3.0, "gc": 0.3}


def test_hist_is_the_wasserstein_distance_between_value_distributions():
    from imtrans_cyclegan.losses import IntensityDistributionLoss

    hist = IntensityDistributionLoss(quantiles=64)
    torch.manual_seed(0)
    real = torch.rand(2, 1, 8, 8) * 2 - 1
    shuffled = real.flatten()[torch.randperm(real.numel())].reshape(real.shape)
    assert float(hist(real, shuffled)) == pytest.approx(0.0, abs=1e-7)  # same values, other places
    assert float(hist(real, real + 0.25)) == pytest.approx(0.25, abs=1e-6)  # W1 of a shift is the shift
    half = torch.cat([torch.full((1, 1, 8, 8), -1.0), torch.full((1, 1, 8, 8), 1.0)])
    assert float(hist(half, torch.full_like(half, -1.0))) == pytest.approx(
        1.0, abs=0.04
    )  # half the mass moves 2
    fake = torch.zeros(2, 1, 8, 8, requires_grad=True)
    hist(real, fake).backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    with pytest.raises(ic.SpecError, match="quantiles must be at least 2"):
        ic.LOSSES.build("hist:quantiles=1")


def test_hist_compares_each_synthetic_batch_with_a_real_batch_of_its_domain():

    objective = Objective.from_losses(compose_losses(["hist:2"], ic.LOSSES, CYCLEGAN))
    ct, mr = torch.zeros(1, 1, 4, 4), torch.ones(1, 1, 4, 4)
    out = {"fake_ct": torch.full((1, 1, 4, 4), 0.5), "fake_mr": torch.ones(1, 1, 4, 4)}
    out |= {"rec_ct": ct, "rec_mr": mr}

    class Real(torch.nn.Module):
        def forward(self, a, b):
            return torch.ones(1, 1, 2, 2), torch.ones(1, 1, 2, 2)

    terms = objective.generator_terms({"ct": ct, "mr": mr}, out, Real())
    assert float(terms["hist"]) == pytest.approx(0.5 * (0.5 + 0.0))  # CT off by 0.5, MR exact; halved
    assert objective.weights()["hist"] == 2.0 and objective.uses_unpaired


# ----------------------------------------------------------------------------- MIND


def test_mind_ignores_contrast_polarity_and_window(image):
    from imtrans_cyclegan.losses import self_similarity

    reference = self_similarity(image)
    assert reference.shape == (2, 8, 32, 32) and reference.dtype == torch.float32
    for a, b in ((2.0, 0.5), (-1.0, 0.0), (-0.3, 3.0)):  # a CT and an MR of one anatomy differ so, and more
        assert torch.allclose(self_similarity(a * image + b), reference, atol=1e-5)
    assert float(reference.amax(dim=1).min()) == pytest.approx(1.0)  # the most similar neighbour scores 1


def test_mind_loss_sees_where_boundaries_are_not_what_values_they_separate():
    from imtrans_cyclegan.losses import SelfSimilarityLoss

    loss = SelfSimilarityLoss()
    torch.manual_seed(0)
    mr = torch.full((1, 1, 48, 48), -0.5)
    mr[..., 12:36, 16:30] = 0.8  # one bright tissue in a dark one
    mr = mr + 0.01 * torch.randn_like(mr)
    inverted = 0.4 - 1.2 * mr  # the same anatomy, opposite polarity (bone in T1 and CT)
    moved = torch.roll(inverted, 4, dims=-1)  # the same contrast, the boundary 4 px off
    erased = torch.full_like(mr, -0.2) + 0.01 * torch.randn_like(mr)  # both tissues at one value
    assert float(loss(mr, mr)) == 0.0
    assert float(loss(mr, inverted)) < 0.02
    assert float(loss(mr, moved)) > 5 * float(loss(mr, inverted))
    assert float(loss(mr, erased)) > 5 * float(loss(mr, inverted))


def test_mind_loss_is_float32_under_autocast_and_has_gradients(image):
    from imtrans_cyclegan.losses import SelfSimilarityLoss

    fake = image.flip(-1).clone().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = SelfSimilarityLoss()(image, fake)
    assert value.dtype == torch.float32
    value.backward()
    assert fake.grad is not None and torch.isfinite(fake.grad).all() and fake.grad.abs().sum() > 0
    flat = torch.zeros(1, 1, 16, 16, requires_grad=True)  # no structure at all: finite, no NaN
    SelfSimilarityLoss()(image[:1, :, :16, :16], flat).backward()
    assert torch.isfinite(flat.grad).all()


def test_mind_is_a_structure_term_of_both_directions(cyclegan_only):

    loss = ic.LOSSES.build("mind:2,radius=1,patch=3")
    assert (loss.weight, loss.radius, loss.patch) == (2.0, 1, 3)
    objective = Objective.from_losses(compose_losses(["mind:2"], ic.LOSSES, CYCLEGAN))
    assert objective.weights()["mind"] == 2.0 and "mind" in objective.gradient
    for bad, message in (("mind:radius=0", "radius must be"), ("mind:patch=4", "patch must be")):
        with pytest.raises(ic.SpecError, match=message):
            ic.LOSSES.build(bad)


# ----------------------------------------------------------------------------- contrast prior


def _fitted_prior(**options):
    """A prior fitted on MR values u in (-0.9, 1) and CT values 0.5 - u (CT dark where the MR is bright)."""
    from imtrans_cyclegan.losses import ContrastPriorLoss

    mr = np.random.default_rng(0).uniform(-0.9, 1.0, 20000)
    prior = ContrastPriorLoss(**options)
    prior.fit(0.1 - mr, np.concatenate([mr, np.full(5000, -1.0)]))  # MR air (-1) is no body voxel
    return prior


def test_prior_maps_each_value_to_the_target_value_of_inverse_rank():
    prior = _fitted_prior()
    mr = torch.tensor([[[[-0.8, 0.0, 0.5, 0.9]]]])
    assert float(prior(mr, 0.1 - mr, "ct")) == pytest.approx(0.0, abs=0.01)  # the inverse map, exactly
    assert float(prior(mr, mr, "ct")) > 0.5  # the MR's own contrast is far from it
    ct = 0.1 - mr
    assert float(prior(ct, mr, "mr")) == pytest.approx(0.0, abs=0.01)  # and back: CT -> MR
    direct = _fitted_prior(order="direct")
    assert float(direct(mr, 0.1 - mr, "ct")) > 0.5  # `direct` maps rank to the same rank:
    assert float(direct(mr, mr, "ct")) == pytest.approx(0.0, abs=0.01)  # here both spread over (-0.9, 1)


def test_prior_counts_only_the_sources_body():
    prior = _fitted_prior()
    source = torch.tensor([[[[-1.0, -1.0, 0.0, 0.0]]]])  # half air
    target = 0.1 - source
    off_in_air = target.clone()
    off_in_air[..., :2] = 1.0
    assert float(prior(source, off_in_air, "ct")) == pytest.approx(0.0, abs=0.01)
    off_in_body = target.clone()
    off_in_body[..., 2:] += 0.4
    assert float(prior(source, off_in_body, "ct")) == pytest.approx(0.4, abs=0.01)  # the mean over the body


def test_prior_weight_falls_to_zero_at_until_and_the_objective_follows_it():

    prior = ic.LOSSES.build("prior:4,until=100")
    assert [prior.factor(s) for s in (0, 50, 100, 500)] == [1.0, 0.5, 0.0, 0.0]
    assert ic.LOSSES.build("prior:until=0").factor(10**6) == 1.0  # 0: the full weight throughout
    objective = Objective.from_losses(compose_losses(["prior:4,until=100"], ic.LOSSES, CYCLEGAN))
    assert objective.weights(25)["prior"] == 3.0 and objective.weights(25)["cycle"] == 3.0
    terms = {"g_ct": torch.tensor(0.0), "g_mr": torch.tensor(0.0), "cycle": torch.tensor(0.0)}
    terms["prior"] = torch.tensor(1.0)
    assert float(objective.generator_loss(terms, step=75)) == pytest.approx(1.0)
    assert objective.uses_unpaired and "prior" in objective.prior


def test_a_blurred_prior_holds_regions_values_and_lets_fine_detail_go():
    prior, blurred = _fitted_prior(), _fitted_prior(blur=2)
    mr = torch.full((1, 1, 32, 32), 0.2)
    right = prior.mapped(mr, "ct")
    rows, columns = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    checkerboard = right + 0.2 * ((rows + columns) % 2 * 2 - 1)
    noise = right + 0.1 * torch.randn(right.shape, generator=torch.Generator().manual_seed(0))
    offset = right.clone()
    offset[..., 8:24, 8:24] += 0.2  # a region drawn at another value
    for image in (checkerboard, noise):  # detail of mean zero, which the map cannot know
        assert float(blurred(mr, image, "ct")) < 0.35 * float(prior(mr, image, "ct"))
    assert float(blurred(mr, offset, "ct")) > 0.6 * float(prior(mr, offset, "ct"))
    assert float(blurred(mr, right, "ct")) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ic.SpecError, match="blur must be a Gaussian SD"):
        ic.LOSSES.build("prior:blur=-1")


def _ringed_bone() -> tuple[torch.Tensor, torch.Tensor]:
    """A CT slice ([-1, 1]): soft tissue at 0, a ring of cortex (0.9 > 250 HU) around cancellous bone at
    0.5 (200 HU); and where its inside is."""
    rows, columns = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    radius = ((rows - 16.0) ** 2 + (columns - 16.0) ** 2).sqrt()
    ct = torch.where(radius < 8, 0.5, 0.0)
    ct = torch.where((radius >= 8) & (radius < 10), 0.9, ct)
    return ct[None, None], (radius < 8)[None, None]


def test_bone_inside_finds_what_cortex_encloses_and_nothing_else():
    from imtrans_cyclegan.losses import bone_inside

    ct, inside = _ringed_bone()
    assert torch.equal(bone_inside(ct), inside)
    opened = ct.clone()
    opened[..., 16, 24:27] = 0.0  # a gap in the ring: nothing is enclosed
    assert not bone_inside(opened).any()
    assert not bone_inside(torch.full_like(ct, 0.5)).any()  # dense, but no cortex around it


def test_a_marrow_prior_maps_bone_inside_to_bright_marrow_in_the_mr_direction_only():
    prior, marrow = _fitted_prior(), _fitted_prior(marrow=True)
    ct, inside = _ringed_bone()
    inverse = prior.mapped(ct, "mr")  # ~ 0.1 - ct: the bone's inside comes out dark (-0.4)
    bright = torch.where(inside, prior.mapped(ct, "mr", direct=True), inverse)  # ~ +0.5 inside
    assert float(bright[inside].mean()) > 0.4 and float(inverse[inside].mean()) < -0.3
    assert float(marrow(ct, bright, "mr")) == pytest.approx(0.0, abs=1e-6)
    assert float(marrow(ct, inverse, "mr")) > 0.1
    assert float(prior(ct, inverse, "mr")) == pytest.approx(0.0, abs=1e-6)
    mr = torch.full_like(ct, 0.2)  # the MR -> CT direction is the plain map either way
    assert float(marrow(mr, prior.mapped(mr, "ct"), "ct")) == pytest.approx(0.0, abs=1e-6)


def test_a_prior_held_on_one_side_leaves_the_other_generator_free():
    mr = torch.tensor([[[[-0.8, 0.0, 0.5, 0.9]]]])
    ct = 0.1 - mr
    both, only_ct = _fitted_prior(), ic.LOSSES.build("prior:only=ct")
    only_ct.fit(*(np.asarray(getattr(both, k)) for k in ("ct_knots", "mr_knots")))
    far = torch.zeros_like(mr)  # far from either map
    assert float(both(mr, far, "ct")) > 0.2
    assert float(only_ct(mr, far, "ct")) == pytest.approx(float(both(mr, far, "ct")), rel=1e-5)
    assert float(only_ct(ct, far, "mr")) == 0.0 < float(both(ct, far, "mr"))


def test_prior_refuses_bad_options_and_use_before_fitting():
    from imtrans_cyclegan.losses import ContrastPriorLoss

    with pytest.raises(ic.SpecError, match="until must be >= 0"):
        ic.LOSSES.build("prior:until=-1")
    with pytest.raises(ic.SpecError, match="order must be inverse or direct"):
        ContrastPriorLoss(order="upside")
    with pytest.raises(ic.SpecError, match="only='g_ct' expected one of both, ct, mr"):
        ic.LOSSES.build("prior:only=g_ct")
    with pytest.raises(ic.SpecError, match="marrow=true holds G_MR, which only=ct leaves free"):
        ic.LOSSES.build("prior:only=ct,marrow=true")
    with pytest.raises(ic.SpecError, match="not fitted"):
        ContrastPriorLoss()(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), "ct")
    with pytest.raises(ic.SpecError, match="too few body voxels"):
        ContrastPriorLoss().fit(np.full(1000, -1.0), np.zeros(1000))


def test_prior_interpolates_as_numpy():
    from imtrans_cyclegan.losses import _interp

    xp, fp = np.array([-1.0, -0.2, 0.0, 0.0, 0.7]), np.array([3.0, 1.0, 0.5, 0.4, -2.0])
    x = np.linspace(-1.5, 1.5, 41)
    ours = _interp(torch.tensor(x), torch.tensor(xp), torch.tensor(fp)).numpy()
    assert np.allclose(ours, np.interp(x, xp, fp))
