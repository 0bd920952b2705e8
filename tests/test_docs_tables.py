"""The results tables in docs/ are the committed JSON's, written by benchmarks/tables.py."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tables():
    spec = importlib.util.spec_from_file_location("tables", REPO / "benchmarks" / "tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_table_in_the_docs_agrees_with_its_json(tables):
    blocks = 0
    for path in sorted((REPO / "docs").glob("*.md")):
        text = path.read_text()
        blocks += len(tables.BLOCK.findall(text))
        assert tables.render(text) == text, f"{path.name}: run python benchmarks/tables.py"
    assert blocks >= 2  # the quality and demo tables at least


def test_a_changed_number_makes_the_table_stale(tables, tmp_path, monkeypatch):
    demo = json.loads((tables.RESULTS / "demo.json").read_text())
    text = (tables.DOCS / "quickstart.md").read_text()
    demo["means"]["demo model"]["mae"][0] += 1.0
    (tmp_path / "demo.json").write_text(json.dumps(demo))
    monkeypatch.setattr(tables, "RESULTS", tmp_path)
    assert tables.render(text) != text


def test_words_after_a_table_name_choose_what_it_shows(tables):
    block = "<!-- table: curve hybrid -->\nold\n<!-- end table -->"
    rendered = tables.render(block)
    rows = [line for line in rendered.splitlines() if line.startswith("| `")]
    hybrid = json.loads((tables.RESULTS / "quality" / "hybrid.json").read_text())
    assert len(rows) == len(next(iter(hybrid["seeds"].values()))["curve"]) > 1
    assert all(row.startswith("| `hybrid` |") for row in rows)
    assert "old" not in rendered and rendered.endswith("<!-- end table -->")
