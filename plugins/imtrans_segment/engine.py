"""Training the §3.2 segmentation network: a 2-D U-Net on (CT, synthetic MR) slices of labelled CT.

Hiasa et al. 2018, §3.2: "we modified the 2D U-net to take the two-channel input of both CT and
synthesized MR images. We trained [it] using Adam for 1e5 iterations at learning rate of
0.0001." The loss is pixel-wise cross-entropy (Ronneberger et al.), optionally plus a soft Dice
loss, which helps small structures such as the gluteus minimus.

Iteration ``i`` draws its batch from ``numpy.random.default_rng([seed, i])`` (a random labelled
volume, a random slice with body in it, a random crop of ``size``), so a run resumed from its
checkpoint sees the same data an uninterrupted one would.

::

    SEGRUN/
      segment.json        structures, label values, orientation, CycleGAN run, U-Net spec, settings
      checkpoints/        ckpt-00001000.pt ... (atomic; the newest `keep`)
      metrics.jsonl       one line per log interval: ce, dice, loss, lr, it_per_s
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import imtrans_core as ic
from imtrans_core.errors import ImtransError
from imtrans_core.slices import fit_to
from imtrans_core.training.progress import Progress
from imtrans_core.training.rundir import truncate_metrics

from . import data as segdata
from .config import SegmentConfig
from .structures import Structure, resolve

SEGMENT_JSON = "segment.json"
CHANNELS = ("ct", "mr")  # input channel order; at test time the CT channel holds synthetic CT


@dataclass
class SegmentResult:
    run_dir: Path
    start: int  # the iteration it started (resumed) at
    step: int  # the iteration it stopped at
    status: str  # finished | interrupted
    seconds: float
    last: dict[str, float] = field(default_factory=dict)


def train(
    config: SegmentConfig | None, out: Path | None = None, resume: Path | None = None, progress: bool = True
) -> SegmentResult:
    """Train (or resume) a segmentation run; returns where it went and how far it got."""
    import torch

    from imtrans_core.models import checkpoint_of
    from imtrans_core.training import checkpoint
    from imtrans_core.training.distributed import pick_device
    from imtrans_core.training.precision import autocast, resolve_amp
    from imtrans_core.translate import TorchBackend

    if resume is not None:
        run_dir = Path(resume)
        meta = read_meta(run_dir, option="--resume")
        config = SegmentConfig.from_dict(meta["config"], source=str(run_dir / SEGMENT_JSON))
    else:
        if config is None:
            raise ValueError("train() needs a config or resume=")
        run_dir = Path(out) if out is not None else Path("runs") / time.strftime("segment-%Y%m%d-%H%M%S")
        if checkpoint.list_checkpoints(run_dir):
            raise ImtransError(
                f"--out {run_dir} already holds a segmentation run; continue it with --resume {run_dir} "
                "or choose another --out"
            )
    _check(config)
    device = pick_device(config.device)
    amp = resolve_amp(config.amp, device)

    # -- the translator and the labelled CT -------------------------------------------------
    if not config.cyclegan:
        raise ImtransError(
            "--cyclegan: give the CycleGAN run (directory or checkpoint) whose G_MR makes the MR channel"
        )
    gen_ckpt = checkpoint_of(Path(config.cyclegan))
    g_mr = TorchBackend.from_model(gen_ckpt, "ct2mr", config.device, config.amp)
    if config.data:
        items, names, groups = segdata.from_source(ic.DATASETS.build(config.data), f"--data {config.data}")
    elif config.ct and config.labels:
        items, names, groups = segdata.from_folders(Path(config.ct), Path(config.labels))
    else:
        raise ImtransError(
            "labelled CT: give --data SPEC (a dataset with labelled subjects) or --ct DIR with --labels DIR"
        )
    structures = resolve(config.structures, names, groups)
    volumes = segdata.prepare(
        items, structures, g_mr, segdata.generator_key(gen_ckpt, g_mr), config.batch, progress
    )
    orientation = g_mr.orientation
    del g_mr

    # -- the network, the optimizer, and where a resumed run left off -----------------------
    net_spec = str(
        ic.GENERATORS.resolve(config.net, in_ch=len(CHANNELS), out_ch=len(structures) + 1, final="none")
    )
    torch.manual_seed(config.seed)
    net = he_init(ic.GENERATORS.build(net_spec)).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr, betas=(config.beta1, config.beta2))
    step = 0
    if resume is not None:
        state = checkpoint.load_latest(run_dir, map_location=device)
        if state is not None:
            net.load_state_dict(state["models"]["unet"])
            optimizer.load_state_dict(state["optimizer"])
            step = int(state["step"])
    meta = {
        "structures": [s.to_dict() for s in structures],
        "classes": ["background", *(s.name for s in structures)],
        "label_names": names,
        "channels": list(CHANNELS),
        "orientation": orientation,
        "cyclegan": str(Path(config.cyclegan).resolve()),
        "cyclegan_checkpoint": str(gen_ckpt.resolve()),
        "net": net_spec,
        "volumes": [v.id for v in volumes],
        "slices": int(sum(len(v.usable) for v in volumes)),
        "config": config.to_dict(),
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    checkpoint.write_json(run_dir / SEGMENT_JSON, {**meta, "step": step, "status": "running"})
    metrics_path = run_dir / "metrics.jsonl"
    truncate_metrics(metrics_path, step)

    def save() -> None:
        state = {
            "models": {"unet": net.state_dict()},
            "optimizer": optimizer.state_dict(),
            "step": step,
            "segment": meta,
            "config": config.to_dict(),
        }
        checkpoint.save(run_dir, step, state, config.keep)

    # -- the loop ----------------------------------------------------------------------------
    net.train()
    status, started, start, last = "finished", time.perf_counter(), step, {}
    sums: dict[str, float] = {}
    tick, tick_step = time.perf_counter(), step
    with Progress(config.iters, step, progress, label="segment train", terms=("ce", "dice")) as bar:
        try:
            while step < config.iters:
                x, y = sample_batch(volumes, config.size, config.batch, config.seed, step)
                x, y = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
                with autocast(device, amp):
                    logits = net(x)  # (N, K+1, S, S)
                terms = segmentation_loss(logits.float(), y, config.dice_loss)
                optimizer.zero_grad(set_to_none=True)
                terms["loss"].backward()
                optimizer.step()
                step += 1
                for k, v in terms.items():
                    sums[k] = sums.get(k, 0.0) + float(v.detach())
                if not np.isfinite(float(terms["loss"].detach())):
                    raise ImtransError(
                        f"the loss became {float(terms['loss'])} at iteration {step}; "
                        "lower --lr or use --amp off"
                    )
                if step % config.log_every == 0 or step == config.iters:
                    now = time.perf_counter()
                    n = step - tick_step
                    last = {k: v / n for k, v in sums.items()}
                    last.update(lr=config.lr, it_per_s=n / max(now - tick, 1e-9))
                    _append(metrics_path, {"iter": step, **last})
                    bar.update(step, last)
                    sums, tick, tick_step = {}, now, step
                if step % config.ckpt_every == 0 and step < config.iters:
                    save()
        except KeyboardInterrupt:
            status = "interrupted"
        except BaseException:
            checkpoint.write_json(run_dir / SEGMENT_JSON, {**meta, "step": step, "status": "failed"})
            raise
    save()
    checkpoint.write_json(run_dir / SEGMENT_JSON, {**meta, "step": step, "status": status})
    return SegmentResult(run_dir, start, step, status, time.perf_counter() - started, last)


def sample_batch(
    volumes: list[segdata.TrainingVolume], size: int, batch: int, seed: int, step: int
) -> tuple[np.ndarray, np.ndarray]:
    """Iteration ``step``'s batch: ``x`` (N, 2, S, S) float32 [-1, 1] (CT, synthetic MR); ``y`` (N, S, S) int64."""
    rng = np.random.default_rng([seed, step])
    usable = [v for v in volumes if len(v.usable)]
    xs, ys = [], []
    for _ in range(batch):
        volume = usable[int(rng.integers(len(usable)))]
        index = int(volume.usable[int(rng.integers(len(volume.usable)))])
        crop = int(rng.integers(2**31))  # one crop offset for all three images
        ct, mr = (
            fit_to(np.asarray(a[index], dtype=np.float32), size, np.random.default_rng(crop))
            for a in (volume.ct, volume.mr)
        )
        labels = fit_to(volume.classes[index].astype(np.float32), size, np.random.default_rng(crop))
        xs.append(np.stack([ct, mr]))
        ys.append(np.maximum(labels, 0))  # padding comes in as the image background (-1): make it class 0
    return np.stack(xs).astype(np.float32), np.stack(ys).astype(np.int64)


