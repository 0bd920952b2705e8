"""The training engine: run directory, schedule, pool, objective weights, resume, DDP."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import imtrans_core as ic
from imtrans_core.api import ImagePool, compose_losses
from imtrans_core.training import TrainConfig, train
from imtrans_core.training.schedule import lr_factor
from imtrans_cyclegan.model import CycleGAN
from imtrans_cyclegan.objective import Generators, Objective

TINY = dict(
    gen="resnet9:ngf=8,n_blocks=2",
    disc="patchgan:ndf=8",
    data="phantom:n_ct=3,n_mr=3,n_paired=1,size=64,slices=8",
    size=64,
    iters=20,
    log_every=5,
    ckpt_every=10,
    sample_every=10,
    workers=0,
)

CYCLEGAN = CycleGAN()  # its default losses, kinds and checks


@pytest.fixture(autouse=True)
def cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("IMTRANS_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def test_tiny_run_writes_everything(tmp_path):
    result = train(TrainConfig(**TINY, loss=["gc:0.3"]), out=tmp_path / "run")
    run = result.run_dir
    assert (result.step, result.status) == (20, "finished")
    config = json.loads((run / "config.json").read_text())
    assert (
        config["resolved"]["networks"]["g_mr"]
        == "resnet9:in_ch=1,out_ch=1,ngf=8,n_blocks=2,norm=instance,dropout=0.0,up=transpose,n_down=2"
    )
    assert "gc:weight=0.3,op=sobel,abs=true" in config["resolved"]["loss"]
    versions = json.loads((run / "versions.json").read_text())
    assert (
        versions["torch"] == torch.__version__ and "cyclegan" in versions["plugins"] and versions["seed"] == 0
    )
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["ckpt-00000010.pt", "ckpt-00000020.pt"]
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in lines] == [5, 10, 15, 20]
    assert {"g_ct", "g_mr", "cycle", "gc", "d_ct", "d_mr", "lr", "it_per_s"} <= set(lines[0])
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["iter-00000010.png", "iter-00000020.png"]


def test_keep_limits_checkpoints(tmp_path):
    train(TrainConfig(**{**TINY, "ckpt_every": 4, "keep": 2}), out=tmp_path / "run")
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == [
        "ckpt-00000016.pt",
        "ckpt-00000020.pt",
    ]


def test_learning_rate_schedule():
    # The paper: constant to the turn, then linear to exactly zero at the end.
    assert lr_factor(0, 200_000, 100_000) == 1.0
    assert lr_factor(100_000, 200_000, 100_000) == 1.0
    assert lr_factor(150_000, 200_000, 100_000) == 0.5
    assert lr_factor(200_000, 200_000, 100_000) == 0.0
    assert TrainConfig().turn == 100_000 and TrainConfig(decay_from=5).turn == 5


def test_learning_rate_in_the_log(tmp_path):
    train(TrainConfig(**{**TINY, "iters": 20, "decay_from": 10, "log_every": 5}), out=tmp_path / "run")
    lrs = [json.loads(line)["lr"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    # logged after iteration 5, 10, 15, 20: lr for the next step = 2e-4 * factor(step)
    assert lrs == pytest.approx([2e-4, 2e-4, 1e-4, 0.0])


def test_image_pool():
    pool = ImagePool(size=2, seed=0)
    a, b, c = (torch.full((1, 1, 2, 2), v) for v in (1.0, 2.0, 3.0))
    assert torch.equal(pool.query(a), a) and torch.equal(pool.query(b), b)  # filling: pass through
    outs = [float(pool.query(c)[0, 0, 0, 0]) for _ in range(40)]
    assert (
        set(outs) <= {1.0, 2.0, 3.0} and {1.0, 2.0} & set(outs) and 3.0 in outs
    )  # swaps about half the time
    assert len(pool.images) == 2
    assert torch.equal(ImagePool(size=0).query(c), c)
    restored = ImagePool(size=2, seed=5)
    restored.load_state_dict(pool.state_dict())
    assert [float(restored.query(c)[0, 0, 0, 0]) for _ in range(10)] == [
        float(pool.query(c)[0, 0, 0, 0]) for _ in range(10)
    ]


def test_loss_weights_reach_the_objective():
    objective = Objective.from_losses(compose_losses(["gc:0.7", "cycle:5"], ic.LOSSES, CYCLEGAN))
    assert objective.weights() == {"g_ct": 1.0, "g_mr": 1.0, "cycle": 5.0, "gc": 0.7}
    terms = {
        "g_ct": torch.tensor(1.0),
        "g_mr": torch.tensor(2.0),
        "cycle": torch.tensor(0.5),
        "gc": torch.tensor(0.2),
    }
    assert float(objective.generator_loss(terms)) == pytest.approx(1 + 2 + 5 * 0.5 + 0.7 * 0.2)
    assert "gc" not in Objective.from_losses(compose_losses(["gc:0"], ic.LOSSES, CYCLEGAN)).weights()


def test_generator_terms_follow_eq_3_and_5():
    """Cycle sums both directions (Eq. 3); GC halves the sum of both directions (Eq. 5)."""
    objective = Objective.from_losses(compose_losses(["gc:0.3"], ic.LOSSES, CYCLEGAN))
    from imtrans_cyclegan.losses import gradient_correlation

    torch.manual_seed(0)
    ct, mr = torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 16)
    out = {k: torch.rand(2, 1, 16, 16) for k in ("fake_ct", "fake_mr", "rec_ct", "rec_mr")}

    class Half(torch.nn.Module):
        def forward(self, a, b):
            return torch.full((2, 1, 2, 2), 0.5), torch.full((2, 1, 2, 2), 0.5)

    terms = objective.generator_terms({"ct": ct, "mr": mr}, out, Half())
    assert float(terms["g_ct"]) == pytest.approx(0.25)  # lsgan: (0.5 - 1)^2
    expected_cycle = (out["rec_ct"] - ct).abs().mean() + (out["rec_mr"] - mr).abs().mean()
    assert float(terms["cycle"]) == pytest.approx(float(expected_cycle))
    expected_gc = 0.5 * (
        (1 - gradient_correlation(ct, out["fake_mr"], abs=True)).mean()
        + (1 - gradient_correlation(mr, out["fake_ct"], abs=True)).mean()
    )
    assert float(terms["gc"]) == pytest.approx(float(expected_gc), rel=1e-5)


def test_paired_term_is_l1_both_ways_and_stands_alone_without_a_discriminator():
    """paired:1 lsgan:0 cycle:0 is supervised L1: |G_CT(mr') - ct'| + |G_MR(ct') - mr'|, no adversarial term."""
    objective = Objective.from_losses(compose_losses(["paired:2", "lsgan:0", "cycle:0"], ic.LOSSES, CYCLEGAN))
    assert objective.adversarial is None and not objective.uses_unpaired and objective.uses_pairs
    assert objective.weights() == {"paired": 2.0}
    torch.manual_seed(0)
    batch = {"pair_ct": torch.rand(2, 1, 8, 8), "pair_mr": torch.rand(2, 1, 8, 8)}
    out = {"pair_fake_ct": torch.rand(2, 1, 8, 8), "pair_fake_mr": torch.rand(2, 1, 8, 8)}
    terms = objective.generator_terms(batch, out, discriminators=None)
    expected = (out["pair_fake_ct"] - batch["pair_ct"]).abs().mean() + (
        out["pair_fake_mr"] - batch["pair_mr"]
    ).abs().mean()
    assert set(terms) == {"paired"} and float(terms["paired"]) == pytest.approx(float(expected))
    hybrid = Objective.from_losses(compose_losses(["paired:10"], ic.LOSSES, CYCLEGAN))
    assert hybrid.uses_unpaired and hybrid.uses_pairs and hybrid.adversarial is not None


def test_a_2_5d_run_trains_networks_on_stacks_of_adjacent_slices(tmp_path):
    from imtrans_core.inference.models import load_generator

    config = {**TINY, "data": TINY["data"] + ",n_train_pairs=2", "loss": ["gc:0.3", "paired:1"]}
    run = train(TrainConfig(**config, context=1), out=tmp_path / "run").run_dir
    resolved = json.loads((run / "config.json").read_text())["resolved"]
    networks = resolved["networks"]
    assert networks["g_ct"].startswith("resnet9:in_ch=3,out_ch=3,") and networks["d_mr"].startswith(
        "patchgan:in_ch=3,"
    )
    generator = load_generator(run, "ct2mr")
    assert generator.context == 1 and generator.net(torch.zeros(1, 3, 64, 64)).shape == (1, 3, 64, 64)
    assert len(list((run / "samples").iterdir())) == 2


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"gen": "resnet9:ngf=8,n_blocks=2,in_ch=1"},
            r"--gen resnet9:ngf=8,n_blocks=2,in_ch=1: in_ch=1, but --context 1 feeds stacks of 3",
        ),
        ({"disc": "patchgan:ndf=8,in_ch=2"}, r"--disc patchgan:ndf=8,in_ch=2: in_ch=2, but --context 1"),
    ],
)
def test_a_network_spec_that_contradicts_the_context_is_refused_before_any_work(tmp_path, changes, message):
    with pytest.raises(ic.ImtransError, match=message):
        train(TrainConfig(**{**TINY, **changes, "context": 1}), out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_removing_the_adversarial_loss_without_a_paired_one_is_refused():
    with pytest.raises(ic.SpecError, match="add --loss paired for supervised training"):
        compose_losses(["lsgan:0"], ic.LOSSES, CYCLEGAN)


def test_supervised_run_trains_no_discriminator(tmp_path):
    config = {**TINY, "data": TINY["data"] + ",n_train_pairs=2", "loss": ["paired:1", "lsgan:0", "cycle:0"]}
    run = train(TrainConfig(**config), out=tmp_path / "run").run_dir
    state = torch.load(sorted((run / "checkpoints").glob("*.pt"))[-1], weights_only=False)
    initial = ic.DISCRIMINATORS.build(TINY["disc"])
    assert state["step"] == TINY["iters"]
    logged = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert "paired" in logged and "d_ct" not in logged and "g_ct" not in logged
    assert not state["opt_d"]["state"]  # Adam never stepped the discriminators
    assert state["models"]["d_ct"].keys() == initial.state_dict().keys()


def test_paired_loss_without_training_pairs_fails_before_the_run_directory(tmp_path):
    with pytest.raises(ic.ImtransError, match=r"--loss paired trains on aligned CT/MR pairs.*n_train_pairs"):
        train(TrainConfig(**{**TINY, "loss": ["paired:1"]}), out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "changes",
    [{}, {"loss": ["prior:until=12"]}, {"ema": 0.9}],
    ids=["paper", "prior falling across the kill", "weights averaged"],
)
def test_resume_after_kill_matches_an_uninterrupted_run(tmp_path, changes, killed_run):
    config = {**TINY, "ckpt_every": 5, **changes}
    straight = train(TrainConfig(**config), out=tmp_path / "straight").run_dir
    killed = killed_run(config, step=15)  # after the checkpoint at 10, before the one at 15
    assert sorted(p.name for p in (killed / "checkpoints").iterdir())[-1] == "ckpt-00000010.pt"
    # the killed process trained as this one did (else the resume is not what diverged)
    assert not differing(straight, killed, step=10, ema="ema" in changes), "the killed run differs at 10"
    result = train(None, resume=killed)
    assert (result.step, result.status) == (20, "finished")
    assert not differing(straight, killed, step=20, ema="ema" in changes), "the resumed run differs"
    iters = [json.loads(line)["iter"] for line in (killed / "metrics.jsonl").read_text().splitlines()]
    assert iters == [5, 10, 15, 20]


def differing(a: Path, b: Path, step: int, ema: bool) -> list[str]:
    """The weights (and ``--ema`` averages) that are not bit-identical in two runs' checkpoints at ``step``."""
    name = f"ckpt-{step:08d}.pt"
    x, y = (torch.load(run / "checkpoints" / name, weights_only=True) for run in (a, b))
    assert ("ema" in x) == ("ema" in y) == ema
    groups = ("models", "ema") if ema else ("models",)
    return [
        f"{group} {net}.{key}"
        for group in groups
        for net in x[group]
        for key in x[group][net]
        if not torch.equal(x[group][net][key], y[group][net][key])
    ]


INTERRUPTER = """
    import os, signal, sys
    from pathlib import Path
    import imtrans_core as ic
    from imtrans_core.training import TrainConfig, train

    class CtrlC:
        @ic.hookimpl
        def imtrans_step_end(self, run, step, metrics):
            if step == 5:
                os.kill(os.getpid(), signal.SIGINT)

    ic.plugins.add_plugin(CtrlC(), "ctrl-c")
    result = train(TrainConfig(**{config}), out=Path(sys.argv[1]))
    print(result.status, result.step)
"""


def test_ctrl_c_saves_a_checkpoint_and_stops_cleanly(tmp_path):
    script = tmp_path / "interrupted.py"
    script.write_text(textwrap.dedent(INTERRUPTER.format(config=repr(TINY))))
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "run")], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["interrupted", "5"]
    assert "stopping after this iteration" in proc.stderr
    assert [p.name for p in (tmp_path / "run" / "checkpoints").iterdir()] == ["ckpt-00000005.pt"]
    assert train(None, resume=tmp_path / "run").step == 20


