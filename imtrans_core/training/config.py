"""The training configuration: the paper's numbers as defaults, presets beside them.

Precedence, lowest first: defaults (the paper) < ``--preset`` < ``--config FILE``
< options given on the command line. The resolved configuration (every spec with
its defaults filled in) is what a run directory stores and what ``--resume``
reads back.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import ImtransError


@dataclass
class TrainConfig:
    """Every knob of a CycleGAN(+GC) run. Defaults reproduce Hiasa et al. 2018, §2.2."""

    gen: str = "resnet9"  # 9 residual blocks (the paper, after Johnson et al.)
    disc: str = "patchgan"  # 70x70 PatchGAN
    loss: list[str] = field(default_factory=list)  # added to / replacing lsgan:1, cycle:3
    data: str = "phantom"
    size: int = 256  # slices are cropped / padded to size x size
    batch: int = 1
    iters: int = 200_000  # 1e5 at a fixed rate, then 1e5 decaying linearly to 0
    decay_from: int | None = None  # None: iters // 2
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    pool: int = 50  # image pool for the discriminator updates (Shrivastava et al.)
    seed: int = 0
    amp: str = "off"  # off | bf16 | fp16 | auto
    device: str = "auto"  # auto | cpu | cuda
    orientation: str = "coronal"
    workers: int = 1  # data-loader worker processes
    log: list[str] = field(default_factory=list)  # logger specs besides the JSONL log
    log_every: int = 50
    sample_every: int = 1000
    ckpt_every: int = 5000
    keep: int = 3  # checkpoints kept
    preset: str = "paper"

    @property
    def turn(self) -> int:
        """Iteration at which the linear decay starts."""
        return self.iters // 2 if self.decay_from is None else self.decay_from

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ImtransError(
                f"{source}: unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        return cls(**data)


# What each preset changes, and why. The paper's preset changes nothing.
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "cpu": {
        # Learns visibly in minutes on 2 CPU cores: quarter-size networks on
        # 128 x 128 slices of a small phantom, bf16 autocast, a short schedule.
        "gen": "resnet9:ngf=32,n_blocks=6",
        "disc": "patchgan:ndf=32",
        "data": "phantom:n_ct=12,n_mr=12,n_paired=2,size=128",
        "size": 128,
        "iters": 1200,
        "amp": "auto",
        "log_every": 20,
        "sample_every": 200,
        "ckpt_every": 200,
    },
}


def read_config_file(path: Path) -> dict[str, Any]:
    """Options from a JSON, TOML or YAML file (the same names as the command line)."""
    if not path.is_file():
        raise ImtransError(f"--config {path}: no such file")
    text = path.read_text()
    suffix = path.suffix.lower()
    try:
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
        else:
            raise ImtransError(f"--config {path}: use a .json, .toml, .yaml or .yml file")
    except ImtransError:
        raise
    except Exception as err:
        raise ImtransError(f"--config {path}: cannot parse it: {' '.join(str(err).split())}") from None
    if not isinstance(data, dict):
        raise ImtransError(f"--config {path}: expected a mapping of option names to values")
    return {key.replace("-", "_"): value for key, value in data.items()}


def resolve_config(cli_values: dict[str, Any], config_file: Path | None, preset: str | None) -> TrainConfig:
    """Merge defaults < preset < config file < command line into one TrainConfig.

    The preset comes from the command line, else from the config file, else
    ``paper``.
    """
    from_file = read_config_file(config_file) if config_file is not None else {}
    preset = preset or from_file.pop("preset", None) or "paper"
    if preset not in PRESETS:
        raise ImtransError(f"--preset {preset}: unknown; choose one of {', '.join(PRESETS)}")
    merged: dict[str, Any] = {**PRESETS[preset], **from_file, **cli_values, "preset": preset}
    for key in ("loss", "log"):
        if isinstance(merged.get(key), str):
            merged[key] = [merged[key]]
    return TrainConfig.from_dict(merged, source=str(config_file or "options"))
