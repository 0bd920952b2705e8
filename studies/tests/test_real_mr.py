"""studies/real_mr.py: the measures it reports on the real MRs' translations."""

from __future__ import annotations

import numpy as np
import pytest

from imtrans_core.data.volume import Volume


@pytest.fixture(scope="module")
def real_mr(load_study):
    return load_study("real_mr")


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_top_of_a_mask_is_its_most_superior_part_whatever_the_axis_direction(real_mr, sign):
    direction = np.diag([1.0, 1.0, sign])
    volume = Volume(np.zeros((4, 4, 10), np.float32), spacing=(1.0, 1.0, 3.0), direction=direction)
    mask = np.zeros(volume.shape, bool)
    mask[1:3, 1:3, 2:8] = True  # slices 2..7; superior is slice 7 going up, slice 2 going down
    top = real_mr.top_of(mask, volume, 6.0) & mask
    kept = np.flatnonzero(top.any(axis=(0, 1)))
    assert list(kept) == ([5, 6, 7] if sign > 0 else [2, 3, 4])


def test_regions_lie_inside_the_prostate_t2_and_name_a_tissue_of_the_real_ct(real_mr):
    for box, tissue in real_mr.REGIONS.values():
        assert all(0 <= first < stop <= n for (first, stop), n in zip(box, (384, 384, 19), strict=True))
        assert tissue in (*real_mr.REAL_CT, "fat")


def test_spread_is_the_median_and_sd_in_the_window(real_mr):
    hu = np.array([-1000.0, 0.0, 100.0, 2000.0])
    assert real_mr.spread(hu) == [50.0, pytest.approx(np.std([-150, 0, 100, 350]))]