def test_out_refuses_an_existing_run(tmp_path):
    train(TrainConfig(**{**TINY, "iters": 2, "ckpt_every": 1}), out=tmp_path / "run")
    with pytest.raises(ic.ImtransError, match="already holds a run; continue it with --resume"):
        train(TrainConfig(**TINY), out=tmp_path / "run")


def test_nan_loss_stops_with_a_clear_message(tmp_path):
    class Poison:
        @ic.hookimpl
        def imtrans_run_start(self, run):
            with torch.no_grad():
                next(run.networks["g_ct"].parameters()).fill_(float("nan"))

    ic.plugins.add_plugin(Poison(), "poison")
    try:
        with pytest.raises(
            ic.ImtransError, match=r"loss '\w+' became nan at iteration \d+; no checkpoint was written yet"
        ):
            train(TrainConfig(**TINY), out=tmp_path / "run")
    finally:
        ic.plugins.manager.unregister(name="poison")


def test_ddp_two_processes_keep_parameters_identical(tmp_path, ddp_ranks):
    config = {**TINY, "iters": 4, "log_every": 2, "ckpt_every": 4}
    r0, r1 = ddp_ranks(config, tmp_path / "run")
    for net in r0:
        for key, value in r0[net].items():
            assert torch.equal(value, r1[net][key]), f"{net}.{key} differs between ranks"
    first = torch.load(tmp_path / "run" / "checkpoints" / "ckpt-00000004.pt", weights_only=True)
    assert first["step"] == 4  # rank 0 alone wrote the run directory


