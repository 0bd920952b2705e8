"""Plugin loading: built-ins through entry points, a third-party package, broken and duplicate plugins."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import imtrans_core as ic

EXAMPLE = Path(__file__).resolve().parents[1] / "plugins" / "examples" / "imtrans-example"


def install_fake_dist(root: Path, dist: str, entry_points: dict[str, str], modules: dict[str, str]) -> None:
    """Write a dist-info plus modules under ``root`` (already on sys.path): what pip would leave."""
    info = root / f"{dist.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1.0\n")
    lines = "\n".join(f"{name} = {target}" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[imtrans]\n{lines}\n")
    for name, source in modules.items():
        (root / f"{name}.py").write_text(textwrap.dedent(source))


@pytest.fixture
def site(tmp_path, monkeypatch, fresh_plugins):
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("IMTRANS_PLUGINS", "")
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("fake_")]:
        del sys.modules[name]


def test_builtins_load_through_entry_points(fresh_plugins):
    assert "resnet9" in ic.GENERATORS
    assert {"cyclegan", "hip", "metrics", "loggers"} <= set(ic.plugins.sources)
    assert all(s.dist == "imtrans" for s in ic.plugins.sources.values())
    assert ic.plugins.failures == []


def test_example_third_party_plugin(site, monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE))
    install_fake_dist(site, "imtrans-example", {"example": "imtrans_example"}, {})
    assert "tiny" in ic.GENERATORS.names()
    info = ic.GENERATORS.info("tiny")
    assert (info.plugin, info.version) == ("example", "0.1.0")
    net = ic.GENERATORS.build("tiny:width=4")
    assert sum(p.numel() for p in net.parameters()) == (1 * 4 * 9 + 4) + (4 * 4 * 9 + 4) + (4 * 1 * 9 + 1)
    assert ic.METRICS.build("maxerr")([1, 5], [2, 2]) == 3.0


def test_broken_plugin_is_skipped_with_its_distribution_name(site, caplog):
    install_fake_dist(
        site, "broken-dist", {"broken": "fake_broken"}, {"fake_broken": "import no_such_module\n"}
    )
    assert "resnet9" in ic.GENERATORS.names()  # the rest still loads
    (failure,) = ic.plugins.failures
    assert failure.dist == "broken-dist" and "No module named 'no_such_module'" in failure.error
    assert "plugin 'broken' from distribution 'broken-dist' was skipped" in caplog.text


DUPLICATE = """
    from imtrans_core import hookimpl

    def mine(n: int = 1):
        "Someone else's resnet9."
        return n

    @hookimpl
    def imtrans_register(registries):
        registries.generators.add("extra", mine)
        registries.generators.alias("old-extra", "extra")
        registries.generators.add("resnet9", mine{override})
