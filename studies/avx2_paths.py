"""Which way of running the paper-size generator is fastest on a CPU without bf16 units, and how far
past torch fp32 does it go?

Issue #37 asks the whole ``translate`` on an AVX2-only CPU to run 2.5x torch fp32 within 2 HU.
There bf16 is emulated (slower than fp32), OpenVINO runs f32 and int8 lacks VNNI. This study
times the network alone, per slice, on the slices of one held-out phantom volume, for:

- torch fp32: oneDNN's direct convolutions, what ``--backend torch`` runs;
- two Winograd forms of the 3x3 stride-1 convolutions (the residual blocks: 18 of the 24
  convolutions, most of the multiply-adds: ``winograd_share`` in the JSON), which need 4x
  (F(4x4, 3x3)) and 5x (F(6x6, 3x3)) fewer multiplications:
  NNPACK's F(6x6, 3x3) kernels inside torch (one slice per call), and F(4x4, 3x3) written in
  torch operations (tile transforms and 36 GEMMs: what a Winograd ONNX graph would compute);
- OpenVINO in f32 on the fp32 export and on the int8 export (what ``--precision auto`` gives on
  a CPU without bf16 units); onnxruntime fp32 and int8 on native runs.

``--earlier FILE`` adds an earlier int8 export of the same run (e.g. one that kept more convolutions
in fp32) under OpenVINO, per slice and whole, so that both files are timed in one run.

Each path runs in a worker process of its own, the paths timed in interleaved rounds (medians),
then each translates the whole volume for its error against torch fp32 (|HU| in the body).
Then the whole ``imtrans translate`` command of ``benchmarks/volume.py`` (one 256 x 38 x 256
phantom MR, start-up to written file) for torch fp32 and OpenVINO f32 and int8, interleaved.

``--cap avx2`` emulates an AVX2-only CPU on one with AVX-512 or AMX (``machine.ISA_CAPS``): workers
and commands start with ``ONEDNN_MAX_CPU_ISA=AVX2`` (oneDNN in torch and OpenVINO),
``ATEN_CPU_CAPABILITY=avx2`` (torch's own kernels) and ``MKL_ENABLE_INSTRUCTIONS=AVX2`` (MKL's
GEMMs). Not capped, so left out or marked: onnxruntime's MLAS (left out), OpenVINO's own kernels
(its normalisation and quantization ran AVX-512: a few % of its time), NNPACK (whose x86 kernels are
AVX2 anyway). An emulation is a lead, not a measurement of an AVX2 CPU: other cores, clocks and
caches.

    python studies/avx2_paths.py --model runs/paper-sup --int8 runs/paper-sup-int8.onnx
    python studies/avx2_paths.py --model runs/paper-sup --int8 runs/paper-sup-int8.onnx --cap avx2
    python studies/avx2_paths.py ... --earlier runs/paper-sup-int8-earlier.onnx
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from inference import hu_errors, slice_flops  # noqa: E402
from machine import ISA_CAPS, describe_machine, int8_study_parser, print_table, results_path, write_json  # noqa: E402
from volume import errors, folder, run_command  # noqa: E402

PATHS = (
    "torch fp32",
    "torch fp32, Winograd by NNPACK",
    "torch fp32, Winograd F(4x4,3x3) in torch",
    "openvino f32",
    "openvino int8 (int8 export)",
    "onnxruntime fp32",
    "onnxruntime int8 (int8 export)",
    "openvino int8 (earlier export)",
)
EARLIER = PATHS[-1]  # with --earlier only
UNCAPPED = ("onnxruntime fp32", "onnxruntime int8 (int8 export)")  # MLAS reads the CPU itself
BATCH = 8  # translate's default
#: the whole command: (the file it runs, imtrans translate's options). OpenVINO in f32, which is its
#: choice on a CPU without bf16 units (emulated, it still sees them, and its bf16 compile fails)
WHOLE = {
    "torch fp32": ("run", ["--backend", "torch"]),
    "openvino f32": ("fp32", ["--backend", "openvino", "--precision", "f32"]),
    "openvino int8 (int8 export)": ("int8", ["--backend", "openvino", "--precision", "f32"]),
    EARLIER: ("earlier", ["--backend", "openvino", "--precision", "f32"]),
}

# Winograd F(4x4, 3x3) (Lavin & Gray 2016, points 0, +-1, +-2, inf): Y = A' [(G g G') * (B' d B)] A
B_T = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0]]
B_T += [[0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]]
G = [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6], [1 / 24, 1 / 12, 1 / 6]]
G += [[1 / 24, -1 / 12, 1 / 6], [0, 0, 1]]
A_T = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]


class NnpackConv(torch.nn.Module):
    """A 3x3 stride-1 convolution by NNPACK's Winograd kernels, one slice per call (its batched
    mode ran slower per slice than one at a time)."""

    def __init__(self, conv: torch.nn.Conv2d):
        super().__init__()
        self.conv, self.padding = conv, list(conv.padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w, b = self.conv.weight, self.conv.bias
        return torch.cat([torch._nnpack_spatial_convolution(s[None], w, b, self.padding) for s in x])


class WinogradConv(torch.nn.Module):
    """A 3x3 stride-1 convolution (no padding of its own) as Winograd F(4x4, 3x3): 6x6 input tiles
    every 4 pixels, transformed by one GEMM, 36 GEMMs over the channels, one GEMM back."""

    def __init__(self, conv: torch.nn.Conv2d):
        super().__init__()
        b_t, g, a_t = (torch.tensor(m, dtype=torch.float64) for m in (B_T, G, A_T))
        u = torch.einsum("ai,kcij,bj->abck", g, conv.weight.detach().double(), g)
        self.u = u.reshape(36, conv.in_channels, conv.out_channels).float().contiguous()
        self.b_t = torch.kron(b_t, b_t).float()  # vec(B' d B) = (B' x B') vec(d)
        self.a_t = torch.kron(a_t, a_t).float()
        self.bias = conv.bias.detach().view(1, -1, 1, 1) if conv.bias is not None else 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        th, tw = -(-(h - 2) // 4), -(-(w - 2) // 4)
        x = torch.nn.functional.pad(x, (0, tw * 4 + 2 - w, 0, th * 4 + 2 - h))
        tiles = x.unfold(2, 6, 4).unfold(3, 6, 4).permute(4, 5, 0, 2, 3, 1).reshape(36, -1)
        v = (self.b_t @ tiles).view(36, n * th * tw, c)
        m = torch.bmm(v, self.u).view(36, -1)
        y = (self.a_t @ m).view(4, 4, n, th, tw, -1).permute(2, 5, 3, 0, 4, 1)
        return y.reshape(n, -1, th * 4, tw * 4)[:, :, : h - 2, : w - 2] + self.bias


def replaceable(conv: torch.nn.Module) -> bool:
    """A 3x3 stride-1 ungrouped convolution without padding of its own (the ResNet pads by reflection)."""
    return (
        isinstance(conv, torch.nn.Conv2d)
        and conv.kernel_size == (3, 3)
        and conv.stride == (1, 1)
        and conv.dilation == (1, 1)
        and conv.groups == 1
        and conv.padding == (0, 0)
    )


def with_winograd(net: torch.nn.Module, kind: type[torch.nn.Module]) -> torch.nn.Module:
    """A copy of ``net`` whose :func:`replaceable` convolutions are ``kind``."""
    net = copy.deepcopy(net)
    for module in list(net.modules()):
        for name, child in list(module.named_children()):
            if replaceable(child):
                setattr(module, name, kind(child))
    return net


def replaceable_share(net: torch.nn.Module, x: np.ndarray) -> float:
    """Which part of one slice's multiply-adds the :func:`replaceable` convolutions hold."""
    counted: list[int] = []

    def count(conv, _inputs, output) -> None:
        counted.append(output.numel() * conv.in_channels * 9)

    hooks = [m.register_forward_hook(count) for m in net.modules() if replaceable(m)]
    with torch.inference_mode():
        net(torch.from_numpy(x[:1]))
    for hook in hooks:
        hook.remove()
    return 2 * sum(counted) / slice_flops(net, x[:1])


