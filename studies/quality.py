"""How good is the synthetic CT, and what makes it so: the experiments of docs/studies/quality-variants.md.

Each *variant* is the small preset with a few options changed (``VARIANTS``).
For every training seed this trains it (or reuses a finished run made with the
very same configuration), translates the paired test MRs of the phantom and
scores the synthetic CTs against the real ones in the body mask, with the same
functions as ``imtrans evaluate`` (the baselines beside them in the docs'
table come from ``studies/baselines.py`` on the same subjects). One JSON
per variant under ``--results`` and, for the first seed, a picture of the first
test subject in three planes (MR, CT, synthetic CT, |error|) and the scores at
each kept checkpoint (a learning curve).

    python studies/quality.py --variant cpu --seeds 0 1 2
    python studies/quality.py --variant gc1-long --seeds 0 --runs runs/quality
    python studies/quality.py --list
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # the tools studies share
sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe_machine, print_table, write_json
from seeds import over_seeds, train_or_reuse

REPO = Path(__file__).resolve().parents[1]
TEST_DATA = "phantom:n_ct=0,n_mr=0,n_paired=5,size=128"  # the same phantom as the small preset's pools
RESULTS = REPO / "docs" / "results" / "quality"  # one JSON per variant
DEMO_LOSS = ["gc:0.3,abs=true"]
SMALL = "resnet9:ngf=32,n_blocks=6"
PAIRS = "phantom:n_ct=12,n_mr=12,n_paired=2,size=128,n_train_pairs=12"  # the small preset's data + 12 pairs


def pairs(n: int) -> str:
    """The small preset's data with ``n`` aligned training pairs beside its unpaired pools."""
    return PAIRS.replace("n_train_pairs=12", f"n_train_pairs={n}")


FEW_PAIRS = pairs(2)
SUPERVISED = ["paired:1", "lsgan:0", "cycle:0"]
UNET = "unet:base=32"

