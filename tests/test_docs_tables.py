"""The results tables in docs/ are the committed JSON's, written by benchmarks/tables.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tables(load_benchmark):
    return load_benchmark("tables")


def test_every_table_in_the_docs_agrees_with_its_json(tables):
    blocks = 0
    for path in sorted((REPO / "docs").rglob("*.md")):
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


@pytest.mark.slow
def test_the_paper_benchmark_writes_json_that_the_reproduction_tables_read(tables, tmp_path, monkeypatch):
    """benchmarks/paper.py --quick over two seeds: every arm and comparison reaches docs/reproduction.md's tables."""
    import subprocess
    import sys

    out = tmp_path / "results" / "reproduction.json"
    command = [sys.executable, str(REPO / "benchmarks" / "paper.py"), "--quick", "--seeds", "0", "1"]
    subprocess.run([*command, "--runs", str(tmp_path / "runs"), "--results", str(out)], check=True)
    result = json.loads(out.read_text())
    assert list(result["arms"]) == ["small w/o GC", "small w/ gc:0.3", "large w/o GC", "large w/ gc:0.3"]
    assert all(
        len(arm["per_seed"]) == 2 and len(arm["per_seed"]["0"]) == 2 for arm in result["arms"].values()
    )
    assert [(t["a"], t["b"]) for t in result["tests"]] == [
        ("small w/ gc:0.3", "small w/o GC"),
        ("large w/ gc:0.3", "large w/o GC"),
        ("large w/o GC", "small w/o GC"),
        ("large w/ gc:0.3", "small w/ gc:0.3"),
    ]
    assert all(0 < t["mae"]["p"] <= 1 for t in result["tests"])  # two subjects: p is 0.5 or 1
    monkeypatch.setattr(tables, "RESULTS", out.parent)
    table = tables.reproduction_table().splitlines()
    assert table[0].count("|") == 9 and len(table) == 2 + len(tables.PAPER_ROWS)
    assert "—" in table[-1] and "±" in table[2]  # no Dice for a baseline; spread over seeds for the arms
    assert tables.reproduction_tests_table().count("/2)") == 4 * (len(tables.PAPER_ROWS) - 2)


@pytest.mark.slow
def test_the_methods_benchmark_writes_json_that_the_method_table_reads(tables, tmp_path, monkeypatch):
    """benchmarks/methods.py --quick, one regime over two seeds: every arm, the baselines and the test reach docs/quality.md."""
    import subprocess
    import sys

    command = [sys.executable, str(REPO / "benchmarks" / "methods.py"), "--quick", "--seeds", "0", "1"]
    command += ["--regime", "misaligned-4mm", "--runs", str(tmp_path / "runs"), "--results", str(tmp_path)]
    subprocess.run(command, check=True)
    result = json.loads((tmp_path / "methods-misaligned-4mm.json").read_text())
    assert set(result["arms"]) == {
        "supervised U-Net (--preset paired)",
        "pix2pix",
        "reggan (--preset misaligned)",
    }
    for arm in result["arms"].values():
        assert list(arm["per_seed"]) == ["0", "1"] and len(arm["per_seed"]["0"]) == 5
        assert {"mae", "synthrad_ssim", "mae_hu_bone", "mae_hu_fat", "dice", "dice_femur"} <= set(arm["mean"])
    assert result["baselines"]["contrast prior"]["mae_hu_muscle"] > 0
    assert all(0 <= result["baselines"][name]["dice"] <= 1 for name in ("contrast prior", "noise floor"))
    (test,) = result["tests"]
    best = min(result["arms"], key=lambda arm: result["arms"][arm]["mean"]["mae"])
    assert test["a"] == best and 0 < test["mae"]["p"] <= 1
    monkeypatch.setattr(tables, "RESULTS", tmp_path)
    table = tables.methods_table("misaligned-4mm")
    rows = [line for line in table.splitlines() if line.startswith("| **")]
    assert len(rows) == 3 and rows[0].startswith(f"| **{best}** | 0 1 |") and "±" in rows[0]
    assert "paired Wilcoxon over 5 subjects" in table and "not measured" not in table
    assert "Not measured yet" in tables.methods_table("unpaired")