def torch_runner(net: torch.nn.Module):
    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return net(torch.from_numpy(x)).numpy()

    return run


def make_path(name: str, model: Path, files: dict[str, Path]):
    """The callable (a float32 batch in [-1, 1] -> the network's output) of path ``name``; ``files``:
    the ONNX files by kind (fp32, int8, earlier)."""
    kind = "fp32" if "int8" not in name else "earlier" if name == EARLIER else "int8"
    onnx_file = files[kind]
    if name.startswith("openvino"):
        from imtrans_core.onnx.openvino import OpenVinoBackend

        return OpenVinoBackend.from_file(onnx_file, precision="f32")
    if name.startswith("onnxruntime"):
        from imtrans_core.onnx.runtime import OnnxBackend

        return OnnxBackend.from_file(onnx_file, device="cpu")
    from imtrans_core.inference.models import load_generator

    net = load_generator(model, "mr2ct", device="cpu").net.eval()
    if "NNPACK" in name:
        if not torch._nnpack_available():  # also initialises NNPACK, without which every call fails
            sys.exit("this torch build has no NNPACK")
        net = with_winograd(net, NnpackConv)
    elif "Winograd" in name:
        net = with_winograd(net, WinogradConv)
    return torch_runner(net)


def in_batches(run, stack: np.ndarray) -> np.ndarray:
    return np.concatenate(
        [run(np.ascontiguousarray(stack[i : i + BATCH])) for i in range(0, len(stack), BATCH)]
    )


