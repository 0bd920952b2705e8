"""``imtrans train``: options, presets and config files in; a run directory out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from ..errors import ImtransError
from ..training.config import (
    FIELDS,
    check_specs,
    describe_range,
    flag,
    preset_names,
    preset_options,
    read_config_file,
    resolve_config,
)
from .types import PATH, LazyChoice

_CLICK_TYPES = {"int": int, "float": float, "str": str}


def _field_options(func: Any) -> Any:
    """One option per config field, typed, with its range in the help (the config is the one source)."""
    for name, spec in reversed(FIELDS.items()):
        meta = spec.metadata
        if not meta["cli"]:
            continue
        kind = click.Choice(meta["choices"]) if meta["choices"] else _CLICK_TYPES[str(spec.type).split()[0]]
        accepted = "" if meta["choices"] else describe_range(spec)
        text = meta["help"] + (f" [{accepted}]" if accepted else "")
        text += " May change on --resume." if meta["on_resume"] else ""
        func = click.option(f"--{flag(name)}", name, type=kind, default=None, help=text)(func)
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
    help=FIELDS["loss"].metadata["help"],
)
@click.option("--log", "log", multiple=True, help=FIELDS["log"].metadata["help"] + " May change on --resume.")
@click.option(
    "--preset",
    type=LazyChoice(preset_names),
    default=None,
    help="Option values a plugin registered for the data you hold: `imtrans plugins presets` says what "
    "each is for, docs/quality.md which to pick. paper (default) leaves every option at its default. "
    "A preset says what it changes; an old name still works and says what it became.",
)
@click.option(
    "--config",
    "config_file",
    type=PATH,
    default=None,
    help="JSON/TOML/YAML file with the same options.",
)
@click.option("--out", type=PATH, default=None, help="Run directory (default runs/<time>).")
@click.option(
    "--resume",
    type=PATH,
    default=None,
    help="Continue the run in this directory (a finished one too, given a larger --iters).",
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
    """Train a translation model: CycleGAN + GC (the default), or any --model registered.

    `imtrans train --gen resnet9 --loss gc:0.3` is the paper's objective (Eq. 6)
    on the built-in hip phantom; `--preset unpaired`, `paired` or `misaligned`
    trains the best measured recipe for such data in minutes on a laptop CPU.
    """
    cli_values = given_options(ctx, values)
    for key in ("loss", "log"):
        if ctx.get_parameter_source(key) == ParameterSource.COMMANDLINE:
            cli_values[key] = list(values[key])
    if resume is not None:
        changes = _resume_changes(resume, preset, out, config_file, cli_values)
        from ..training.runner import open_run, train  # torch: only once the options passed their checks

        if dry_run:
            _describe(open_run(resume, changes)[1])
            return
        result = train(None, resume=resume, changes=changes)
    else:
        config = resolve_config(cli_values, config_file, preset)
        check_specs(config)  # a spec error answers before torch is imported
        changed = ", ".join(f"{k}={v}" for k, v in preset_options(config.preset).items())
        if changed:
            click.echo(f"preset {config.preset} changes: {changed}")
        if dry_run:
            _describe(config)
            return
        from ..training.runner import train

        result = train(config, out=out)
    if result.status == "interrupted":
        click.echo(
            f"interrupted at iteration {result.step}; checkpoint saved. Continue with: "
            f"imtrans train --resume {result.run_dir}",
            err=True,
        )
        ctx.exit(130)
    click.echo(f"finished {result.step} iterations; run directory: {result.run_dir}")


def _resume_changes(
    resume: Path, preset: str | None, out: Path | None, config_file: Path | None, cli_values: dict[str, Any]
) -> dict[str, Any]:
    """What ``--resume`` is asked to change: the config file's values, then the options given."""
    if preset or out:
        used = "--preset" if preset else "--out"
        raise ImtransError(f"{used} applies to a new run; --resume {resume} continues the run where it is")
    return {**(read_config_file(config_file) if config_file else {}), **cli_values}


def _describe(config: Any) -> None:
    """Check the configuration, print it resolved, then build the data source and each of the model's networks."""
    import imtrans_core as ic

    from ..training.validate import build_model, check, describe_resolved

    click.echo("configuration: " + describe_resolved(check(config)))
    source = ic.DATASETS.build(config.data)
    click.echo(
        f"data: {len(source.ct)} CT and {len(source.mr)} MR volumes, {len(source.paired)} paired subjects"
    )
    model = build_model(config.model)
    click.echo(f"model: {model.name} ({type(model).__name__})")
    for name, network in model.resolve_networks(config).items():
        net = network.build()
        count = sum(p.numel() for p in net.parameters())
        role = model.roles.get(name)
        click.echo(
            f"  {name}" + (f" ({role})" if role else "") + f": {type(net).__name__}, {count:,} parameters"
        )
