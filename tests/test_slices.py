"""Volumes <-> slice stacks, and the unpaired slice sampler that feeds training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import imtrans_core as ic
from imtrans_core.data.slices import (
    PairedSlices,
    Plane,
    SliceStacks,
    StepSampler,
    UnpairedSlices,
    fit_to,
    from_slices,
    to_slices,
    window_indices,
)
from imtrans_core.data.sources import VolumePool
from imtrans_core.data.volume import Volume
from imtrans_core.errors import ImtransError

FLIPS = np.diag([-1.0, 1.0, -1.0])  # an LPS grid stored with two axes reversed


@pytest.mark.parametrize("orientation", ["coronal", "axial", "sagittal"])
@pytest.mark.parametrize("direction", [np.eye(3), FLIPS, np.eye(3)[[2, 0, 1]]])
def test_to_and_from_slices_are_exact_inverses(orientation, direction):
    array = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    plane = Plane.of(Volume(array, direction=direction), orientation)
    stack = to_slices(array, plane)
    assert stack.shape[0] == array.shape[plane.axes[0]]
    np.testing.assert_array_equal(from_slices(stack, plane), array)


def test_coronal_slices_show_the_head_up_and_the_right_on_the_left():
    # Identity LPS grid: i runs to the patient's left, k to the head.
    array = np.zeros((4, 3, 5), dtype=np.float32)
    array[0, :, 4] = 1.0  # the patient's rightmost, most superior column
    stack = to_slices(array, Plane.of(Volume(array), "coronal"))
    assert stack.shape == (3, 5, 4)
    assert stack[0, 0, 0] == 1.0 and stack.sum() == 3.0  # top-left of every coronal slice


def test_fit_to_crops_and_pads_with_background():
    image = np.arange(36, dtype=np.float32).reshape(6, 6)
    np.testing.assert_array_equal(fit_to(image, 4, None), image[1:5, 1:5])  # centred crop
    padded = fit_to(image[:2, :2], 4, None)
    assert padded.shape == (4, 4) and padded[0, 0] == -1.0 and padded[1, 1] == image[0, 0]
    assert fit_to(image, 4, np.random.default_rng(0)).shape == (4, 4)


def pool(n: int, value: float, loads: list[str]) -> VolumePool:
    def load(volume_id: str) -> Volume:
        loads.append(volume_id)
        array = np.full((6, 3, 6), value + int(volume_id[1:]), dtype=np.float32)
        array[0, :, 0] = 2000.0  # a bright corner: MR scaling maps it to the top of the window
        array[:, 0, :] = -1000.0  # an empty slice: air in CT (and nothing above 0 in MR)
        return Volume(array)

    return VolumePool([f"v{i}" for i in range(n)], load)


def test_slice_stacks_cache_on_disk_and_skip_empty_slices(tmp_path, monkeypatch):
    monkeypatch.setenv("IMTRANS_CACHE", str(tmp_path))
    loads: list[str] = []
    stacks = SliceStacks(pool(3, 100.0, loads), "ct", "coronal", fingerprint="test-1")
    assert len(stacks) == 3 * 2  # the air slice of each volume is left out
    first = stacks.around(*stacks.index[0], 0)
    assert first.dtype == np.float16 and first.shape == (1, 6, 6)
    again = SliceStacks(pool(3, 100.0, loads), "ct", "coronal", fingerprint="test-1")
    assert loads == ["v0", "v1", "v2"] and len(again) == 6  # the second build read the cache only


def test_a_pool_without_body_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("IMTRANS_CACHE", str(tmp_path))
    empty = VolumePool(["a"], lambda _: Volume(np.full((4, 2, 4), -1000.0, dtype=np.float32)))
    with pytest.raises(ImtransError, match="the ct pool has no slice with enough body"):
        SliceStacks(empty, "ct", "coronal", fingerprint="empty")


def test_unpaired_samples_are_deterministic_and_independent(tmp_path, monkeypatch):
    monkeypatch.setenv("IMTRANS_CACHE", str(tmp_path))
    ct = SliceStacks(pool(4, 0.0, []), "ct", "coronal", fingerprint="ct")
    mr = SliceStacks(pool(4, 1000.0, []), "mr", "coronal", fingerprint="mr")
    data = UnpairedSlices(ct, mr, size=8, seed=3)
    first = data[17]
    assert first["ct"].shape == (1, 8, 8) and str(first["ct"].dtype) == "torch.float32"
    assert all((data[17][k] == first[k]).all() for k in ("ct", "mr"))  # a pure function of (seed, index)
    ct_levels, mr_levels = [], []
    for i in range(200):
        item = data[i]
        ct_levels.append(float(item["ct"][0, 4, 4]))
        mr_levels.append(float(item["mr"][0, 4, 4]))
    assert len(set(ct_levels)) == 4 and len(set(mr_levels)) == 4  # every volume is drawn
    assert abs(np.corrcoef(ct_levels, mr_levels)[0, 1]) < 0.2  # CT and MR drawn independently


def _ramp_pool(n: int, shape: tuple[int, int, int], offset: float) -> VolumePool:
    """Volumes whose every voxel differs: value = offset + 100 * volume + a ramp over the voxels."""
    ramp = np.arange(np.prod(shape), dtype=np.float32).reshape(shape) % 97
    return VolumePool([f"p{i}" for i in range(n)], lambda i: Volume(offset + 100.0 * int(i[1:]) + ramp))


def test_paired_samples_show_one_subjects_slice_cropped_and_flipped_alike(tmp_path, monkeypatch):
    monkeypatch.setenv("IMTRANS_CACHE", str(tmp_path))
    ct = SliceStacks(_ramp_pool(3, (12, 5, 12), 0.0), "ct", "coronal", fingerprint="pct")
    mr = SliceStacks(_ramp_pool(3, (12, 5, 12), 0.0), "ct", "coronal", fingerprint="pmr")  # same voxels
    data = PairedSlices(ct, mr, size=8, seed=1)
    seen = set()
    for i in range(40):
        item = data[i]
        assert item["pair_ct"].shape == (1, 8, 8)
        assert (item["pair_ct"] == item["pair_mr"]).all()  # one slice, one crop, one flip
        assert (data[i]["pair_ct"] == item["pair_ct"]).all()  # a pure function of (seed, index)
        seen.add(float(item["pair_ct"][0, 0, 0]))
    assert len(seen) > 10  # crops, slices and subjects vary
    assert not (PairedSlices(ct, mr, size=8, seed=2)[0]["pair_ct"] == data[0]["pair_ct"]).all()


def test_window_indices_repeat_the_end_slices():
    assert window_indices(5, np.arange(5), 1).tolist() == [
        [0, 0, 1],
        [0, 1, 2],
        [1, 2, 3],
        [2, 3, 4],
        [3, 4, 4],
    ]
    assert window_indices(3, np.array([1]), 2).tolist() == [[0, 0, 1, 2, 2]]
    assert window_indices(4, np.array([2]), 0).tolist() == [[2]]


def test_2_5d_samples_are_the_2d_sample_with_its_neighbours_cropped_and_flipped_alike(tmp_path, monkeypatch):
    """With context 1 each item is the context-0 item's slice between its two neighbours, same draws."""
    monkeypatch.setenv("IMTRANS_CACHE", str(tmp_path))
    ct = SliceStacks(_ramp_pool(3, (12, 5, 12), 0.0), "ct", "coronal", fingerprint="sct")
    mr = SliceStacks(_ramp_pool(3, (12, 5, 12), 7.0), "ct", "coronal", fingerprint="smr")
    for flat, stacked in (
        (UnpairedSlices(ct, mr, size=8, seed=4), UnpairedSlices(ct, mr, size=8, seed=4, context=1)),
        (PairedSlices(ct, mr, size=8, seed=4), PairedSlices(ct, mr, size=8, seed=4, context=1)),
    ):
        for i in range(30):
            one, three = flat[i], stacked[i]
            for key in one:
                assert three[key].shape == (3, 8, 8)
                assert (three[key][1] == one[key][0]).all()
                # the neighbours are other slices of that volume (at an end one repeats the middle)
                assert (three[key][0] != three[key][2]).any()


