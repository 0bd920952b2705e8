"""benchmarks/machine.py as the studies use it: a cap restarts the process once, and names the results."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def machine(load_study):
    return load_study("machine")  # benchmarks/ is on the path beside the studies


def test_a_cap_already_in_the_environment_runs_on_and_none_changes_nothing(machine, monkeypatch):
    restarts = []
    monkeypatch.setattr(os, "execve", lambda *args: restarts.append(args[2]))
    assert machine.run_capped(None) == {} and restarts == []
    for name, value in machine.ISA_CAPS["avx2"].items():
        monkeypatch.setenv(name, value)
    assert machine.run_capped("avx2") == machine.ISA_CAPS["avx2"] and restarts == []
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    machine.run_capped("avx2")
    assert len(restarts) == 1 and restarts[0]["ONEDNN_MAX_CPU_ISA"] == "AVX2"


def test_results_are_named_for_the_cpu_class_and_the_cap(machine, monkeypatch):
    import imtrans_core.cpu

    monkeypatch.setattr(imtrans_core.cpu, "cpu_class", lambda: "amx")
    assert machine.results_path("study", None, Path("r")) == Path("r/study-amx.json")
    assert machine.results_path("study", "avx2", Path("r")) == Path("r/study-amx-as-avx2.json")


def test_the_int8_studies_share_their_options_and_refuse_an_unknown_cap(machine):
    parser = machine.int8_study_parser("a study", "some_study")
    args = parser.parse_args(["--model", "runs/x", "--int8", "x.onnx", "--cap", "avx2"])
    assert (args.model, args.int8, args.cap, args.out) == (Path("runs/x"), Path("x.onnx"), "avx2", None)
    assert "some_study-CLASS[-as-CAP].json" in parser.format_help()
    with pytest.raises(SystemExit) as refused:
        parser.parse_args(["--model", "runs/x", "--int8", "x.onnx", "--cap", "sse"])
    assert refused.value.code == 2
