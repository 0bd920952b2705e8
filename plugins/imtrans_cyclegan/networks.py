"""Generators and discriminator of Hiasa et al. 2018 §2.2 (as in Zhu et al.'s reference CycleGAN).

- :func:`resnet9`: the Johnson et al. generator G_CT / G_MR (9 residual blocks).
- :func:`unet`: a Ronneberger U-Net, as a generator (``final='tanh'``) or as the
  segmentation network of §3.2 (``final='none'``: logits).
- :func:`patchgan`: the 70x70 PatchGAN discriminator D_CT / D_MR.

The ResNet and PatchGAN layers sit in one ``nn.Sequential`` named ``model`` in
the reference's order, so state dicts of the reference implementation (trained
with one input channel) load without renaming keys. Every factory applies the
reference initialisation, :func:`init_weights`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from imtrans_core.api import SpecError

Norm = Literal["instance", "batch", "none"]
Upsampling = Literal["transpose", "resize"]


def _check_min(minimum: int, **values: int) -> None:
    """Raise a one-line SpecError naming the first parameter below ``minimum``."""
    for name, value in values.items():
        if value < minimum:
            raise SpecError(f"{name} must be >= {minimum}, got {value}")


def _norm_layer(norm: str, channels: int) -> nn.Module:
    """The reference's norm layers: instance norm without affine or running stats."""
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "none":
        return nn.Identity()  # keeps the layer indices (state-dict keys) of the normed variants
    raise SpecError(f"norm must be one of instance, batch, none, got {norm!r}")


def _conv_bias(norm: str) -> bool:
    """A bias before batch norm is redundant (its shift cancels it); keep it otherwise.

    The reference drops the bias for ``norm='none'`` too, which leaves those
    convs unable to shift; we keep it there.
    """
    return norm != "batch"


def _crop(x: torch.Tensor, pad_h: int, pad_w: int) -> torch.Tensor:
    """Undo a bottom/right padding.

    A negative pad rather than ``x[..., :h, :w]``: slicing makes torch.export
    specialise on whether the input side was already a multiple (the exported
    graph then rejects the other case); a negative pad keeps both dynamic.
    """
    return F.pad(x, (0, -pad_w, 0, -pad_h))


def init_weights(net: nn.Module, std: float = 0.02) -> nn.Module:
    """The reference CycleGAN initialisation ('normal'), applied in place; returns ``net``.

    Conv and transposed-conv weights ~ N(0, std), biases 0; affine norm weights
    ~ N(1, std), norm biases 0.
    """
    for module in net.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(module.weight, 0.0, std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm2d, nn.InstanceNorm2d)) and module.weight is not None:
            nn.init.normal_(module.weight, 1.0, std)
            nn.init.zeros_(module.bias)
    return net


# ----------------------------------------------------------------------------- ResNet generator


