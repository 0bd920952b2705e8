"""The metrics plugin: MAE, PSNR, SSIM, MI and Dice against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import imtrans_core as ic
from imtrans_core.errors import ImtransError, SpecError
from imtrans_metrics.overlap import dice, dice_score, parse_labels
from imtrans_metrics.similarity import mae, mi, psnr, ssim, ssim_map

# pred and ref in HU. On the paper's scale, y = (clip(x, -150, 350) + 150) * 255 / 500 = 0.51 (x + 150):
#   pred -150 -> 0,     350 -> 255,    100 -> 127.5,   -400 -> clip -150 -> 0
#   ref  -100 -> 25.5,  300 -> 229.5,  400 -> clip 350 -> 255,   -150 -> 0
# |pred - ref| = [25.5, 25.5, 127.5, 0] = 255 * [0.1, 0.1, 0.5, 0]
PRED = np.array([-150.0, 350.0, 100.0, -400.0])
REF = np.array([-100.0, 300.0, 400.0, -150.0])

# SynthRAD2023 clips to [-1024, 3000] HU: pred becomes [3000, -1024, 0, 100]; |pred - ref| = [0, 0, 24, 0].
PRED_WIDE = np.array([3500.0, -2000.0, 0.0, 100.0])
REF_WIDE = np.array([3000.0, -1024.0, 24.0, 100.0])


# ----------------------------------------------------------------------------- MAE


def test_mae_paper_scale_by_hand():
    assert mae(PRED, REF) == pytest.approx((25.5 + 25.5 + 127.5 + 0) / 4)  # 44.625


def test_mae_hu_scale_by_hand():
    # |[-150 - -100, 350 - 300, 100 - 400, -400 - -150]| = [50, 50, 300, 250]
    assert mae(PRED, REF, scale="hu") == pytest.approx(650 / 4)


def test_mae_synthrad_clips_to_its_range():
    assert mae(PRED_WIDE, REF_WIDE, scale="synthrad") == pytest.approx(24 / 4)
    # unclipped: |[500, -976, -24, 0]| -> 1500 / 4
    assert mae(PRED_WIDE, REF_WIDE, scale="hu") == pytest.approx(1500 / 4)


def test_mae_counts_only_voxels_inside_the_mask():
    assert mae(PRED, REF, mask=[1, 1, 0, 0]) == pytest.approx(25.5)
    assert mae(PRED, REF, mask=np.array([False, False, True, False])) == pytest.approx(127.5)


# ----------------------------------------------------------------------------- PSNR


def test_psnr_paper_scale_by_hand():
    # MSE = 255² (0.01 + 0.01 + 0.25 + 0) / 4 = 255² * 0.0675, so 20 log10(255 / sqrt(MSE)) = -10 log10(0.0675)
    assert psnr(PRED, REF) == pytest.approx(-10 * math.log10(0.0675))  # 11.707 dB


def test_psnr_is_the_papers_formula():
    rng = np.random.default_rng(1)
    pred, ref = rng.uniform(-150, 350, 1000), rng.uniform(-150, 350, 1000)
    mse = np.mean(((pred + 150) * 0.51 - (ref + 150) * 0.51) ** 2)
    assert psnr(pred, ref) == pytest.approx(20 * math.log10(255 / math.sqrt(mse)))


def test_psnr_synthrad_clips_and_uses_range_4024():
    # MSE = 24² / 4 = 144, RMSE = 12
    assert psnr(PRED_WIDE, REF_WIDE, scale="synthrad") == pytest.approx(20 * math.log10(4024 / 12))


def test_psnr_of_identical_images_is_infinite():
    assert psnr(REF, REF) == math.inf
    # values beyond the window clip to the same number: identical on the paper's scale
    assert psnr(np.array([400.0, -500.0]), np.array([351.0, -151.0])) == math.inf


def test_psnr_refuses_raw_hu():
    with pytest.raises(ValueError, match="'hu' is not offered here: expected one of paper, synthrad"):
        psnr(PRED, REF, scale="hu")


# ----------------------------------------------------------------------------- SSIM


def _phantom(shape=(32, 32)) -> np.ndarray:
    """A smooth CT-like slice in HU: a soft-tissue disc holding a bone ring."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    r = np.hypot(yy - shape[0] / 2, xx - shape[1] / 2)
    return np.where(r < 12, 40.0, -1000.0) + np.where((r > 5) & (r < 8), 300.0, 0.0)


