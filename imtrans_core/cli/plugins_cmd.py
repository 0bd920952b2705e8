"""``imtrans plugins``: everything registered, where it came from, how to configure it."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table

import imtrans_core as ic

from ..errors import ImtransError


def _kinds(kind: str | None) -> list[ic.Registry]:
    if kind is None:
        return list(ic.REGISTRIES.values())
    for registry in ic.REGISTRIES.values():
        if kind in (registry.kind, registry.plural):
            return [registry]
    known = ", ".join(r.plural for r in ic.REGISTRIES.values())
    raise ImtransError(f"unknown kind '{kind}'; choose one of: {known}")


@click.command("plugins")
@click.argument("kind", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON instead of tables.")
def plugins_cmd(kind: str | None, as_json: bool) -> None:
    """Show registered components (optionally of one KIND) and the plugins that provide them.

    KIND is one of generators, discriminators, losses, datasets, metrics,
    loggers. Each row shows the spec parameters with their defaults: write
    `name:key=value,...` to set them, e.g. `resnet9:ngf=32,n_blocks=6`.
    """
    registries = _kinds(kind)
    infos = {r.plural: [r.info(name) for name in r.names()] for r in registries}
    system = ic.plugins
    if as_json:
        payload = {
            "registries": {k: [i.as_dict() for i in v] for k, v in infos.items()},
            "plugins": [vars(s) for s in system.sources.values()],
            "failures": [vars(f) for f in system.failures],
        }
        click.echo(json.dumps(payload, indent=2, default=str))
        return
    console = Console()
    for plural, rows in infos.items():
        table = Table(title=plural, title_justify="left", show_lines=False, expand=False)
        table.add_column("name", style="bold cyan", no_wrap=True)
        table.add_column("parameters (defaults)")
        table.add_column("what it is")
        table.add_column("plugin", style="dim", no_wrap=True)
        for info in rows:
            table.add_row(info.name, info.signature, info.summary, f"{info.plugin} {info.version}".strip())
        if not rows:
            table.add_row("-", "", "nothing registered", "")
        console.print(table)
    if kind is None:
        loaded = ", ".join(f"{s.name} ({s.dist} {s.version})" for s in system.sources.values())
        console.print(f"[bold]plugins loaded:[/] {loaded or 'none'}")
    for failure in system.failures:
        console.print(f"[yellow]skipped:[/] {failure.message()}")
