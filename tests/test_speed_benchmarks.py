"""The speed benchmarks set each timing against the machine's peak measured beside it."""

import sys
import time

import numpy as np
import pytest


def test_a_fraction_of_peak_holds_while_the_machine_speeds_up(load_benchmark, monkeypatch):
    """A VM that gets faster with every call: each path's fraction of peak stays the same only where
    the peak is measured beside each timing (measured once, after the rounds, it would shrink 4x)."""
    inference = load_benchmark("inference")
    speed = [1]

    def peak_rate(precision: str, threads: int) -> float:
        speed[0] += 1
        return 100.0 * speed[0]

    def path(x: np.ndarray) -> np.ndarray:
        time.sleep(0.12 / speed[0])  # as fast as the last peak said
        return x

    monkeypatch.setattr(sys.modules["peak"], "peak_rate", peak_rate)
    paths = {"torch fp32": path, "openvino f32": path}
    flops = 1e9  # 1 GFLOP a slice: 8 slices in 0.12 s / n against 100 n GFLOP/s -> 0.67 of peak
    ms, of_peak, rates = inference.time_paths(
        paths, np.zeros((8, 1, 4, 4), np.float32), rounds=4, flops=flops
    )

    assert of_peak["torch fp32"] == pytest.approx(8 / 0.12 / 100, rel=0.15)
    assert of_peak["openvino f32"] == pytest.approx(of_peak["torch fp32"], rel=0.15)
    assert rates["fp32"] == [100.0 * n for n in range(2, 10)]  # one peak beside each of the 8 timings
    assert ms["openvino f32"] < ms["torch fp32"]  # timed after it in each round, so faster here


def test_the_peak_is_the_faster_kernel_and_no_convolution_stands_in_for_missing_bf16_units(
    load_benchmark, monkeypatch
):
    """The peak takes OpenVINO's convolutions where they beat torch's GEMM; without bf16 units (where
    OpenVINO would run f32) or without OpenVINO, the GEMM alone."""
    import imtrans_core.cpu
    import imtrans_core.onnx.openvino

    peak = load_benchmark("peak")
    monkeypatch.setattr(peak, "gemm_rate", lambda precision, repeats=5: 900.0)
    monkeypatch.setattr(peak, "_chain_rate", lambda precision, threads, repeats: 1700.0)
    monkeypatch.setattr(imtrans_core.onnx.openvino, "available", lambda: True)
    monkeypatch.setattr(imtrans_core.cpu, "cpu_has_fast_bf16", lambda: True)
    assert peak.peak_rate("int8", 2) == 1700.0
    assert peak.peak_rate("bf16", 2) == 1700.0

    monkeypatch.setattr(imtrans_core.cpu, "cpu_has_fast_bf16", lambda: False)
    assert peak.conv_rate("bf16", 2) is None
    assert peak.peak_rate("bf16", 2) == 900.0
    assert peak.peak_rate("int8", 2) == 1700.0

    monkeypatch.setattr(imtrans_core.onnx.openvino, "available", lambda: False)
    assert peak.peak_rate("int8", 2) == 900.0
