"""imtrans: unpaired cross-modality medical image translation (CycleGAN + GC loss).

``import imtrans_core as ic`` gives the registries (``ic.GENERATORS``,
``ic.DISCRIMINATORS``, ``ic.LOSSES``, ``ic.DATASETS``, ``ic.METRICS``,
``ic.LOGGERS``, ``ic.MODELS``, ``ic.PRESETS``), the ``hookimpl`` marker for plugins and the error types.
Importing is cheap: plugins (and torch) load on the first registry read.
"""

from __future__ import annotations

from importlib import metadata

from .errors import ImtransError, PluginError, RegistryError, SpecError
from .hookspecs import hookimpl
from .plugins import PluginSystem
from .registry import Registry
from .spec import Spec, parse

try:
    __version__ = metadata.version("imtrans")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

GENERATORS = Registry("generator")
DISCRIMINATORS = Registry("discriminator")
LOSSES = Registry("loss", "losses")
DATASETS = Registry("dataset")
METRICS = Registry("metric")
LOGGERS = Registry("logger")
MODELS = Registry("model")
PRESETS = Registry("preset")

REGISTRIES = {
    r.plural: r for r in (GENERATORS, DISCRIMINATORS, LOSSES, DATASETS, METRICS, LOGGERS, MODELS, PRESETS)
}
plugins = PluginSystem(REGISTRIES)
plugins.reset()

__all__ = [
    "DATASETS",
    "DISCRIMINATORS",
    "GENERATORS",
    "LOGGERS",
    "LOSSES",
    "METRICS",
    "MODELS",
    "PRESETS",
    "REGISTRIES",
    "ImtransError",
    "PluginError",
    "Registry",
    "RegistryError",
    "Spec",
    "SpecError",
    "__version__",
    "hookimpl",
    "parse",
    "plugins",
]
