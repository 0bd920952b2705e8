"""The imtrans command: --version, plugins, one-line errors with exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import imtrans_core as ic
from imtrans_core.cli import run


def call(capsys, *args: str) -> tuple[int, str, str]:
    code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_version(capsys):
    code, out, _ = call(capsys, "--version")
    assert code == 0 and out.strip() == f"imtrans {ic.__version__}"


def test_plugins_lists_every_kind_with_parameters(capsys):
    code, out, _ = call(capsys, "plugins")
    assert code == 0
    for word in ("generators", "resnet9", "ngf=64", "patchgan", "losses", "gc", "cyclegan", "plugins loaded"):
        assert word in out


def test_plugins_json_for_one_kind(capsys):
    _, out, _ = call(capsys, "plugins", "generators", "--json")
    payload = json.loads(out)
    (resnet9,) = [i for i in payload["registries"]["generators"] if i["name"] == "resnet9"]
    assert resnet9["params"]["ngf"] == 64 and resnet9["plugin"] == "cyclegan"
    assert list(payload["registries"]) == ["generators"]


@pytest.mark.parametrize(
    "args, words",
    [
        (["train", "--gen", "resnet6", "--dry-run"], "unknown generator 'resnet6'; did you mean resnet9"),
        (
            ["train", "--gen", "resnet9:bogus=3", "--dry-run"],
            "has no parameter 'bogus'; resnet9 accepts: in_ch=1",
        ),
        (["train", "--loss", "gc:heavy", "--dry-run"], "weight='heavy' expected a number"),
        (["train", "--disc", "patchgan:n_layers=x", "--dry-run"], "expected an integer"),
        (["train", "--iters", "many"], "'many' is not a valid integer"),
        (["train", "--config", "/no/such.yaml", "--dry-run"], "--config /no/such.yaml: no such file"),
        (["plugins", "widgets"], "unknown kind 'widgets'"),
        (["no-such-command"], "No such command 'no-such-command'"),
    ],
)
def test_person_errors_are_one_line_with_status_2(capsys, args, words):
    code, out, err = call(capsys, *args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and words in lines[0], lines[0]
    assert "Traceback" not in out + err


def test_debug_shows_the_traceback(capsys):
    with pytest.raises(ic.RegistryError):
        run(["--debug", "train", "--gen", "resnet6", "--dry-run"])


def test_dry_run_resolves_the_paper_objective(capsys):
    code, out, _ = call(capsys, "train", "--gen", "resnet9", "--loss", "gc:0.3", "--dry-run")
    assert code == 0
    assert "g_ct,g_mr=resnet9:in_ch=1,out_ch=1,ngf=64,n_blocks=9" in out
    assert "loss=lsgan:weight=1.0" in out and "cycle:weight=3.0" in out and "gc:weight=0.3" in out
    assert "g_ct (MR -> CT): ResnetGenerator" in out and "d_mr (real or synthetic MR): PatchGAN" in out


def test_config_file_and_command_line_precedence(tmp_path, capsys):
    config = tmp_path / "run.toml"
    config.write_text('preset = "small"\ngen = "resnet9:ngf=16"\nloss = ["gc:0.5"]\n')
    code, out, _ = call(capsys, "train", "--config", str(config), "--gen", "resnet9:ngf=8", "--dry-run")
    assert code == 0
    assert "ngf=8" in out and "gc:weight=0.5" in out


def test_a_preset_s_loss_terms_add_up_with_the_command_line_s(capsys):
    """``--preset unpaired`` brings GC and the held prior; ``--loss`` re-weights or drops a term, not all."""
    code, out, _ = call(capsys, "train", "--preset", "unpaired", "--loss", "gc:0.5", "--dry-run")
    assert code == 0
    assert "preset unpaired changes:" in out and "gen=unet:" in out
    assert "gc:weight=0.5" in out and "prior:weight=3.0" in out and "until=0" in out
    code, out, _ = call(capsys, "train", "--preset", "unpaired", "--loss", "prior:0", "--dry-run")
    assert code == 0 and "prior:" not in out.split("preset unpaired changes:")[1].split("\n", 1)[1]


def test_the_misaligned_preset_trains_reggan_on_pairs_4_mm_apart(capsys):
    code, out, _ = call(capsys, "train", "--preset", "misaligned", "--dry-run")
    assert code == 0 and "model: reggan (RegGAN)" in out and "misregistration=4.0" in out
    assert "n_train_pairs=12" in out and "g_ct=unet:" in out


def test_an_old_preset_name_says_what_it_became_and_trains_the_same(capsys):
    for old, new in (("cpu", "small"), ("cpu-unet", "unpaired"), ("cpu-paired", "paired")):
        code, out, err = call(capsys, "train", "--preset", old, "--dry-run")
        assert code == 0 and f"--preset {old} is an old name: it is --preset {new} now" in err
        code, same, _ = call(capsys, "train", "--preset", new, "--dry-run")
        assert code == 0 and out == same


def test_the_paired_preset_trains_the_supervised_u_net_on_four_pairs(capsys, tmp_path):
    """``--preset paired``: the U-Net, the paired L1 alone (no GAN, no cycle), 4 aligned pairs."""
    code, out, _ = call(capsys, "train", "--preset", "paired", "--dry-run")
    assert code == 0 and "gen=unet:" in out and "n_train_pairs=4" in out
    assert "  loss=paired:weight=1.0\n" in out
    no_pairs = "phantom:n_ct=1,n_mr=1,n_paired=0,size=32,slices=6"
    code, _, err = call(capsys, "train", "--preset", "paired", "--data", no_pairs, "--out", str(tmp_path))
    assert code == 2 and f"--data {no_pairs} has none" in " ".join(err.split())  # before any work
    assert not any(tmp_path.iterdir())


def test_console_script_is_installed():
    out = subprocess.run([sys.executable, "-m", "imtrans_core", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("imtrans ")


LEAN = """
import contextlib, io, sys
from imtrans_core.cli import run
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    try:
        code = run({args!r})
    except SystemExit as stop:
        code = stop.code
heavy = sorted(m for m in ("torch", "onnx", "onnxruntime", "SimpleITK", "scipy", "numpy") if m in sys.modules)
print(code, ",".join(heavy))
"""


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--help"], 0),
        (["train", "--help"], 0),
        (["translate", "--help"], 0),
        (["data", "--help"], 0),
        (["segment", "--help"], 0),
        (["train", "--iters", "-1"], 2),
    ],
)
def test_help_and_option_errors_import_neither_torch_nor_simpleitk(args, code):
    """Plugins register their factories by reference and commands import their machinery when they run."""
    done = subprocess.run(
        [sys.executable, "-c", LEAN.format(args=args)], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.split("\n")[0] == f"{code} ", done.stdout + done.stderr


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["plugins"], 0),
        (["plugins", "models", "--json"], 0),
        (["train", "--gen", "resnet9:nfg=32", "--dry-run"], 2),
        (["train", "--loss", "gc:0.3,op=laplace"], 2),
        (["train", "--model", "nope"], 2),
    ],
)
def test_listing_plugins_and_spec_errors_import_no_torch(args, code):
    """Factories are read from their sources (imtrans_core.declared); only the phantom's numpy is imported."""
    done = subprocess.run(
        [sys.executable, "-c", LEAN.format(args=args)], capture_output=True, text=True, timeout=60
    )
    status, heavy = done.stdout.split("\n")[0].split(" ")
    assert status == str(code) and set(filter(None, heavy.split(","))) <= {"numpy"}, done.stdout + done.stderr
