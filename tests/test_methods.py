"""Every translation method plugin trains, resumes after a kill bit for bit, translates and exports, at tiny sizes.

Each method is given only its model, tiny networks and data it can train on: its own defaults
(losses, networks' roles, directions) must do the rest.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import imtrans_core as ic
from imtrans_core.cli import run
from imtrans_core.data.io import write_volume
from imtrans_core.inference.backends import TorchBackend
from imtrans_core.onnx.export import export_model
from imtrans_core.training import TrainConfig, train

PAIRS = "phantom:n_ct=0,n_mr=0,n_paired=1,size=64,slices=8,n_train_pairs=2"
MISALIGNED = PAIRS + ",misregistration=4"
UNPAIRED = "phantom:n_ct=2,n_mr=2,n_paired=1,size=64,slices=8"
TINY = dict(
    gen="resnet9:ngf=8,n_blocks=1",
    disc="patchgan:ndf=8",
    size=64,
    iters=10,
    log_every=1,
    ckpt_every=5,
    sample_every=10,
    workers=0,
)
# method -> (its data, the directions it translates)
METHODS = {
    "cyclegan": (UNPAIRED, ("mr2ct", "ct2mr")),
    "pix2pix": (PAIRS, ("mr2ct",)),
    "cut": (UNPAIRED, ("mr2ct",)),
    "fastcut": (UNPAIRED, ("mr2ct",)),
    "reggan": (MISALIGNED, ("mr2ct",)),
}


@pytest.fixture(autouse=True)
def cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("IMTRANS_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def config_of(method: str) -> dict:
    return {**TINY, "model": method, "data": METHODS[method][0]}


def test_every_method_is_a_registered_model():
    assert set(METHODS) <= set(ic.MODELS.names())


@pytest.mark.parametrize("method", sorted(METHODS))
def test_a_method_resumes_after_a_kill_bit_for_bit_translates_and_exports(method, tmp_path, killed_run):
    config = config_of(method)
    straight = train(TrainConfig(**config), out=tmp_path / "straight").run_dir
    killed = killed_run(config, step=7)  # after the checkpoint at 5, before the one at 10
    assert train(None, resume=killed).step == 10
    a = torch.load(straight / "checkpoints" / "ckpt-00000010.pt", weights_only=True)
    b = torch.load(killed / "checkpoints" / "ckpt-00000010.pt", weights_only=True)
    assert a["models"].keys() == b["models"].keys()
    for net in a["models"]:
        for key, value in a["models"][net].items():
            assert torch.equal(value, b["models"][net][key]), f"{method}: {net}.{key} differs after the kill"

    directions = METHODS[method][1]
    assert set(a["translators"]) == set(directions)
    for direction in directions:
        backend = TorchBackend.from_model(straight, direction, device="cpu")
        out = backend(np.zeros((2, 1, 64, 64), dtype=np.float32))
        assert out.shape == (2, 1, 64, 64) and np.isfinite(out).all()
    result = export_model(
        straight, tmp_path / "model.onnx", direction=directions[0]
    )  # raises unless verified
    assert result.metadata["direction"] == directions[0]


@pytest.mark.parametrize("method", sorted(m for m, (_, d) in METHODS.items() if "ct2mr" not in d))
def test_a_one_way_method_names_the_direction_it_translates(method, tmp_path, capsys):
    run_dir = train(TrainConfig(**{**config_of(method), "iters": 1}), out=tmp_path / "run").run_dir
    ct = tmp_path / "ct.nii.gz"
    write_volume(ic.DATASETS.build(UNPAIRED).ct[0], ct)
    capsys.readouterr()
    assert (
        run(["translate", str(run_dir), str(ct), "--direction", "ct2mr", "--out", str(tmp_path / "o")]) == 2
    )
    err = capsys.readouterr().err
    assert "does not translate ct2mr; use --direction mr2ct" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "method, args, words",
    [
        ("pix2pix", ["--pool", "10"], "--pool 10: --model pix2pix does not read it"),
        (
            "pix2pix",
            ["--loss", "gc:1"],
            "--loss gc:1: a loss of kind 'gradient', which --model pix2pix does not read",
        ),
    ],
)
def test_an_option_or_loss_the_method_does_not_read_is_one_line(method, args, words, capsys):
    assert run(["train", "--model", method, *args, "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1


def test_pix2pix_trains_with_no_option_but_its_data_and_judges_pairs(capsys):
    """Its defaults are the paper's: vanilla GAN + 100 L1, a conditional discriminator on (MR, CT)."""
    assert run(["train", "--model", "pix2pix", "--data", PAIRS, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "loss=vanilla:weight=1.0" in out and "paired:weight=100.0" in out
    assert "d_ct=patchgan:in_ch=2," in out and "model: pix2pix (Pix2Pix)" in out


def test_cut_refuses_a_generator_without_an_encoder_in_one_line(fresh_plugins, capsys):
    from torch import nn

    ic.GENERATORS.add("plain", lambda in_ch=1, out_ch=1: nn.Conv2d(in_ch, out_ch, 3, padding=1))
    assert run(["train", "--model", "cut", "--gen", "plain", "--size", "64", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "cut needs a generator that offers encode(x, layers), e.g. resnet9 or unet" in err
    assert len(err.strip().splitlines()) == 1


def test_patchnce_is_the_cross_entropy_of_each_patch_against_the_images_other_patches():
    """Eq. 3 of Park et al. written out patch by patch, against the batched loss."""
    from imtrans_cut.patchnce import PatchNCELoss

    torch.manual_seed(0)
    q, k = (
        torch.nn.functional.normalize(torch.randn(2, 5, 4), dim=-1),
        torch.nn.functional.normalize(torch.randn(2, 5, 4), dim=-1),
    )
    tau = 0.07
    expected = []
    for n in range(2):
        for i in range(5):
            scores = torch.stack([q[n, i] @ k[n, j] for j in range(5)]) / tau
            expected.append(torch.logsumexp(scores, 0) - scores[i])  # -log softmax of the positive
    loss = PatchNCELoss(temperature=tau)._nce(q, k)
    # the batched form keeps the positive once more, masked to -10 among the negatives: exp(-10 / tau) ~ 0
    assert torch.allclose(loss, torch.stack(expected).mean(), atol=1e-5)
    # matched patches give a far lower loss than shuffled ones
    assert PatchNCELoss()._nce(k, k) < PatchNCELoss()._nce(k[:, torch.randperm(5)], k)


def test_the_nce_heads_are_the_losss_own_parameters_optimised_and_saved(tmp_path):
    run_dir = train(TrainConfig(**{**config_of("cut"), "iters": 2}), out=tmp_path / "run").run_dir
    state = torch.load(run_dir / "checkpoints" / "ckpt-00000002.pt", weights_only=True)
    heads = state["losses"]["patchnce"]
    assert len({key.split(".")[1] for key in heads}) == 3  # one head per encoder layer of the tiny resnet9
    assert "opt_f" in state and state["opt_f"]["state"], "the heads' optimiser never stepped"


def test_warp_moves_an_image_by_its_field_and_smoothness_measures_the_fields_change():
    from imtrans_reggan.warp import SmoothnessLoss, warp

    image = torch.arange(6 * 8, dtype=torch.float32).view(1, 1, 6, 8)
    still = torch.zeros(1, 2, 6, 8)
    assert torch.allclose(warp(image, still), image, atol=1e-4)
    right = still.clone()
    right[:, 1] = 2.0  # each pixel reads the one two columns to its right
    moved = warp(image, right)
    assert torch.allclose(moved[..., :6], image[..., 2:], atol=1e-4)
    assert torch.equal(moved[..., 6:], image[..., 7:].expand(1, 1, 6, 2))  # the border repeats outward
    down = still.clone()
    down[:, 0] = 0.5  # half a row down: bilinear between two rows
    assert torch.allclose(warp(image, down)[..., :5, :], image[..., :5, :] + 4.0, atol=1e-4)
    assert SmoothnessLoss()(right) == 0  # a uniform shift is perfectly smooth
    ramp = still.clone()
    ramp[:, 1] = torch.arange(8.0)  # dx grows by 1 a column: only half the channels change, in x
    assert torch.isclose(SmoothnessLoss()(ramp), torch.tensor(0.5))


@pytest.mark.parametrize("method", sorted(METHODS))
def test_ema_averages_the_networks_that_translate(method, tmp_path):
    run_dir = train(
        TrainConfig(**{**config_of(method), "iters": 2, "ema": 0.9}), out=tmp_path / "run"
    ).run_dir
    state = torch.load(run_dir / "checkpoints" / "ckpt-00000002.pt", weights_only=True)
    assert set(state["ema"]) == set(state["translators"].values())
    for name, weights in state["ema"].items():
        trained = state["models"][name]
        assert weights.keys() == trained.keys()
        assert any(not torch.equal(weights[k], trained[k]) for k in weights if weights[k].is_floating_point())


def test_a_method_on_pairs_given_data_without_pairs_says_so_before_the_run(tmp_path):
    config = {**config_of("pix2pix"), "data": UNPAIRED}
    with pytest.raises(
        ic.ImtransError, match=r"^--model pix2pix trains on aligned CT/MR pairs, and --data phantom"
    ):
        train(TrainConfig(**config), out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("method", sorted(set(METHODS) - {"cyclegan"}))  # cyclegan's: test_training.py
def test_two_ddp_ranks_keep_every_network_identical(method, tmp_path, ddp_ranks):
    r0, r1 = ddp_ranks({**config_of(method), "iters": 2, "log_every": 2, "ckpt_every": 2}, tmp_path / "run")
    assert set(r0) == set(r1) and r0
    for net in r0:
        for key, value in r0[net].items():
            assert torch.equal(value, r1[net][key]), f"{method}: {net}.{key} differs between ranks"
