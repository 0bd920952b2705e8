"""What the two generators draw inside bone: the synthetic CT's HU and the synthetic MR's brightness there.

On a T1 (and a T2) the inside of a bone is fatty marrow, bright like fat; on
CT it is dense, far above fat. A map of inverse rank, as the contrast prior
fits, gets it backwards in both directions. This measures, on the paired test
subjects of docs/studies/quality-variants.md, each model's medians inside the bone labels: the
synthetic CT's HU (G_CT of the real MR) and the synthetic MR's brightness as a
share of its fat's (G_MR of the real CT; scale-free, as MRs have none), beside
the real CT's and MR's and the contrast prior's map, for the first seed's run
of each ``--variants`` (trained by ``studies/quality.py``, found in ``--runs``).

    python studies/bones.py --runs runs/quality \\
        --variants prior-unet-hold3-long marrow-unet supervised-unet-4
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # the tools studies share
sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import print_table, write_json
from quality import TEST_DATA, study, tissue_mask

COLUMNS = ("CT: bone [HU]", "CT: fat [HU]", "MR: bone / fat")


def main() -> None:
    args, subjects, prior, runs = study(__doc__, "bones.json")
    from imtrans_core.inference.backends import TorchBackend
    from imtrans_core.inference.translate import translate_volume

    images = {
        "real CT and MR": ([s["ct"] for s in subjects], [s["mr"] for s in subjects]),
        "contrast prior": ([prior(s["mr"]) for s in subjects], None),
    }
    for name, run in runs.items():
        to_ct, to_mr = (TorchBackend.from_model(run, d, device="cpu") for d in ("mr2ct", "ct2mr"))
        images[name] = (
            [translate_volume(s["mr"], to_ct) for s in subjects],
            [translate_volume(s["ct"], to_mr) for s in subjects],
        )
    rows = {name: medians(cts, mrs, subjects) for name, (cts, mrs) in images.items()}
    print_table(
        "medians inside the bone labels, mean over the test subjects",
        [{"image": n, **{c: "" if v is None else f"{v:.2f}" for c, v in r.items()}} for n, r in rows.items()],
    )
    write_json(args.out, {"test_data": TEST_DATA, "columns": list(COLUMNS), "rows": rows})


def medians(cts: list, mrs: list | None, subjects: list[dict]) -> dict[str, float | None]:
    """Each column's median over a subject's voxels of that tissue, averaged over the subjects."""
    bone = [tissue_mask(s["labels"].array, "bone") for s in subjects]
    fat = [tissue_mask(s["labels"].array, "fat") for s in subjects]

    def per_subject(volumes: list, masks: list) -> np.ndarray:
        return np.array([np.median(v.array[m]) for v, m in zip(volumes, masks, strict=True)])

    ratio = None if mrs is None else float(np.mean(per_subject(mrs, bone) / per_subject(mrs, fat)))
    columns = (float(per_subject(cts, bone).mean()), float(per_subject(cts, fat).mean()), ratio)
    return dict(zip(COLUMNS, columns, strict=True))


if __name__ == "__main__":
    main()
