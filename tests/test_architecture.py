"""The core's folders import only what docs/architecture.md says they may, and never a plugin."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[1] / "imtrans_core"
TOP = {
    "__init__",
    "errors",
    "registry",
    "spec",
    "declared",
    "plugins",
    "hookspecs",
    "defaults",
    "choices",
    "progress",
}
# folder -> the other folders it may import (besides the top-level modules above)
MAY_IMPORT = {
    "data": set(),
    "training": {"data"},
    "evaluation": {"data"},
    "inference": {"data", "training", "onnx"},
    "onnx": {"data", "inference"},
}
PLUGINS = ("imtrans_cyclegan", "imtrans_hip", "imtrans_metrics", "imtrans_loggers", "imtrans_segment")


def imported(path: Path) -> set[str]:
    """Absolute names of the modules ``path`` imports, at the top or inside functions."""
    package = ["imtrans_core", *path.relative_to(CORE).parts[:-1]]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            names |= {f"{module}.{a.name}" for a in node.names} if not node.module else {module}
    return names


@pytest.mark.parametrize("folder", sorted(MAY_IMPORT))
def test_each_folder_imports_what_the_architecture_allows(folder):
    allowed = TOP | MAY_IMPORT[folder] | {folder}
    for path in sorted((CORE / folder).glob("*.py")):
        for name in imported(path):
            parts = name.split(".")
            assert parts[0] not in PLUGINS, f"{path.name} imports the plugin module {name}"
            if parts[0] == "imtrans_core" and len(parts) > 1:
                assert parts[1] in allowed, (
                    f"{folder}/{path.name} imports {name}; {folder} may import {allowed}"
                )


def test_the_top_level_imports_no_folder_except_through_demo():
    for path in sorted(CORE.glob("*.py")):
        if path.stem in {"demo", "__main__"}:
            continue
        folders = {n.split(".")[1] for n in imported(path) if n.startswith("imtrans_core.") and "." in n}
        assert folders <= TOP, f"{path.name} imports {folders - TOP}"
