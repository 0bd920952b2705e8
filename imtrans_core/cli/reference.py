"""The CLI reference (docs/cli.md), generated from the click commands themselves.

``python -m imtrans_core.cli.reference > docs/cli.md`` rewrites it; a test fails
when the committed file and the commands disagree, so the reference cannot rot.
"""

from __future__ import annotations

import click

HEADER = """# CLI reference

Generated from the commands by `python -m imtrans_core.cli.reference > docs/cli.md`;
`tests/test_cli_reference.py` keeps it current. Commands added by third-party plugins are not
listed here: `imtrans --help` shows everything installed.
"""


def _section(command: click.Command, path: str, depth: int) -> list[str]:
    ctx = click.Context(
        command,
        info_name=path.split()[-1],
        terminal_width=100,
        max_content_width=100,
        help_option_names=["-h", "--help"],
    )
    lines = [
        f"{'#' * depth} `{path}`",
        "",
        "```text",
        command.get_help(ctx).replace(f"Usage: {path.split()[-1]}", f"Usage: {path}", 1),
        "```",
        "",
    ]
    if isinstance(command, click.Group):
        for name in sorted(command.commands):
            lines += _section(command.commands[name], f"{path} {name}", min(depth + 1, 4))
    return lines


def reference(cli: click.Group) -> str:
    """Markdown with the help text of every command, depth first, sorted by name."""
    return "\n".join([HEADER, *_section(cli, "imtrans", 2)]).rstrip() + "\n"


def builtin_cli() -> click.Group:
    """The root group with the commands imtrans itself ships (its own plugins included)."""
    from . import build_cli

    return build_cli()


if __name__ == "__main__":
    print(reference(builtin_cli()), end="")
