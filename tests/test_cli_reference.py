"""docs/cli.md is generated from the click commands and must match them."""

from __future__ import annotations

from pathlib import Path

from imtrans_core.cli.reference import builtin_cli, reference

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def test_cli_reference_is_current():
    expected = reference(builtin_cli())
    assert DOC.read_text() == expected, (
        "docs/cli.md is stale: run  python -m imtrans_core.cli.reference > docs/cli.md"
    )


def test_reference_covers_every_command():
    text = DOC.read_text()
    for command in ("imtrans train", "imtrans plugins", "imtrans data show", "imtrans data phantom"):
        assert f"`{command}`" in text
