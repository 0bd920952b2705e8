"""Write the results tables of docs/ from the committed JSON in docs/results/: no number typed by hand.

A table sits in a markdown file between ``<!-- table: NAME -->`` and
``<!-- end table -->``; ``TABLES[NAME]`` makes its text from the JSON (words
after the name are its arguments: ``<!-- table: curve hybrid gc1-long -->``
shows those variants' curves). Running
this rewrites every such block; ``--check`` changes nothing and fails (exit 1)
where a block differs from what the JSON gives, which the test suite runs.

    python benchmarks/tables.py            # rewrite the tables in docs/
    python benchmarks/tables.py --check    # do the docs agree with docs/results/?
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
RESULTS = DOCS / "results"
BLOCK = re.compile(
    r"(<!-- table: (?P<name>[\w-]+)(?P<args>(?: [\w-]+)*) -->\n)(?P<body>.*?)(?P<end><!-- end table -->)",
    re.S,
)
COLUMNS = (
    ("mae", "MAE [0-255]", 1),
    ("psnr", "PSNR [dB]", 1),
    ("ssim", "SSIM", 2),
    ("mae_hu", "MAE [HU]", 0),
)
# the variant study adds where the anatomy sits and where the error is
QUALITY_COLUMNS = (
    *COLUMNS,
    ("shift_mm", "shift [mm]", 0),
    ("mae_bone", "MAE bone", 1),
    ("mae_muscle", "MAE muscle", 1),
    ("mae_fat", "MAE fat", 1),
)


def _p(p: float) -> str:
    return f"{p:.3f}" if p >= 0.001 else "<0.001"


def _cell(mean: float, sd: float | None, digits: int) -> str:
    return f"{mean:.{digits}f}" + ("" if sd is None else f" ± {sd:.{digits}f}")


def quality_table() -> str:
    """docs/studies/quality-variants.md: every variant of studies/quality.py, mean ± SD over its seeds, and the baselines.

    The baselines are studies/baselines.py's on the same test subjects (docs/results/baselines.json).
    """
    results = [json.loads(p.read_text()) for p in sorted((RESULTS / "quality").glob("*.json"))]
    results.sort(key=lambda r: -r["mean"]["mae"])
    head = (
        "| variant | training seeds | iterations | minutes | "
        + " | ".join(c[1] for c in QUALITY_COLUMNS)
        + " |"
    )
    lines = [head, "|---" * (4 + len(QUALITY_COLUMNS)) + "|"]
    baselines = json.loads((RESULTS / "baselines.json").read_text())["means"]
    baselines = {name: {k: v[0] for k, v in means.items()} for name, means in baselines.items()}
    lines.append(_row("a constant image (must beat)", "", "", "", baselines["constant image"], None))
    prior = baselines.get("contrast prior")  # sits among the models, at its own MAE
    for r in results:
        if prior and r["mean"]["mae"] < prior["mae"]:
            lines.append(
                _row(
                    "the contrast prior's map, no network (an unpaired model must beat it)",
                    "",
                    "",
                    "",
                    prior,
                    None,
                )
            )
            prior = None
        seeds = r["seeds"].values()
        minutes = np.mean([s["train_seconds"] for s in seeds]) / 60
        sd = r["sd_over_seeds"] if len(r["seeds"]) > 1 else None
        lines.append(
            _row(
                f"`{r['variant']}`: {r['why']}",
                " ".join(r["seeds"]),
                r["iters"],
                f"{minutes:.0f}",
                r["mean"],
                sd,
            )
        )
    for name, label in (
        ("second scan", "a second scan of the CT (a perfect GAN: right anatomy, its own noise)"),
        ("tissue means", "tissue means (a perfect tissue classifier)"),
        ("noise floor", "noise floor (best possible)"),
    ):
        lines.append(_row(label, "", "", "", baselines[name], None))
    return "\n".join(lines) + "\n"


def _row(name: str, seeds: object, iters: object, minutes: str, means: dict | None, sd: dict | None) -> str:
    cells = [
        _cell(means[k], sd[k] if sd else None, d) if means and k in means else ""
        for k, _, d in QUALITY_COLUMNS
    ]
    return f"| {name} | {seeds} | {iters} | {minutes} | " + " | ".join(cells) + " |"


def bar_table() -> str:
    """docs/studies/quality-variants.md: issue #16's bar (MAE <= 1.6 x a floor's, SSIM >= 0.8 x its) against each floor."""
    means = json.loads((RESULTS / "baselines.json").read_text())["means"]
    what = {
        "tissue means": "tissue means: what a perfect tissue classifier writes from the MR",
        "noise floor": "noise floor: the real CT but for its quantum noise",
    }
    lines = ["| floor | MAE | SSIM | the bar: MAE at most | SSIM at least |", "|---|---|---|---|---|"]
    for name, label in what.items():
        mae, ssim = means[name]["mae"][0], means[name]["ssim"][0]
        lines.append(f"| {label} | {mae:.1f} | {ssim:.2f} | {1.6 * mae:.1f} | {0.8 * ssim:.2f} |")
    return "\n".join(lines) + "\n"