def worker(name: str, work: Path, model: Path, files: dict[str, Path]) -> None:
    """One path in this process: ``time`` -> ms per slice over the timed slices; ``all`` -> the whole
    stack's output saved beside it; ``quit``."""
    stack = np.load(work / "stack.npy")
    timed = stack[len(stack) // 2 - BATCH // 2 :][:BATCH]
    run = make_path(name, model, files)
    in_batches(run, timed)  # warm-up: primitive caches, allocator, OpenVINO's first requests
    print("ready", flush=True)
    for command in sys.stdin:
        if command.strip() == "time":
            start = time.perf_counter()
            in_batches(run, timed)
            print((time.perf_counter() - start) * 1000 / len(timed), flush=True)
        elif command.strip() == "all":
            np.save(work / f"out-{PATHS.index(name)}.npy", in_batches(run, stack))
            print("saved", flush=True)
        else:
            return


def prepare(model: Path, work: Path) -> dict[str, object]:
    """The fp32 export, the held-out volume's slices (as the inference benchmark takes them) and the
    volume benchmark's MR under ``work``; what the report says of them: the volume's id, the GFLOP per
    slice (direct convolutions) and the share of them that Winograd can take."""
    import imtrans_core as ic
    from imtrans_core.data.io import write_volume
    from imtrans_core.inference.models import load_generator
    from imtrans_core.onnx.export import export_model
    from imtrans_core.onnx.graph import WINDOWS
    from imtrans_core.onnx.sample_data import sample_data

    export_model(model, work / "fp32.onnx", direction="mr2ct", verify_model=False)
    data = sample_data("phantom:n_ct=1,n_mr=10,n_paired=0,size=256,slices=38", "mr", "coronal")
    stack = np.ascontiguousarray(WINDOWS["mr"].forward(data.volume)[:, None], dtype=np.float32)
    np.save(work / "stack.npy", stack)
    write_volume(
        ic.DATASETS.build("phantom:n_ct=0,n_mr=0,n_paired=1,size=256").paired[0].load()["mr"],
        work / "mr.nii.gz",
    )
    net = load_generator(model, "mr2ct", device="cpu").net.eval()
    return {
        "held_out_volume": data.volume_id,
        "gflop_per_slice": round(slice_flops(net, stack[:1]) / 1e9, 2),
        "winograd_share": round(replaceable_share(net, stack), 3),
    }


def main() -> None:
    parser = int8_study_parser(__doc__, "avx2_paths")
    parser.add_argument("--earlier", type=Path, help="an earlier int8 export of the run, timed beside --int8")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--whole-rounds", type=int, default=3, help="rounds of the whole command")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.work, args.model, onnx_files(args, args.work))
    out = args.out or results_path("avx2_paths", args.cap, ROOT / "docs" / "results")
    paths = [p for p in PATHS if not (args.cap and p in UNCAPPED) and (args.earlier or p != EARLIER)]
    env = {**os.environ, **ISA_CAPS.get(args.cap, {})}
    with tempfile.TemporaryDirectory(prefix="imtrans-avx2-") as tmp:
        work = Path(tmp)
        facts = prepare(args.model, work)
        times = time_workers(paths, args, work, env)
        outputs = {name: np.load(work / f"out-{PATHS.index(name)}.npy") for name in paths}
        slice_errors = hu_errors(outputs, np.load(work / "stack.npy"))
        whole = time_whole(args, work, env)
    report(out, args, paths, times, slice_errors, facts, whole)


def int8_files(args: argparse.Namespace) -> dict[str, Path]:
    return {"int8": args.int8, **({"earlier": args.earlier} if args.earlier else {})}


def onnx_files(args: argparse.Namespace, work: Path) -> dict[str, Path]:
    return {"fp32": work / "fp32.onnx", **int8_files(args)}


def time_whole(args: argparse.Namespace, work: Path, env: dict) -> dict:
    """The whole translate command of each of :data:`WHOLE` (the earlier file's with ``--earlier``),
    interleaved rounds: seconds and errors."""
    files = {"run": args.model, **onnx_files(args, work)}
    env = {**env, "IMTRANS_CACHE": str(work / "cache")}  # OpenVINO compiles in the first round only
    commands = {name: whole for name, whole in WHOLE.items() if whole[0] in files}
    seconds: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.whole_rounds):
        for name, (runs, options) in commands.items():
            command = [
                sys.executable,
                "-m",
                "imtrans_core",
                "translate",
                str(files[runs]),
                str(work / "mr.nii.gz"),
            ]
            measured = run_command([*command, "--out", str(folder(work, name)), *options], env)
            seconds[name].append(measured["seconds"])
    error = errors({name: folder(work, name) / "mr.nii.gz" for name in commands}, work / "mr.nii.gz")
    return {"seconds": seconds, "errors": error}


