"""The phantom's scanners and variation: CT noise, blur and streaks, MR chemical shift, coils and ghosts,
metal, misregistration, fields of view of two archives, and the dataset spec's knobs."""

from __future__ import annotations

from dataclasses import replace

import nibabel as nib
import numpy as np
import pytest

from imtrans_core.errors import ImtransError
from imtrans_hip import ct, mr
from imtrans_hip import phantom as ph
from imtrans_hip.anatomy import LABELS, TISSUES, Painted, Subject, nominal_grid
from imtrans_hip.shapes import Grid

SMALL = {"size": 64, "slices": 12}
RNG = np.random.default_rng(0)


def _subject() -> Subject:
    return Subject.sample(np.random.default_rng(1))


def _grid(shape=(96, 48, 40), spacing=(1.25, 2.0, 1.25)) -> Grid:
    return Grid(shape, spacing, (0.0, 0.0, 0.0))


def _uniform(tissue: str, shape) -> np.ndarray:
    return np.full(shape, TISSUES.index(tissue), np.uint8)


# --- CT ------------------------------------------------------------------------------------------


def test_ct_noise_has_a_ramp_shaped_power_spectrum():
    grid = _grid((128, 96, 24), (1.0, 1.0, 1.25))
    noise = ct.correlated_noise(grid.shape, grid, np.random.default_rng(3))
    assert noise.std() == pytest.approx(1.0, abs=0.02)
    power = (np.abs(np.fft.rfft2(noise, axes=(0, 1))) ** 2).mean(axis=2)
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(128), np.fft.rfftfreq(96), indexing="ij"))
    radial = [power[(f >= lo) & (f < lo + 0.04)].mean() for lo in np.arange(0.0, 0.48, 0.04)]
    peak = 0.04 * int(np.argmax(radial)) + 0.02
    assert abs(peak - ct.NPS_PEAK) <= 0.04  # peaks where a body kernel's NPS peaks
    assert radial[0] < 0.5 * max(radial)  # filtered back-projection suppresses the lowest frequencies
    assert radial[-1] < 0.2 * max(radial)  # and the kernel the highest
    # neighbours correlate (white noise: 0)
    assert np.corrcoef(noise[:-1].ravel(), noise[1:].ravel())[0, 1] > 0.3


def test_ct_noise_grows_with_body_size():
    grid = _grid((64, 32, 16))
    tissue = _uniform("urine", grid.shape)
    texture = np.zeros(grid.shape, np.float32)
    sds = []
    for fat in (5.0, 45.0):
        subject = replace(_subject(), fat=fat)
        fields = ct.draw_noise(grid, np.random.default_rng(6))
        body = Painted(tissue, texture, grid, subject)
        image = ct.render(body, np.random.default_rng(5), fields)
        quiet = ct.render(body, np.random.default_rng(5), fields, noise=0.0)
        sds.append(float((image - quiet).std()))
        assert float(quiet.std()) < 0.5 * sds[-1]  # without noise: the tissue's fine grain only
    thin, thick = (replace(_subject(), fat=f).diameter() for f in (5.0, 45.0))
    assert sds[1] / sds[0] == pytest.approx(np.exp(0.25 * ct.MU_WATER * (thick - thin)), rel=0.05)


def test_partial_volume_blur_keeps_the_mean_and_widens_an_edge():
    grid = _grid((40, 8, 40), (1.0, 1.0, 1.0))
    step = np.zeros(grid.shape, np.float32)
    step[20:] = 100.0
    blurred = ct.gaussian(step, grid, (3.0, 0.0, 0.0))
    assert blurred.mean() == pytest.approx(step.mean(), abs=1e-3)
    profile = blurred[:, 4, 20]
    assert profile[19] == pytest.approx(100 - profile[20], abs=1e-3)  # symmetric about the edge
    assert 5 < profile[20] - profile[19] < 60  # spread over a few voxels
    assert np.array_equal(blurred[:, :, 0], blurred[:, :, 39])  # other axes untouched