"""


def test_duplicate_name_skips_the_plugin_and_rolls_back(site):
    install_fake_dist(site, "dupe-dist", {"dupe": "fake_dupe"}, {"fake_dupe": DUPLICATE.format(override="")})
    assert "extra" not in ic.GENERATORS.names() and "old-extra" not in ic.GENERATORS.aliases()  # rolled back
    assert ic.GENERATORS.info("resnet9").plugin == "cyclegan"
    (failure,) = ic.plugins.failures
    assert failure.dist == "dupe-dist"
    assert "registered twice: by plugin 'cyclegan'" in failure.error and "by plugin 'dupe'" in failure.error


def test_explicit_override_wins(site):
    install_fake_dist(
        site, "over-dist", {"over": "fake_over"}, {"fake_over": DUPLICATE.format(override=", override=True")}
    )
    assert ic.GENERATORS.info("resnet9").plugin == "over"
    assert ic.GENERATORS.build("resnet9:n=4") == 4


def test_unknown_hook_name_is_refused(site):
    source = """
        from imtrans_core import hookimpl

        @hookimpl
        def imtrans_regster(registries):
            pass
    """
    install_fake_dist(site, "typo-dist", {"typo": "fake_typo"}, {"fake_typo": source})
    assert "resnet9" in ic.GENERATORS.names()
    (failure,) = ic.plugins.failures
    assert "imtrans_regster" in failure.error and failure.dist == "typo-dist"


def test_disable_switch(fresh_plugins, monkeypatch):
    monkeypatch.setenv("IMTRANS_DISABLE_PLUGINS", "metrics")
    assert ic.METRICS.names() == []
    assert "resnet9" in ic.GENERATORS.names()


def test_plugin_objects_can_be_added_by_hand(fresh_plugins):
    class Mine:
        @ic.hookimpl
        def imtrans_register(self, registries):
            registries.losses.add("zero", lambda weight=0.0: weight)

    ic.plugins.add_plugin(Mine(), "mine")
    assert ic.LOSSES.info("zero").plugin == "mine"


def test_core_imports_no_plugin_or_torch():
    import subprocess

    code = "import sys, imtrans_core; print(sorted(m for m in sys.modules if m.startswith(('torch', 'imtrans_'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert (
        out.strip()
        == "['imtrans_core', 'imtrans_core.declared', 'imtrans_core.errors', 'imtrans_core.hookspecs', 'imtrans_core.plugins', 'imtrans_core.registry', 'imtrans_core.spec']"
    )


def test_example_plugin_through_the_cli(site, monkeypatch, capsys):
    from imtrans_core.cli import run

    monkeypatch.syspath_prepend(str(EXAMPLE))
    install_fake_dist(site, "imtrans-example", {"example": "imtrans_example"}, {})
    assert run(["plugins", "generators"]) == 0
    out = capsys.readouterr().out
    assert "tiny" in out and "example 0.1.0" in out
    assert run(["train", "--gen", "tiny:width=4", "--dry-run"]) == 0
    assert "g_ct (MR -> CT): Sequential, 225 parameters" in capsys.readouterr().out


def test_models_are_registered_and_a_third_party_model_trains_on_the_engine(
    site, monkeypatch, tmp_path, capsys
):
    from imtrans_core.cli import run
    from imtrans_core.inference.backends import TorchBackend
    from imtrans_core.training import TrainConfig, train

    monkeypatch.syspath_prepend(str(EXAMPLE))
    monkeypatch.setenv("IMTRANS_CACHE", str(tmp_path / "cache"))
    install_fake_dist(site, "imtrans-example", {"example": "imtrans_example"}, {})
    assert run(["plugins", "models"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in ("cyclegan", "segment", "paired-l1", "example 0.1.0"))

    pairs = "phantom:n_ct=0,n_mr=0,n_paired=1,size=32,slices=6,n_train_pairs=2"
    config = dict(model="paired-l1", gen="tiny:width=4", data=pairs, size=32, iters=4, workers=0)
    config.update(log_every=2, ckpt_every=2, sample_every=2)
    result = train(TrainConfig(**config), out=tmp_path / "run")
    assert (result.step, result.status) == (4, "finished")
    state = torch.load(tmp_path / "run" / "checkpoints" / "ckpt-00000004.pt", weights_only=True)
    assert set(state["models"]) == {"g_ct"} and state["config"]["model"] == "paired-l1"
    log = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [line["iter"] for line in log] == [2, 4] and log[-1]["l1"] < log[0]["l1"] + 1
    assert (tmp_path / "run" / "samples" / "iter-00000004.png").is_file()
    assert train(None, resume=tmp_path / "run", changes={"iters": 6}).step == 6  # resumes like any run
    sct = TorchBackend.from_model(tmp_path / "run", "mr2ct", device="cpu")(np.zeros((1, 1, 32, 32)))
    assert sct.shape == (1, 1, 32, 32) and np.isfinite(sct).all()

    with pytest.raises(ic.ImtransError, match=r"--model paired-l1 trains on aligned CT/MR pairs"):
        train(
            TrainConfig(**{**config, "data": "phantom:n_ct=2,n_mr=2,size=32,slices=6"}), out=tmp_path / "no"
        )
    assert not (tmp_path / "no").exists()
    with pytest.raises(ic.ImtransError, match=r"--ema 0\.99: --model paired-l1 does not read it"):
        train(TrainConfig(**{**config, "ema": 0.99}), out=tmp_path / "no")  # not silently ignored
    assert not (tmp_path / "no").exists()
    assert run(["train", "--model", "segment", "--dry-run"]) == 2
    assert "this model is trained with `imtrans segment train`" in capsys.readouterr().err


@pytest.mark.parametrize(
    "disabled, args, message",
    [
        ("metrics", ["evaluate", "a", "b"], "imtrans evaluate needs the metric 'mae'"),
        (
            "cyclegan",
            ["train", "--dry-run"],
            "pix2pix, reggan, segment; switched off by the environment: plugin 'cyclegan'",
        ),
        ("hip", ["demo", "--out", "demo"], "imtrans demo needs the dataset 'phantom'"),
    ],
)
def test_a_command_whose_plugin_is_switched_off_says_so_in_one_line(
    fresh_plugins, monkeypatch, tmp_path, capsys, disabled, args, message
):
    from imtrans_core.cli import run

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IMTRANS_DISABLE_PLUGINS", disabled)
    ic.plugins.reset()
    assert run(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert f"switched off by the environment: plugin '{disabled}' (IMTRANS_DISABLE_PLUGINS)" in err
    assert not (tmp_path / "demo").exists()  # nothing was started


def test_presets_are_plugins_and_a_third_party_one_trains_by_name(site, monkeypatch, capsys):
    """``--preset`` reads the presets registry: the built-ins from their methods' plugins, the example's beside them."""
    from imtrans_core.cli import run

    monkeypatch.syspath_prepend(str(EXAMPLE))
    install_fake_dist(site, "imtrans-example", {"example": "imtrans_example"}, {})
    assert (
        ic.PRESETS.info("misaligned").plugin == "reggan" and ic.PRESETS.info("unpaired").plugin == "cyclegan"
    )
    assert run(["plugins", "presets"]) == 0
    assert "tiny-pairs" in capsys.readouterr().out
    assert run(["train", "--preset", "tiny-pairs", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert (
        "preset tiny-pairs changes: model=paired-l1, gen=tiny:width=16" in out and "model: paired-l1" in out
    )


def test_a_preset_with_a_mistyped_option_names_itself_and_its_plugin(site, capsys):
    from imtrans_core.cli import run

    plugin = """
        from imtrans_core import hookimpl

        def fast():
            "Anything, fast."
            return {"iter": 10}

        @hookimpl
        def imtrans_register(registries):
            registries.presets.add("fast", fast)
    """
    install_fake_dist(site, "fake-presets", {"fakepresets": "fake_presets"}, {"fake_presets": plugin})
    assert run(["train", "--preset", "fast", "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(
        "error: preset fast of plugin fakepresets: unknown option 'iter'; did you mean iters?"
    )
