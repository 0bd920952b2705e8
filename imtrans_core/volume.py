"""The v0.1 path of :mod:`imtrans_core.data.volume`, kept for dataset plugins written against v0.1.

A third-party dataset builds ``Volume`` objects (``imtrans_core.volume``), reads files with
``imtrans_core.io`` and returns a ``VolumeSource`` (``imtrans_core.sources``), so these three
old import paths stay; this module *is* the new one (same object), not a copy.
"""

import sys

from .data import volume

sys.modules[__name__] = volume