def test_filtered_back_projection_recovers_a_disc():
    projector = ct._Projector((64, 64), (1.0, 1.0))
    yy, xx = np.mgrid[:64, :64]
    disc = (((xx - 32) ** 2 + (yy - 30) ** 2) < 12**2).astype(np.float32)
    image = projector.back_project(projector.project(disc))
    assert image[disc > 0].mean() == pytest.approx(1.0, abs=0.08)
    assert abs(image[disc == 0].mean()) < 0.05


def test_beam_hardening_darkens_the_band_between_two_dense_bones():
    grid = _grid((96, 48, 3), (1.25, 1.25, 1.25))
    image = np.zeros(grid.shape, np.float32)
    x, y = np.meshgrid(np.arange(96), np.arange(48), indexing="ij")
    for cx in (24, 72):
        image[((x - cx) ** 2 + (y - 24) ** 2) < 8**2] = 1200.0
    image[:, :, 2] = 0.0  # a slice without dense material gets no streaks
    streaks = ct.beam_hardening(image, grid)
    between = streaks[40:56, 22:27, 0].mean()
    beside = streaks[40:56, 2:6, 0].mean()
    assert between < -2.0 and between < beside - 2.0
    assert np.all(streaks[:, :, 2] == 0)


def test_metal_prosthesis_is_bright_in_ct_and_void_in_mr():
    seed = ph.subject_seed(0, "paired", 0)
    plain = ph.render_subject(seed, modalities=("ct", "labels"), **SMALL)
    vols = ph.render_subject(seed, scan=ph.Scan(metal=1.0), tissue=True, **SMALL)
    side = vols["ct"].meta["subject"]["implant"]
    assert side in ("left", "right") and plain["ct"].meta["subject"]["implant"] == ""
    metal = vols["tissue"].array == TISSUES.index("metal")
    assert metal.sum() > 20
    assert np.all(vols["labels"].array[metal] == LABELS[f"femur_{side}"])  # inside the femur
    assert np.median(vols["ct"].array[metal]) > 2500 and plain["ct"].array.max() < 2500
    muscle = vols["mr"].array[np.isin(vols["labels"].array, [LABELS["gluteus_medius"]])]
    assert np.median(vols["mr"].array[metal]) < 0.3 * np.median(muscle)


# --- MR ------------------------------------------------------------------------------------------


def _fat_muscle(fat_phase: float, fat_shift: float = 0.0) -> np.ndarray:
    """MR of a block: fat for i < 32, muscle above; mean over the other two axes (coil and bias off-axis)."""
    grid = _grid((64, 40, 40))
    tissue = _uniform("gluteus_medius", grid.shape)
    tissue[:32] = TISSUES.index("fat")
    texture = np.zeros(grid.shape, np.float32)
    fields = mr.draw_noise(grid, np.random.default_rng(3))
    body = Painted(tissue, texture, grid, _subject())
    image = mr.render(body, np.random.default_rng(2), fields, fat_phase, fat_shift, 0.0)
    return image.mean(axis=(1, 2))


def test_opposed_phase_draws_a_dark_line_on_fat_water_edges():
    opposed, in_phase = _fat_muscle(163.0), _fat_muscle(0.0)
    edge = opposed[30:34].min()
    assert edge < 0.7 * min(opposed[20], opposed[44])  # India ink: fat and water cancel in the edge voxel
    assert in_phase[30:34].min() > 0.9 * min(in_phase[20], in_phase[44])  # in phase: a plain ramp


def test_chemical_shift_moves_fat_along_the_readout():
    moved = mr._shift(np.eye(1, 8, 3, dtype=np.float32).reshape(8, 1, 1), 1.5, axis=0).ravel()
    assert (
        moved[4] == pytest.approx(0.5) and moved[5] == pytest.approx(0.5) and moved.sum() == pytest.approx(1)
    )
    still, shifted = _fat_muscle(0.0, 0.0), _fat_muscle(0.0, 2.0)
    assert shifted[33] > still[33] + 10  # the fat edge moved two voxels into the muscle


