"""Entry point ``pix2pix``: registers the model by reference, so torch loads when it is first built."""

from __future__ import annotations

from typing import Any

from imtrans_core import hookimpl


@hookimpl
def imtrans_register(registries: Any) -> None:
    registries.models.add("pix2pix", f"{__package__}.model:Pix2Pix")
