"""The public API: everything a plugin may use, in one module (see docs/plugins.md).

``from imtrans_core.api import TrainableModel, Optimizers, GENERATORS`` and so on. A plugin
imports ``imtrans_core`` (the registries, ``hookimpl``, the errors) and this module, nothing
else: the modules behind these names may move between releases, these names do not within
an ``API_VERSION``'s major number (a test holds every plugin shipped here to it). Names load
on first use (PEP 562), so importing this module costs no torch.
"""

from __future__ import annotations

import importlib
from typing import Any

API_VERSION = "1.1"  # major: a name removed or changed; minor: a name added

# public name -> (module, attribute)
_WHERE: dict[str, tuple[str, str]] = {
    # registries, specs, plugins and errors
    **{
        name: ("imtrans_core", name)
        for name in (
            "GENERATORS",
            "DISCRIMINATORS",
            "LOSSES",
            "DATASETS",
            "METRICS",
            "LOGGERS",
            "MODELS",
            "PRESETS",
            "REGISTRIES",
            "Registry",
            "Spec",
            "parse",
            "hookimpl",
            "ImtransError",
            "SpecError",
            "PluginError",
            "RegistryError",
        )
    },
    "format_value": ("imtrans_core.spec", "format_value"),
    # writing a method: the model interface and the helpers GAN methods share
    "TrainableModel": ("imtrans_core.training.trainable", "TrainableModel"),
    "SMALL_SCALE": ("imtrans_core.training.config", "SMALL_SCALE"),
    "MODEL_OPTIONS": ("imtrans_core.training.trainable", "MODEL_OPTIONS"),
    "Network": ("imtrans_core.training.trainable", "Network"),
    "GANModel": ("imtrans_core.training.gan", "GANModel"),
    "Optimizers": ("imtrans_core.training.gan", "Optimizers"),
    "discriminator_loss": ("imtrans_core.training.gan", "discriminator_loss"),
    "compiled": ("imtrans_core.training.gan", "compiled"),
    "middle_slices": ("imtrans_core.training.gan", "middle_slices"),
    "ImagePool": ("imtrans_core.training.pool", "ImagePool"),
    "WeightAverage": ("imtrans_core.training.ema", "WeightAverage"),
    "compose_losses": ("imtrans_core.training.objective", "compose_losses"),
    "generator_spec": ("imtrans_core.training.validate", "generator_spec"),
    "discriminator_spec": ("imtrans_core.training.validate", "discriminator_spec"),
    "autocast": ("imtrans_core.training.precision", "autocast"),
    "resolve_amp": ("imtrans_core.training.precision", "resolve_amp"),
    "linear_decay": ("imtrans_core.training.schedule", "linear_decay"),
    "lr_factor": ("imtrans_core.training.schedule", "lr_factor"),
    # a training command of one's own on the engine (as the segment plugin's)
    "Engine": ("imtrans_core.training.engine", "Engine"),
    "Distributed": ("imtrans_core.training.distributed", "Distributed"),
    "pick_device": ("imtrans_core.training.distributed", "pick_device"),
    "StopRequest": ("imtrans_core.training.runner", "StopRequest"),
    "loggers": ("imtrans_core.training.runner", "loggers"),
    "list_checkpoints": ("imtrans_core.training.checkpoint", "list_checkpoints"),
    "load_checkpoint": ("imtrans_core.training.checkpoint", "load_file"),
    "write_json": ("imtrans_core.training.checkpoint", "write_json"),
    "truncate_metrics": ("imtrans_core.training.rundir", "truncate_metrics"),
    # volumes, data sets and slices
    "Volume": ("imtrans_core.data.volume", "Volume"),
    "read_volume": ("imtrans_core.data.io", "read_volume"),
    "write_volume": ("imtrans_core.data.io", "write_volume"),
    "list_volumes": ("imtrans_core.data.io", "list_volumes"),
    "volume_id": ("imtrans_core.data.io", "volume_id"),
    "from_sitk": ("imtrans_core.data.io", "from_sitk"),
    "to_sitk": ("imtrans_core.data.io", "to_sitk"),
    "VolumeSource": ("imtrans_core.data.sources", "VolumeSource"),
    "VolumePool": ("imtrans_core.data.sources", "VolumePool"),
    "PairedSubject": ("imtrans_core.data.sources", "PairedSubject"),
    "Plane": ("imtrans_core.data.slices", "Plane"),
    "normalize": ("imtrans_core.data.slices", "normalize"),
    "to_slices": ("imtrans_core.data.slices", "to_slices"),
    "from_slices": ("imtrans_core.data.slices", "from_slices"),
    "fit_to": ("imtrans_core.data.slices", "fit_to"),
    "body_mask": ("imtrans_core.data.preprocess", "body_mask"),
    "fill_holes_per_slice": ("imtrans_core.data.preprocess", "fill_holes_per_slice"),
    "read_prepared": ("imtrans_core.data.preprocess", "read_prepared"),
    "CT_WINDOW": ("imtrans_core.data.intensity", "CT_WINDOW"),
    "MR_WINDOW": ("imtrans_core.data.intensity", "MR_WINDOW"),
    "cache_root": ("imtrans_core.cache", "cache_root"),
    # translation and evaluation
    "translate_volume": ("imtrans_core.inference.translate", "translate_volume"),
    "TorchBackend": ("imtrans_core.inference.backends", "TorchBackend"),
    "make_backend": ("imtrans_core.onnx.choose", "make_backend"),
    "checkpoint_of": ("imtrans_core.inference.models", "checkpoint_of"),
    "check_source": ("imtrans_core.inference.modality", "check_source"),
    "plan_jobs": ("imtrans_core.inference.jobs", "plan_jobs"),
    "match_subjects": ("imtrans_core.evaluation.subjects", "match_subjects"),
    "box_plot": ("imtrans_core.evaluation.plots", "box_plot"),
    "results_table": ("imtrans_core.evaluation.report", "results_table"),
    "write_results": ("imtrans_core.evaluation.report", "write_json"),
    # command-line helpers
    "PATH": ("imtrans_core.cli.types", "PATH"),
    "FiniteFloatRange": ("imtrans_core.cli.types", "FiniteFloatRange"),
    "AMP_MODES": ("imtrans_core.choices", "AMP_MODES"),
    "DEVICES": ("imtrans_core.choices", "DEVICES"),
    "track": ("imtrans_core.progress", "track"),
}

__all__ = ["API_VERSION", *sorted(_WHERE)]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(
            f"imtrans_core.api has no {name!r}; the public names are listed in docs/plugins.md"
        )
    module, attribute = _WHERE[name]
    return getattr(importlib.import_module(module), attribute)


def __dir__() -> list[str]:
    return list(__all__)