def test_coil_sensitivity_is_brighter_near_the_elements():
    grid = nominal_grid(128, 64, thickness=256.0)
    flat = mr.sensitivity(grid, _subject(), 0.0)
    assert np.all(flat == 1.0)
    s = mr.sensitivity(grid, _subject(), 1.0)[:, :, 0]
    centre = s[64, 32]
    assert s.max() > 1.3 * centre and 0.5 < centre < 1.0


def test_motion_ghosts_are_shifted_copies_along_phase_encoding():
    image = np.zeros((4, 4, 60), np.float32)
    image[:, :, 30] = 1.0
    ghosted = mr._ghosts(image, 0.2, np.random.default_rng(0))
    copies = np.nonzero(ghosted[0, 0] > 0)[0]
    assert len(copies) == 3 and ghosted[0, 0, 30] == 1.0
    assert np.allclose(ghosted[0, 0, copies[copies != 30]], 0.1)
    assert copies[-1] - 30 == 30 - copies[0]  # symmetric about the original, along k only


def test_mr_knobs_change_the_mr_and_nothing_else():
    seed = ph.subject_seed(0, "paired", 1)
    base = ph.render_subject(seed, **SMALL)
    for knob in ({"fat_phase": 0.0}, {"coil": 0.0}, {"ghosting": 0.1}, {"fat_shift": 0.0}):
        other = ph.render_subject(seed, scan=ph.Scan(**knob), **SMALL)
        assert not np.array_equal(other["mr"].array, base["mr"].array), knob
        assert np.array_equal(other["ct"].array, base["ct"].array), knob
        assert np.array_equal(other["labels"].array, base["labels"].array), knob


def test_a_repeat_scan_draws_only_the_noise_again():
    """Scan 1 of a subject: the same body and tissue values, fresh CT grain and noise of the same level."""
    seed = ph.subject_seed(0, "paired", 1)

    def scan(**knobs):
        return ph.render_subject(seed, scan=ph.Scan(**knobs), **SMALL)

    base, again = scan(), scan(repeat=1)
    assert np.array_equal(again["labels"].array, base["labels"].array)
    assert not np.array_equal(again["mr"].array, base["mr"].array)
    flat = [scan(repeat=r, ct_noise=0.0, ct_texture=0.0)["ct"].array for r in (0, 1)]
    assert np.array_equal(*flat)  # the tissues' values are the subject's, not the scan's
    body = base["labels"].array > 0
    noise = [base["ct"].array - scan(ct_noise=0.0)["ct"].array]
    noise.append(again["ct"].array - scan(repeat=1, ct_noise=0.0)["ct"].array)
    assert abs(np.corrcoef(noise[0][body], noise[1][body])[0, 1]) < 0.05  # independent draws
    assert np.std(noise[1][body]) == pytest.approx(np.std(noise[0][body]), rel=0.1)  # of the same level
    assert not np.array_equal(scan(repeat=2)["ct"].array, again["ct"].array)  # each repeat its own


