"""How patient-like is the phantom's CT? Its measures beside a real pelvis CT's, at the same voxel size.

For each of ``--subjects`` paired phantom subjects (seed stream ``paired``), rendered
with a field of view through the whole pelvis (``--thickness`` mm front to back, as
the real CT covers the whole body; the defaults' 76 mm slab holds less fat and more
bone), the CT and labels are brought to the real CT's 3 mm voxels (Gaussian
partial volume, then linear resampling; see ``imtrans_hip.realism``) and measured
like the real CT (``../shared/data/real/ts_example_ct.nii.gz`` with its
TotalSegmentator labels): per-structure median and SD inside labels eroded by 2
voxels, neighbour correlation per patient axis, and the Wasserstein-1 distance of
the body's HU distribution over the same height below the iliac crest. The real
femur is its right side only (the left holds a metal prosthesis).

It also times rendering one subject (CT, MR and labels) at the paper's grid,
256 x 38 x 256, with the default scan and with ``streaks=1`` (CT only, the
streaks' own cost): the median over ``--timings`` subjects.

    python studies/phantom_realism.py                     # 3 subjects -> docs/results/phantom_realism.json
    python studies/phantom_realism.py --subjects 5 --out /tmp/r.json
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # the tools studies share
sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import print_table, write_json

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "data" / "real"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=3, help="Paired phantom subjects to measure.")
    parser.add_argument("--seed", type=int, default=0, help="Phantom data-set seed.")
    parser.add_argument("--thickness", type=float, default=256.0, help="Front-to-back field of view, mm.")
    parser.add_argument("--real", type=Path, default=REAL, help="Folder with the real CT and its labels.")
    parser.add_argument("--timings", type=int, default=7, help="Subjects to time at the paper's grid.")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "results" / "phantom_realism.json")
    args = parser.parse_args()

    from imtrans_core.data.io import read_volume
    from imtrans_hip import phantom as ph
    from imtrans_hip import realism

    real = (
        read_volume(args.real / "ts_example_ct.nii.gz"),
        read_volume(args.real / "ts_example_seg_fast_force_split.nii.gz"),
    )
    structures = {**realism.TOTALSEGMENTATOR_STRUCTURES, "femur": (76,)}  # the left femur holds metal
    subjects = []
    for index in range(args.subjects):
        volumes = ph.render_subject(
            ph.subject_seed(args.seed, "paired", index),
            slices=round(args.thickness / 2.0),
            modalities=("ct", "labels"),
            scan=ph.Scan(thickness=args.thickness),
        )
        subjects.append(realism.compare((volumes["ct"], volumes["labels"]), real, structures))
    result = {
        "what": "phantom CT against a real pelvis CT (TotalSegmentator example), same 3 mm voxels",
        "phantom": {"seed": args.seed, "subjects": args.subjects, "thickness_mm": args.thickness},
        "real": os.path.relpath(args.real / "ts_example_ct.nii.gz", REPO),
        "subjects": subjects,
        "render_seconds_256x38x256": render_times(args.timings, ("ct", "mr", "labels"), ph.Scan()),
        "render_seconds_ct_256x38x256": render_times(args.timings, ("ct",), ph.Scan()),
        "render_seconds_ct_streaks_256x38x256": render_times(args.timings, ("ct",), ph.Scan(streaks=1.0)),
    }
    print_table("phantom (mean over subjects) / real CT", rows(subjects))
    write_json(args.out, result)


def render_times(n: int, modalities: tuple[str, ...], scan) -> dict:
    """Wall seconds to render ``modalities`` of one subject at 256 x 38 x 256 (after one warm-up)."""
    from imtrans_hip import phantom as ph

    ph.render_subject(ph.subject_seed(0, "mr", 0), modalities=modalities, scan=scan)
    seconds = []
    for index in range(n):
        start = time.perf_counter()
        ph.render_subject(ph.subject_seed(0, "mr", 1 + index), modalities=modalities, scan=scan)
        seconds.append(time.perf_counter() - start)
    what = f"{'+'.join(modalities)} {scan.key() or 'default scan'}"
    print(f"render {what}: median {np.median(seconds):.2f} s, max {max(seconds):.2f} s over {n} subjects")
    return {"median": float(np.median(seconds)), "each": seconds, "cores": os.cpu_count()}


def rows(subjects: list[dict]) -> list[dict[str, str]]:
    """One table row per structure: median, SD and mean neighbour correlation, phantom / real."""
    table = []
    for name in subjects[0]["structures"]:
        per = [s["structures"][name] for s in subjects if name in s["structures"]]
        real = per[0]["real"]

        def mean(key: str, side: str = "phantom", per=per) -> float:
            return float(np.mean([p[side][key] for p in per]))

        def texture(side: str, per=per) -> float:
            return float(np.mean([np.mean(list(p[side]["neighbour_correlation"].values())) for p in per]))

        table.append(
            {
                "variant": name,
                "median HU": f"{mean('median'):.0f} / {real['median']:.0f}",
                "SD HU": f"{mean('sd'):.0f} / {real['sd']:.0f}",
                "neighbour r": f"{texture('phantom'):.2f} / {texture('real'):.2f}",
            }
        )
    w1 = np.mean([s["body_wasserstein1_hu"] for s in subjects])
    table.append({"variant": "body W1 (HU)", "median HU": f"{w1:.0f}", "SD HU": "", "neighbour r": ""})
    return table


if __name__ == "__main__":
    main()