def time_workers(paths: list[str], args: argparse.Namespace, work: Path, env: dict) -> dict[str, list[float]]:
    """Start one worker per path, time them in interleaved rounds, then have each save its whole output."""
    command = [
        sys.executable,
        __file__,
        "--model",
        str(args.model),
        "--int8",
        str(args.int8),
        "--work",
        str(work),
        *(["--earlier", str(args.earlier)] if args.earlier else []),
    ]
    workers = {}
    for name in paths:  # one at a time: loading competes for the cores
        workers[name] = subprocess.Popen(
            [*command, "--worker", name], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        if workers[name].stdout.readline().strip() != "ready":
            sys.exit(f"the worker of {name} failed")

    def ask(name: str, what: str) -> str:
        workers[name].stdin.write(what + "\n")
        workers[name].stdin.flush()
        return workers[name].stdout.readline().strip()

    times: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(args.rounds):
        for name in paths:
            times[name].append(float(ask(name, "time")))
    for name in paths:
        ask(name, "all")
        ask(name, "quit")
        workers[name].wait()
    return times


def report(out: Path, args, paths, times, errors, facts: dict, whole: dict) -> None:
    gflop = facts["gflop_per_slice"]
    ms = {name: statistics.median(times[name]) for name in paths}
    rows = [
        {
            "variant": name,
            "ms / slice": f"{ms[name]:.0f}",
            "vs torch fp32": f"{ms['torch fp32'] / ms[name]:.2f}x",
            "GFLOP/s": f"{gflop / ms[name] * 1000:.0f}",
            "mean |HU|": f"{errors[name]['mean_hu']:.3f}",
            "p99.9 |HU|": f"{errors[name]['p999_hu']:.2f}",
            "max |HU|": f"{errors[name]['max_hu']:.1f}",
        }
        for name in paths
    ]
    cap = (
        f", emulating {args.cap} ({' '.join(f'{k}={v}' for k, v in ISA_CAPS[args.cap].items())})"
        if args.cap
        else ""
    )
    print_table(f"the network per slice, batches of {BATCH}{cap}", rows)
    median = {name: statistics.median(t) for name, t in whole["seconds"].items()}
    whole_rows = [
        {
            "variant": name,
            "seconds": round(median[name], 2),
            "vs_fp32": round(median["torch fp32"] / median[name], 2),
            "mean_hu": round(whole["errors"][name]["mean_hu"], 3),
            "max_hu": round(whole["errors"][name]["max_hu"], 1),
        }
        for name in whole["seconds"]
    ]
    print_table(f"the whole imtrans translate, 256 x 38 x 256 MR{cap}", whole_rows)
    result = {
        "study": "avx2_paths",
        "model": str(args.model),
        "int8": str(args.int8),
        "earlier": str(args.earlier) if args.earlier else None,
        "fp32_convolutions": {kind: fp32_convolutions(f) for kind, f in int8_files(args).items()},
        "cap": ISA_CAPS.get(args.cap),
        **facts,
        "rounds": args.rounds,
        "rows": [
            {"variant": n, "ms_per_slice": ms[n], "vs_fp32": ms["torch fp32"] / ms[n], **errors[n]}
            for n in paths
        ],
        "times_ms": times,
        "whole_command": {"rounds": args.whole_rounds, "rows": whole_rows, "seconds": whole["seconds"]},
        "machine": describe_machine(),
    }
    write_json(out, result)


def fp32_convolutions(int8: Path) -> int:
    """How many convolutions an int8 export kept in fp32 (its metadata)."""
    from imtrans_core.onnx.exported import read_metadata

    return len(read_metadata(int8)["quantization"]["fp32_convolutions"])


if __name__ == "__main__":
    main()
