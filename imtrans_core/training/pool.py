"""The image pool of Shrivastava et al. (2017), as the reference CycleGAN uses it.

The discriminators are updated with a mix of the newest translations and older
ones from a buffer of ``size`` images, which damps oscillation. Until the buffer
is full every image goes in and comes back out; afterwards each image, with
probability 1/2, is swapped for a random stored one (the stored one is
returned and the new one kept) and otherwise returned as it is.
"""

from __future__ import annotations

import random
from typing import Any

import torch


class ImagePool:
    """A buffer of earlier generator outputs; its RNG and content are checkpointed."""

    def __init__(self, size: int = 50, seed: int = 0):
        self.size = size
        self.images: list[torch.Tensor] = []
        self.rng = random.Random(seed)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """Return a batch of the same shape: new images, or older ones they replace."""
        if self.size <= 0:
            return images
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)  # (1, C, H, W)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif self.rng.random() < 0.5:
                index = self.rng.randrange(self.size)
                out.append(self.images[index].clone())
                self.images[index] = image.clone()
            else:
                out.append(image)
        return torch.cat(out, 0)

    def state_dict(self) -> dict[str, Any]:
        stored = torch.cat(self.images, 0).cpu() if self.images else None
        return {"size": self.size, "images": stored, "rng": self.rng.getstate()}

    def load_state_dict(self, state: dict[str, Any], device: torch.device | str = "cpu") -> None:
        self.size = state["size"]
        stored = state["images"]
        self.images = [] if stored is None else [img.unsqueeze(0).to(device) for img in stored]
        self.rng.setstate(state["rng"])
