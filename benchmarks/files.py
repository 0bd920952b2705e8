"""Reading and writing one volume in each format: what ``translate`` and ``data prepare`` pay per file.

A synthetic CT as ``translate`` writes it (float32, the phantom's 256 x 38 x 256 grid) is
written and read back through :mod:`imtrans_core.data.io` in each format, variants interleaved
over rounds after a warm-up, medians; ``.nii.gz`` twice: compressed by ISA-L (imtrans' writer
where ``isal`` is installed) and by zlib (nibabel's writer, used where it is not).

    python benchmarks/files.py             # docs/results/benchmarks/files-CLASS.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe_machine, print_table, results_json, write_json

import imtrans_core as ic
from imtrans_core.data import io as volume_io

#: variant -> (file suffix, gzip by ISA-L)
VARIANTS = {
    ".nii.gz, ISA-L": (".nii.gz", True),
    ".nii.gz, zlib": (".nii.gz", False),
    ".nii": (".nii", False),
    ".mha (compressed)": (".mha", False),
}


def synthetic_ct() -> volume_io.Volume:
    """A float32 CT in HU on the phantom's grid, as translate writes one."""
    ct = ic.DATASETS.build("phantom:n_ct=0,n_mr=0,n_paired=1,size=256").paired[0].load()["ct"]
    return ct.with_array(ct.array.astype(np.float32))


def time_once(volume: volume_io.Volume, path: Path, fast_gzip: bool) -> tuple[float, float]:
    """Seconds to write ``volume`` to ``path`` and to read it back."""
    fast = volume_io.igzip
    volume_io.igzip = fast if fast_gzip else None
    try:
        start = time.perf_counter()
        volume_io.write_volume(volume, path)
        written = time.perf_counter()
        volume_io.read_volume(path)
        return written - start, time.perf_counter() - written
    finally:
        volume_io.igzip = fast


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out", type=Path, help="default: docs/results/benchmarks/files-CLASS.json")
    args = parser.parse_args()
    if volume_io.igzip is None:
        sys.exit("isal is not installed: pip install isal (the ISA-L row needs it)")
    volume = synthetic_ct()
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="imtrans-io-") as tmp:
        files = {
            name: Path(tmp) / f"ct-{i}{suffix}" for i, (name, (suffix, _)) in enumerate(VARIANTS.items())
        }
        for round_ in range(args.rounds + 1):  # the first round warms the page cache and the imports
            for name, (_, fast_gzip) in VARIANTS.items():
                measured = time_once(volume, files[name], fast_gzip)
                if round_:
                    times[name].append(measured)
        sizes = {name: path.stat().st_size for name, path in files.items()}
    base = statistics.median(t[0] for t in times[".nii.gz, zlib"])
    rows = []
    for name in VARIANTS:
        write = statistics.median(t[0] for t in times[name])
        read = statistics.median(t[1] for t in times[name])
        rows.append(
            {
                "variant": name,
                "write_s": round(write, 3),
                "vs_zlib": round(base / write, 2),
                "read_s": round(read, 3),
                "size_mb": round(sizes[name] / 1e6, 2),
            }
        )
    print_table(f"one float32 CT of {' x '.join(map(str, volume.shape))}, written and read back", rows)
    out = args.out or results_json("files", quick=False)
    result = {"benchmark": "files", "shape": list(volume.shape), "rounds": args.rounds, "rows": rows}
    write_json(out, {**result, "times": times, "machine": describe_machine()})


if __name__ == "__main__":
    main()
