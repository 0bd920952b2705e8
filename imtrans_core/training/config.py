"""The training configuration: the paper's numbers as defaults, presets beside them.

Every option has a type, an accepted range and a help text, declared once on
its field below; the command line (``imtrans train --help``), config files and
Python callers all go through the same checks, so a bad value is one line
naming the option and what it accepts, before any data is read or any folder
is made.

Precedence, lowest first: defaults (the paper) < ``--preset`` < ``--config FILE``
< options given on the command line. A run directory's ``config.json`` stores
the options and, under ``resolved``, every spec with its defaults filled in;
``--resume`` reads it back. The options marked ``on_resume`` may change when a
run is resumed (how long, where, in which precision, how it is watched); the
others define what is trained.
"""

from __future__ import annotations

import difflib
import json
import math
import warnings
from dataclasses import MISSING, Field, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .. import defaults
from ..choices import AMP_MODES, COMPILE_MODES, DEVICES, ORIENTATIONS, PAIRINGS
from ..errors import ImtransError, ImtransWarning

MAX_SEED = 2**32 - 1  # numpy's seeds are 32-bit
MAX_STEPS = 10**9  # iterations and intervals: beyond any run, below any overflow


def option(
    default: Any,
    help: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    choices: tuple[str, ...] = (),
    on_resume: bool = False,
    cli: bool = True,
) -> Any:
    """A config field with its command-line help and its accepted values.

    ``low``/``high`` bound numbers (``low_open``/``high_open``: strictly);
    ``choices`` lists the accepted strings; ``on_resume`` marks options that
    ``--resume`` may change; ``cli=False`` keeps a field off the generated options.
    """
    meta = {
        "help": help,
        "low": low,
        "high": high,
        "low_open": low_open,
        "high_open": high_open,
        "choices": choices,
        "on_resume": on_resume,
        "cli": cli,
    }
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    """Every option of ``imtrans train``. Defaults reproduce Hiasa et al. 2018, §2.2 (cyclegan + GC).

    The engine's options apply to every model; those only some models read (``MODEL_OPTIONS``:
    networks, losses, the image pool, ...) are refused for a model that does not declare them.
    """

    model: str = option(
        defaults.MODEL,
        "What to train: cyclegan (default), or a plugin's model (see `imtrans plugins models`).",
    )
    gen: str = option(
        defaults.GENERATOR,
        "Generator spec, e.g. resnet9 or resnet9:ngf=32 (see `imtrans plugins generators`).",
    )
    disc: str = option(defaults.DISCRIMINATOR, "Discriminator spec (default patchgan, the 70x70 PatchGAN).")
    loss: list[str] = option(
        [],
        "Loss spec, repeatable, added to the model's own: gc:0.3 adds GC; cycle:5 re-weights; name:0 removes.",
        cli=False,
    )
    data: str = option(
        defaults.DATASET, "Dataset spec: phantom, folder:ct=DIR,mr=DIR, synthrad:root=DIR, ..."
    )
    size: int = option(
        256,
        "Slice size fed to the networks (default 256; the smallest the networks accept is checked).",
        low=2,
        high=4096,
    )
    batch: int = option(1, "Slices per step (default 1, the paper).", low=1, high=4096)
    iters: int = option(
        200_000,
        "Iterations in all (default 200000: half constant, then linear decay to 0).",
        low=1,
        high=MAX_STEPS,
        on_resume=True,
    )
    decay_from: int | None = option(
        None,
        "Iteration where the linear decay starts (default iters/2).",
        low=0,
        high=MAX_STEPS,
        on_resume=True,
    )
    lr: float = option(2e-4, "Adam learning rate (default 2e-4).", low=0, low_open=True, high=1)
    beta1: float = option(0.5, "Adam beta1 (default 0.5, the paper).", low=0, high=1, high_open=True)
    beta2: float = option(0.999, "Adam beta2 (default 0.999).", low=0, high=1, high_open=True)
    pool: int = option(
        50, "Image-pool size for the discriminator updates (default 50; 0 disables).", low=0, high=100_000
    )
    seed: int = option(0, "Random seed (default 0).", low=0, high=MAX_SEED)
    init_seed: int | None = option(
        None,
        "Seed of the networks' initial weights alone (default: --seed); the data order keeps --seed.",
        low=0,
        high=MAX_SEED,
    )
    ema: float = option(
        0.0,
        "Decay of an exponential moving average of the generators' weights, which translation and export "
        "then use (e.g. 0.995: about the last 200 iterations; default 0: off, the paper's).",
        low=0,
        high=1,
        high_open=True,
    )
    amp: str = option(
        "off", "Mixed precision (auto: bf16 where it is fast).", choices=AMP_MODES, on_resume=True
    )
    device: str = option("auto", "Where to train (auto: cuda if available).", choices=DEVICES, on_resume=True)
    compile: str = option(
        "off",
        "torch.compile the networks for training: a mode (default suits CPUs); compiling takes tens of "
        "seconds once per process, then each iteration runs faster.",
        choices=COMPILE_MODES,
        on_resume=True,
    )
    orientation: str = option("coronal", "Slicing plane (default coronal).", choices=ORIENTATIONS)
    pairing: str = option(
        "random",
        "How the unpaired CT and MR slices of a step are drawn: random (the paper's, independent) or "
        "position (the CT slice at the MR slice's relative depth in its stack, other subject).",
        choices=PAIRINGS,
    )
    context: int = option(
        0,
        "Adjacent slices on each side fed to the networks with each slice (2.5-D): 1 gives stacks "
        "of 3 as channels, in and out (default 0: single slices, the paper's).",
        low=0,
        high=8,
    )
    workers: int = option(
        1, "Data-loader worker processes (0: load in the training process).", low=0, high=256, on_resume=True
    )
    log: list[str] = option(
        [], "Extra logger spec, repeatable (a JSONL log is always written).", on_resume=True, cli=False
    )
    log_every: int = option(50, "Log metrics every N iterations.", low=1, high=MAX_STEPS, on_resume=True)
    sample_every: int = option(
        1000, "Write a sample image grid every N iterations.", low=1, high=MAX_STEPS, on_resume=True
    )
    ckpt_every: int = option(
        5000, "Write a checkpoint every N iterations.", low=1, high=MAX_STEPS, on_resume=True
    )
    keep: int = option(
        3, "Checkpoints to keep (the newest; at least 1).", low=1, high=MAX_STEPS, on_resume=True
    )
    preset: str = option("paper", "The preset the run started from.", cli=False)

    def __post_init__(self) -> None:
        for spec in fields(self):
            setattr(self, spec.name, check_value(spec, getattr(self, spec.name), f"--{flag(spec.name)}"))
        if self.decay_from is not None and self.decay_from > self.iters:
            raise ImtransError(
                f"--decay-from {self.decay_from} is past --iters {self.iters}: the decay must start "
                "within the run (0 <= decay_from <= iters)"
            )

    @property
    def turn(self) -> int:
        """Iteration at which the linear decay starts."""
        return self.iters // 2 if self.decay_from is None else self.decay_from

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> TrainConfig:
        """A config from plain values (a file, a run's config.json); errors name ``source`` and the key."""
        return cls(**check_values(data, source))


