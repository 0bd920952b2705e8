"""The values the options of the CLI and the API accept, in one place that imports nothing.

The modules that check these values (translate, evaluate, quantize) and the
commands that offer them (``--backend``, ``--format``, ``--scale``, ...) both
read them from here, so ``imtrans --help`` lists them without importing numpy,
SimpleITK or torch.
"""

from __future__ import annotations

BACKENDS = ("auto", "torch", "onnx", "openvino")  # what runs a generator in `imtrans translate`
# torch autocast in training and translation (auto: bf16 where fast)
AMP_MODES = ("off", "bf16", "fp16", "auto")
COMPILE_MODES = ("off", "default", "max-autotune-no-cudagraphs")  # torch.compile modes for training
DEVICES = ("auto", "cpu", "cuda")  # where torch runs (auto: cuda if available)
ORIENTATIONS = ("coronal", "axial", "sagittal")  # the slicing plane of a model and its data
DIRECTIONS = ("mr2ct", "ct2mr")  # mr2ct: G_CT (MR in, CT out); ct2mr: G_MR
OPENVINO_PRECISIONS = ("auto", "bf16", "f32")  # OpenVINO's inference precision (auto: its choice for the CPU)
OUTPUT_FORMATS = ("nii.gz", "nii", "mha", "nrrd")  # written volumes
EXPORT_PRECISIONS = ("fp32", "fp16", "int8")  # `imtrans export --precision`
CALIBRATIONS = ("percentile", "entropy", "minmax")  # int8 calibration methods
SCALES = ("paper", "synthrad", "both")  # `imtrans evaluate --scale`: whose protocol
# `imtrans evaluate --orientation`: the LPS world axis each plane's slices are cut across (none: 3-D only)
SCORE_ORIENTATIONS = {"sagittal": 0, "coronal": 1, "axial": 2, "none": None}
# `imtrans train --pairing`: how a step's unpaired CT and MR slices are drawn
PAIRINGS = ("random", "position")