class ResnetBlock(nn.Module):
    """pad-conv3x3-norm-ReLU-[dropout]-pad-conv3x3-norm with an identity skip."""

    def __init__(self, channels: int, norm: str, dropout: float):
        super().__init__()
        bias = _conv_bias(norm)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=bias),
            _norm_layer(norm, channels),
            nn.ReLU(True),
        ]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=bias),
            _norm_layer(norm, channels),
        ]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """Johnson et al.'s generator: c7s1-ngf, d2ngf, d4ngf, n_blocks x R4ngf, u2ngf, ungf, c7s1-out, tanh.

    The ``n_down`` stride-2 convs (two in the reference) need sides that are
    multiples of ``2**n_down``; other sizes are reflect-padded on the
    bottom/right and the output cropped back, so the output always has the
    input's height and width. With two, sides must be >= 5 px (the residual
    blocks reflect-pad the 1/4-size map by 1).
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        ngf: int,
        n_blocks: int,
        norm: str,
        dropout: float,
        up: str = "transpose",
        n_down: int = 2,
    ):
        super().__init__()
        bias = _conv_bias(norm)
        self.multiple = 2**n_down
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_ch, ngf, 7, bias=bias),
            _norm_layer(norm, ngf),
            nn.ReLU(True),
        ]
        mults = [2**i for i in range(n_down)]  # (1, 2): ngf -> 2 ngf -> 4 ngf, the reference's
        for mult in mults:
            layers += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=bias),
                _norm_layer(norm, ngf * mult * 2),
                nn.ReLU(True),
            ]
        layers += [ResnetBlock(ngf * 2**n_down, norm, dropout) for _ in range(n_blocks)]
        for mult in [2 * m for m in reversed(mults)]:  # upsampling: 4 ngf -> 2 ngf -> ngf
            layers += [
                *_upsample(up, ngf * mult, ngf * mult // 2, bias),
                _norm_layer(norm, ngf * mult // 2),
                nn.ReLU(True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_ch, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        encoder = 4 + 3 * n_down + n_blocks  # the layers up to the last residual block
        # CUT's five layers (Park et al. 2020): the padded input, both downsamplings, blocks 3 and 7
        self.feature_layers = tuple(i for i in (0, 4, 8, 12, 16) if i < encoder)

    def _padded(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        pad_h, pad_w = (-x.shape[-2]) % self.multiple, (-x.shape[-1]) % self.multiple  # 0 when a multiple
        return F.pad(x, (0, pad_w, 0, pad_h), mode="reflect"), pad_h, pad_w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (N, in_ch, H, W) -> (N, out_ch, H, W), [-1, 1]
        padded, pad_h, pad_w = self._padded(x)
        return _crop(self.model(padded), pad_h, pad_w)

    def encode(self, x: torch.Tensor, layers: Sequence[int]) -> list[torch.Tensor]:
        """The outputs of ``layers`` (indices into ``model``, as CUT numbers them), in that order."""
        wanted, found = set(layers), {}
        x = self._padded(x)[0]
        for index, layer in enumerate(self.model[: max(layers) + 1]):
            x = layer(x)
            if index in wanted:
                found[index] = x
        return [found[index] for index in layers]


def _upsample(up: str, in_ch: int, out_ch: int, bias: bool) -> list[nn.Module]:
    """Twice the size: the reference's transposed convolution, or nearest resize then a 3x3 conv.

    A 3x3 transposed convolution of stride 2 writes odd and even output pixels
    with different kernel taps, so until training balances them the image
    carries a 2-px checkerboard (Odena et al. 2016); ``resize`` gives every
    output pixel the same taps. ``resize`` keeps the reference's layer
    indices: the resize has no parameters and sits with its conv in one
    ``nn.Sequential``.
    """
    if up == "transpose":
        return [nn.ConvTranspose2d(in_ch, out_ch, 3, stride=2, padding=1, output_padding=1, bias=bias)]
    if up == "resize":
        return [
            nn.Sequential(
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.ReflectionPad2d(1),
                nn.Conv2d(in_ch, out_ch, 3, bias=bias),
            )
        ]
    raise SpecError(f"up must be transpose or resize, got {up!r}")


def resnet9(
    in_ch: int = 1,
    out_ch: int = 1,
    ngf: int = 64,
    n_blocks: int = 9,
    norm: Norm = "instance",
    dropout: float = 0.0,
    up: Upsampling = "transpose",
    n_down: int = 2,
) -> ResnetGenerator:
    """ResNet generator (Johnson et al.), the paper's G_CT / G_MR: 9 residual blocks, tanh output in [-1, 1].

    With the defaults it has 11,365,633 parameters, as the reference CycleGAN's
    ``resnet_9blocks`` with one input and one output channel. Any input size
    works (reflect-padded to a multiple of 4, cropped back). ``dropout`` is the
    probability inside each residual block (the reference's ``--no_dropout``
    off means 0.5). ``up``: ``transpose`` (the paper's, default) or ``resize``
    (nearest resize + conv: no checkerboard, see docs/studies/quality-variants.md). ``n_down``:
    stride-2 convolutions before the blocks (2, the paper's); with 1 the blocks
    work at half the input's size with ``2 ngf`` channels, at the same cost
    (docs/studies/quality-variants.md measures what that buys for thin cortical bone: little;
    a U-Net's skip connections buy much more).
    """
    _check_min(1, in_ch=in_ch, out_ch=out_ch, ngf=ngf, n_down=n_down)
    _check_min(0, n_blocks=n_blocks)
    if n_down > 4:
        raise SpecError(f"n_down must be 1 to 4, got {n_down}")
    if not 0.0 <= dropout < 1.0:
        raise SpecError(f"dropout must be in [0, 1), got {dropout}")
    _norm_layer(norm, 1)  # validates norm before any allocation
    _upsample(up, 1, 1, True)  # validates up
    return init_weights(ResnetGenerator(in_ch, out_ch, ngf, n_blocks, norm, dropout, up, n_down))


# ----------------------------------------------------------------------------- U-Net


def _double_conv(in_ch: int, out_ch: int, norm: str) -> nn.Sequential:
    """(conv3x3-norm-ReLU) x 2, 'same' padding so that skips need no cropping."""
    bias = _conv_bias(norm)
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=bias),
        _norm_layer(norm, out_ch),
        nn.ReLU(True),
        nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=bias),
        _norm_layer(norm, out_ch),
        nn.ReLU(True),
    )


class UNet(nn.Module):
    """Ronneberger's U-Net with 'same' convs: ``depth`` max-pool halvings, 2x2 up-convs, skip concatenation.

    Sides are replicate-padded on the bottom/right to a multiple of
    ``2**depth`` and the output is cropped back, so any size works; with
    instance norm the padded bottleneck must exceed one pixel, i.e. sides
    > ``2**depth`` px (17 at depth 4).
    """

    def __init__(self, in_ch: int, out_ch: int, base: int, depth: int, norm: str, final: str):
        super().__init__()
        widths = [base * 2**level for level in range(depth + 1)]  # 64, 128, 256, 512, 1024
        self.multiple = 2**depth
        self.down = nn.ModuleList(
            _double_conv(c_in, c_out, norm)
            for c_in, c_out in zip([in_ch, *widths[:-2]], widths[:-1], strict=True)
        )
        self.bottleneck = _double_conv(widths[-2], widths[-1], norm)
        self.up = nn.ModuleList(nn.ConvTranspose2d(c * 2, c, 2, stride=2) for c in reversed(widths[:-1]))
        self.merge = nn.ModuleList(_double_conv(c * 2, c, norm) for c in reversed(widths[:-1]))
        self.head = nn.Conv2d(base, out_ch, 1)
        self.final = nn.Tanh() if final == "tanh" else nn.Identity()
        # 0: the padded input; k: the k-th level's features (depth + 1: the bottleneck's)
        self.feature_layers = tuple(range(min(depth, 4) + 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (N, in_ch, H, W) -> (N, out_ch, H, W): [-1, 1] with final='tanh', logits with 'none'
        pad_h, pad_w = (-x.shape[-2]) % self.multiple, (-x.shape[-1]) % self.multiple
        skips = self._levels(F.pad(x, (0, pad_w, 0, pad_h), mode="replicate"))
        x = skips.pop()
        for up, merge, skip in zip(self.up, self.merge, reversed(skips[1:]), strict=True):
            x = merge(torch.cat([skip, up(x)], dim=1))
        return _crop(self.final(self.head(x)), pad_h, pad_w)

    def _levels(self, x: torch.Tensor, last: int | None = None) -> list[torch.Tensor]:
        """The input, each level's features before pooling, the bottleneck's: up to index ``last``."""
        levels = [x]
        for block in self.down[:last]:
            levels.append(block(x if len(levels) == 1 else F.max_pool2d(levels[-1], 2)))
        if last is None or last > len(self.down):
            levels.append(self.bottleneck(F.max_pool2d(levels[-1], 2)))
        return levels

    def encode(self, x: torch.Tensor, layers: Sequence[int]) -> list[torch.Tensor]:
        """The features of ``layers`` (0: the padded input; k: level k; depth + 1: the bottleneck), in order."""
        pad_h, pad_w = (-x.shape[-2]) % self.multiple, (-x.shape[-1]) % self.multiple
        levels = self._levels(F.pad(x, (0, pad_w, 0, pad_h), mode="replicate"), max(layers))
        return [levels[index] for index in layers]


def unet(
    in_ch: int = 1,
    out_ch: int = 1,
    base: int = 64,
    depth: int = 4,
    norm: Norm = "instance",
    final: Literal["tanh", "none"] = "tanh",
) -> UNet:
    """U-Net (Ronneberger et al.): generator with final=tanh, segmentation logits with final=none.

    Widths ``base * 2**level`` for level 0..depth (64 ... 1024 by default).
    Instance norm by default: the generators train with batch size 1, where
    batch statistics are noise, and it matches the ResNet generator. As the
    §3.2 segmentation network: ``unet:in_ch=2,out_ch=<labels>,final=none``.
    """
    _check_min(1, in_ch=in_ch, out_ch=out_ch, base=base, depth=depth)
    if final not in ("tanh", "none"):
        raise SpecError(f"final must be tanh or none, got {final!r}")
    _norm_layer(norm, 1)
    return init_weights(UNet(in_ch, out_ch, base, depth, norm, final))


# ----------------------------------------------------------------------------- PatchGAN


def receptive_field(n_layers: int) -> int:
    """Side in pixels of the input patch that one PatchGAN logit sees (70 for n_layers=3).

    ``n_layers`` 4x4 stride-2 convs, then two 4x4 stride-1 convs; walking back
    from one output pixel, each conv maps a receptive field r to (r - 1) * stride + 4.
    """
    _check_min(1, n_layers=n_layers)
    field = 1
    for stride in [1, 1] + [2] * n_layers:  # from the output back to the input
        field = (field - 1) * stride + 4
    return field


class GaussianBlur(nn.Module):
    """A fixed Gaussian low-pass, ``sigma`` px, each channel alone, edges reflected; no parameters.

    Its taps are a non-persistent buffer, so state dicts are those of the network without it.
    """

    def __init__(self, sigma: float):
        super().__init__()
        radius = max(1, math.ceil(3 * sigma))
        x = torch.arange(-radius, radius + 1, dtype=torch.float32)
        taps = torch.exp(-0.5 * (x / sigma) ** 2)
        self.register_buffer("taps", taps / taps.sum(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (N, C, H, W) -> (N, C, H, W); H and W must exceed the radius (3 sigma)
        n, c, h, w = x.shape
        r = len(self.taps) // 2
        taps = self.taps.to(x.dtype)
        flat = F.pad(x.reshape(n * c, 1, h, w), (r, r, r, r), mode="reflect")
        flat = F.conv2d(F.conv2d(flat, taps.view(1, 1, 1, -1)), taps.view(1, 1, -1, 1))
        return flat.reshape(n, c, h, w)


class PatchGAN(nn.Module):
    """Isola et al.'s PatchGAN: a map of real/fake logits, one per overlapping input patch."""

    def __init__(self, in_ch: int, ndf: int, n_layers: int, norm: str, blur: float = 0.0):
        super().__init__()
        self.blur = GaussianBlur(blur) if blur > 0 else nn.Identity()
        bias = _conv_bias(norm)
        layers: list[nn.Module] = [nn.Conv2d(in_ch, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        width = ndf
        for n in range(1, n_layers + 1):  # n_layers - 1 stride-2 convs, then one stride-1 conv
            new_width = ndf * min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [
                nn.Conv2d(width, new_width, 4, stride=stride, padding=1, bias=bias),
                _norm_layer(norm, new_width),
                nn.LeakyReLU(0.2, True),
            ]
            width = new_width
        layers.append(nn.Conv2d(width, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (N, in_ch, H, W) -> (N, 1, H', W') logits; 256x256 -> 30x30 with n_layers=3
        return self.model(self.blur(x))


def patchgan(
    in_ch: int = 1, ndf: int = 64, n_layers: int = 3, norm: Norm = "instance", blur: float = 0.0
) -> PatchGAN:
    """70x70 PatchGAN (receptive field 70x70 px at n_layers=3; 16/34/142 px at 1/2/4): one logit per patch.

    The paper's D_CT / D_MR. 4x4 convs with padding 1 and LeakyReLU(0.2); the
    first ``n_layers`` convs have stride 2 (no norm on the first), then a
    stride-1 conv to ``ndf * min(2**n_layers, 8)`` channels and a stride-1 conv
    to one logit channel: 256x256 in, 30x30 out. 2,762,689 parameters with the
    defaults. Use ``receptive_field(n_layers)`` for other depths.

    ``blur`` > 0 low-passes what the discriminator sees (a Gaussian of that SD in
    px, real and translated alike), so that it does not ask for the CT's
    unpredictable noise; 0 (the paper's) sees every pixel (docs/studies/quality-variants.md, 7.).
    """
    _check_min(1, in_ch=in_ch, ndf=ndf, n_layers=n_layers)
    _norm_layer(norm, 1)
    if not 0 <= blur <= 8:
        raise SpecError(f"blur must be a Gaussian SD in px in 0..8, got {blur}")
    return init_weights(PatchGAN(in_ch, ndf, n_layers, norm, blur))