def test_the_method_check_names_each_cell_the_json_lacks(load_benchmark):
    """``methods.py --check``: a result measured as the script defines it passes; each shortfall is one line."""
    methods = load_benchmark("methods")
    regime = "misaligned-4mm"

    def measured(seeds: list[int]) -> dict:
        arms = {
            arm: {"preset": preset, "options": options, "per_seed": {str(s): [] for s in seeds}}
            for arm, (preset, options) in methods.REGIMES[regime].items()
        }
        return {"test_data": methods.TEST_DATA, "settings": {"quick": False}, "arms": arms}

    assert methods.problems(regime, measured([0, 1, 2])) == []
    assert methods.problems(regime, None) == [
        f"{regime}: not measured (python benchmarks/methods.py --regime {regime})"
    ]
    result = measured([0, 2])
    assert methods.problems(regime, result) == [
        f"{regime} | {arm}: seed 1 not measured" for arm in result["arms"]
    ]
    result = measured([0, 1, 2])
    result["arms"]["pix2pix"]["options"] = {**result["arms"]["pix2pix"]["options"], "iters": 50}
    result["arms"]["an old arm"] = result["arms"].pop("reggan (--preset misaligned)")
    result["settings"]["quick"] = True
    found = methods.problems(regime, result)
    assert (
        len(found) == 4 and "with --quick" in found[0] and "pix2pix: measured as --preset small" in found[1]
    )
    assert found[2:] == [
        f"{regime} | reggan (--preset misaligned): not measured",
        f"{regime} | an old arm: no longer an arm",
    ]
    assert methods.SEEDS["misaligned-8mm"] == [0] and methods.SEEDS["unpaired"] == [0, 1, 2]


def test_measuring_one_arm_keeps_the_others_and_tests_over_all(load_benchmark):
    """``methods.py --arms A``: arms measured earlier on the same subjects, as still defined, stay; the test is redrawn."""
    methods = load_benchmark("methods")
    regime = "few-pairs"
    unet, pix2pix, hybrid = methods.REGIMES[regime]

    def arm(name: str, mae: list[float]) -> dict:
        preset, options = methods.REGIMES[regime][name]
        rows = [{"id": f"s{i}", "mae": m, "ssim": 0.5} for i, m in enumerate(mae)]
        return {"preset": preset, "options": options, "per_seed": {"0": rows}}

    def result(arms: dict, quick: bool = False) -> dict:
        return {"regime": regime, "test_data": methods.TEST_DATA, "settings": {"quick": quick}, "arms": arms}

    earlier = result({unet: arm(unet, [10, 11, 12, 13, 14]), pix2pix: arm(pix2pix, [20, 21, 22, 23, 24])})
    new = result({hybrid: arm(hybrid, [9, 10, 11, 12, 13])})
    joined = methods.with_earlier_arms(new, earlier)
    assert list(joined["arms"]) == [unet, pix2pix, hybrid] and joined["not_measured"] == []
    assert (joined["tests"][0]["a"], joined["tests"][0]["b"]) == (hybrid, unet)
    assert joined["tests"][0]["mae"]["median_difference"] == -1.0

    earlier["arms"][pix2pix]["options"] = {**earlier["arms"][pix2pix]["options"], "iters": 50}
    joined = methods.with_earlier_arms(new, earlier)
    assert list(joined["arms"]) == [unet, hybrid] and joined["not_measured"] == [pix2pix]  # a changed recipe
    assert list(methods.with_earlier_arms(new, result(earlier["arms"], quick=True))["arms"]) == [hybrid]
    assert list(methods.with_earlier_arms(new, None)["arms"]) == [hybrid] and joined["tests"]
