"""Rewrites of a generator before export: the same numbers, in a form runtimes compute faster.

A convolution with few output channels (a generator's last, 64 -> 1 over 7 x 7) fills a fraction
of a vector register per output pixel, so CPU kernels run it far below the machine's peak, a
share of the time out of all proportion to its multiply-adds. :class:`RowsThenColumns` computes
it as two convolutions: one kernel row at a time (1 x k, every input channel, ``out x k``
outputs) and then the sum of the k rows (k x 1, one-hot weights, ``out`` groups). The first holds
all the multiply-adds in a shape the kernels vectorise, the second k per output pixel. In fp32
the sums are the same in another order; in int8 the analysis decides for each half
(:mod:`.sensitivity`). docs/benchmarks.md ("The exported graph's form") measures where it helps.
"""

from __future__ import annotations

import copy

import torch

#: fewer output channels than this fill less than one AVX2 register of float32 per pixel
FEW_OUTPUTS = 8


class RowsThenColumns(torch.nn.Module):
    """``conv`` (stride 1, no dilation or groups, zero padding) as a 1 x k, then a one-hot k x 1 conv."""

    def __init__(self, conv: torch.nn.Conv2d):
        super().__init__()
        weight = conv.weight.data
        out, inputs, rows, cols = weight.shape
        pad_rows, pad_cols = conv.padding
        like = {"device": weight.device, "dtype": weight.dtype}
        self.rows = torch.nn.Conv2d(inputs, out * rows, (1, cols), padding=(0, pad_cols), bias=False, **like)
        # rows' channel o * rows + r: kernel row r of output o
        self.rows.weight.data = weight.permute(0, 2, 1, 3).reshape(out * rows, inputs, 1, cols).clone()
        self.columns = torch.nn.Conv2d(
            out * rows, out, (rows, 1), padding=(pad_rows, 0), groups=out, bias=conv.bias is not None, **like
        )
        self.columns.weight.data = torch.eye(rows, **like).reshape(1, rows, rows, 1).repeat(out, 1, 1, 1)
        if conv.bias is not None:
            self.columns.bias.data = conv.bias.data.clone()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.columns(self.rows(x))


def rewritable(module: torch.nn.Module) -> bool:
    """A plain 2-D convolution with fewer than :data:`FEW_OUTPUTS` outputs and a kernel taller than a row."""
    return (
        type(module) is torch.nn.Conv2d
        and module.out_channels < FEW_OUTPUTS
        and module.kernel_size[0] > 1
        and module.stride == (1, 1)
        and module.dilation == (1, 1)
        and module.groups == 1
        and module.padding_mode == "zeros"
        and not isinstance(module.padding, str)
    )


def for_export(net: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``net`` whose :func:`rewritable` convolutions are :class:`RowsThenColumns`."""
    net = copy.deepcopy(net)
    found = [
        (parent, name)
        for parent in net.modules()
        for name, child in parent.named_children()
        if rewritable(child)
    ]
    for parent, name in found:
        setattr(parent, name, RowsThenColumns(getattr(parent, name)))
    return net