# name: (options changed from the small preset, what the variant tests)
VARIANTS: dict[str, tuple[dict[str, Any], str]] = {
    "cpu": (
        {"loss": DEMO_LOSS},
        "the v0.1 cpu preset with GC on gradient magnitudes, as the demo trained it",
    ),
    "fp32": ({"loss": DEMO_LOSS, "amp": "off"}, "without bf16 autocast"),
    "resize": ({"loss": DEMO_LOSS, "gen": f"{SMALL},up=resize"}, "resize-convolution upsampling"),
    "crop": ({"loss": DEMO_LOSS, "size": 96}, "random 96 x 96 crops of the 128 x 128 slices"),
    "gc1": ({"loss": ["gc:1,abs=true"]}, "GC weight 1, not 0.3"),
    "cycle10": ({"loss": [*DEMO_LOSS, "cycle:10"]}, "cycle weight 10 (the reference CycleGAN's), not 3"),
    "d34": ({"loss": DEMO_LOSS, "disc": "patchgan:ndf=32,n_layers=2"}, "a 34 x 34 PatchGAN, not 70 x 70"),
    "hybrid": (
        {"loss": [*DEMO_LOSS, "paired"], "data": PAIRS},
        "CycleGAN + GC on the pools plus L1 on the 12 aligned pairs (weight 10)",
    ),
    "gc1-long": ({"loss": ["gc:1,abs=true"], "iters": 6000}, "GC weight 1, five times the iterations"),
    "supervised": ({"loss": SUPERVISED, "data": PAIRS}, "L1 on 12 aligned pairs: the upper bound"),
    "supervised-d1": (
        {"loss": SUPERVISED, "data": PAIRS, "gen": f"{SMALL},n_down=1"},
        "the supervised model with one halving before the residual blocks, not two",
    ),
    "supervised-unet": (
        {"loss": SUPERVISED, "data": PAIRS, "gen": UNET},
        "the supervised model with a U-Net generator (32 base filters)",
    ),
    "unet": ({"loss": ["gc:1,abs=true"], "gen": UNET}, "`gc1` with a U-Net generator (32 base filters)"),
    "d1": ({"loss": ["gc:1,abs=true"], "gen": f"{SMALL},n_down=1"}, "`gc1` with one halving, not two"),
    "nogc": ({}, "the small preset without GC: CycleGAN alone"),
    "mind": ({"loss": ["mind:3"]}, "MIND structure consistency (weight 3) in place of GC"),
    "dnonorm": (
        {"loss": ["gc:1,abs=true"], "disc": "patchgan:ndf=32,norm=none"},
        "`gc1` with discriminators without instance norm: absolute values reach every layer",
    ),
    "d142": (
        {"loss": ["gc:1,abs=true"], "disc": "patchgan:ndf=32,n_layers=4"},
        "`gc1` with 142 x 142 PatchGANs: each judges the whole 128 x 128 slice",
    ),
    "gc-signed": (
        {"loss": ["gc:0.3,abs=false"]},
        "GC on signed Sobel gradients (Eq. 4 as printed), not magnitudes",
    ),
    "gc-diff": (
        {"loss": ["gc:0.3,op=diff,abs=true"]},
        "GC on magnitudes of central differences (the authors' public code), not of Sobel gradients",
    ),
    "dblur": (
        {"loss": ["gc:1,abs=true"], "disc": "patchgan:ndf=32,blur=1.5"},
        "`gc1` with discriminators that see the images blurred (SD 1.5 px): no CT noise to imitate",
    ),
    "ctx1": (
        {"loss": ["gc:1,abs=true"], "context": 1},
        "`gc1` on 2.5-D stacks: each slice with one neighbour on each side as channels, in and out",
    ),
    "supervised-unet-ctx1": (
        {"loss": SUPERVISED, "data": PAIRS, "gen": UNET, "context": 1},
        "the supervised U-Net on 2.5-D stacks (3 adjacent slices in and out)",
    ),
    "hist": (
        {"loss": ["gc:1,abs=true", "hist:3"]},
        "`gc1` plus the intensity-distribution term (W1 of synthetic against real values, weight 3)",
    ),
    "cycle-noise": (
        {"loss": ["gc:1,abs=true", "cycle:3,noise=0.1"]},
        "`gc1` with noise (SD 0.1, 25 HU) on each translation before the cycle: no hidden pattern survives",
    ),
    "position": (
        {"loss": ["gc:1,abs=true"], "pairing": "position"},
        "`gc1` with each step's CT slice drawn at the MR slice's relative depth (another subject)",
    ),
    "hist-position": (
        {"loss": ["gc:1,abs=true", "hist:3"], "pairing": "position"},
        "`hist` with `position`'s slices: each value distribution compared with a CT slice of like depth",
    ),
    "gc1-init0": (
        {"loss": ["gc:1,abs=true"], "init_seed": 0},
        "`gc1` with seed 0's initial weights whatever the seed: the seed then sets the data order alone",
    ),
    "supervised-unet-2": (
        {"loss": SUPERVISED, "data": FEW_PAIRS, "gen": UNET},
        "the supervised U-Net on 2 aligned pairs, not 12",
    ),
    "hybrid-unet-2": (
        {"loss": [*DEMO_LOSS, "paired"], "data": FEW_PAIRS, "gen": UNET},
        "the hybrid U-Net with 2 aligned pairs beside the unpaired pools, not 12",
    ),
    "hybrid-unet": (
        {"loss": [*DEMO_LOSS, "paired"], "data": PAIRS, "gen": UNET},
        "the hybrid with a U-Net generator (32 base filters)",
    ),
    "prior": (
        {"loss": ["gc:1,abs=true", "prior"]},
        "`gc1` warm-started on the contrast prior (L1 to the MR's values mapped in inverse rank onto the CT "
        "pool's, weight 10 falling to 0 at iteration 400)",
    ),
    "prior-unet": (
        {"loss": ["gc:1,abs=true", "prior"], "gen": UNET},
        "`prior` with a U-Net generator (32 base filters)",
    ),
    "prior-hold": (
        {"loss": ["gc:1,abs=true", "prior:1,until=0"]},
        "`gc1` held to the contrast prior throughout at weight 1, not warm-started",
    ),
    "prior-hold3": (
        {"loss": ["gc:1,abs=true", "prior:3,until=0"]},
        "`gc1` held to the contrast prior throughout at weight 3",
    ),
    "ema": (
        {"loss": ["gc:1,abs=true", "prior"], "gen": UNET, "ema": 0.995},
        "`prior-unet` translating with the moving average of its generators' weights (`--ema 0.995`)",
    ),
    "prior-unet-hold3": (
        {"loss": ["gc:1,abs=true", "prior:3,until=0"], "gen": UNET},
        "`prior-unet` held to the contrast prior throughout at weight 3, not warm-started",
    ),
    "prior-unet-hold10": (
        {"loss": ["gc:1,abs=true", "prior:10,until=0"], "gen": UNET},
        "`prior-unet` held to the contrast prior throughout at weight 10, not warm-started",
    ),
    "prior-unet-long": (
        {"loss": ["gc:1,abs=true", "prior"], "gen": UNET, "iters": 2400},
        "`prior-unet` for twice the iterations (about 20 minutes of training)",
    ),
    "prior-unet-hold3-long": (
        {"loss": ["gc:1,abs=true", "prior:3,until=0"], "gen": UNET, "iters": 2400},
        "`prior-unet-hold3` for twice the iterations",
    ),
    "prior-unet-hold3-long-ema": (
        {"loss": ["gc:1,abs=true", "prior:3,until=0"], "gen": UNET, "iters": 2400, "ema": 0.995},
        "`prior-unet-hold3-long` translating with the moving average of its "
        "generators' weights (`--ema 0.995`)",
    ),
    "clean-unet": (
        {"loss": ["gc:1,abs=true", "prior:3,until=0", "lsgan:1,denoise_ct=0.15"], "gen": UNET},
        "`prior-unet-hold3` with D_CT shown the real CTs denoised (bilateral, 37.5 HU): no noise to imitate",
    ),
    "clean-unet-nogc": (
        {"loss": ["prior:3,until=0", "lsgan:1,denoise_ct=0.15"], "gen": UNET},
        "`clean-unet` without GC",
    ),
    "clean-unet-nogc-blur2": (
        {"loss": ["prior:3,until=0,blur=2", "lsgan:1,denoise_ct=0.15"], "gen": UNET},
        "`clean-unet-nogc` with the prior compared low-passed (2 px)",
    ),
    "prior-unet-hold3-cycle1": (
        {"loss": ["gc:1,abs=true", "prior:3,until=0", "cycle:1"], "gen": UNET},
        "`prior-unet-hold3` with cycle weight 1, not 3",
    ),
    "marrow-unet": (
        {"loss": ["gc:1,abs=true", "prior:3,until=0,marrow=true"], "gen": UNET},
        "`prior-unet-hold3` with G_MR held to bright marrow inside the CT's cortex: `prior:3,until=0,marrow=true`",
    ),
    "marrow-unet-long": (
        {"loss": ["gc:1,abs=true", "prior:3,until=0,marrow=true"], "gen": UNET, "iters": 2400},
        "`prior-unet-hold3-long` with `marrow=true`: `--preset cpu-unet`",
    ),
    "marrow-unet-long-nogc": (
        {"loss": ["prior:3,until=0,marrow=true"], "gen": UNET, "iters": 2400},
        "`marrow-unet-long` (`--preset cpu-unet`) without GC",
    ),
    "marrow-unet-long-hold10": (
        {"loss": ["gc:1,abs=true", "prior:10,until=0,marrow=true"], "gen": UNET, "iters": 2400},
        "`marrow-unet-long` (`--preset cpu-unet`) held to the prior at weight 10, not 3",
    ),
    "marrow-unet-long-adv03": (
        {"loss": ["gc:1,abs=true", "prior:3,until=0,marrow=true", "lsgan:0.3"], "gen": UNET, "iters": 2400},
        "`marrow-unet-long` (`--preset cpu-unet`) with the adversarial terms at weight 0.3, not 1",
    ),
    "prior-ct-unet-long": (
        {"loss": ["gc:1,abs=true", "prior:3,until=0,only=ct"], "gen": UNET, "iters": 2400},
        "`prior-unet-hold3-long` with only G_CT held to the prior (`only=ct`): G_MR left to the data",
    ),
    "nocycle-unet-long": (
        {"loss": ["gc:1,abs=true", "prior:3,until=0", "cycle:0"], "gen": UNET, "iters": 2400},
        "`prior-unet-hold3-long` without the cycle: nothing asks the synthetic CT to carry what only the MR shows",
    ),
    "prior-unet-hold3-adv3": (
        {"loss": ["gc:1,abs=true", "prior:3,until=0", "lsgan:3"], "gen": UNET},
        "`prior-unet-hold3` with the adversarial terms at weight 3, not 1",
    ),
    "supervised-unet-4": (
        {"loss": SUPERVISED, "data": pairs(4), "gen": UNET},
        "the supervised U-Net on 4 aligned pairs, not 12",
    ),
    "supervised-unet-2-long": (
        {"loss": SUPERVISED, "data": FEW_PAIRS, "gen": UNET, "iters": 2400},
        "`supervised-unet-2` for twice the iterations",
    ),
}
METRICS = ("mae", "psnr", "ssim", "mae_hu", "shift_mm", "mae_bone", "mae_muscle", "mae_fat")
CURVE_POINTS = 6  # checkpoints kept along each run, scored for the first seed's learning curve


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--variant", choices=sorted(VARIANTS), help="Which variant to train and score.")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="Training seeds (default 0).")
    parser.add_argument("--iters", type=int, default=None, help="Iterations (default: the variant's).")
    parser.add_argument("--runs", type=Path, default=Path("runs/quality"), help="Where the runs go.")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--images", type=Path, default=REPO / "docs" / "images" / "quality")
    parser.add_argument("--list", action="store_true", help="List the variants and exit.")
    args = parser.parse_args()
    if args.list or not args.variant:
        for name, (changes, why) in VARIANTS.items():
            print(f"{name:12s} {why}: {json.dumps(changes)}")
        return

    import imtrans_core as ic

    ic.plugins.load()
    subjects = [s.load() | {"id": s.id} for s in ic.DATASETS.build(TEST_DATA).paired]
    seeds = {str(seed): run_seed(args, seed, subjects) for seed in args.seeds}
    result = summarize_variant(args.variant, seeds)
    result["iters"] = config_of(args.variant, args.seeds[0], args.iters).iters
    result["machine"] = describe_machine()
    table = [{"variant": f"{args.variant} (mean of {len(seeds)} seeds)", **_cells(result["mean"])}]
    print_table(f"{args.variant} on {TEST_DATA}", table)
    write_json(args.results / f"{args.variant}.json", json.loads(json.dumps(result, default=float)))


