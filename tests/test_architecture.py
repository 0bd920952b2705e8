"""The core's folders import only what docs/architecture.md says they may, and never a plugin."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[1] / "imtrans_core"
TOP = {
    "__init__",
    "api",
    "errors",
    "registry",
    "spec",
    "declared",
    "plugins",
    "hookspecs",
    "defaults",
    "choices",
    "progress",
    "cache",
    "cpu",
    "vml",
}
# folder -> the other folders it may import (besides the top-level modules above)
MAY_IMPORT = {
    "data": set(),
    "training": {"data"},
    "evaluation": {"data"},
    "inference": {"data", "training"},
    "onnx": {"data", "inference"},
}
PLUGINS = tuple(path.name for path in (CORE.parent / "plugins").glob("imtrans_*"))
REPO = CORE.parent
STUDIES = {path.stem for path in (REPO / "studies").glob("*.py")}


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


def test_no_two_folders_import_each_other():
    edges = {
        (folder, name.split(".")[1])
        for folder in MAY_IMPORT
        for path in (CORE / folder).glob("*.py")
        for name in imported(path)
        if name.startswith("imtrans_core.") and name.split(".")[1] in MAY_IMPORT
    }
    cycles = sorted((a, b) for a, b in edges if a < b and (b, a) in edges)
    assert not cycles, f"folders that import each other: {cycles}"


@pytest.mark.parametrize("tree", ["plugins", "benchmarks", "imtrans_core", "tests"])
def test_nothing_in_the_product_imports_a_study(tree):
    assert STUDIES, "studies/ holds no script: this test would check nothing"
    for path in sorted((REPO / tree).rglob("*.py")):
        if "build" in path.parts:
            continue
        tree_ = ast.parse(path.read_text())
        names = {a.name for n in ast.walk(tree_) if isinstance(n, ast.Import) for a in n.names}
        names |= {
            n.module for n in ast.walk(tree_) if isinstance(n, ast.ImportFrom) and n.module and not n.level
        }
        loaded = {
            n.args[0].value
            for n in ast.walk(tree_)
            if isinstance(n, ast.Call)
            and n.args
            and isinstance(n.args[0], ast.Constant)
            and getattr(n.func, "id", getattr(n.func, "attr", "")) in ("load_benchmark", "load")
        }
        assert not ({name.split(".")[0] for name in names} | loaded) & STUDIES, f"{path} uses a study"
        assert "studies" not in {name.split(".")[0] for name in names}, f"{path} imports studies/"


def test_docstrings_say_what_and_why_in_at_most_15_lines():
    """Findings live in docs/ with their evidence; a function's or class's docstring stays short."""
    long = []
    for path in sorted([*CORE.rglob("*.py"), *(REPO / "plugins").rglob("*.py")]):
        if "build" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                doc = ast.get_docstring(node, clean=False) or ""
                if doc.count("\n") + 1 > 15:
                    long.append(f"{path.relative_to(REPO)}:{node.name}")
    assert not long, f"docstrings over 15 lines: {long}"


def test_the_onnx_translation_path_imports_no_torch():
    """Exported models run without torch (1.3 s to import here): its imports stay inside the torch paths."""
    code = (
        "import sys\n"
        "import imtrans_core.cli.translate_cmd, imtrans_core.onnx.choose\n"
        "import imtrans_core.inference.jobs, imtrans_core.inference.translate\n"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


PUBLIC = {"imtrans_core", "imtrans_core.api"}


@pytest.mark.parametrize("plugin", sorted([*PLUGINS, "examples"]))
def test_a_plugin_imports_only_the_public_api(plugin):
    """What a plugin shipped here imports of the core, a third party may too: ``imtrans_core`` and its ``api``."""
    files = sorted((REPO / "plugins" / plugin).rglob("*.py"))
    assert files, f"plugins/{plugin} holds no module: this test would check nothing"
    for path in files:
        if "build" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            for name in names:
                if name.split(".")[0] == "imtrans_core":
                    assert name in PUBLIC, (
                        f"{path.relative_to(REPO)}:{node.lineno} imports {name}; use imtrans_core.api"
                    )


# CycleGAN's networks, translations and objective, by the names its plugin gives them
CYCLEGAN_NAMES = {
    "g_ct",
    "g_mr",
    "d_ct",
    "d_mr",
    "rec_ct",
    "rec_mr",
    "fake_ct",
    "fake_mr",
    "idt_ct",
    "idt_mr",
}
CYCLEGAN_NAMES |= {"cycle", "Generators", "Discriminators", "CycleGAN", "Objective"}
# where the core may name them: reading checkpoints written before methods named their translators
OLD_CHECKPOINTS = {("inference/models.py", "g_ct"), ("inference/models.py", "g_mr")}


def test_the_core_holds_no_method():
    """CycleGAN lives in its plugin: the core names none of its networks, translations or loss kinds."""
    found = set()
    for path in sorted(CORE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                name = node.value
            elif isinstance(node, ast.Name | ast.Attribute | ast.ClassDef | ast.FunctionDef):
                name = getattr(node, "id", None) or getattr(node, "attr", None) or node.name
            else:
                continue
            if name in CYCLEGAN_NAMES:
                found.add((path.relative_to(CORE).as_posix(), name))
    assert found <= OLD_CHECKPOINTS, f"CycleGAN-specific code in the core: {sorted(found - OLD_CHECKPOINTS)}"
    assert (REPO / "plugins" / "imtrans_cyclegan" / "model.py").is_file()


def test_every_public_name_loads_and_is_documented():
    """``imtrans_core.api`` resolves each name it lists, without torch until one is used; docs/plugins.md names each."""
    import imtrans_core.api as api

    doc = (REPO / "docs" / "plugins.md").read_text()
    missing = [name for name in api.__all__ if name != "API_VERSION" and f"`{name}`" not in doc]
    assert not missing, f"docs/plugins.md does not list {missing}"
    for name in api.__all__:
        assert getattr(api, name) is not None
    lean = "import sys, imtrans_core.api; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", lean], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
