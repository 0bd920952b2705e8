"""Property-based test of the CLI: whatever a person types, no internal error and no traceback.

Hypothesis draws values for every option of ``train``, ``translate``, ``evaluate``,
``export`` and ``data`` from a mix of good values, values just outside their
range, absurd ones and garbage text, over real files (a tiny trained run, its
ONNX export, phantom volumes) and bad ones (missing, empty, not a volume). Each
command must end with status 0 or 2, and a failure must be one ``error:`` line.
The examples are derandomized so that CI runs the same ones every time; the
sizes are tiny so that the valid draws train, translate and export for real.
``translate --compile`` is left out: compiling takes ~30 s (the slow tests cover it).
"""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imtrans_core.cli import run
from imtrans_core.training import TrainConfig, train

SETTINGS = dict(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
GEN = "resnet9:ngf=8,n_blocks=1"
DISC = "patchgan:ndf=8"
DATA = "phantom:n_ct=2,n_mr=2,n_paired=1,size=64,slices=8"
TINY = ["--gen", GEN, "--disc", DISC, "--data", DATA, "--size", "64", "--iters", "2", "--workers", "0"]
_fresh = itertools.count()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny trained run, its ONNX export, phantom volumes on disk and some bad inputs."""
    from imtrans_core.onnx.export import export_model
    from imtrans_hip.phantom import write_phantom

    root = tmp_path_factory.mktemp("world")
    run_dir = root / "run"
    config = TrainConfig(gen=GEN, disc=DISC, data=DATA, size=64, iters=2, workers=0, log_every=1)
    train(config, out=run_dir)
    export_model(run_dir, root / "model.onnx", verify_model=False)
    phantom = write_phantom(root / "phantom", 1, 1, 1, size=32, slices=6)
    (root / "garbage.nii.gz").write_text("not a volume")
    (root / "empty").mkdir()
    pair = phantom / "paired" / "pair-000"
    return {
        "root": root,
        "run": run_dir,
        "ckpt": run_dir / "checkpoints" / "ckpt-00000002.pt",
        "onnx": root / "model.onnx",
        "mr": pair / "mr.nii.gz",
        "ct": pair / "ct.nii.gz",
        "mask": pair / "mask.nii.gz",
        "mr_dir": phantom / "mr",
        "ct_dir": phantom / "ct",
        "paired": phantom / "paired",
        "garbage": root / "garbage.nii.gz",
        "empty": root / "empty",
        "missing": root / "no-such-thing",
    }


@pytest.fixture(autouse=True)
def cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("IMTRANS_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def check(capsys, args: list[str], allowed: tuple[int, ...] = (0, 2)) -> int:
    """The property: exit 0 or 2, no internal error, no traceback, a failure in one line."""
    capsys.readouterr()
    code = run(args)
    out, err = capsys.readouterr()
    assert code in allowed, (args, code, err[-2000:])
    assert "internal error" not in err, (args, err)
    assert "Traceback" not in out + err, (args, err)
    if code == 2:
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, (args, err)
    return code


def holds(capsys, strategy: st.SearchStrategy, examples: int) -> None:
    """Check the property on ``examples`` draws; some must succeed and some fail, or the draws prove little."""
    codes = []

    @settings(max_examples=examples, **SETTINGS)
    @given(strategy)
    def prop(args):
        codes.append(check(capsys, args))

    prop()
    assert {0, 2} <= set(codes), f"every draw ended with status {set(codes)}: the strategies need fixing"


def fresh(world: dict, suffix: str = "") -> Path:
    return world["root"] / "out" / f"{next(_fresh)}{suffix}"


# ----------------------------------------------------------------------------- value strategies

GARBAGE = st.sampled_from(["", "x", "-", "1.5e", "None", "--help-me", "ü", "'", "a=b,c"])
FLAG = (st.just(True), st.just(True))  # a flag has no bad value


def ints(low: int, high: int) -> tuple[st.SearchStrategy[str], st.SearchStrategy[str]]:
    """(plausible integers, values outside any sane range or not integers at all)."""
    return st.integers(low, high).map(str), st.one_of(
        st.sampled_from(["-1", "1000000000000", "3.5"]), GARBAGE
    )


def floats(low: float, high: float) -> tuple[st.SearchStrategy[str], st.SearchStrategy[str]]:
    bad = st.sampled_from(["-1", "nan", "inf", "-inf", "1e300"])
    return st.floats(low, high).map(repr), st.one_of(bad, GARBAGE)


def choice(*good: str) -> tuple[st.SearchStrategy[str], st.SearchStrategy[str]]:
    return st.sampled_from(good), GARBAGE


def either(good: list[str], bad: list[str]) -> tuple[st.SearchStrategy[str], st.SearchStrategy[str]]:
    return st.sampled_from(good), st.one_of(st.sampled_from(bad), GARBAGE)


def options(draw, table: dict[str, tuple[st.SearchStrategy, st.SearchStrategy]]) -> list[str]:
    """About a third of the options, each with a good value except for none (mostly), one or two.

    Mostly-good draws matter as much as bad ones: they make the commands run for
    real, which is where the errors nobody anticipated live.
    """
    chosen = [name for name in table if draw(st.integers(0, 2)) == 0]
    n_bad = min(len(chosen), draw(st.sampled_from([0, 0, 0, 1, 2])))
    bad = (
        set(draw(st.lists(st.sampled_from(chosen), min_size=n_bad, max_size=n_bad, unique=True)))
        if n_bad
        else set()
    )
    args: list[str] = []
    for name in chosen:
        good, worse = table[name]
        value = draw(worse if name in bad else good)
        args += [name] if value is True else [name, str(value)]
    return args


def sometimes(draw, strategy: st.SearchStrategy):
    return draw(st.one_of(st.none(), strategy))


def pick(draw, good: st.SearchStrategy, bad: st.SearchStrategy):
    """Mostly a good value: bad arguments are easy to find, good ones run the command for real."""
    return draw(bad if draw(st.integers(0, 7)) == 0 else good)


def path_of(world: dict, *keys: str) -> st.SearchStrategy[str]:
    return st.sampled_from(keys).map(lambda key: str(world[key]))


# ----------------------------------------------------------------------------- train


@st.composite
def train_args(draw, world: dict) -> list[str]:
    table = {
        "--gen": either(
            [GEN, "unet:base=4,depth=2"], ["resnet6", "resnet9:ngf=0", "resnet9:ngf=8,dropout=2"]
        ),
        "--disc": either([DISC, "patchgan:ndf=8,n_layers=5"], ["patchgan:ndf=-1", "patchgan:norm=weird"]),
        "--data": either(
            [
                DATA,
                f"folder:ct={world['ct_dir']},mr={world['mr_dir']}",
                f"synthrad:root={world['paired']},test=0",
            ],
            [
                f"folder:ct={world['missing']},mr={world['mr_dir']}",
                f"folder:ct={world['empty']},mr={world['empty']}",
                "phantom:size=100000",
                "phantom:n_ct=-1",
            ],
        ),
        "--size": ints(24, 80),
        "--batch": ints(1, 2),
        "--iters": ints(1, 3),
        "--decay-from": ints(0, 1),
        "--lr": floats(1e-5, 1e-2),
        "--beta1": floats(0, 0.9),
        "--beta2": floats(0.5, 0.999),
        "--pool": ints(0, 3),
        "--seed": ints(0, 2**32 - 1),
        "--amp": choice("off", "bf16", "fp16", "auto"),
        "--device": choice("auto", "cpu", "cuda"),
        "--orientation": choice("coronal", "axial", "sagittal"),
        "--workers": ints(0, 1),
        "--log-every": ints(1, 3),
        "--sample-every": ints(1, 3),
        "--ckpt-every": ints(1, 3),
        "--keep": ints(1, 3),
        "--loss": either(
            ["gc:0.3", "gc:0.3,abs=true", "identity:0.5", "cycle:0", "vanilla:1"], ["lsgan:0", "gc:op=x"]
        ),
        "--log": either(["jsonl", "samples:every=1"], ["tensorboard", "nope"]),
        "--preset": choice("paper", "unpaired", "paired", "misaligned", "small", "cpu", "cpu-unet"),
        "--dry-run": FLAG,
    }
    args = ["train", *TINY, *options(draw, table)]
    configs = ["lr: 2e-4\n", "iters: 1e0\n", "lr: fast\n", "ckpt_evry: 1\n", "- x\n", "{"]
    config = sometimes(draw, st.sampled_from(configs))
    if config is not None:
        path = fresh(world, ".yaml")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(config)
        args += ["--config", str(path)]
    where = draw(
        st.sampled_from(["new"] * 6 + ["resume", "resume", "existing-run", "file", "missing-resume"])
    )
    if where == "resume":  # a copy: resuming may extend it
        copy = fresh(world)
        shutil.copytree(world["run"], copy)
        args += ["--resume", str(copy)]
    elif where == "existing-run":
        args += ["--out", str(world["run"])]
    elif where == "file":
        args += ["--out", str(world["garbage"])]
    elif where == "missing-resume":
        args += ["--resume", str(world["missing"])]
    else:
        args += ["--out", str(fresh(world))]
    return args


def test_train_never_fails_internally(world, capsys):
    holds(capsys, train_args(world), 30)


# ----------------------------------------------------------------------------- translate


@st.composite
def translate_args(draw, world: dict) -> list[str]:
    model = pick(
        draw, path_of(world, "run", "ckpt", "onnx"), path_of(world, "missing", "garbage", "empty", "mr")
    )
    inputs = draw(
        st.lists(
            st.builds(
                lambda good, bad, which: bad if which == 0 else good,
                path_of(world, "mr", "mr_dir"),
                path_of(world, "ct", "garbage", "missing", "empty"),
                st.integers(0, 7),
            ),
            min_size=1,
            max_size=2,
            unique=True,
        )
    )
    table = {
        "--direction": choice("mr2ct", "ct2mr"),
        "--backend": choice("auto", "torch", "onnx", "openvino"),
        "--precision": choice("auto", "bf16", "f32"),
        "--amp": choice("off", "bf16", "fp16", "auto"),
        "--batch": ints(1, 9),
        "--device": choice("auto", "cpu", "cuda"),
        "--format": choice("nii.gz", "nii", "mha", "nrrd"),
        "--skip-existing": FLAG,
        "--force": FLAG,
    }
    out = pick(draw, st.builds(lambda: str(fresh(world))), path_of(world, "garbage"))
    return ["translate", model, *inputs, "--out", out, *options(draw, table)]


def test_translate_never_fails_internally(world, capsys):
    holds(capsys, translate_args(world), 30)


# ----------------------------------------------------------------------------- evaluate


@st.composite
def evaluate_args(draw, world: dict) -> list[str]:
    pred = pick(draw, path_of(world, "ct", "paired"), path_of(world, "garbage", "missing", "empty", "mr"))
    ref = pick(
        draw, path_of(world, "ct", "paired"), st.sampled_from([None, str(world["garbage"]), str(world["mr"])])
    )
    table = {
        "--mask": (st.sampled_from(["fov", str(world["mask"])]), path_of(world, "missing", "garbage", "ct")),
        "--source": (path_of(world, "mr"), path_of(world, "missing", "garbage", "paired")),
        "--scale": choice("paper", "hu", "synthrad", "both"),
        "--mi-bins": ints(2, 64),
        "--orientation": choice("coronal", "axial", "sagittal", "none"),
        "--resample": FLAG,
        "--json": (st.builds(lambda: str(fresh(world, ".json"))), path_of(world, "empty", "garbage")),
        "--csv": (st.builds(lambda: str(fresh(world, ".csv"))), path_of(world, "empty")),
        "--plot": (st.builds(lambda: str(fresh(world, ".png"))), path_of(world, "empty")),
        "--label": (st.text(max_size=12), st.just("")),
    }
    return ["evaluate", pred, *([ref] if ref else []), *options(draw, table)]


def test_evaluate_never_fails_internally(world, capsys):
    holds(capsys, evaluate_args(world), 30)


# ----------------------------------------------------------------------------- export


@st.composite
def export_args(draw, world: dict) -> list[str]:
    model = pick(draw, path_of(world, "run", "ckpt"), path_of(world, "onnx", "missing", "garbage", "empty"))
    table = {
        "--direction": choice("mr2ct", "ct2mr"),
        "--precision": choice("fp32", "fp16", "int8"),
        "--opset": (
            st.sampled_from(["17", "18", "20"]),
            st.one_of(st.sampled_from(["5", "0", "99"]), GARBAGE),
        ),
        "--with-intensity": FLAG,
        "--legacy": FLAG,
        "--calib": (
            st.just("phantom:n_ct=1,n_mr=1,n_paired=1,size=32,slices=6"),
            st.sampled_from([f"folder:ct={world['missing']},mr=x", "nope", "phantom:size=3"]),
        ),
        "--calib-slices": ints(1, 4),
        "--calibration": choice("percentile", "entropy", "minmax"),
        "--no-verify": FLAG,
        "--json": FLAG,
    }
    nowhere = st.sampled_from([str(world["empty"]), str(world["missing"] / "x" / "m.onnx")])
    out = pick(draw, st.builds(lambda: str(fresh(world, ".onnx"))), nowhere)
    return ["export", model, "--out", out, *options(draw, table)]


def test_export_never_fails_internally(world, capsys):
    holds(capsys, export_args(world), 12)


# ----------------------------------------------------------------------------- data


@st.composite
def data_args(draw, world: dict) -> list[str]:
    command = draw(st.sampled_from(["show", "prepare", "phantom"]))
    if command == "show":
        files = draw(
            st.lists(
                path_of(world, "mr", "ct", "mask", "garbage", "missing", "empty", "mr_dir"),
                min_size=1,
                max_size=3,
            )
        )
        return ["data", "show", *files]
    if command == "prepare":
        in_dir = pick(
            draw, path_of(world, "mr_dir", "ct_dir"), path_of(world, "empty", "missing", "garbage", "paired")
        )
        out_dir = pick(draw, st.builds(lambda: str(fresh(world))), path_of(world, "garbage"))
        table = {
            "--modality": choice("mr", "ct"),
            "--size": ints(8, 48),
            "--spacing": floats(0.5, 8),
            "--slice-axis": choice("coronal", "axial", "sagittal"),
            "--slice-spacing": floats(0.5, 8),
            "--n4": FLAG,
            "--no-n4": FLAG,
            "--overwrite": FLAG,
        }
        return ["data", "prepare", in_dir, out_dir, *options(draw, table)]
    table = {
        "--n-ct": ints(0, 1),
        "--n-mr": ints(0, 1),
        "--paired": ints(0, 1),
        "--size": ints(16, 40),
        "--slices": ints(4, 8),
        "--seed": ints(0, 99),
    }
    out_dir = pick(draw, st.builds(lambda: str(fresh(world))), path_of(world, "garbage"))
    small = ["--n-ct", "1", "--n-mr", "1", "--paired", "0", "--size", "16", "--slices", "4"]  # drawn ones win
    return ["data", "phantom", "--out", out_dir, *small, *options(draw, table)]


def test_data_commands_never_fail_internally(world, capsys):
    holds(capsys, data_args(world), 40)
