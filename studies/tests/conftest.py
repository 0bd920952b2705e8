"""The studies' own checks, apart from the product's test run: ``python -m pytest studies/tests``."""

from __future__ import annotations

import importlib
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
    """``load(name)``: ``studies/<name>.py`` imported by name (the studies import their siblings so)."""
    sys.path[:0] = [str(STUDIES), str(STUDIES.parent / "benchmarks")]
    return importlib.import_module