def test_ssim_of_identical_images_is_one():
    image = _phantom()
    assert ssim(image, image) == pytest.approx(1.0)
    assert ssim(image, image, scale="synthrad") == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("pred_hu", "ref_hu", "scale", "mu_pred", "mu_ref", "peak"),
    [
        (100.0, 350.0, "paper", 127.5, 255.0, 255.0),  # 0.51 * 250 = 127.5; 350 -> 255
        (100.0, -150.0, "paper", 127.5, 0.0, 255.0),
        (0.0, 1000.0, "synthrad", 1024.0, 2024.0, 4024.0),  # shifted by +1024 to start at 0
    ],
)
def test_ssim_of_constant_images_is_the_luminance_term(pred_hu, ref_hu, scale, mu_pred, mu_ref, peak):
    # no variance: the contrast-structure term is (0 + C2) / (0 + C2) = 1
    c1 = (0.01 * peak) ** 2
    expected = (2 * mu_pred * mu_ref + c1) / (mu_pred**2 + mu_ref**2 + c1)
    pred, ref = np.full((9, 12), pred_hu), np.full((9, 12), ref_hu)
    assert ssim(pred, ref, scale=scale) == pytest.approx(expected, rel=1e-9)


def test_ssim_map_matches_a_direct_window_sum():
    # The definition, pixel by pixel: an 11x11 Gaussian (sigma 1.5) over symmetric-padded images.
    rng = np.random.default_rng(2)
    ref = rng.uniform(-150, 350, (9, 13))
    pred = ref + rng.normal(0, 40, ref.shape)
    g = np.exp(-0.5 * (np.arange(-5, 6) / 1.5) ** 2)
    w = np.outer(g, g) / np.outer(g, g).sum()
    x = np.pad((np.clip(pred, -150, 350) + 150) * 0.51, 5, mode="symmetric")
    y = np.pad((np.clip(ref, -150, 350) + 150) * 0.51, 5, mode="symmetric")
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    expected = np.empty(ref.shape)
    for i in range(ref.shape[0]):
        for j in range(ref.shape[1]):
            px, py = x[i : i + 11, j : j + 11], y[i : i + 11, j : j + 11]
            mx, my = (w * px).sum(), (w * py).sum()
            vx, vy = (w * (px - mx) ** 2).sum(), (w * (py - my) ** 2).sum()
            cxy = (w * (px - mx) * (py - my)).sum()
            expected[i, j] = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    np.testing.assert_allclose(ssim_map(pred, ref), expected, rtol=1e-10)


def test_ssim_falls_as_noise_grows():
    rng = np.random.default_rng(3)
    ref = _phantom((48, 48))
    scores = [ssim(ref + rng.normal(0, sd, ref.shape), ref) for sd in (5, 20, 80)]
    assert 1 > scores[0] > scores[1] > scores[2]


def test_ssim_averages_the_map_inside_the_mask():
    rng = np.random.default_rng(4)
    ref = _phantom()
    pred = ref + rng.normal(0, 30, ref.shape)
    mask = _phantom() > -500
    assert ssim(pred, ref, mask=mask) == pytest.approx(ssim_map(pred, ref)[mask].mean())


def test_ssim_per_slice_is_the_2d_ssim_of_each_slice():
    rng = np.random.default_rng(5)
    ref = np.stack([_phantom((20, 24)) + 50 * k for k in range(4)], axis=1)  # slices across axis 1
    pred = ref + rng.normal(0, 30, ref.shape)
    per_slice = [ssim(pred[:, k], ref[:, k]) for k in range(4)]
    assert ssim(pred, ref, axis=1) == pytest.approx(np.mean(per_slice))
    assert ssim(pred, ref, axis=-2) == pytest.approx(np.mean(per_slice))
    assert ssim(pred, ref) != pytest.approx(np.mean(per_slice))  # the 3-D window mixes slices


# ----------------------------------------------------------------------------- mutual information


