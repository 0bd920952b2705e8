"""What every benchmark records beside its numbers: the machine, and a plain table."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


#: the environment that caps the instruction set of oneDNN (torch, OpenVINO), torch's own kernels
#: and MKL: an older CPU class emulated on a newer one (onnxruntime's MLAS and NNPACK ignore it)
ISA_CAPS = {
    "avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
}


def run_capped(name: str | None) -> dict[str, str]:
    """The environment of cap ``name`` (``{}`` for none). The libraries read it when they load, so
    a process not yet under it starts again under it, with the same arguments."""
    cap = ISA_CAPS.get(name, {}) if name else {}
    if any(os.environ.get(k) != v for k, v in cap.items()):
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **cap})
    return cap


def results_path(study: str, cap: str | None, folder: Path) -> Path:
    """``folder/STUDY-CLASS[-as-CAP].json``: a study's results named for the CPU it ran on."""
    from imtrans_core.cpu import cpu_class

    return folder / f"{study}-{cpu_class()}{f'-as-{cap}' if cap else ''}.json"


def int8_study_parser(description: str, study: str) -> argparse.ArgumentParser:
    """The options of a study of a trained run and its int8 export: ``--model``, ``--int8``, ``--cap``
    and ``--out`` (default :func:`results_path`); the study adds its own."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, required=True, help="a trained paper-size run (runs/paper-sup)")
    parser.add_argument("--int8", type=Path, required=True, help="its `imtrans export --precision int8` file")
    parser.add_argument("--cap", choices=sorted(ISA_CAPS), help="emulate this instruction set (ISA_CAPS)")
    parser.add_argument("--out", type=Path, help=f"default: docs/results/{study}-CLASS[-as-CAP].json")
    return parser


def isa_cap() -> dict[str, str]:
    """The instruction-set caps of :data:`ISA_CAPS` set in this process's environment."""
    names = {name for cap in ISA_CAPS.values() for name in cap}
    return {name: os.environ[name] for name in sorted(names) if name in os.environ}


def describe_machine() -> dict[str, Any]:
    """CPU model, the flags that decide each precision's speed, cores, library versions, the GPU if any."""
    import torch

    from imtrans_core.cpu import cpu_class, cpu_has_fast_bf16, speed_flags

    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cpu_class": cpu_class(),
        "cpu_flags": speed_flags(),
        "bf16_units": cpu_has_fast_bf16(),
        "isa_cap": isa_cap() or None,  # an emulated CPU class: the flags above are the real CPU's
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        info["onnxruntime"] = None
    return info


def print_table(title: str, rows: list[dict[str, Any]]) -> None:
    """A rich table of dict rows (columns from the first row)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in rows[0]:
        table.add_column(column, justify="left" if column == "variant" else "right")
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    Console().print(table)


def results_json(name: str, quick: bool) -> Path:
    """Where benchmark ``name`` keeps its results on this kind of CPU: the tracked docs/results/benchmarks/,
    one file per CPU class (``inference-amx.json``, ``inference-avx2.json``: speeds differ in kind between
    them), ``_quick`` apart (``imtrans bench`` runs the quick set and must not overwrite the full runs)."""
    from imtrans_core.cpu import cpu_class

    return (
        Path(__file__).resolve().parents[1]
        / "docs"
        / "results"
        / "benchmarks"
        / f"{name}-{cpu_class()}{'_quick' * quick}.json"
    )


def write_json(path: Path, result: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")
