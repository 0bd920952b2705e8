"""The studies' own checks, apart from the product's test run: ``python -m pytest studies/tests``."""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from pathlib import Path

import pytest

os.environ["IMTRANS_PLUGINS"] = "imtrans"  # imtrans' own plugins only, as in tests/
os.environ["IMTRANS_CACHE"] = tempfile.mkdtemp(prefix="imtrans-study-cache-")
STUDIES = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def load_study():
    """``load(name)``: ``studies/<name>.py`` as a module (the studies import their siblings by name)."""
    sys.path[:0] = [str(STUDIES), str(STUDIES.parent / "benchmarks")]

    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, STUDIES / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