def test_mi_of_a_2x2_histogram_by_hand():
    # joint p: (0,0) 2/4, (0,1) 1/4, (1,1) 1/4; marginals p_a = (3/4, 1/4), p_b = (1/2, 1/2)
    # MI = 1/2 ln(1/2 / (3/4 * 1/2)) + 1/4 ln(1/4 / (3/4 * 1/2)) + 1/4 ln(1/4 / (1/4 * 1/2))
    a, b = np.array([0.0, 0.0, 0.0, 1.0]), np.array([0.0, 0.0, 1.0, 1.0])
    expected = 0.5 * math.log(4 / 3) + 0.25 * math.log(2 / 3) + 0.25 * math.log(2)  # 0.2158 nats
    assert mi(a, b, bins=2) == pytest.approx(expected)
    # NMI = (H(A) + H(B)) / H(A, B)
    h_a = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    h_b = math.log(2)
    h_ab = -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25))
    assert mi(a, b, bins=2, normalized=True) == pytest.approx((h_a + h_b) / h_ab)


def test_mi_of_an_image_with_itself_is_its_entropy():
    rng = np.random.default_rng(6)
    image = rng.integers(0, 8, (40, 50)).astype(float)  # 8 values, 8 bins: one value per bin
    p = np.unique(image, return_counts=True)[1] / image.size
    assert mi(image, image, bins=8) == pytest.approx(-(p * np.log(p)).sum())
    assert mi(image, image, bins=8, normalized=True) == pytest.approx(2.0)


def test_mi_with_independent_noise_is_nearly_zero():
    rng = np.random.default_rng(7)
    image, noise = rng.normal(size=(400, 400)), rng.normal(size=(400, 400))
    # plug-in bias is about (32 - 1)² / (2 * 160000) = 0.003 nats; the image with itself has ~3 nats
    assert 0 <= mi(image, noise) < 0.01 < 2 < mi(image, image)
    assert mi(image, noise, normalized=True) == pytest.approx(1.0, abs=0.01)


def test_mi_ignores_voxels_outside_the_mask():
    rng = np.random.default_rng(8)
    a, b = rng.normal(size=(30, 30)), rng.normal(size=(30, 30))
    mask = np.zeros((30, 30), bool)
    mask[5:25, 5:25] = True
    changed = np.where(mask, a, 1e6)
    assert mi(changed, b, mask=mask) == pytest.approx(mi(a, b, mask=mask))


def test_mi_per_slice_uses_the_bins_of_the_whole_images():
    rng = np.random.default_rng(9)
    a = rng.normal(size=(6, 20, 20))
    b = a + rng.normal(scale=0.5, size=a.shape)
    ranges = ((a.min(), a.max()), (b.min(), b.max()))
    per_slice = [mi(a[k], b[k], bins=16, ranges=ranges) for k in range(6)]
    assert mi(a, b, bins=16, axis=0) == pytest.approx(np.mean(per_slice))


def test_mi_ranges_send_values_beyond_them_to_the_edge_bins():
    a, b = np.array([-5.0, 0.0, 0.0, 1.0, 9.0]), np.array([0.0, 0.0, 0.0, 1.0, 1.0])
    # with a's bins over [0, 1], -5 joins bin 0 and 9 joins bin 1: a's bins then equal b's values
    assert mi(a, b, bins=2, ranges=((0, 1), (0, 1))) == pytest.approx(mi(b, b, bins=2))


def test_mi_of_constant_images():
    assert mi(np.ones((4, 4)), np.zeros((4, 4))) == 0.0
    assert mi(np.ones((4, 4)), np.zeros((4, 4)), normalized=True) == 1.0


# ----------------------------------------------------------------------------- Dice


def _squares() -> tuple[np.ndarray, np.ndarray]:
    """Two 10x10 squares in a 20x20 grid, the second 5 rows lower: they share 5x10 = 50 pixels."""
    a, b = np.zeros((20, 20), bool), np.zeros((20, 20), bool)
    a[0:10, 0:10] = True
    b[5:15, 0:10] = True
    return a, b


def test_dice_score_of_overlapping_squares():
    a, b = _squares()
    assert dice_score(a, b) == pytest.approx(2 * 50 / (100 + 100))  # 0.5
    assert dice_score(a, a) == 1.0
    assert dice_score(a, ~a) == 0.0
    assert dice_score(np.zeros(5), np.zeros(5)) == 1.0  # both empty: documented convention