def segmentation_loss(logits: Any, target: Any, dice_weight: float = 0.0) -> dict[str, Any]:
    """Cross-entropy (Ronneberger et al.) plus ``dice_weight`` x soft Dice loss over the structures.

    ``logits`` (N, K+1, H, W) float32; ``target`` (N, H, W) int64 in 0..K.
    """
    import torch.nn.functional as F

    ce = F.cross_entropy(logits, target)
    terms = {"ce": ce}
    if dice_weight > 0:
        probs = logits.softmax(dim=1)[:, 1:]  # (N, K, H, W)
        onehot = F.one_hot(target, logits.shape[1]).permute(0, 3, 1, 2)[:, 1:].float()
        inter = (probs * onehot).sum(dim=(0, 2, 3))
        total = probs.sum(dim=(0, 2, 3)) + onehot.sum(dim=(0, 2, 3))
        soft_dice = (2 * inter + 1.0) / (total + 1.0)
        terms["dice"] = 1.0 - soft_dice.mean()
        terms["loss"] = ce + dice_weight * terms["dice"]
    else:
        terms["loss"] = ce
    return terms


def he_init(net: Any) -> Any:
    """Ronneberger et al.'s initialisation (U-Net paper, §3): conv weights ~ N(0, 2 / fan_in), biases 0.

    The generators' reference-CycleGAN initialisation (N(0, 0.02)) starts every ReLU layer far
    too small for a classifier: on the hip phantom the U-Net then merged femur, gluteus medius
    and minimus into one class for hundreds of iterations, where this one separated all four.
    """
    import torch

    for module in net.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
    return net


