"""The ``imtrans`` command: a click group whose commands come from the core and from plugins.

Errors a person causes (a bad option, spec or file) print one line and exit with
status 2; ``--debug`` (or ``IMTRANS_DEBUG=1``) shows the traceback instead.
Anything else is reported as an internal error with exit status 1.

Imports sit at the top of a module, with two exceptions, both measured: each
command module imports its machinery inside the command, so that ``imtrans
--help`` answers in 0.15-0.2 s (importing torch alone takes 1.3 s on two cores);
and the modules an exported model runs through (``onnx.choose``, ``inference``)
import torch only inside the torch paths, so that translating an ``.onnx`` file
never loads it. ``tests/test_cli.py`` and ``tests/test_architecture.py`` hold both.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

import click
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

import imtrans_core as ic

from ..errors import ImtransError
from .bench_cmd import bench
from .data_cmds import data
from .demo_cmd import demo
from .evaluate_cmd import evaluate
from .export_cmd import export
from .plugins_cmd import plugins_cmd
from .register_cmd import register
from .train_cmd import train
from .translate_cmd import translate
from .warnings_shown import shown_warnings

err_console = Console(stderr=True, highlight=False, soft_wrap=True)


BUILTIN_COMMANDS = (plugins_cmd, data, train, translate, evaluate, register, export, demo, bench)


def build_cli() -> click.Group:
    """The root group with the built-in commands plus those plugins add (``imtrans_cli``)."""

    @click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
    @click.version_option(ic.__version__, "--version", prog_name="imtrans", message="%(prog)s %(version)s")
    @click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
    def cli(debug: bool) -> None:
        """imtrans: unpaired cross-modality medical image translation (MR <-> CT).

        CycleGAN with the gradient-consistency loss (Hiasa et al. 2018), built
        from plugins. `imtrans plugins` shows what is installed.
        """

    for command in BUILTIN_COMMANDS:
        cli.add_command(command)
    ic.plugins.call_each("imtrans_cli", cli=cli)
    return cli


def _debug_wanted(args: Sequence[str]) -> bool:
    return "--debug" in args or os.environ.get("IMTRANS_DEBUG", "") not in ("", "0")


def _fail(message: str, code: int) -> int:
    err_console.print(f"[bold red]error:[/] {escape(message)}", markup=True, highlight=False)
    return code


def _setup_logging(debug: bool) -> None:
    logger = logging.getLogger("imtrans")
    if not logger.handlers:
        handler = RichHandler(console=err_console, show_time=False, show_path=False, markup=False)
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(logging.DEBUG if debug else logging.INFO)


def run(args: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit status (what tests call)."""
    args = list(sys.argv[1:] if args is None else args)
    debug = _debug_wanted(args)
    saved = os.environ.get("IMTRANS_DEBUG")
    if debug:  # plugins and engines look at the variable; restored afterwards
        os.environ["IMTRANS_DEBUG"] = "1"
    _setup_logging(debug)
    try:
        return _invoke(args, debug)
    finally:
        if saved is None:
            os.environ.pop("IMTRANS_DEBUG", None)
        else:
            os.environ["IMTRANS_DEBUG"] = saved


def _invoke(args: list[str], debug: bool) -> int:
    """Run the command group, turning every way it can end into an exit status."""
    try:
        with shown_warnings(err_console):  # every command; some pass their progress bar's console instead
            result = build_cli().main(args=args, prog_name="imtrans", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.Abort:
        return _fail("aborted", 130)
    except click.UsageError as exc:
        where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        return _fail(exc.format_message() + where, 2)
    except click.ClickException as exc:
        return _fail(exc.format_message(), exc.exit_code)
    except ImtransError as exc:
        if debug:
            raise
        return _fail(str(exc), getattr(exc, "exit_code", 2))
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Exception as exc:
        if debug:
            raise
        text = " ".join(str(exc).split())
        return _fail(f"internal error: {type(exc).__name__}: {text} (run with --debug for the traceback)", 1)


def main() -> None:
    """Console-script entry point."""
    sys.exit(run())