def test_t2_weighting_is_a_spin_echo_contrast_of_the_same_body():
    """``weighting=t2``: urine brightest, muscle far darker than fat, no India-ink line; T1 unchanged."""
    seed = ph.subject_seed(0, "paired", 1)
    t1 = ph.render_subject(seed, tissue=True, **SMALL)
    t2 = ph.render_subject(seed, scan=ph.Scan(weighting="t2"), tissue=True, **SMALL)
    assert np.array_equal(t1["mr"].array, ph.render_subject(seed, **SMALL)["mr"].array)
    assert np.array_equal(t2["ct"].array, t1["ct"].array) and np.array_equal(
        t2["tissue"].array, t1["tissue"].array
    )

    def median(volumes, *tissues):
        inside = np.isin(volumes["tissue"].array, [TISSUES.index(t) for t in tissues])
        return float(np.median(volumes["mr"].array[inside]))

    muscles = ("gluteus_maximus", "gluteus_medius", "iliopsoas")
    assert median(t2, "urine") > median(t2, "fat") > 1.8 * median(t2, *muscles)  # fluid brightest
    assert median(t1, "urine") < 0.5 * median(t1, *muscles)  # on T1 urine is dark
    assert median(t2, "marrow") > 1.4 * median(t2, *muscles)  # fatty marrow bright on both
    grid, fields = _grid((64, 40, 40)), mr.draw_noise(_grid((64, 40, 40)), np.random.default_rng(3))
    tissue = _uniform("gluteus_medius", grid.shape)
    tissue[:32] = TISSUES.index("fat")
    body = Painted(tissue, np.zeros(grid.shape, np.float32), grid, _subject())
    edge = mr.render(body, np.random.default_rng(2), fields, 163.0, 0.0, 0.0, weighting="t2").mean(
        axis=(1, 2)
    )
    assert edge[30:34].min() > 0.9 * min(edge[20], edge[44])  # in phase whatever fat_phase says
    with pytest.raises(ImtransError, match="weighting must be one of t1, t2"):
        ph.Scan(weighting="pd")
    assert ph.Scan(weighting="t2").key() == "weighting=t2"


def test_t2_renders_carry_their_tables_revision_and_t1_keys_stay_as_they_were():
    from imtrans_core import DATASETS

    spec = "phantom:n_ct=0,n_mr=1,n_paired=0,size=32"
    t1, t2 = (DATASETS.build(spec + extra).fingerprint for extra in ("", ",weighting=t2"))
    assert t1.startswith(f"phantom-v{ph.PHANTOM_VERSION}:") and t1.endswith("seed=0")  # no revision
    assert t2.endswith(",weighting=t2,t2_table=2")


def test_t2_muscle_to_fat_contrast_is_the_real_t2s(real_data):
    """Muscle against fat as in the real prostate T2 (TSE, TE ~100 ms): the modes of its histogram."""
    import SimpleITK as sitk
    from scipy import ndimage

    values = sitk.GetArrayFromImage(sitk.ReadImage(str(real_data / "prostatex0000_t2.nii.gz"))).astype(float)
    values = values[values > 30]  # the body, not the background
    middle, high = np.median(values), np.percentile(values, 95)  # above high: urine, brighter than fat

    def mode(x: np.ndarray) -> float:
        counts, edges = np.histogram(x, bins=40)
        return float(edges[counts.argmax()] + edges[counts.argmax() + 1]) / 2

    real = mode(values[values < middle]) / mode(values[(values > middle) & (values < high)])
    seed, scan = ph.subject_seed(0, "paired", 1), ph.Scan(weighting="t2")
    t2 = ph.render_subject(seed, 128, 38, scan=scan, tissue=True)  # 2.5 mm voxels, as the cpu preset's

    def median(*tissues: str) -> float:  # inside each tissue, away from its partial-volume edge
        inside = ndimage.binary_erosion(
            np.isin(t2["tissue"].array, [TISSUES.index(t) for t in tissues]), iterations=2
        )
        return float(np.median(t2["mr"].array[inside]))

    phantom = median("gluteus_maximus", "gluteus_medius", "iliopsoas", "adductors") / median("fat")
    assert 0.08 < real < 0.16 and abs(phantom - real) < 0.03, (phantom, real)


