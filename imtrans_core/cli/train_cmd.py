"""``imtrans train``: options, presets and config files in; a run directory out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from ..errors import ImtransError
from ..training.config import PRESETS, resolve_config

# Options that map one-to-one onto TrainConfig fields (name, click type, help).
_FIELDS: list[tuple[str, Any, str]] = [
    ("gen", str, "Generator spec, e.g. resnet9 or resnet9:ngf=32 (see `imtrans plugins generators`)."),
    ("disc", str, "Discriminator spec (default patchgan, the 70x70 PatchGAN)."),
    ("data", str, "Dataset spec: phantom, folder:ct=DIR,mr=DIR, synthrad:root=DIR, ..."),
    ("size", int, "Slice size fed to the networks (default 256)."),
    ("batch", int, "Slices per step (default 1, the paper)."),
    ("iters", int, "Iterations in all (default 200000: half constant, then linear decay to 0)."),
    ("decay_from", int, "Iteration where the linear decay starts (default iters/2)."),
    ("lr", float, "Adam learning rate (default 2e-4)."),
    ("pool", int, "Image-pool size for the discriminator updates (default 50; 0 disables)."),
    ("seed", int, "Random seed (default 0)."),
    ("amp", click.Choice(["off", "bf16", "fp16", "auto"]), "Mixed precision (auto: bf16 where it is fast)."),
    ("device", click.Choice(["auto", "cpu", "cuda"]), "Where to train (auto: cuda if available)."),
    ("orientation", click.Choice(["coronal", "axial", "sagittal"]), "Slicing plane (default coronal)."),
    ("workers", int, "Data-loader worker processes."),
    ("log_every", int, "Log metrics every N iterations."),
    ("sample_every", int, "Write a sample image grid every N iterations."),
    ("ckpt_every", int, "Write a checkpoint every N iterations."),
    ("keep", int, "Checkpoints to keep."),
]


def _field_options(func: Any) -> Any:
    for name, kind, text in reversed(_FIELDS):
        func = click.option(f"--{name.replace('_', '-')}", name, type=kind, default=None, help=text)(func)
    return func


def given_options(ctx: click.Context, values: dict[str, Any]) -> dict[str, Any]:
    """Only the options the person typed, so presets and config files can fill the rest."""
    return {
        key: value
        for key, value in values.items()
        if value is not None and ctx.get_parameter_source(key) == ParameterSource.COMMANDLINE
    }


@click.command("train")
@_field_options
@click.option(
    "--loss",
    "loss",
    multiple=True,
    help="Loss spec, repeatable: gc:0.3 adds GC; cycle:5 re-weights; name:0 removes.",
)
@click.option(
    "--log", "log", multiple=True, help="Extra logger spec, repeatable (a JSONL log is always written)."
)
@click.option(
    "--preset",
    type=click.Choice(sorted(PRESETS)),
    default=None,
    help="paper (default) or cpu (small; says what it changes).",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path),
    default=None,
    help="JSON/TOML/YAML file with the same options.",
)
@click.option(
    "--out", type=click.Path(path_type=Path), default=None, help="Run directory (default runs/<time>)."
)
@click.option(
    "--resume", type=click.Path(path_type=Path), default=None, help="Continue the run in this directory."
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Resolve and print the configuration, build the data source and the networks, then stop.",
)
@click.pass_context
def train(
    ctx: click.Context,
    preset: str | None,
    config_file: Path | None,
    out: Path | None,
    resume: Path | None,
    dry_run: bool,
    **values: Any,
) -> None:
    """Train CycleGAN (+ GC loss) on unpaired CT and MR slices.

    `imtrans train --gen resnet9 --loss gc:0.3` is the paper's objective (Eq. 6)
    on the built-in hip phantom; `--preset cpu` is a small variant that learns
    in minutes on a laptop CPU.
    """
    cli_values = given_options(ctx, values)
    for key in ("loss", "log"):
        if ctx.get_parameter_source(key) == ParameterSource.COMMANDLINE:
            cli_values[key] = list(values[key])
    from ..training import resolve_specs
    from ..training import train as run_training

    if resume is not None:
        if cli_values or config_file or preset or out:
            raise ImtransError(
                f"--resume {resume} continues the run as it was configured; drop the other options"
            )
        result = run_training(None, resume=resume)
    else:
        config = resolve_config(cli_values, config_file, preset)
        resolved = resolve_specs(config)
        changed = ", ".join(f"{k}={v}" for k, v in PRESETS[config.preset].items())
        if changed:
            click.echo(f"preset {config.preset} changes: {changed}")
        click.echo("configuration: " + "  ".join(f"{k}={v}" for k, v in resolved.items() if v))
        if dry_run:
            _describe_networks(config)
            return
        result = run_training(config, out=out)
    if result.status == "interrupted":
        click.echo(
            f"interrupted at iteration {result.step}; checkpoint saved. Continue with: "
            f"imtrans train --resume {result.run_dir}",
            err=True,
        )
        ctx.exit(130)
    click.echo(f"finished {result.step} iterations; run directory: {result.run_dir}")


def _describe_networks(config: Any) -> None:
    """Build the data source and one generator and discriminator: the specs really build."""
    import imtrans_core as ic

    source = ic.DATASETS.build(config.data)
    click.echo(
        f"data: {len(source.ct)} CT and {len(source.mr)} MR volumes, {len(source.paired)} paired subjects"
    )
    for role, registry, spec in (
        ("G_CT, G_MR", ic.GENERATORS, config.gen),
        ("D_CT, D_MR", ic.DISCRIMINATORS, config.disc),
    ):
        net = registry.build(spec)
        count = sum(p.numel() for p in net.parameters())
        click.echo(f"{role}: {type(net).__name__}, {count:,} parameters each")