@pytest.mark.slow
def test_a_compiled_run_trains_like_an_eager_one_and_its_checkpoints_do_not_know(tmp_path):
    config = {**TINY, "iters": 3, "ckpt_every": 3}
    eager = train(TrainConfig(**config), out=tmp_path / "eager").run_dir
    fast = train(TrainConfig(**config, compile="default"), out=tmp_path / "compiled").run_dir
    states = [
        torch.load(next((run / "checkpoints").glob("*.pt")), weights_only=False) for run in (eager, fast)
    ]
    for name, weights in states[0]["models"].items():
        assert weights.keys() == states[1]["models"][name].keys()  # no _orig_mod. prefixes
    logged = [json.loads((run / "metrics.jsonl").read_text().splitlines()[-1]) for run in (eager, fast)]
    for term in ("g_ct", "g_mr", "cycle", "d_ct", "d_mr"):
        assert logged[1][term] == pytest.approx(logged[0][term], rel=0.02), term  # the same objective, fused


def test_cycle_noise_reaches_only_the_translations_that_are_translated_back():

    objective = Objective.from_losses(compose_losses(["cycle:3,noise=0.2"], ic.LOSSES, CYCLEGAN))
    assert objective.cycle_noise == 0.2
    assert (
        Objective.from_losses(compose_losses([], ic.LOSSES, CYCLEGAN)).cycle_noise == 0.0
    )  # the paper's cycle
    generators = Generators(torch.nn.Identity(), torch.nn.Identity())
    batch = {"ct": torch.zeros(4, 1, 32, 32), "mr": torch.ones(4, 1, 32, 32)}
    torch.manual_seed(0)
    out = generators(batch, cycle_noise=objective.cycle_noise)
    assert torch.equal(out["fake_ct"], batch["mr"]) and torch.equal(out["fake_mr"], batch["ct"])
    for rec, fake in (("rec_ct", "fake_mr"), ("rec_mr", "fake_ct")):
        noise = out[rec] - out[fake]
        assert abs(float(noise.mean())) < 0.02 and float(noise.std()) == pytest.approx(0.2, rel=0.05)
    assert torch.equal(generators(batch)["rec_mr"], batch["mr"])  # no noise: the exact cycle