def run_seed(args: argparse.Namespace, seed: int, subjects: list[dict[str, Any]]) -> dict[str, Any]:
    """Train (or reuse) one seed's run and score it; the first seed also draws its picture and curve."""
    run, seconds = train_variant(args.variant, seed, args.iters, args.runs)
    rows = score(run, subjects)
    result = {"run": run.name, "train_seconds": seconds, "rows": rows, "mean": mean_of(rows)}
    print(f"{args.variant} seed {seed}: " + ", ".join(f"{k} {result['mean'][k]:.3f}" for k in METRICS))
    if seed == args.seeds[0]:
        write_picture(subjects[0], args.images / f"{args.variant}.png")
        result["curve"] = learning_curve(run, subjects)
    return result


def config_of(variant: str, seed: int, iters: int | None) -> Any:
    from imtrans_core.training import resolve_config

    changes = {**VARIANTS[variant][0], "seed": seed}
    if iters is not None:
        changes["iters"] = iters
    config = resolve_config(changes, None, changes.pop("preset", "small"))
    return replace(config, ckpt_every=max(config.iters // CURVE_POINTS, 1), keep=CURVE_POINTS + 1)


def train_variant(variant: str, seed: int, iters: int | None, runs: Path) -> tuple[Path, float]:
    """The finished run of ``variant`` with ``seed``: trained now, or reused if its config is the same."""
    run = runs / f"{variant}-seed{seed}"
    return run, train_or_reuse(config_of(variant, seed, iters), run)


def score(run: Path, subjects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per test subject: the synthetic CT of ``run``'s G_CT scored against the real CT in the body mask."""
    from imtrans_core.evaluation.scoring import evaluate_pair
    from imtrans_core.inference.backends import TorchBackend
    from imtrans_core.inference.translate import translate_volume

    backend = TorchBackend.from_model(run, "mr2ct", device="cpu")
    rows = []
    for subject in subjects:
        subject["sct"] = translate_volume(subject["mr"], backend)
        scores = evaluate_pair(subject["sct"], subject["ct"], mask=subject["mask"])
        rows.append(
            {"id": subject["id"], **scores, "shift_mm": learned_shift(subject), **tissue_errors(subject)}
        )
    return rows


def tissue_errors(subject: dict[str, Any]) -> dict[str, float]:
    """MAE on the paper's scale inside the phantom's bone, muscle and fat: where the error is."""
    import imtrans_core as ic

    mae = ic.METRICS.build("mae:scale=paper")
    labels = subject["labels"].array
    return {
        f"mae_{tissue}": float(mae(subject["sct"].array, subject["ct"].array, tissue_mask(labels, tissue)))
        for tissue in ("bone", "muscle", "fat")
    }


def tissue_mask(labels: np.ndarray, tissue: str) -> np.ndarray:
    """Where the phantom's ``labels`` hold ``tissue``: a label group (bone, muscle) or one label (fat)."""
    from imtrans_hip.anatomy import LABEL_GROUPS, LABELS

    names = LABEL_GROUPS.get(tissue, [tissue])
    return np.isin(labels, [LABELS[n] for n in names if n in LABELS])


def study(doc: str, out: str) -> tuple[argparse.Namespace, list[dict[str, Any]], Any, dict[str, Path]]:
    """What a script studying trained variants starts from (studies/boundaries.py, bones.py, tissues.py).

    Its command line (``--variants``, ``--runs``, ``--out``, default
    ``docs/results/OUT``), the paired test subjects, the contrast prior's map
    (MR volume -> HU volume) and, by table row name, the run of the first seed
    each variant's committed JSON lists. A variant without results or without
    its run stops the script in one line, before any work.
    """
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--variants", nargs="+", required=True, help="Variants of studies/quality.py.")
    parser.add_argument("--runs", type=Path, default=Path("runs/quality"), help="Where their runs are.")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "results" / out)
    args = parser.parse_args()

    import imtrans_core as ic
    from imtrans_core.demo import contrast_prior_map
    from imtrans_core.training.config import SMALL_SCALE

    runs = {}
    for variant in args.variants:
        if not (RESULTS / f"{variant}.json").is_file():
            sys.exit(
                f"error: --variants {variant}: no {RESULTS / variant}.json; run quality.py --variant {variant}"
            )
        seed = next(iter(json.loads((RESULTS / f"{variant}.json").read_text())["seeds"]))
        run = runs[f"`{variant}` (seed {seed})"] = args.runs / f"{variant}-seed{seed}"
        if not (run / "checkpoints").is_dir():
            sys.exit(f"error: --runs {args.runs}: no trained run {run.name} there")
    ic.plugins.load()
    subjects = [s.load() for s in ic.DATASETS.build(TEST_DATA).paired]
    return args, subjects, contrast_prior_map(SMALL_SCALE["data"]), runs


def synthetic_cts(subjects: list[dict[str, Any]], prior: Any, runs: dict[str, Path]) -> dict[str, list]:
    """Each test subject's CT as a second scan draws it (a perfect GAN), as the contrast prior's map
    draws it from the MR, and as each run's G_CT translates the MR: by table row name."""
    import imtrans_core as ic
    from imtrans_core.inference.backends import TorchBackend
    from imtrans_core.inference.translate import translate_volume

    images = {
        "second scan": [s.load()["ct"] for s in ic.DATASETS.build(f"{TEST_DATA},repeat=1").paired],
        "contrast prior": [prior(s["mr"]) for s in subjects],
    }
    for name, run in runs.items():
        backend = TorchBackend.from_model(run, "mr2ct", device="cpu")
        images[name] = [translate_volume(s["mr"], backend) for s in subjects]
    return images


def learned_shift(subject: dict[str, Any], reach: int = 16) -> float:
    """How far (mm, + superior) the synthetic CT's anatomy sits from the real one's, along the body axis.

    The shift of the synthetic CT that brings it closest (MAE in the window,
    inside the body) to the real CT. An unpaired mapping between two archives
    that frame the hip differently can learn to move the anatomy: 0 means it did not.
    """
    ct, sct = (np.clip(subject[k].array, *WINDOW) for k in ("ct", "sct"))
    inside = subject["mask"].array[..., reach:-reach] > 0
    errors = {
        s: np.abs(np.roll(sct, s, axis=2)[..., reach:-reach] - ct[..., reach:-reach])[inside].mean()
        for s in range(-reach, reach + 1)
    }
    return float(-min(errors, key=errors.get) * subject["ct"].spacing[2])  # rolled up by s: it sat s low


def learning_curve(run: Path, subjects: list[dict[str, Any]]) -> list[dict[str, float]]:
    """Mean scores over the test subjects at each kept checkpoint of ``run``."""
    from imtrans_core.training.checkpoint import list_checkpoints

    curve = []
    for path in list_checkpoints(run):  # ckpt-00001200.pt
        curve.append({"iteration": int(path.stem.split("-")[1]), **mean_of(score(path, subjects))})
    return curve


def mean_of(rows: list[dict[str, Any]]) -> dict[str, float]:
    return {k: float(np.mean([r[k] for r in rows])) for k in METRICS if k in rows[0]}


def summarize_variant(variant: str, seeds: dict[str, Any]) -> dict[str, Any]:
    """Mean and SD over seeds of each seed's mean over subjects."""
    return {
        "variant": variant,
        "changes": VARIANTS[variant][0],
        "why": VARIANTS[variant][1],
        "test_data": TEST_DATA,
        "seeds": seeds,
        **over_seeds([s["mean"] for s in seeds.values()]),
    }


def _cells(means: dict[str, float]) -> dict[str, str]:
    return {k: f"{means[k]:.3f}" if k in means else "" for k in METRICS}


# ----------------------------------------------------------------------------- pictures

WINDOW = (-150.0, 350.0)
ERROR_HU = 200.0  # |error| drawn white at and above this


def write_picture(subject: dict[str, Any], path: Path) -> None:
    """MR, CT, synthetic CT and |error| (0 black .. 200 HU white) in coronal, sagittal and axial planes.

    The error is the metric's: both CTs clipped to the window, inside the body mask only.
    """
    import SimpleITK as sitk

    ct, sct = subject["ct"].array, subject["sct"].array
    mr = subject["mr"].array / max(float(np.percentile(subject["mr"].array, 99.5)), 1e-6)
    error = np.abs(np.clip(sct, *WINDOW) - np.clip(ct, *WINDOW)) * (subject["mask"].array > 0)
    images = [mr, _window(ct), _window(sct), error / ERROR_HU]
    spacing = subject["ct"].spacing
    planes = [_planes(np.clip(a, 0, 1), spacing) for a in images]
    # top: the coronal planes (the model's), then the sagittal ones; below: the axial ones
    rows = [np.concatenate([_pad(p[i]) for i in (0, 2) for p in planes], axis=1)]
    rows.append(np.concatenate([_pad(p[1]) for p in planes], axis=1))
    width = max(r.shape[1] for r in rows)
    figure = np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]))) for r in rows], axis=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(sitk.GetImageFromArray(np.round(figure * 255).astype(np.uint8)), str(path))
    print(f"wrote {path}")


