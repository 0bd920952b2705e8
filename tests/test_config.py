"""One validated configuration: every option and config key typed and ranged, errors before any work."""

from __future__ import annotations

import json

import pytest

from imtrans_core.cli import run
from imtrans_core.errors import ImtransError
from imtrans_core.training import TrainConfig, resolve_config
from imtrans_core.training.config import FIELDS, check_values, describe_range
from imtrans_core.training.validate import check_size
from imtrans_cyclegan.model import CycleGAN

TINY = [
    "--gen",
    "resnet9:ngf=8,n_blocks=1",
    "--disc",
    "patchgan:ndf=8",
    "--data",
    "phantom:n_ct=2,n_mr=2,n_paired=1,size=64,slices=8",
    "--size",
    "64",
    "--workers",
    "0",
]


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """A private slice cache, so a test can tell whether any data was cached."""
    monkeypatch.setenv("IMTRANS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def one_error_line(capsys, args: list[str]) -> str:
    code = run(args)
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2, (code, out, err)
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "internal error" not in err and "Traceback" not in out + err
    return lines[0]


# The rows of the issue: each used to end in "internal error" after the data were cached.
@pytest.mark.parametrize(
    "option, value, words",
    [
        ("--batch", "0", "--batch 0: must be >= 1"),
        ("--log-every", "0", "--log-every 0: must be >= 1"),
        ("--ckpt-every", "0", "--ckpt-every 0: must be >= 1"),
        ("--sample-every", "0", "--sample-every 0: must be >= 1"),
        ("--size", "7", "--size 7: the networks of cyclegan (resnet9, patchgan) cannot train on 7 x 7"),
        ("--lr", "-1", "--lr -1.0: must be > 0"),
        ("--lr", "nan", "--lr nan: must be a finite number"),
        ("--iters", "0", "--iters 0: must be >= 1"),
        ("--keep", "0", "--keep 0: must be >= 1"),
        ("--workers", "-1", "--workers -1: must be >= 0"),
        ("--seed", "-5", "--seed -5: must be >= 0"),
        ("--beta1", "1", "--beta1 1.0: must be >= 0 and < 1"),
        ("--decay-from", "50", "--decay-from 50 is past --iters 10: the decay must start within the run"),
    ],
)
def test_bad_values_fail_before_any_work(capsys, tmp_path, cache, option, value, words):
    out = tmp_path / "run"
    line = one_error_line(capsys, ["train", *TINY, "--iters", "10", option, value, "--out", str(out)])
    assert words in line, line
    assert not out.exists(), "a run directory was made before the options were checked"
    assert not cache.exists(), "data were cached before the options were checked"


def size_check(gen: str, disc: str, size: int) -> None:
    check_size(CycleGAN(), TrainConfig(gen=gen, disc=disc, size=size))


def test_the_smallest_size_is_computed_from_the_networks():
    with pytest.raises(ImtransError, match=r"the smallest size they accept is (\d+)") as info:
        size_check("resnet9:ngf=8,n_blocks=1", "patchgan:ndf=8", 7)
    smallest = int(info.value.args[0].rsplit(" ", 1)[-1])
    size_check("resnet9:ngf=8,n_blocks=1", "patchgan:ndf=8", smallest)
    with pytest.raises(ImtransError):
        size_check("resnet9:ngf=8,n_blocks=1", "patchgan:ndf=8", smallest - 1)
    # A deeper discriminator needs larger slices: the bound follows the networks.
    with pytest.raises(ImtransError, match=r"the smallest size they accept is (\d+)") as deeper:
        size_check("resnet9:ngf=8,n_blocks=1", "patchgan:ndf=8,n_layers=5", 7)
    assert int(deeper.value.args[0].rsplit(" ", 1)[-1]) > smallest


def test_yaml_numbers_without_a_dot_are_numbers(tmp_path, capsys):
    """YAML 1.1 reads 2e-4 as a string; the config reads it as the number it is."""
    config = tmp_path / "c.yaml"
    config.write_text("lr: 2e-4\niters: 1e3\nlog_every: 1_0\n")
    resolved = resolve_config({}, config, None)
    assert resolved.lr == 2e-4 and resolved.iters == 1000 and resolved.log_every == 10
    assert run(["train", "--config", str(config), "--dry-run"]) == 0


@pytest.mark.parametrize(
    "text, words",
    [
        ("lr: fast\n", "c.yaml: lr = 'fast': expected a number"),
        ("batch: true\n", "c.yaml: batch = True: expected an integer, not a true/false value"),
        ("iters: 2.5\n", "c.yaml: iters = 2.5: expected an integer"),
        ("ckpt_evry: 10\n", "c.yaml: unknown option 'ckpt_evry'; did you mean ckpt_every?"),
        ("amp: fast\n", "c.yaml: amp = fast: choose one of off, bf16, fp16, auto"),
        ("loss: [1, 2]\n", "c.yaml: loss = [1, 2]: expected a spec string or a list of them"),
        ("- a list\n", "expected a mapping of option names to values"),
    ],
)
def test_config_file_values_go_through_the_same_checks(tmp_path, capsys, text, words):
    config = tmp_path / "c.yaml"
    config.write_text(text)
    out = tmp_path / "run"
    line = one_error_line(capsys, ["train", "--config", str(config), "--out", str(out)])
    assert words in line.replace(str(tmp_path) + "/", ""), line
    assert not out.exists()


def test_python_callers_get_the_same_checks():
    with pytest.raises(ImtransError, match="--batch 0: must be >= 1"):
        TrainConfig(batch=0)
    with pytest.raises(ImtransError, match=r"run\.json: unknown option 'sizes'; did you mean size"):
        TrainConfig.from_dict({"sizes": 3}, "run.json")


def test_every_option_is_typed_and_every_number_is_ranged():
    for name, spec in FIELDS.items():
        meta = spec.metadata
        assert meta["help"], name
        if str(spec.type).split()[0] in ("int", "float"):
            assert meta["low"] is not None and meta["high"] is not None, f"{name} is not bounded"
            assert describe_range(spec), name
    assert check_values({"log-every": "7"}, "x") == {"log_every": 7}


def test_help_lists_ranges_and_choices(capsys):
    assert run(["train", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--batch INTEGER" in out and "[>= 1 and <= 4096]" in out
    assert "[off|bf16|fp16|auto]" in out and "May change on --resume" in out


def test_device_cuda_without_a_gpu_fails_before_any_work(capsys, tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the same answer on a GPU machine
    line = one_error_line(capsys, ["train", *TINY, "--device", "cuda", "--out", str(tmp_path / "r")])
    assert "--device cuda: no CUDA device is visible" in line
    line = one_error_line(capsys, ["train", *TINY, "--amp", "fp16", "--device", "cpu"])
    assert "--amp fp16 needs a CUDA device" in line


def test_a_missing_data_folder_fails_before_the_run_directory_exists(capsys, tmp_path):
    out = tmp_path / "run"
    args = [
        "train",
        "--data",
        f"folder:ct={tmp_path}/none,mr={tmp_path}/none",
        "--size",
        "64",
        "--out",
        str(out),
    ]
    line = one_error_line(capsys, args)
    assert "none" in line
    assert not out.exists()


def test_dry_run_prints_the_resolved_configuration(capsys):
    assert run(["train", *TINY, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "g_ct,g_mr=resnet9:in_ch=1,out_ch=1,ngf=8,n_blocks=1" in out and "d_ct,d_mr=patchgan:" in out
    assert "model: cyclegan (CycleGAN)" in out and "g_mr (CT -> MR): ResnetGenerator" in out


def test_stored_config_round_trips():
    config = TrainConfig(lr=1e-4, loss=["gc:0.3"], decay_from=10, iters=20)
    again = TrainConfig.from_dict(json.loads(json.dumps(config.to_dict())), "config.json")
    assert again == config


def test_out_that_is_a_file_fails_before_any_work(capsys, tmp_path, cache):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file")
    for out in (blocker, blocker / "run"):
        line = one_error_line(capsys, ["train", *TINY, "--iters", "1", "--out", str(out)])
        assert f"{blocker} is a file; choose a folder" in line
    assert not cache.exists()


@pytest.mark.parametrize("name, content", [("c.yaml", b"\xff\xfe\x00bad"), ("ckpt.pt", b"x")])
def test_unreadable_or_foreign_config_files_are_one_line(capsys, tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    line = one_error_line(capsys, ["train", "--config", str(path), "--dry-run"])
    assert f"--config {path}:" in line


def test_a_runs_config_json_repeats_the_run(tmp_path, capsys):
    """`--config RUN/config.json` takes the options and ignores the derived `resolved` specs."""
    stored = {**TrainConfig(size=64, iters=5).to_dict(), "resolved": {"gen": "resnet9:..."}}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(stored))
    assert resolve_config({}, path, None) == TrainConfig(size=64, iters=5)


def test_a_plugin_network_that_reads_values_is_probed_on_the_cpu(fresh_plugins):
    """Code that looks at values cannot run on the meta device; the check falls back to the CPU."""
    from torch import nn

    import imtrans_core as ic

    class Clamped(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 3, padding=1)

        def forward(self, x):
            y = self.conv(x)
            return y.clamp(-1, 1) if float(y.abs().max()) > 1 else y  # needs real values

    ic.GENERATORS.add("clamped", Clamped)
    size_check("clamped", "patchgan:ndf=8", 64)
    with pytest.raises(ImtransError, match=r"--size 8: .* the smallest size they accept is"):
        size_check("clamped", "patchgan:ndf=8", 8)


def test_networks_that_fit_no_size_are_not_blamed_on_the_size():
    with pytest.raises(ImtransError, match=r"nor on 256 x 256 .*check their specs") as info:
        size_check("resnet9:ngf=8,n_blocks=1,out_ch=2", "patchgan:ndf=8", 64)
    assert "--size" not in str(info.value)