def test_dice_per_label_and_per_group():
    a, b = _squares()
    pred = np.where(a, 1, 0)
    ref = np.where(b, 1, 0)
    pred[15:20, 15:20], ref[15:20, 15:20] = 2, 3  # left/right femur swapped: 0 apart, 1 together
    assert dice(pred, ref) == pytest.approx({1: 0.5, 2: 0.0, 3: 0.0})
    assert dice(pred, ref, [1, (2, 3)]) == pytest.approx({1: 0.5, (2, 3): 1.0})
    assert dice(pred, ref, {"pelvis": 1, "femur": [2, 3]}) == pytest.approx({"pelvis": 0.5, "femur": 1.0})
    assert dice(pred, ref, "pelvis:1;femur:2+3") == pytest.approx({"pelvis": 0.5, "femur": 1.0})
    assert dice(pred.astype(float), ref.astype(float)) == pytest.approx({1: 0.5, 2: 0.0, 3: 0.0})


def test_dice_inside_a_mask():
    a, b = _squares()
    mask = np.zeros((20, 20), bool)
    mask[:, :5] = True  # left half of both squares: A 50 px, B 50 px, shared 25 px
    assert dice(a.astype(int), b.astype(int), [1], mask=mask) == {1: pytest.approx(0.5)}


def test_parse_labels():
    assert parse_labels("") == {}
    assert parse_labels("1;2+3") == {1: (1,), (2, 3): (2, 3)}
    assert parse_labels("pelvis:1; femur:2+3") == {"pelvis": (1,), "femur": (2, 3)}
    with pytest.raises(ValueError, match="cannot read"):
        parse_labels("femur:left")
    with pytest.raises(ValueError, match="listed twice"):
        parse_labels("1;1")


def test_dice_metric_gives_the_mean_and_each_structure():
    a, b = _squares()
    pred, ref = np.where(a, 1, 0), np.where(b, 1, 0)
    pred[15:, 15:], ref[15:, 15:] = 2, 3
    metric = ic.METRICS.build("dice:labels='pelvis:1;femur:2+3'")
    assert metric(pred, ref) == pytest.approx((0.5 + 1.0) / 2)
    assert metric.scores(pred, ref) == pytest.approx({"pelvis": 0.5, "femur": 1.0})
    assert ic.METRICS.build("dice")(pred, ref) == pytest.approx((0.5 + 0 + 0) / 3)


def test_dice_with_nothing_to_score_is_an_error():
    with pytest.raises(ImtransError, match="no structures to score"):
        dice(np.zeros((3, 3)), np.zeros((3, 3)))


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("fn", [mae, psnr, ssim, mi])
def test_shape_mismatch_is_one_clear_error(fn):
    with pytest.raises(ImtransError, match=r"shapes differ: pred \(2, 2\) vs ref \(4,\); resample"):
        fn(np.zeros((2, 2)), np.zeros(4))


@pytest.mark.parametrize("fn", [mae, psnr, ssim, mi])
def test_empty_mask_is_an_error(fn):
    with pytest.raises(ImtransError, match="mask is empty: nothing to score"):
        fn(np.zeros((4, 4)), np.zeros((4, 4)), np.zeros((4, 4), bool))


def test_mask_of_another_shape_is_an_error():
    with pytest.raises(ImtransError, match=r"mask shape \(3,\) differs"):
        mae(PRED, REF, mask=[1, 1, 1])
    with pytest.raises(ImtransError, match="shapes differ"):
        dice(np.zeros(3), np.zeros(4))


def test_nan_inside_the_mask_is_an_error_and_outside_is_ignored():
    pred = np.array([0.0, np.nan, 10.0])
    with pytest.raises(ImtransError, match="pred has NaN"):
        mae(pred, np.zeros(3))
    assert mae(pred, np.zeros(3), mask=[1, 0, 1], scale="hu") == pytest.approx(5.0)


def test_missing_axis_is_an_error():
    with pytest.raises(ImtransError, match="axis 3 does not exist in 3-D images"):
        ssim(np.zeros((4, 4, 4)), np.zeros((4, 4, 4)), axis=3)


# ----------------------------------------------------------------------------- registry