def test_denoise_ct_shows_d_ct_the_real_cts_filtered_and_everything_else_as_it_is():
    from imtrans_core.training.distributed import Distributed
    from imtrans_cyclegan.losses import bilateral

    model = ic.MODELS.build("cyclegan")
    model.setup(TrainConfig(**{**TINY, "loss": ["lsgan:1,denoise_ct=0.15"]}), Distributed.setup("cpu"))
    seen = {}

    def record(ct, mr):
        seen.update(ct=ct, mr=mr)
        return model.discriminators(ct, mr)

    model.d_train = record
    generator = torch.Generator().manual_seed(0)
    batch = {k: torch.rand(2, 1, 32, 32, generator=generator) * 2 - 1 for k in ("ct", "mr")}
    out = {k: torch.rand(2, 1, 32, 32, generator=generator) for k in ("fake_ct", "fake_mr")}
    model._discriminator_step(batch, out)
    assert torch.equal(seen["ct"][:2], bilateral(batch["ct"], 0.15))
    assert not torch.allclose(seen["ct"][:2], batch["ct"])
    assert torch.equal(seen["mr"][:2], batch["mr"])  # denoise_mr=0: the real MRs as they are
    # the synthetic CTs are never filtered (a pool not yet full returns the new ones)
    assert torch.equal(seen["ct"][2:], out["fake_ct"])