def flag(name: str) -> str:
    """The command-line spelling of a field: ``log_every`` -> ``log-every``."""
    return name.replace("_", "-")


FIELDS: dict[str, Field] = {spec.name: spec for spec in fields(TrainConfig)}


def default_of(name: str) -> Any:
    """The default value of option ``name`` (a fresh list for a list option)."""
    spec = FIELDS[name]
    return spec.default_factory() if spec.default is MISSING else spec.default


def check_values(data: dict[str, Any], source: str | None) -> dict[str, Any]:
    """Each value of ``data`` checked and typed; an unknown key is an error with a suggestion.

    Errors name ``source: key`` (a file), or the ``--option`` when ``source`` is None.
    """
    checked = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name not in FIELDS:
            close = difflib.get_close_matches(name, list(FIELDS), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else ";"
            raise ImtransError(
                f"{source or 'options'}: unknown option '{key}'{hint} known: {', '.join(FIELDS)}"
            )
        where = f"--{flag(name)}" if source is None else f"{source}: {name} ="
        checked[name] = check_value(FIELDS[name], value, where)
    return checked


def check_value(spec: Field, value: Any, where: str) -> Any:
    """``value`` typed as the field asks and inside its range; ``where`` starts the error message."""
    kind = spec.type if isinstance(spec.type, str) else getattr(spec.type, "__name__", str(spec.type))
    if value is None and "None" in kind:
        return None
    try:
        if kind.startswith("list"):
            return _string_list(value)
        typed = _typed(value, kind)
    except ValueError as err:
        raise ImtransError(f"{where} {value!r}: {err}") from err
    meta = spec.metadata
    if meta["choices"] and typed not in meta["choices"]:
        raise ImtransError(f"{where} {typed}: choose one of {', '.join(meta['choices'])}")
    if not _in_range(typed, meta):
        raise ImtransError(f"{where} {typed}: must be {describe_range(spec)}")
    return typed


def _typed(value: Any, kind: str) -> Any:
    """Turn a value from a file or the command line into ``int``, ``float`` or ``str``.

    YAML reads ``2e-4`` as a string and JSON writes ``1e5`` as a float, so
    numbers written either way are accepted; ``true`` is never a number.
    """
    if isinstance(value, bool) and not kind.startswith("bool"):
        raise ValueError(f"expected {_WORDS.get(kind.split(' ')[0], kind)}, not a true/false value")
    if kind.startswith("int"):
        number = _number(value, "an integer")
        if not number.is_integer():
            raise ValueError("expected an integer")
        return int(number)
    if kind.startswith("float"):
        return _number(value, "a number")
    if kind.startswith("str"):
        if not isinstance(value, str):
            raise ValueError("expected a string")
        return value
    raise ValueError(f"unsupported option type {kind}")  # a new field of a new type: add it here


_WORDS = {"int": "an integer", "float": "a number", "str": "a string"}


def _number(value: Any, what: str) -> float:
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip().replace("_", ""))
        except ValueError:
            raise ValueError(f"expected {what}") from None
    else:
        raise ValueError(f"expected {what}")
    if not math.isfinite(number):
        raise ValueError("must be a finite number")
    return number


