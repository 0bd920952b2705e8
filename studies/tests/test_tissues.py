"""studies/tissues.py: each tissue's part of the MAE adds up to the MAE, with the bias and SD there."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def tissues(load_study):
    return load_study("tissues")


class _Labels:
    def __init__(self, array: np.ndarray):
        self.array = array


def test_parts_add_up_to_the_mae_and_say_bias_and_spread_apart(tissues):
    from imtrans_hip.anatomy import LABELS

    labels = np.zeros((4, 4, 4), np.uint8)
    labels[0], labels[1], labels[2] = LABELS["fat"], LABELS["adductors"], LABELS["pelvis"]
    labels[3, :2] = LABELS["skin"]  # the rest; labels[3, 2:] stays outside the body
    mask = labels > 0
    ct = np.zeros(labels.shape, np.float32)
    sct = ct.copy()
    sct[0] = 50.0  # fat: all biased, by 50 HU
    sct[1] = np.where(np.arange(4) % 2, 100.0, -100.0)[None, :]  # muscle: spread, no bias
    sct[3] = 1000.0  # outside the window: clipped at 350 HU, and half of it is not scored
    subject = {"labels": _Labels(labels), "mask": _Labels(mask.astype(np.uint8))}
    shares, row = tissues.parts(sct, ct, subject)
    scale = 255.0 / 500.0
    assert shares == pytest.approx({"fat": 16 / 56, "muscle": 16 / 56, "bone": 16 / 56, "rest": 8 / 56})
    assert row["MAE"] == pytest.approx((16 * 50 + 16 * 100 + 8 * 350) * scale / 56)
    assert sum(row[f"{t}: part"] for t in shares) == pytest.approx(row["MAE"])
    assert row["fat: bias"] == pytest.approx(50 * scale) and row["fat: SD"] == pytest.approx(0.0, abs=1e-9)
    assert row["muscle: bias"] == pytest.approx(0.0) and row["muscle: SD"] == pytest.approx(100 * scale)
    assert row["bone: part"] == 0.0 and row["rest: bias"] == pytest.approx(350 * scale)


def test_slope_says_how_an_image_follows_the_mr_within_a_tissue_whatever_each_label_s_level(tissues):
    from imtrans_hip.anatomy import LABELS

    labels = np.zeros((8, 8, 8), np.uint8)
    labels[:, :, :4], labels[:, :, 4:] = LABELS["adductors"], LABELS["quadriceps"]
    mr = np.random.default_rng(0).normal(40.0, 5.0, labels.shape)
    mr[..., 4:] += 20.0  # another muscle, another level: only deviations from each label's median count
    subject = {"labels": _Labels(labels), "mask": _Labels(np.ones_like(labels)), "mr": _Labels(mr)}
    inside = np.zeros(labels.shape, bool)
    inside[1:-1, 1:-1, 1:-1] = True  # one voxel from the muscle's edge
    spread = np.concatenate(
        [
            mr[inside & (labels == v)] - np.median(mr[inside & (labels == v)])
            for v in (LABELS["adductors"], LABELS["quadriceps"])
        ]
    ).std()
    direct = 30.0 + 2.0 * mr + np.where(labels == LABELS["quadriceps"], 100.0, 0.0)
    assert tissues.slope(direct, mr, subject, "muscle") == pytest.approx(2.0 * spread, rel=1e-6)
    assert tissues.slope(60.0 - mr, mr, subject, "muscle") == pytest.approx(-spread, rel=1e-6)
