"""Slow: a few minutes of `--preset small` on the phantom measurably learn MR -> CT."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import imtrans_core as ic
from imtrans_core.evaluation.scoring import evaluate_pair
from imtrans_core.inference.backends import TorchBackend
from imtrans_core.inference.translate import translate_volume
from imtrans_core.training import resolve_config, train


@pytest.mark.slow
def test_cpu_preset_lowers_the_mae_of_synthetic_ct(tmp_path, monkeypatch):
    monkeypatch.setenv("IMTRANS_CACHE", str(tmp_path / "cache"))
    config = resolve_config({"loss": ["gc:0.3"]}, None, "small")
    run = train(config, out=tmp_path / "run").run_dir
    torch.manual_seed(config.seed)
    untrained = TorchBackend(ic.GENERATORS.build(config.gen), "mr2ct", config.orientation)
    trained = TorchBackend.from_model(run, "mr2ct", device="cpu")
    maes = {"untrained": [], "trained": []}
    for subject in ic.DATASETS.build(config.data).paired:
        volumes = subject.load()
        for name, backend in (("untrained", untrained), ("trained", trained)):
            synthetic = translate_volume(volumes["mr"], backend)
            maes[name].append(evaluate_pair(synthetic, volumes["ct"], mask=volumes.get("mask"))["mae"])
    before, after = np.mean(maes["untrained"]), np.mean(maes["trained"])
    print(f"MAE on the paper's 0-255 scale: untrained {before:.1f}, trained {after:.1f}")
    assert after < 0.6 * before