def _string_list(value: Any) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(item, str) for item in items):
        raise ValueError("expected a spec string or a list of them")
    return list(items)


def _in_range(value: Any, meta: Any) -> bool:
    if not isinstance(value, (int, float)):
        return True
    low, high = meta["low"], meta["high"]
    if low is not None and (value < low or (meta["low_open"] and value == low)):
        return False
    return high is None or value < high or (value == high and not meta["high_open"])


def describe_range(spec: Field) -> str:
    """``>= 1``, ``> 0 and <= 1``, ``one of off, bf16, ...``: what ``--help`` and errors say."""
    meta = spec.metadata
    if meta["choices"]:
        return "one of " + ", ".join(meta["choices"])
    parts = []
    if meta["low"] is not None:
        parts.append(f"{'>' if meta['low_open'] else '>='} {_plain(meta['low'])}")
    if meta["high"] is not None:
        parts.append(f"{'<' if meta['high_open'] else '<='} {_plain(meta['high'])}")
    return " and ".join(parts)


def _plain(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else f"{number:g}"


# The scale of the presets for 2 CPU cores (plugins build theirs on it, ``imtrans_core.api.SMALL_SCALE``):
# learns visibly in minutes with quarter-size networks on 128 x 128 slices of a small phantom,
# autocast where it is fast.
SMALL_SCALE: dict[str, Any] = {
    "gen": f"{defaults.GENERATOR}:ngf=32,n_blocks=6",
    "disc": f"{defaults.DISCRIMINATOR}:ndf=32",
    "data": f"{defaults.DATASET}:n_ct=12,n_mr=12,n_paired=2,size=128",
    "size": 128,
    "iters": 1200,
    "amp": "auto",
    "log_every": 20,
    "sample_every": 200,
    "ckpt_every": 200,
}


def preset_names() -> list[str]:
    """The presets the plugins registered (``imtrans plugins presets``), then their old names."""
    import imtrans_core as ic

    return [*ic.PRESETS.names(), *ic.PRESETS.aliases()]


def preset_options(name: str) -> dict[str, Any]:
    """The option values preset ``name`` sets, checked as a config file's are (a plugin's typo answers here)."""
    import imtrans_core as ic

    if name not in ic.PRESETS:
        if name == "paper":  # the paper's settings are the defaults themselves
            return {}
        raise ImtransError(f"--preset {name}: {ic.PRESETS.unknown(name)}")
    values, source = ic.PRESETS.build(name), f"preset {name} of plugin {ic.PRESETS.info(name).plugin}"
    if not isinstance(values, dict):
        raise ImtransError(f"{source}: returned {type(values).__name__}, not option values")
    return check_values(values, source)


def read_config_file(path: Path) -> dict[str, Any]:
    """Options from a JSON, TOML or YAML file (the same names as the command line)."""
    if not path.is_file():
        raise ImtransError(f"--config {path}: no such file")
    suffix = path.suffix.lower()
    if suffix not in (".json", ".toml", ".yaml", ".yml"):
        raise ImtransError(f"--config {path}: use a .json, .toml, .yaml or .yml file")
    try:
        text = path.read_text()
        if suffix == ".json":
            data = json.loads(text)
        elif suffix == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib
            data = tomllib.loads(text)
        elif suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
    except Exception as err:  # any parser's error, or a file that is not UTF-8 text
        raise ImtransError(f"--config {path}: cannot parse it: {' '.join(str(err).split())}") from err
    if not isinstance(data, dict):
        raise ImtransError(f"--config {path}: expected a mapping of option names to values")
    data.pop("resolved", None)  # a run's config.json repeats a run: its resolved specs are derived,
    data.pop("contract", None)  # its input contract measured from the data
    return check_values(data, str(path))


def resolve_config(cli_values: dict[str, Any], config_file: Path | None, preset: str | None) -> TrainConfig:
    """Merge defaults < preset < config file < command line into one TrainConfig.

    The preset comes from the command line, else from the config file, else
    ``paper``. Loss terms add up in that order rather than replace each other, as
    repeated ``--loss`` options do: ``--preset unpaired --loss gc:0.3`` replaces
    the preset's GC term and keeps its prior, ``--loss prior:0`` drops the prior.
    """
    import imtrans_core as ic

    from_file = read_config_file(config_file) if config_file is not None else {}
    preset = preset or from_file.pop("preset", None) or "paper"
    renamed = ic.PRESETS.renamed(preset)
    if renamed is not None:
        warnings.warn(
            f"--preset {preset} is an old name: it is --preset {renamed} now", ImtransWarning, stacklevel=2
        )
        preset = renamed
    layers = (preset_options(preset), from_file, check_values(cli_values, None))
    merged: dict[str, Any] = {k: v for layer in layers for k, v in layer.items()}
    # loss terms add up across the layers; a later term of a name replaces an earlier one
    merged["loss"] = [spec for layer in layers for spec in layer.get("loss", [])]
    return TrainConfig(**{**merged, "preset": preset})


def check_specs(config: TrainConfig) -> None:
    """Each spec checked against its registry: the name registered, every parameter known and typed.

    Torch-free: a factory registered by reference is read from its source
    (:mod:`imtrans_core.declared`), so a mistyped ``--gen resnet9:nfg=32``
    answers at once. What needs the networks built (slice size, losses that
    leave no adversarial term) is :func:`~.validate.check`'s.
    """
    import imtrans_core as ic

    for registry, specs in (
        (ic.MODELS, [config.model]),
        (ic.GENERATORS, [config.gen]),
        (ic.DISCRIMINATORS, [config.disc]),
        (ic.DATASETS, [config.data]),
        (ic.LOSSES, config.loss),
        (ic.LOGGERS, config.log),
    ):
        for spec in specs:
            registry.resolve(spec)


def resume_config(stored: TrainConfig, changes: dict[str, Any]) -> TrainConfig:
    """The stored config with ``changes`` applied, where resuming allows them.

    What is trained (networks, losses, data, slice size, optimiser, seed) is
    fixed once a run has started: changing it halfway would make a run that no
    single configuration describes. How long it runs, where, in which precision
    and how it is logged may change; the new values are what ``config.json``
    then records.
    """
    changes = check_values(changes, None)
    for name, value in changes.items():
        if value != getattr(stored, name) and not FIELDS[name].metadata["on_resume"]:
            allowed = ", ".join(f"--{flag(n)}" for n, f in FIELDS.items() if f.metadata["on_resume"])
            raise ImtransError(
                f"--{flag(name)} {_shown(value)}: a resumed run keeps what it trains "
                f"({name}={_shown(getattr(stored, name))}); resuming may change only {allowed}; "
                f"start a new run with --out to change --{flag(name)}"
            )
    return replace(stored, **changes)


def _shown(value: Any) -> str:
    return " ".join(value) if isinstance(value, list) else str(value)