def _window(hu: np.ndarray) -> np.ndarray:
    return (hu - WINDOW[0]) / (WINDOW[1] - WINDOW[0])


def _planes(a: np.ndarray, spacing: tuple[float, ...]) -> list[np.ndarray]:
    """Middle coronal (superior up), axial through the middle and sagittal through the left femoral head.

    The phantom's arrays are (left, posterior, superior); each plane is
    resampled to 1.25 mm pixels so the three share one scale.
    """
    j, k = a.shape[1] // 2, a.shape[2] // 2
    head = int(a.shape[0] * 0.32)
    coronal = np.flipud(a[:, j, :].T)
    axial = a[:, :, k].T  # anterior up
    sagittal = np.flipud(a[head, :, :].T)
    return [
        _zoom(coronal, spacing[2], spacing[0]),
        _zoom(axial, spacing[1], spacing[0]),
        _zoom(sagittal, spacing[2], spacing[1]),
    ]


def _zoom(plane: np.ndarray, row_mm: float, col_mm: float, pixel: float = 1.25) -> np.ndarray:
    rows = np.clip(
        np.round(np.arange(round(plane.shape[0] * row_mm / pixel)) * pixel / row_mm), 0, plane.shape[0] - 1
    )
    cols = np.clip(
        np.round(np.arange(round(plane.shape[1] * col_mm / pixel)) * pixel / col_mm), 0, plane.shape[1] - 1
    )
    return plane[rows.astype(int)][:, cols.astype(int)]


def _pad(tile: np.ndarray) -> np.ndarray:
    return np.pad(tile, ((0, 4), (0, 4)))


if __name__ == "__main__":
    main()
