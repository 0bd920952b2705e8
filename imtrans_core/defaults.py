"""The built-in plugins' components that the core names, in one place.

The core imports no plugin, yet its defaults must name some: the paper's model, networks and
losses, the phantom, the loggers every run writes, the metrics ``imtrans evaluate`` reports.
Each is a registry name or spec (text: nothing here imports a plugin). A command that needs one
checks for it before any work (:func:`require`), so with the plugin disabled
(``IMTRANS_DISABLE_PLUGINS=metrics imtrans evaluate ...``) it says so in one line.
"""

from __future__ import annotations

from typing import Any

from .errors import ImtransError

MODEL = "cyclegan"  # imtrans_cyclegan
GENERATOR = "resnet9"  # imtrans_cyclegan: the paper's ResNet generator (§2.2)
DISCRIMINATOR = "patchgan"  # imtrans_cyclegan: the 70 x 70 PatchGAN
DATASET = "phantom"  # imtrans_hip: the procedural hip phantom
LOGGERS = ("jsonl", "samples")  # imtrans_loggers: every run writes metrics.jsonl and sample grids

# imtrans_metrics: (row key, metric spec, column label) of each evaluation protocol.
PROTOCOLS: dict[str, list[tuple[str, str, str]]] = {
    "paper": [
        ("mae", "mae:scale=paper", "MAE [0-255]"),
        ("mae_hu", "mae:scale=hu", "MAE [HU]"),
        ("psnr", "psnr:scale=paper", "PSNR [dB]"),
        ("ssim", "ssim:scale=paper", "SSIM"),
    ],
    "synthrad": [
        ("synthrad_mae", "mae:scale=hu", "MAE [HU, SynthRAD]"),
        ("synthrad_psnr", "psnr:scale=synthrad", "PSNR [dB, SynthRAD]"),
        ("synthrad_ssim", "ssim:scale=synthrad,protocol=synthrad2023", "SSIM (SynthRAD)"),
    ],
}
MI = "mi"  # imtrans_metrics: mutual information against the source (Fig. 4)


def require(registry: Any, specs: list[str] | tuple[str, ...], command: str) -> None:
    """Refuse ``command`` in one line when a component it needs is not registered (its plugin is off).

    ``specs`` are names or specs of ``registry``; the message names the first missing one and,
    where a plugin was switched off by the environment, which.
    """
    names = [spec.split(":")[0] for spec in specs]
    missing = next((name for name in names if name not in registry), None)
    if missing is None:
        return

    raise ImtransError(
        f"{command} needs the {registry.kind} '{missing}', which no loaded plugin provides"
        f"{registry.missing_hint()}; see `imtrans plugins {registry.plural}`"
    )
