"""What a claim over training seeds needs: each seed's run trained (or reused), mean ± SD over the
seeds, and the paired Wilcoxon test over test subjects between two arms.

A GAN run varies from seed to seed and a handful of test subjects rarely gives
p < 0.05, so ``paper.py`` (and the studies) train every arm with the same seeds
and compare arms subject by subject, each subject's score averaged over seeds.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import imtrans_core as ic
from imtrans_core.evaluation.statistics import wilcoxon_signed_rank
from imtrans_core.training import train
from imtrans_core.training.checkpoint import latest_step
from imtrans_core.training.config import FIELDS
from imtrans_core.training.validate import build_model, resolve_specs

TESTED = ("mae", "ssim")  # the scores two arms are tested on unless a caller names others


def train_or_reuse(config: Any, run: Path) -> float:
    """Training seconds of the run in ``run`` with ``config``: reused when finished, else trained or finished.

    A folder trained with anything else that shapes the model (every config
    field that cannot change on resume, and the losses as resolved today) is
    refused, never relabelled.
    """
    if (run / "config.json").exists():
        different = _differences(json.loads((run / "config.json").read_text()), config)
        if different:
            sys.exit(
                f"error: {run} was trained with other {', '.join(different)}; remove it or pass another --runs"
            )
        if latest_step(run) >= config.iters:
            timed = run / "seconds.json"
            return float(json.loads(timed.read_text())["seconds"]) if timed.exists() else float("nan")
    start = time.perf_counter()
    if (run / "config.json").exists():
        train(None, resume=run)  # an interrupted run: finish it
    else:
        train(config, out=run)
    seconds = round(time.perf_counter() - start, 1)
    (run / "seconds.json").write_text(json.dumps({"seconds": seconds}) + "\n")
    return seconds


def _differences(stored: dict[str, Any], config: Any) -> list[str]:
    """The options that shape the model on which a stored ``config.json`` and ``config`` differ."""
    wanted = json.loads(json.dumps(config.to_dict()))
    trained = [k for k, f in FIELDS.items() if not f.metadata["on_resume"] and k != "preset"]
    different = [
        k for k in trained if stored.get(k, FIELDS[k].default) != wanted[k]
    ]  # old runs lack new fields
    # resolved now: a default whose meaning changed must not relabel a run
    loss = resolve_specs(config, build_model(config.model))["loss"]
    # resolved again: a parameter added since (with its default) is no difference; a changed default is
    stored_loss = [str(ic.LOSSES.resolve(spec)) for spec in stored.get("resolved", {}).get("loss", loss)]
    return [*different, "loss (as resolved)"] if stored_loss != loss else different


def over_seeds(seed_means: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """``mean`` and ``sd_over_seeds`` (sample SD, 0 for one seed) of each score's per-seed means."""
    values = {k: [m[k] for m in seed_means] for k in seed_means[0]}
    return {
        "mean": {k: float(np.mean(v)) for k, v in values.items()},
        "sd_over_seeds": {k: float(np.std(v, ddof=1)) if len(v) > 1 else 0.0 for k, v in values.items()},
    }


def compare(
    a: str, b: str, scores: dict[str, dict[str, list[dict[str, Any]]]], keys: tuple[str, ...] = TESTED
) -> dict[str, Any]:
    """``a`` against ``b`` on each of ``keys``: the paired test over subjects and the seeds in which ``a``'s mean is lower.

    ``scores[name][seed]`` holds one row per test subject, in the same order for every name and seed.
    """
    result: dict[str, Any] = {"a": a, "b": b}
    for key in keys:
        test = wilcoxon_signed_rank(*(_per_subject(scores[v], key) for v in (a, b)))
        seeds_lower = sum(
            np.mean([r[key] for r in scores[a][seed]]) < np.mean([r[key] for r in scores[b][seed]])
            for seed in scores[a]
        )
        result[key] = {
            "p": test.p,
            "n": test.n,
            "median_difference": test.median_difference,
            "seeds_a_lower": int(seeds_lower),
        }
    return result


def _per_subject(per_seed: dict[str, list[dict[str, Any]]], key: str) -> np.ndarray:
    """Each test subject's ``key`` averaged over the seeds (subjects in the same order in every seed)."""
    return np.mean([[row[key] for row in rows] for rows in per_seed.values()], axis=0)