def test_ct_texture_scales_texture_and_grain_and_keeps_each_tissues_mean():
    """``ct_texture=0``: each tissue flat at this subject's mean (the tissue-mean baseline); 2: twice the detail."""
    seed = ph.subject_seed(0, "paired", 1)
    ct_of = {
        t: ph.render_subject(seed, scan=ph.Scan(ct_noise=0.0, ct_texture=t), tissue=True, **SMALL)
        for t in (0.0, 1.0, 2.0)
    }
    flat, base, double = (ct_of[t]["ct"].array for t in (0.0, 1.0, 2.0))
    assert np.array_equal(ct_of[0.0]["mr"].array, ct_of[1.0]["mr"].array)
    assert np.allclose(double - flat, 2 * (base - flat), atol=0.05)  # the means are the same draws
    tissue = ct_of[1.0]["tissue"].array
    for name in ("fat", "cancellous_femur", "gluteus_medius"):
        inside = tissue == TISSUES.index(name)
        core = (
            inside
            & np.roll(inside, 1, 0)
            & np.roll(inside, -1, 0)
            & np.roll(inside, 1, 2)
            & np.roll(inside, -1, 2)
        )
        at_mode = {t: np.mean(np.abs(a[core] - np.median(a[core])) < 1.0) for t, a in ((0, flat), (1, base))}
        assert at_mode[0] > 0.5 > 0.2 > at_mode[1], (name, at_mode)  # flat but for partial volume


# --- pairs, variation, archives ----------------------------------------------------------------------


def test_misregistration_deforms_the_paired_ct_by_about_the_asked_amount():
    grid = nominal_grid(96, 24)
    for rms in (1.0, 3.0):
        source = ph.misregistration(grid, rms, np.random.default_rng(4))
        base = np.indices(grid.shape)
        moved = [(source[a] - base[a]) * grid.spacing[a] for a in range(3)]
        measured = float(np.sqrt(np.mean(sum(m.astype(float) ** 2 for m in moved))))
        assert measured == pytest.approx(rms, rel=0.5)
    ramp = np.arange(10, dtype=np.float32)[:, None, None] * np.ones((1, 3, 3), np.float32)
    half = [np.full((10, 3, 3), 0.5, np.float32) + np.arange(10)[:, None, None], *np.indices((10, 3, 3))[1:]]
    assert np.allclose(ph.resample(ramp, half)[:-1], ramp[:-1] + 0.5)  # linear: sub-voxel shifts kept
    seed = ph.subject_seed(0, "paired", 0)
    aligned = ph.render_subject(seed, **SMALL)
    shifted = ph.render_subject(seed, scan=ph.Scan(misregistration=3.0), **SMALL)
    assert np.array_equal(aligned["mr"].array, shifted["mr"].array)
    assert np.array_equal(aligned["labels"].array, shifted["labels"].array)
    assert not np.array_equal(aligned["ct"].array, shifted["ct"].array)
    source = ph.phantom(n_ct=1, n_mr=1, n_paired=1, misregistration=3.0, **SMALL)
    seed = ph.subject_seed(0, "ct", 0)
    pool_ct = ph.render_subject(seed, modalities=("ct",), fov=ph.fov_shift(seed, "ct", ph.Scan()), **SMALL)
    assert np.array_equal(source.ct[0].array, pool_ct["ct"].array)  # only pairs are misregistered


def test_pose_and_habitus_vary_like_patients():
    subjects = [Subject.sample(np.random.default_rng(s)) for s in range(400)]
    tilt = np.array([s.tilt for s in subjects])
    assert 7.0 < tilt.std() < 9.0
    rotation = np.array([s.rotation for s in subjects]).ravel()
    assert rotation.min() < -20 and rotation.max() > 25
    fat = np.array([s.fat for s in subjects])
    assert np.percentile(fat, 5) < 9 and np.percentile(fat, 95) > 30
    diameters = np.array([s.diameter() for s in subjects])
    assert diameters.max() - diameters.min() > 60  # mm: small and large bodies