def test_registry_lists_and_builds_every_metric():
    assert {"mae", "psnr", "ssim", "mi", "dice"} <= set(ic.METRICS.names())
    metric = ic.METRICS.build("psnr:scale=synthrad")
    assert metric(PRED_WIDE, REF_WIDE) == pytest.approx(20 * math.log10(4024 / 12))
    assert (metric.name, metric.higher_is_better, metric.unit) == ("psnr:scale=synthrad", True, "dB")
    assert ic.METRICS.build("mae")(PRED, REF, mask=[1, 1, 0, 0]) == pytest.approx(25.5)
    for name in ic.METRICS.names():
        assert ic.METRICS.info(name).summary


@pytest.mark.parametrize(
    ("spec", "higher_is_better", "unit"),
    [
        ("mae", False, "a.u."),
        ("mae:scale=hu", False, "HU"),
        ("ssim:scale=synthrad,axis=1", True, ""),
        ("mi:bins=64", True, "nats"),
        ("mi:normalized=true", True, ""),
        ("dice:labels=femur:2+3", True, ""),
    ],
)
def test_metric_names_build_the_same_metric_again(spec, higher_is_better, unit):
    metric = ic.METRICS.build(spec)
    assert metric.name == spec
    assert ic.METRICS.build(metric.name).name == spec
    assert (metric.higher_is_better, metric.unit) == (higher_is_better, unit)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("psnr:scale=hu", "expected one of paper, synthrad"),
        ("mae:scale=raw", "expected one of paper, hu, synthrad"),
        ("mi:bins=1", "bins must be an integer of at least 2"),
        ("dice:labels=femur:left", "cannot read"),
    ],
)
def test_bad_specs_are_spec_errors(spec, message):
    with pytest.raises(SpecError, match=message):
        ic.METRICS.build(spec)


# ----------------------------------------------------------------------------- properties

_images = arrays(np.float64, 12, elements=st.floats(-2000, 4000))


@settings(max_examples=50, deadline=None)
@given(_images, _images)
def test_mae_and_psnr_are_symmetric_and_consistent(pred, ref):
    assert mae(pred, ref) == pytest.approx(mae(ref, pred)) and mae(pred, ref) >= 0
    mse = np.mean((np.clip(pred, -1024, 3000) - np.clip(ref, -1024, 3000)) ** 2)
    expected = math.inf if mse == 0 else 20 * math.log10(4024 / math.sqrt(mse))
    assert psnr(pred, ref, scale="synthrad") == pytest.approx(expected)


@settings(max_examples=50, deadline=None)
@given(arrays(bool, (6, 6)), arrays(bool, (6, 6)))
def test_dice_score_is_symmetric_and_bounded(a, b):
    assert 0.0 <= dice_score(a, b) == dice_score(b, a) <= 1.0


@pytest.mark.parametrize("masked", [False, True])
def test_ssim_synthrad2023_is_scikit_images_as_the_challenge_calls_it(masked):
    """The challenge's ImageMetrics.ssim, step by step with scikit-image itself, to 1e-6."""
    skimage_metrics = pytest.importorskip("skimage.metrics")
    from skimage.util import crop

    rng = np.random.default_rng(3)
    ref = rng.uniform(-1100, 3200, (14, 11, 9))  # beyond the range on both sides: clipping counts
    pred = ref + rng.normal(0, 300, ref.shape)
    pred[0, 0, 0] = np.nan  # outside the mask: the challenge overwrites it with -1024
    mask = np.zeros(ref.shape, bool)
    mask[2:12, 1:10, 2:] = True
    if not masked:
        pred[0, 0, 0], mask = 0.0, None
    gt, sct = (np.clip(a, -1024, 3000) for a in (ref, pred))
    if masked:
        gt, sct = (np.where(mask, a, -1024) for a in (gt, sct))
    value, full = skimage_metrics.structural_similarity(gt + 1024, sct + 1024, data_range=4024, full=True)
    expected = value if mask is None else crop(full, 3)[crop(mask, 3)].mean(dtype=np.float64)
    assert ssim(pred, ref, mask, scale="synthrad", protocol="synthrad2023") == pytest.approx(
        expected, abs=1e-6
    )
    built = ic.METRICS.build("ssim:scale=synthrad,protocol=synthrad2023")
    assert built(pred, ref, mask) == pytest.approx(expected, abs=1e-6)
    with pytest.raises(ic.SpecError, match="protocol=synthrad2023"):
        ic.METRICS.build("ssim:protocol=synthrad2023")  # paper scale: not the challenge's