def read_meta(run: Path, option: str = "SEGRUN") -> dict[str, Any]:
    """``segment.json`` of a segmentation run directory (a clear error when it is not one)."""
    path = Path(run) / SEGMENT_JSON
    if not Path(run).exists():
        raise ImtransError(
            f"{option} {run}: no such segmentation run (train one with `imtrans segment train`)"
        )
    if not path.is_file():
        raise ImtransError(
            f"{option} {run}: not a segmentation run (no {SEGMENT_JSON}); "
            "pass the --out folder of `imtrans segment train`"
        )
    try:
        return json.loads(path.read_text())
    except ValueError:
        raise ImtransError(f"{path}: damaged (not JSON); train the run again") from None


def structures_of(meta: dict[str, Any]) -> list[Structure]:
    return [Structure.from_dict(s) for s in meta["structures"]]


def _check(config: SegmentConfig) -> None:
    for name in ("iters", "batch", "size", "log_every", "ckpt_every"):
        if getattr(config, name) < 1:
            raise ImtransError(f"--{name.replace('_', '-')} {getattr(config, name)}: must be at least 1")
    if config.size < 16:
        raise ImtransError(f"--size {config.size}: too small for a U-Net; use 16 or more (the paper: 256)")
    if config.lr <= 0 or config.dice_loss < 0:
        raise ImtransError("--lr must be > 0 and --dice-loss >= 0")


def _append(path: Path, record: dict[str, Any]) -> None:
    with path.open("a") as handle:
        handle.write(
            json.dumps({k: (round(v, 6) if isinstance(v, float) else v) for k, v in record.items()}) + "\n"
        )