def test_init_seed_sets_the_initial_weights_and_leaves_the_data_order_to_seed(tmp_path):
    initial = {}

    class Initial:
        @ic.hookimpl
        def imtrans_run_start(self, run):
            initial[run.dir.name] = {k: v.clone() for k, v in run.networks["g_ct"].state_dict().items()}

    ic.plugins.add_plugin(Initial(), "initial")
    try:
        for name, changes in {"s0": {}, "s1": {"seed": 1}, "s1i0": {"seed": 1, "init_seed": 0}}.items():
            train(TrainConfig(**{**TINY, "iters": 1, "ckpt_every": 1, **changes}), out=tmp_path / name)
    finally:
        ic.plugins.manager.unregister(name="initial")
    same = {a: all(torch.equal(initial[a][k], initial["s1i0"][k]) for k in initial[a]) for a in ("s0", "s1")}
    assert same == {"s0": True, "s1": False}  # seed 0's initial weights
    trained = {
        name: torch.load(tmp_path / name / "checkpoints" / "ckpt-00000001.pt", weights_only=True)["models"][
            "g_ct"
        ]
        for name in ("s0", "s1i0")
    }
    assert not all(torch.equal(trained["s0"][k], trained["s1i0"][k]) for k in trained["s0"])  # seed 1's data


def test_the_contrast_prior_is_fitted_on_the_training_pools_body_values():
    from imtrans_core.training.distributed import Distributed

    class Stack:
        def __init__(self, modality, values):
            self.modality, self._values = modality, values

        def values(self):
            return self._values

    rng = np.random.default_rng(0)
    ct, mr = rng.uniform(-0.9, 1, 4000), np.concatenate([rng.uniform(-0.5, 1, 4000), np.full(4000, -1.0)])
    model = ic.MODELS.build("cyclegan")
    model.setup(TrainConfig(**{**TINY, "loss": ["prior"]}), Distributed.setup("cpu"))
    model.observe_data([Stack("ct", ct[:2000]), Stack("mr", mr), Stack("ct", ct[2000:])])
    prior = model.objective.prior["prior"]
    levels = np.linspace(0, 1, prior.knots)
    assert np.allclose(prior.ct_knots.numpy(), np.quantile(ct, levels), atol=1e-6)  # every CT stack
    assert np.allclose(prior.mr_knots.numpy(), np.quantile(mr[mr > -1], levels), atol=1e-6)  # air left out


def test_ema_keeps_an_average_of_the_generators_that_translation_loads(tmp_path):
    from imtrans_core.inference.models import load_generator

    run = train(TrainConfig(**TINY, ema=0.9), out=tmp_path / "run").run_dir
    state = torch.load(sorted((run / "checkpoints").glob("*.pt"))[-1], weights_only=True)
    assert set(state["ema"]) == {"g_ct", "g_mr"} and "d_ct" not in state["ema"]
    key = "model.1.weight"
    trained, averaged = state["models"]["g_ct"][key], state["ema"]["g_ct"][key]
    assert not torch.equal(trained, averaged)
    assert torch.equal(load_generator(run, "mr2ct").net.state_dict()[key], averaged)
    plain = train(TrainConfig(**TINY), out=tmp_path / "plain").run_dir
    assert torch.equal(
        state["models"]["g_ct"][key],
        torch.load(sorted((plain / "checkpoints").glob("*.pt"))[-1], weights_only=True)["models"]["g_ct"][
            key
        ],
    )  # averaging does not change what is trained