def curve_table(*variants: str) -> str:
    """docs/studies/quality-variants.md: the scores at each kept checkpoint of the first seed of ``variants`` (default: all)."""
    lines = ["| variant | iteration | " + " | ".join(c[1] for c in QUALITY_COLUMNS) + " |"]
    lines.append("|---" * (2 + len(QUALITY_COLUMNS)) + "|")
    paths = [RESULTS / "quality" / f"{v}.json" for v in variants] or sorted(
        (RESULTS / "quality").glob("*.json")
    )
    for path in paths:
        result = json.loads(path.read_text())
        first = next(iter(result["seeds"].values()))
        for point in first.get("curve", []) if len(first.get("curve", [])) > 1 else []:
            cells = [_cell(point[k], None, d) for k, _, d in QUALITY_COLUMNS]
            lines.append(f"| `{result['variant']}` | {point['iteration']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def seeds_table(*variants: str) -> str:
    """docs/studies/quality-variants.md: each training seed's MAE (and its MAE in fat, which a swap of tissue values raises)."""
    results = [json.loads((RESULTS / "quality" / f"{v}.json").read_text()) for v in variants]
    seeds = sorted({seed for r in results for seed in r["seeds"]}, key=int)
    lines = ["| variant | " + " | ".join(f"seed {s}: MAE (fat)" for s in seeds) + " |"]
    lines.append("|---" * (1 + len(seeds)) + "|")
    for r in results:
        cells = [
            f"{r['seeds'][s]['mean']['mae']:.1f} ({r['seeds'][s]['mean']['mae_fat']:.1f})"
            if s in r["seeds"]
            else ""
            for s in seeds
        ]
        lines.append(f"| `{r['variant']}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def boundaries_table() -> str:
    """docs/studies/quality-variants.md: mean HU by signed distance from the fat/muscle boundary (studies/boundaries.py)."""
    result = json.loads((RESULTS / "boundaries.json").read_text())
    distances = result["distances"]
    lines = [
        "| image | " + " | ".join(f"{d:+d}" for d in distances) + " |",
        "|---" * (1 + len(distances)) + "|",
    ]
    for name, row in result["rows"].items():
        lines.append(f"| {name} | " + " | ".join(f"{x:.0f}" for x in row) + " |")
    return "\n".join(lines) + "\n"


def bones_table() -> str:
    """docs/studies/quality-variants.md: medians inside bone in both directions (studies/bones.py)."""
    result = json.loads((RESULTS / "bones.json").read_text())
    formats = ("{:.0f}", "{:.0f}", "{:.2f}")
    lines = ["| image | " + " | ".join(result["columns"]) + " |", "|---" * (1 + len(formats)) + "|"]
    for name, row in result["rows"].items():
        cells = ("" if x is None else f.format(x) for f, x in zip(formats, row.values(), strict=True))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def tissues_table() -> str:
    """docs/studies/quality-variants.md: each tissue's part of the MAE, with its bias and spread (studies/tissues.py)."""
    result = json.loads((RESULTS / "tissues.json").read_text())
    shares = result["shares"]
    lines = ["| image | MAE | " + " | ".join(f"{t} ({100 * s:.0f} %)" for t, s in shares.items()) + " |"]
    lines.append("|---" * (2 + len(shares)) + "|")
    for name, row in result["rows"].items():
        cells = (
            f"{row[t + ': part']:.1f} ({round(row[t + ': bias']):+d}, {row[t + ': SD']:.0f})" for t in shares
        )
        lines.append(f"| {name} | {row['MAE']:.1f} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def within_table(side: str = "ct") -> str:
    """docs/studies/quality-variants.md: how each synthetic CT follows the MR within fat and within muscle, or (``mr``) how
    each synthetic MR follows the CT (studies/tissues.py)."""
    key, unit, digits = (
        ("within", "HU per SD of the MR", 0)
        if side == "ct"
        else ("within_mr", "MR units per SD of the CT", 1)
    )
    within = json.loads((RESULTS / "tissues.json").read_text())[key]
    lines = [f"| image | within fat [{unit}] | within muscle |", "|---|---|---|"]
    lines += [
        f"| {name} | {row['fat']:+.{digits}f} | {row['muscle']:+.{digits}f} |" for name, row in within.items()
    ]
    return "\n".join(lines) + "\n"


def real_mr_table(part: str = "grids") -> str:
    """docs/data.md: the real MRs through phantom models (studies/real_mr.py): each one's grid and
    values, or (``regions``) the T2's median (SD) HU by region beside a real CT's."""
    real = json.loads((RESULTS / "real_mr.json").read_text())
    inputs = {k: v for k, v in real.items() if isinstance(v, dict) and "grid" in v}
    if part == "regions":
        (regions,) = (v["regions"] for v in inputs.values() if "regions" in v)
        lines = [
            "| region of the prostate T2 | its T2 signal | `imtrans translate` | `--no-resample` "
            "| `imtrans translate`, the paired model | a real pelvis CT (another patient) |",
            "|---|---|---|---|---|---|",
        ]
        for name, row in regions.items():
            hows = ("translate", "no-resample", "paired model", "real CT")
            cells = [f"{row[k][0]:.0f} ({row[k][1]:.0f})" for k in hows]
            lines.append(f"| {name} | {row['T2 signal']:.0f} | " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"
    lines = [
        "| real MR | grid (spacing, mm) | model | on the input's grid | HU range |",
        "|---|---|---|---|---|",
    ]
    for name, v in inputs.items():
        grid = " x ".join(map(str, v["grid"])) + " (" + " x ".join(f"{s:g}" for s in v["spacing_mm"]) + ")"
        same = (
            "yes"
            if all(t["same_grid"] for t in v.values() if isinstance(t, dict) and "same_grid" in t)
            else "no"
        )
        low, high = v["translate"]["hu_range"]
        lines.append(f"| `{name}` | {grid} | {v['model']} | {same} | {low:.0f} to {high:.0f} |")
    return "\n".join(lines) + "\n"


def demo_table() -> str:
    """docs/quickstart.md: the demo's model between its two baselines, means over the paired subjects."""
    demo = json.loads((RESULTS / "demo.json").read_text())
    n = len(demo["rows"]["demo model"])
    lines = [
        f"| on the phantom (v{demo['phantom']}), {n} paired subjects | "
        + " | ".join(c[1] for c in COLUMNS)
        + " |"
    ]
    lines.append("|---" * (1 + len(COLUMNS)) + "|")
    preset = f" (--preset {demo['preset']})" if demo.get("preset") else ""
    names = {
        "constant image": "a constant image (the median HU)",
        "contrast prior": "the contrast prior's map: MR values to CT values of inverse rank, no network",
        "demo model": f"**the demo's model{preset}, {demo['iterations']} iterations**",
        "second scan": "a second scan: the same CT with its noise drawn again (a perfect GAN)",
        "tissue means": "tissue means: each tissue flat at its mean HU (a perfect tissue classifier)",
        "noise floor": "noise floor: the same CT without quantum noise",
    }
    for key, label in ((k, v) for k, v in names.items() if k in demo["means"]):
        means = demo["means"][key]
        lines.append(f"| {label} | " + " | ".join(f"{means[k][0]:.{d}f}" for k, _, d in COLUMNS) + " |")
    if demo.get("seconds"):
        lines.append(
            f"\nTraining took {demo['seconds']['train']:.0f} s on {demo['machine']['cpu']} ({demo['machine']['cores']} cores)."
        )
    return "\n".join(lines) + "\n"


COMPARE_COLUMNS = (*COLUMNS[:3], ("mae_bone", "MAE bone", 1), ("shift_mm", "shift [mm]", 0))


def compare_table(study: str) -> str:
    """docs/: a study of studies/compare.py: each variant over its seeds, then every pair tested.

    The first table is mean ± SD over the seeds of each seed's mean over the test
    subjects. In the second, the p of the paired Wilcoxon test over subjects
    (each subject's score averaged over seeds), the median over subjects of
    A - B, and in how many seeds A's mean was the better one.
    """
    result = json.loads((RESULTS / "compare" / f"{study}.json").read_text())
    n_seeds = len(result["seeds"])
    n_subjects = len(next(iter(next(iter(result["variants"].values()))["per_seed"].values())))
    lines = [
        f"| variant ({n_seeds} seeds, {n_subjects} test subjects) | losses | "
        + " | ".join(c[1] for c in COMPARE_COLUMNS)
        + " |",
        "|---" * (2 + len(COMPARE_COLUMNS)) + "|",
    ]
    for name, v in result["variants"].items():
        sd = v["sd_over_seeds"] if n_seeds > 1 else None
        cells = [_cell(v["mean"][k], sd[k] if sd else None, d) for k, _, d in COMPARE_COLUMNS]
        losses = ", ".join(f"`{loss}`" for loss in v["loss"]) or "lsgan, cycle only"
        lines.append(f"| `{name}` | {losses} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| A vs B | MAE: median A - B | p | A better in seeds | SSIM: median A - B | p | A better in seeds |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in result["tests"]:
        mae, ssim = t["mae"], t["ssim"]
        lines.append(
            f"| `{t['a']}` vs `{t['b']}` | {mae['median_difference']:+.2f} | {_p(mae['p'])} | "
            f"{mae['seeds_a_lower']} of {n_seeds} | {ssim['median_difference']:+.3f} | {_p(ssim['p'])} | "
            f"{n_seeds - ssim['seeds_a_lower']} of {n_seeds} |"
        )
    return "\n".join(lines) + "\n"


PAPER_ROWS = (
    *COLUMNS[:3],
    COLUMNS[3],
    ("mi", "MI [nats]", 3),
    *(
        (f"dice_{s}", f"Dice {s.replace('_', ' ')}", 2)
        for s in ("pelvis", "femur", "gluteus_medius", "gluteus_minimus")
    ),
)
HIGHER_IS_BETTER = {"psnr", "ssim", "mi"} | {k for k, _, _ in PAPER_ROWS if k.startswith("dice")}


def reproduction_table() -> str:
    """docs/reproduction.md: the 2 x 2 of benchmarks/paper.py, mean ± SD over seeds, between its baselines."""
    result = json.loads((RESULTS / "reproduction.json").read_text())
    arms, baselines = result["arms"], result["baselines"]
    columns = {"constant image": (baselines["constant image"], None)}
    columns |= {name: (arm["mean"], arm["sd_over_seeds"]) for name, arm in arms.items()}
    columns |= {name: (baselines[name], None) for name in ("tissue means", "noise floor")}
    lines = ["| | " + " | ".join(columns) + " |", "|---" * (1 + len(columns)) + "|"]
    for key, label, digits in PAPER_ROWS:
        cells = [
            _cell(m[key], sd[key] if sd else None, digits) if key in m else "—" for m, sd in columns.values()
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def reproduction_tests_table() -> str:
    """docs/reproduction.md: each comparison of benchmarks/paper.py per score: median A - B, p, seeds A was better."""
    result = json.loads((RESULTS / "reproduction.json").read_text())
    tests, n_seeds = result["tests"], len(result["settings"]["seeds"])
    lines = [
        "| | " + " | ".join(f"{t['a']} vs {t['b']}" for t in tests) + " |",
        "|---" * (1 + len(tests)) + "|",
    ]
    for key, label, digits in PAPER_ROWS:
        if key not in tests[0]:
            continue
        cells = []
        for t in tests:
            better = (
                t[key]["seeds_a_lower"] if key not in HIGHER_IS_BETTER else n_seeds - t[key]["seeds_a_lower"]
            )
            cells.append(
                f"{t[key]['median_difference']:+.{digits}f} (p {_p(t[key]['p'])}; {better}/{n_seeds})"
            )
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# per benchmark (the JSON's "benchmark"): (key, header, format) of each column of its rows
SPEED_COLUMNS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "training": (
        ("variant", "variant", "{}"),
        ("s_per_iter", "s / iteration", "{:.2f}"),
        ("vs_fp32", "vs fp32", "{:.2f}x"),
        ("gflop_per_s", "GFLOP/s", "{:.0f}"),
        ("of_peak", "of peak", "{:.0%}"),
        ("first_step_s", "first step [s]", "{:.1f}"),
    ),
    "inference": (
        ("variant", "path", "{}"),
        ("ms_per_slice", "ms / slice", "{:.0f}"),
        ("vs_fp32", "vs torch fp32", "{:.2f}x"),
        ("of_peak", "of peak", "{:.0%}"),
        ("mean_hu", "mean HU diff.", "{:.3f}"),
        ("p99_hu", "p99 HU diff.", "{:.2f}"),
        ("p999_hu", "p99.9 HU diff.", "{:.2f}"),
    ),
    "peak": (
        ("precision", "precision", "{}"),
        ("gflop_per_s", "GEMM GFLOP/s", "{:.0f}"),
        ("conv_gflop_per_s", "convolutions GFLOP/s", "{:.0f}"),
        ("vs_fp32", "peak vs fp32", "{:.2f}x"),
    ),
    "files": (
        ("variant", "format", "{}"),
        ("write_s", "write [s]", "{:.3f}"),
        ("vs_zlib", "write vs zlib", "{:.1f}x"),
        ("read_s", "read [s]", "{:.3f}"),
        ("size_mb", "file [MB]", "{:.1f}"),
    ),
    "volume": (
        ("variant", "backend", "{}"),
        ("seconds", "seconds", "{:.1f}"),
        ("vs_fp32", "vs torch fp32", "{:.2f}x"),
        ("peak_mb", "peak memory [MB]", "{:.0f}"),
        ("mean_hu", "mean HU diff.", "{:.2f}"),
        ("max_hu", "max HU diff.", "{:.0f}"),
    ),
}


METHOD_COLUMNS = (
    *COLUMNS,
    ("synthrad_psnr", "PSNR [dB, SynthRAD]", 1),
    ("synthrad_ssim", "SSIM (SynthRAD)", 2),
    ("mae_hu_bone", "MAE bone [HU]", 0),
    ("mae_hu_muscle", "MAE muscle [HU]", 0),
    ("mae_hu_fat", "MAE fat [HU]", 0),
    ("dice", "Dice, 4 structures", 2),
)
METHOD_BASELINES = {
    "constant image": "a constant image (must beat)",
    "contrast prior": "the contrast prior's map, no network",
    "second scan": "a second scan of the CT (right anatomy, its own noise)",
    "noise floor": "noise floor (best possible)",
}


def methods_table(regime: str) -> str:
    """docs/quality.md: one data regime of benchmarks/methods.py, its arms (best first) between the baselines."""
    path = RESULTS / f"methods-{regime}.json"
    if not path.exists():
        return f"Not measured yet: `python benchmarks/methods.py --regime {regime}`.\n"
    result = json.loads(path.read_text())
    head = "| | seeds | minutes (fastest seed) | " + " | ".join(c[1] for c in METHOD_COLUMNS) + " |"
    lines = [head, "|---" * (3 + len(METHOD_COLUMNS)) + "|"]

    def row(name: str, seeds: str, minutes: str, means: dict, sd: dict | None) -> str:
        cells = [
            _cell(means[k], sd[k] if sd else None, d) if k in means else "" for k, _, d in METHOD_COLUMNS
        ]
        return f"| {name} | {seeds} | {minutes} | " + " | ".join(cells) + " |"

    baselines = result["baselines"]
    lines.append(row(METHOD_BASELINES["constant image"], "", "", baselines["constant image"], None))
    arms = sorted(result["arms"].items(), key=lambda item: item[1]["mean"]["mae"])
    for name, arm in arms:
        minutes = f"{min(arm['minutes'].values()):.0f}"  # sharing the machine only ever adds time
        sd = arm["sd_over_seeds"] if len(arm["minutes"]) > 1 else None
        lines.append(row(f"**{name}**", " ".join(arm["minutes"]), minutes, arm["mean"], sd))
    for name in ("contrast prior", "second scan", "noise floor"):
        lines.append(row(METHOD_BASELINES[name], "", "", baselines[name], None))
    for test in result["tests"]:
        mae = test["mae"]
        lines.append(
            f"\n{test['a']} against {test['b']}: MAE [0-255] median difference {mae['median_difference']:+.1f}, "
            f"p = {_p(mae['p'])} (paired Wilcoxon over {mae['n']} subjects, each averaged over the seeds); "
            f"lower in {mae['seeds_a_lower']} of {len(arms[0][1]['minutes'])} seeds."
        )
    if result.get("not_measured"):
        lines.append(f"\nNot measured yet: {', '.join(result['not_measured'])}.")
    lines.append(f"\nMeasured on {result['machine'].get('cpu', 'an unnamed CPU')}.")
    return "\n".join(lines) + "\n"


# the data regimes of benchmarks/methods.py, in the order a reader meets them, named for what they hold
REGIME_LABELS = {
    "unpaired": "unpaired CT and MR archives",
    "few-pairs": "a few aligned pairs (4)",
    "misaligned-2mm": "many pairs, 2 mm apart (12)",
    "misaligned-4mm": "many pairs, 4 mm apart (12)",
    "misaligned-8mm": "many pairs, 8 mm apart (12)",
}
SUPERVISED = "supervised U-Net (--preset paired)"  # the reference every regime's best is read against


def methods_summary_table() -> str:
    """docs/quality.md: per data regime, its best method beside the runner-up and the prior's map (MAE, paper's scale)."""
    results = {
        r: json.loads(p.read_text()) for r in REGIME_LABELS if (p := RESULTS / f"methods-{r}.json").exists()
    }
    reference = results.get("few-pairs", {}).get("arms", {}).get(SUPERVISED, {}).get("mean", {}).get("mae")
    lines = [
        "| your data | best: MAE [0-255] (MAE [HU]) | runner-up | p | the prior's map | best / the supervised U-Net on 4 pairs |",
        "|---|---|---|---|---|---|",
    ]
    for regime, label in REGIME_LABELS.items():
        if regime not in results:
            lines.append(f"| {label} | not measured yet | | | | |")
            continue
        result = results[regime]
        ranked = sorted(result["arms"].items(), key=lambda item: item[1]["mean"]["mae"])

        def named(arm: str, measured: dict) -> str:
            sd = measured["sd_over_seeds"]["mae"] if len(measured["per_seed"]) > 1 else None
            return f"{arm}: {_cell(measured['mean']['mae'], sd, 1)} ({measured['mean']['mae_hu']:.0f})"

        best = ranked[0][1]["mean"]["mae"]
        runner_up = named(*ranked[1]) if len(ranked) > 1 else ""
        p_value = f"{_p(result['tests'][0]['mae']['p'])}" if result["tests"] else ""
        ratio = f"{best / reference:.2f}" if reference else ""
        prior = f"{result['baselines']['contrast prior']['mae']:.1f}"
        lines.append(f"| {label} | **{named(*ranked[0])}** | {runner_up} | {p_value} | {prior} | {ratio} |")
    return "\n".join(lines) + "\n"


def speed_table(name: str) -> str:
    """docs/benchmarks.md: the rows of ``docs/results/benchmarks/NAME.json``, as its benchmark reports them."""
    result = json.loads((RESULTS / "benchmarks" / f"{name}.json").read_text())
    return _columns_table(result["rows"], SPEED_COLUMNS[result["benchmark"]])


#: studies/avx2_paths.py: the network per slice, and the whole translate command
PATHS_COLUMNS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "slice": (
        ("variant", "path", "{}"),
        ("ms_per_slice", "ms / slice", "{:.0f}"),
        ("vs_fp32", "vs torch fp32", "{:.2f}x"),
        ("mean_hu", "mean HU diff.", "{:.3f}"),
        ("p999_hu", "p99.9 HU diff.", "{:.2f}"),
        ("max_hu", "max HU diff.", "{:.1f}"),
    ),
    "whole": (
        ("variant", "backend", "{}"),
        ("seconds", "seconds", "{:.1f}"),
        ("vs_fp32", "vs torch fp32", "{:.2f}x"),
        ("mean_hu", "mean HU diff.", "{:.2f}"),
        ("max_hu", "max HU diff.", "{:.0f}"),
    ),
}


def paths_table(name: str, part: str = "slice") -> str:
    """docs/benchmarks.md: studies/avx2_paths.py's rows (``slice`` or ``whole``) of ``docs/results/NAME.json``."""
    result = json.loads((RESULTS / f"{name}.json").read_text())
    rows = result["rows"] if part == "slice" else result["whole_command"]["rows"]
    return _columns_table(rows, PATHS_COLUMNS[part])


#: studies/int8_outputs.py: the export's graph forms per slice, each against the fp32 graph as trained
OUTPUTS_COLUMNS = (
    ("path", "runtime, graph", "{}"),
    ("ms_per_slice", "ms / slice", "{:.0f}"),
    ("vs_fp32_whole", "vs fp32 as trained", "{:.2f}x"),
    ("mean_hu", "mean HU diff.", "{:.2f}"),
    ("p999_hu", "p99.9 HU diff.", "{:.1f}"),
    ("max_hu", "max HU diff.", "{:.0f}"),
)


def outputs_table(name: str) -> str:
    """docs/benchmarks.md: studies/int8_outputs.py's rows of ``docs/results/NAME.json``."""
    return _columns_table(json.loads((RESULTS / f"{name}.json").read_text())["rows"], OUTPUTS_COLUMNS)


def kernels_table(name: str) -> str:
    """docs/benchmarks.md: the kernel and time OpenVINO gave each transposed convolution of each
    int8 graph of studies/int8_outputs.py (its per-node counters, ``kernels`` of ``NAME.json``)."""
    found = json.loads((RESULTS / f"{name}.json").read_text())["kernels"]
    count = max(len(nodes) for nodes in found.values())
    heads = [f"transposed {i + 1}: kernel, ms / slice" for i in range(count)]
    lines = ["| graph | " + " | ".join(heads) + " |", "|---" * (count + 1) + "|"]
    for graph, nodes in found.items():
        lines.append(f"| {graph} | " + " | ".join(f"{kind}, {ms:.1f}" for kind, ms in nodes) + " |")
    return "\n".join(lines) + "\n"


def _columns_table(rows: list[dict], columns: tuple[tuple[str, str, str], ...]) -> str:
    lines = ["| " + " | ".join(h for _, h, _ in columns) + " |", "|---" * len(columns) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(f.format(row[k]) if k in row else "—" for k, _, f in columns) + " |")
    return "\n".join(lines) + "\n"  # a column the benchmark did not yet measure when it ran: a dash


TABLES: dict[str, Callable[..., str]] = {
    "reproduction": reproduction_table,
    "reproduction-tests": reproduction_tests_table,
    "quality": quality_table,
    "curve": curve_table,
    "seeds": seeds_table,
    "demo": demo_table,
    "boundaries": boundaries_table,
    "bones": bones_table,
    "tissues": tissues_table,
    "within": within_table,
    "real-mr": real_mr_table,
    "compare": compare_table,
    "bar": bar_table,
    "speed": speed_table,
    "paths": paths_table,
    "outputs": outputs_table,
    "kernels": kernels_table,
    "methods": methods_table,
    "methods-summary": methods_summary_table,
}


def render(text: str) -> str:
    """``text`` with every table block rewritten from the JSON."""
    return BLOCK.sub(lambda m: m.group(1) + TABLES[m["name"]](*m["args"].split()) + m["end"], text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="Change nothing; exit 1 where a table is stale.")
    args = parser.parse_args()
    stale = []
    for path in sorted(DOCS.rglob("*.md")):
        text = path.read_text()
        for block in BLOCK.finditer(text):
            if block["name"] not in TABLES:
                sys.exit(f"error: {path.name}: no table named {block['name']!r}; known: {', '.join(TABLES)}")
        new = render(text)
        if new != text:
            stale.append(path.name)
            if not args.check:
                path.write_text(new)
                print(f"rewrote the tables of {path.relative_to(REPO)}")
    if args.check and stale:
        sys.exit(f"stale tables in {', '.join(stale)}: run python benchmarks/tables.py")


if __name__ == "__main__":
    main()