def test_a_pair_on_two_grids_is_an_error_naming_it(tmp_path, monkeypatch):
    monkeypatch.setenv("IMTRANS_CACHE", str(tmp_path))
    ct = SliceStacks(_ramp_pool(2, (12, 5, 12), 0.0), "ct", "coronal", fingerprint="gct")
    mr = SliceStacks(_ramp_pool(2, (12, 6, 12), 0.0), "ct", "coronal", fingerprint="gmr")
    with pytest.raises(ImtransError, match=r"training pair p0: its CT stack is .* must share one grid"):
        PairedSlices(ct, mr, size=8)


def test_step_sampler_gives_each_rank_its_own_indices():
    ranks = [list(StepSampler(start=2, iters=4, batch=2, rank=r, world=2)) for r in range(2)]
    assert ranks == [[8, 9, 12, 13], [10, 11, 14, 15]]
    assert len(StepSampler(2, 4, 2)) == 4


def test_position_pairing_draws_the_ct_slice_at_the_mr_slices_depth(tmp_path, monkeypatch):
    monkeypatch.setenv("IMTRANS_CACHE", str(tmp_path / "cache"))
    source = ic.DATASETS.build("phantom:n_ct=3,n_mr=3,n_paired=0,size=32,slices=12")
    ct = SliceStacks(source.ct, "ct", "coronal", source.fingerprint)
    mr = SliceStacks(source.mr, "mr", "coronal", source.fingerprint)
    data = UnpairedSlices(ct, mr, size=32, seed=1, pairing="position", jitter=0.0)
    for i in range(40):
        rng = np.random.default_rng([1, i])
        mr_volume, mr_at = mr.index[int(rng.integers(len(mr)))]
        ct_volume, ct_at = data._at_depth_of((mr_volume, mr_at), rng)
        usable = [at for v, at in ct.index if v == ct_volume]
        depth = (mr_at + 0.5) / mr.shapes[mr_volume][0]
        best = min(abs((at + 0.5) / ct.shapes[ct_volume][0] - depth) for at in usable)
        assert abs((ct_at + 0.5) / ct.shapes[ct_volume][0] - depth) == pytest.approx(best)
    item = data[5]
    assert item["ct"].shape == item["mr"].shape == (1, 32, 32)
    random = UnpairedSlices(ct, mr, size=32, seed=1)
    assert not torch.equal(random[5]["ct"], item["ct"]) or not torch.equal(random[5]["mr"], item["mr"])
    with pytest.raises(ic.ImtransError, match="--pairing depth: choose random or position"):
        UnpairedSlices(ct, mr, size=32, pairing="depth")
