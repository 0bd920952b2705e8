"""The settings of ``imtrans segment train`` (torch-free: the command's options and help read them)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from imtrans_core.api import ImtransError


@dataclass
class SegmentConfig:
    """Every knob of ``imtrans segment train``; defaults are the paper's (§3.2) where it gives them."""

    channels: str = "ct,mr"  # ct,mr: CT + G_MR's synthetic MR (the paper's); ct: CT alone
    cyclegan: str = ""  # CycleGAN run directory or checkpoint (G_MR makes the second channel)
    orientation: str = ""  # slicing plane; empty: the CycleGAN's (ct,mr), coronal (ct)
    data: str = ""  # dataset spec with labelled paired subjects, or ...
    ct: str = ""  # ... a CT folder
    labels: str = ""  # ... and a label folder matched to it by volume id
    structures: list[str] = field(default_factory=list)  # empty: the paper's four
    net: str = "unet"  # in_ch=2, out_ch=K+1, final=none are filled in
    iters: int = 100_000
    lr: float = 1e-4
    beta1: float = 0.9  # Adam's defaults: the paper names Adam and the rate only
    beta2: float = 0.999
    size: int = 256  # training crops; prediction runs on whole slices
    batch: int = 4  # not given in the paper
    dice_loss: float = 0.0  # weight of a soft Dice loss added to the cross-entropy
    amp: str = "auto"  # off | bf16 | fp16 | auto (bf16 where it is fast)
    device: str = "auto"
    seed: int = 0
    log_every: int = 50
    ckpt_every: int = 1000
    keep: int = 2
    log: list[str] = field(default_factory=list)  # extra logger specs (a JSONL log is always written)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "segment.json") -> SegmentConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ImtransError(
                f"{source}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        return cls(**data)