def test_two_archives_frame_the_hip_differently():
    scan = ph.Scan()
    ct_z = np.array([ph.fov_shift(ph.subject_seed(0, "ct", i), "ct", scan)[2] for i in range(300)])
    mr_z = np.array([ph.fov_shift(ph.subject_seed(0, "mr", i), "mr", scan)[2] for i in range(300)])
    assert mr_z.mean() - ct_z.mean() == pytest.approx(scan.cohort_offset, abs=5.0)
    assert ct_z.std() == pytest.approx(scan.fov_sd, rel=0.2)
    same = ph.Scan(fov_sd=0.0, cohort_offset=0.0)
    assert ph.fov_shift(ph.subject_seed(0, "mr", 3), "mr", same)[2] == 0.0
    # the dataset puts each volume where its archive frames it
    source = ph.phantom(n_ct=2, n_mr=2, n_paired=1, **SMALL)
    nominal = np.asarray(ph.render_subject(0, modalities=("labels",), **SMALL)["labels"].origin)
    for stream, pool in (("ct", source.ct), ("mr", source.mr)):
        for i, vol in enumerate(pool):
            expected = ph.fov_shift(ph.subject_seed(0, stream, i), stream, scan)
            assert np.allclose(np.asarray(vol.origin) - nominal, expected, atol=1e-4)


def test_thickness_sets_the_slab():
    vols = ph.render_subject(5, slices=64, modalities=("labels",), scan=ph.Scan(thickness=256.0), size=64)
    assert vols["labels"].spacing[1] == pytest.approx(4.0)
    assert vols["labels"].shape == (64, 64, 64)
    thin = ph.render_subject(5, slices=64, modalities=("labels",), size=64)["labels"]
    body_ml = [(v.array > 0).sum() * np.prod(v.spacing) / 1000 for v in (vols["labels"], thin)]
    assert body_ml[0] > 1.8 * body_ml[1]  # more of the body in view


# --- the spec and the command --------------------------------------------------------------------


def test_scan_knobs_are_checked_and_named():
    for bad in (
        {"metal": 2.0},
        {"thickness": 1.0},
        {"coil": float("nan")},
        {"ghosting": True},
        {"repeat": 1.5},
    ):
        name = next(iter(bad))
        with pytest.raises(ImtransError, match=name):
            ph.Scan(**bad)
        with pytest.raises(ImtransError, match=name):
            ph.phantom(n_ct=1, n_mr=1, n_paired=0, **SMALL, **bad)
    assert ph.Scan().key() == "" and ph.Scan(metal=0.5, coil=0.0).key() == "metal=0.5,coil=0"
    a = ph.phantom(n_ct=1, n_mr=1, n_paired=1, **SMALL)
    b = ph.phantom(n_ct=1, n_mr=1, n_paired=1, ghosting=0.1, **SMALL)
    assert a.fingerprint != b.fingerprint and "ghosting=0.1" in b.fingerprint


def test_spec_and_command_line_reach_the_renderer(tmp_path, capsys):
    from imtrans_core import DATASETS
    from imtrans_core.cli import run

    source = DATASETS.build("phantom:n_ct=1,n_mr=0,n_paired=0,size=32,slices=6,metal=1,streaks=1")
    assert source.ct[0].meta["subject"]["implant"] in ("left", "right")
    assert (
        "weighting=t2" in DATASETS.build("phantom:n_ct=0,n_mr=1,n_paired=0,size=32,weighting=t2").fingerprint
    )
    out = tmp_path / "ph"
    args = ["data", "phantom", "--out", str(out), "--n-ct", "0", "--n-mr", "0", "--paired", "1"]
    args += ["--size", "32", "--slices", "6"]
    assert run([*args, "--misregistration", "2", "--ghosting", "0.1", "--weighting", "t2"]) == 0
    pair = ph.subject_seed(0, "paired", 0)
    scan = ph.Scan(misregistration=2.0, ghosting=0.1, weighting="t2")
    expected = ph.render_subject(pair, 32, 6, scan=scan, fov=ph.fov_shift(pair, "paired", scan))
    written = nib.load(out / "paired" / "pair-000" / "mr.nii.gz")
    assert np.allclose(np.asarray(written.dataobj), expected["mr"].array, atol=1e-4)
    capsys.readouterr()
    assert run([*args, "--metal", "3"]) == 2
    assert "--metal" in capsys.readouterr().err
    assert run([*args, "--repeat", "1.5"]) == 2  # a whole number
    assert "--repeat" in capsys.readouterr().err
