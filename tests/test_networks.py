"""Networks of the cyclegan plugin: sizes and shapes the paper and the reference CycleGAN fix."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import imtrans_core as ic
from imtrans_cyclegan.networks import (
    PatchGAN,
    ResnetGenerator,
    UNet,
    patchgan,
    receptive_field,
    resnet9,
    unet,
)


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.fixture
def cyclegan_only(monkeypatch):
    """Registries filled by the cyclegan entry point alone, whatever else is installed."""
    monkeypatch.setenv("IMTRANS_PLUGINS", "cyclegan")
    ic.plugins.reset()
    yield
    ic.plugins.reset()


# ----------------------------------------------------------------------------- resnet9


def test_resnet9_has_the_reference_parameter_count():
    # reference resnet_9blocks, instance norm: 11,378,179 with 3 -> 3 channels; 1 -> 1 drops
    # 2 * 64 * 49 weights of the first conv and 64 * 49 * 2 + 2 of the last = 12,546
    assert n_params(resnet9()) == 11_365_633


def test_resnet9_keeps_the_reference_state_dict_layout():
    # so that reference checkpoints trained on one channel load: model.<index>[.conv_block.<index>]
    shapes = {k: tuple(v.shape) for k, v in resnet9().state_dict().items()}
    assert shapes["model.1.weight"] == (64, 1, 7, 7)
    assert shapes["model.4.weight"] == (128, 64, 3, 3)  # first stride-2 conv
    assert shapes["model.10.conv_block.1.weight"] == (256, 256, 3, 3)  # first residual block
    assert shapes["model.18.conv_block.5.weight"] == (256, 256, 3, 3)  # ninth residual block
    assert shapes["model.19.weight"] == (256, 128, 3, 3)  # first transposed conv (in, out, k, k)
    assert shapes["model.26.weight"] == (1, 64, 7, 7)


def test_resnet9_full_size_forward_shape_and_range():
    net = resnet9().eval()
    with torch.no_grad():
        y = net(torch.randn(2, 1, 256, 256))
    assert y.shape == (2, 1, 256, 256)
    assert y.abs().max() <= 1.0


@pytest.mark.parametrize("size", [(67, 45), (9, 5), (64, 64)])
def test_resnet9_output_size_equals_input_size(size):
    net = resnet9(ngf=4, n_blocks=1)
    assert net(torch.randn(2, 1, *size)).shape == (2, 1, *size)


def test_resnet9_padding_does_not_shift_the_image():
    # a side that is a multiple of 4 is not padded: the output is the plain network's output
    net = resnet9(ngf=4, n_blocks=1).eval()
    x = torch.randn(1, 1, 32, 28)
    torch.testing.assert_close(net(x), net.model(x))
    # an odd size is padded on the bottom/right only: away from that border, the output of a
    # cropped image equals that of the whole (norm='none': instance norm statistics are global)
    net = resnet9(ngf=4, n_blocks=1, norm="none").eval()
    big = torch.randn(1, 1, 64, 64)
    torch.testing.assert_close(net(big[..., :63, :61])[..., :32, :32], net(big)[..., :32, :32])


def test_resnet9_options_change_the_network():
    net = resnet9(in_ch=2, out_ch=3, ngf=4, n_blocks=2, norm="batch", dropout=0.5)
    assert net(torch.randn(2, 2, 16, 16)).shape == (2, 3, 16, 16)
    assert sum(isinstance(m, nn.Dropout) for m in net.modules()) == 2
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) == 2 * 2 + 5
    # no bias before batch norm; the last conv keeps its bias
    convs = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert [c.bias is not None for c in convs] == [False] * (len(convs) - 1) + [True]
    plain = resnet9(ngf=4, n_blocks=2, norm="none")
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) for m in plain.modules())


def test_resize_upsampling_has_no_checkerboard_where_the_transposed_conv_has_one():
    """A flat feature map, upsampled: the transposed conv's odd and even pixels differ, resize's do not."""
    from imtrans_cyclegan.networks import _upsample

    torch.manual_seed(0)
    flat = torch.ones(1, 8, 8, 8)
    for up, checkerboard in (("transpose", True), ("resize", False)):
        layer = nn.Sequential(*_upsample(up, 8, 4, bias=False))
        interior = layer(flat)[..., 2:-2, 2:-2]  # away from the border's padding
        assert interior.shape[-2:] == (12, 12)
        odd_even = (interior[..., ::2, ::2] - interior[..., 1::2, 1::2]).abs().max().item()
        assert (odd_even > 1e-3) == checkerboard, up


def test_resize_upsampling_keeps_the_layer_layout_and_size():
    net = resnet9(ngf=4, n_blocks=2, up="resize")
    reference = resnet9(ngf=4, n_blocks=2)
    assert len(net.model) == len(reference.model)
    assert net(torch.randn(1, 1, 30, 26)).shape == (1, 1, 30, 26)
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in net.modules())
    with pytest.raises(ValueError, match="up must be transpose or resize"):
        resnet9(up="bilinear")


def test_n_down_sets_the_resolution_of_the_residual_blocks():
    """One halving: the blocks see half the input's size with 2 ngf channels; any size still comes back."""
    net = resnet9(ngf=4, n_blocks=2, n_down=1)
    seen = []
    net.model[7].register_forward_hook(lambda module, args, out: seen.append(out.shape))  # first block
    assert net(torch.randn(1, 1, 32, 24)).shape == (1, 1, 32, 24)
    assert seen == [(1, 8, 16, 12)]
    assert sum(isinstance(m, nn.ConvTranspose2d) for m in net.modules()) == 1
    assert net(torch.randn(1, 1, 31, 9)).shape == (1, 1, 31, 9)
    # a stride-2 conv and an up-conv less, with their norm and ReLU: 6 layers
    assert len(resnet9(ngf=4, n_blocks=2).model) == len(net.model) + 6


def test_instance_norm_is_the_references():
    norms = [m for m in resnet9(ngf=4, n_blocks=1).modules() if isinstance(m, nn.InstanceNorm2d)]
    assert norms and all(not m.affine and not m.track_running_stats for m in norms)


def test_weights_are_initialised_as_the_reference():
    net = resnet9(ngf=16, n_blocks=1, norm="batch")
    block_conv = net.model[10].conv_block[1].weight  # 64 * 64 * 9 weights
    assert abs(block_conv.std().item() - 0.02) < 0.001
    assert abs(block_conv.mean().item()) < 0.001
    assert torch.count_nonzero(net.model[-2].bias) == 0  # the output conv
    bn = net.model[2]
    assert abs(bn.weight.mean().item() - 1.0) < 0.02 and 0 < bn.weight.std().item() < 0.05
    assert torch.count_nonzero(bn.bias) == 0


@pytest.mark.parametrize(
    "kwargs, parameter",
    [
        ({"n_blocks": -1}, "n_blocks"),
        ({"ngf": 0}, "ngf"),
        ({"dropout": 1.0}, "dropout"),
        ({"norm": "group"}, "norm"),
        ({"n_down": 0}, "n_down"),
        ({"n_down": 5}, "n_down"),
    ],
)
def test_resnet9_rejects_bad_values_naming_the_parameter(kwargs, parameter):
    with pytest.raises(ValueError, match=parameter):
        resnet9(**kwargs)


# ----------------------------------------------------------------------------- unet


def test_unet_as_segmentation_network_on_an_odd_size():
    net = unet(in_ch=2, out_ch=5, base=4, final="none")
    assert net(torch.randn(2, 2, 67, 45)).shape == (2, 5, 67, 45)


def test_unet_default_widths_are_ronnebergers():
    net = unet()
    widths = [block[0].out_channels for block in net.down] + [net.bottleneck[0].out_channels]
    assert widths == [64, 128, 256, 512, 1024]
    assert net.head.kernel_size == (1, 1)


def test_unet_tanh_is_the_only_difference_between_generator_and_logits():
    torch.manual_seed(0)
    generator = unet(base=4, depth=2, final="tanh")
    torch.manual_seed(0)
    logits = unet(base=4, depth=2, final="none")
    x = torch.randn(1, 1, 21, 30)
    torch.testing.assert_close(generator(x), torch.tanh(logits(x)))


@pytest.mark.parametrize(
    "kwargs, parameter", [({"depth": 0}, "depth"), ({"base": 0}, "base"), ({"final": "sigmoid"}, "final")]
)
def test_unet_rejects_bad_values_naming_the_parameter(kwargs, parameter):
    with pytest.raises(ValueError, match=parameter):
        unet(**kwargs)


# ----------------------------------------------------------------------------- patchgan


def test_patchgan_has_the_reference_parameter_count():
    # reference n_layers=3, instance norm: 2,764,737 with 3 input channels; 1 channel drops 2 * 64 * 16
    assert n_params(patchgan()) == 2_762_689


def test_patchgan_maps_256_to_30x30_logits():
    with torch.no_grad():
        assert patchgan()(torch.randn(1, 1, 256, 256)).shape == (1, 1, 30, 30)


def test_receptive_field_of_the_70x70_patchgan():
    assert receptive_field(3) == 70
    assert [receptive_field(n) for n in (1, 2, 4)] == [16, 34, 142]


@pytest.mark.parametrize("n_layers", [1, 2, 3])
def test_receptive_field_matches_the_network(n_layers):
    # the input pixels one central logit depends on form a square of receptive_field(n_layers)
    # px (norm='none': instance norm would make every logit depend on the whole image)
    net = patchgan(ndf=2, n_layers=n_layers, norm="none")
    x = torch.randn(1, 1, 160, 160, requires_grad=True)
    y = net(x)
    y[0, 0, y.shape[-2] // 2, y.shape[-1] // 2].backward()
    rows, cols = torch.nonzero(x.grad[0, 0], as_tuple=True)
    assert rows.max() - rows.min() + 1 == receptive_field(n_layers)
    assert cols.max() - cols.min() + 1 == receptive_field(n_layers)


def test_patchgan_first_layer_has_no_norm():
    net = patchgan(ndf=4)
    assert isinstance(net.model[1], nn.LeakyReLU) and net.model[1].negative_slope == 0.2
    assert isinstance(net.model[3], nn.InstanceNorm2d)


def test_a_blurred_patchgan_has_the_same_weights_and_sees_noise_much_weaker():
    plain, blurred = patchgan(ndf=4), patchgan(ndf=4, blur=1.5)
    assert plain.state_dict().keys() == blurred.state_dict().keys()  # checkpoints load either way
    assert n_params(plain) == n_params(blurred)
    noise, flat = (
        torch.randn(1, 1, 64, 64, generator=torch.Generator().manual_seed(0)),
        torch.full((1, 1, 64, 64), 0.3),
    )
    seen = blurred.blur(noise + flat)
    assert torch.allclose(blurred.blur(flat), flat)  # a flat image passes unchanged, edges too
    # white noise of unit SD through a 2-D Gaussian of SD s keeps SD 1 / (2 s sqrt(pi)) = 0.19
    assert 0.15 < float((seen - flat).std()) < 0.23
    with pytest.raises(ic.SpecError, match="blur"):
        patchgan(blur=-1)


# ----------------------------------------------------------------------------- through the registry


def test_registry_builds_resnet9_through_the_entry_point(cyclegan_only):
    net = ic.GENERATORS.build("resnet9:ngf=8,n_blocks=2")
    assert isinstance(net, ResnetGenerator)
    assert net.model[1].out_channels == 8 and len(net.model) == 4 + 6 + 2 + 6 + 3
    assert ic.GENERATORS.info("resnet9").plugin == "cyclegan"
    assert isinstance(ic.GENERATORS.build("unet:in_ch=2,out_ch=5,final=none"), UNet)
    assert isinstance(ic.DISCRIMINATORS.build("patchgan"), PatchGAN)


def test_spec_built_network_equals_the_directly_built_one(cyclegan_only):
    torch.manual_seed(1)
    built = ic.GENERATORS.build("resnet9:ngf=8,n_blocks=2,norm=batch")
    torch.manual_seed(1)
    direct = resnet9(ngf=8, n_blocks=2, norm="batch")
    assert built.state_dict().keys() == direct.state_dict().keys()
    for key, value in direct.state_dict().items():
        torch.testing.assert_close(built.state_dict()[key], value)


def test_patchgan_summary_states_its_receptive_field(cyclegan_only):
    assert "70x70" in ic.DISCRIMINATORS.info("patchgan").summary


def test_bad_spec_value_is_a_spec_error_naming_the_parameter(cyclegan_only):
    with pytest.raises(ic.SpecError, match="n_blocks"):
        ic.GENERATORS.build("resnet9:n_blocks=-1")
    with pytest.raises(ic.SpecError, match="norm"):
        ic.GENERATORS.build("resnet9:norm=group")


@pytest.mark.parametrize(
    "spec", ["resnet9:ngf=8", "resnet9:ngf=8,n_blocks=1", "unet:base=8", "unet:base=8,depth=2"]
)
def test_encode_gives_the_features_the_forward_pass_computes(spec):
    """``encode(x, layers)`` returns what the chosen layers output inside ``forward``, in the order asked."""
    import imtrans_core as ic

    net = ic.GENERATORS.build(spec)
    seen = {}
    if hasattr(net, "model"):  # ResNet: the layers of its Sequential
        modules = dict(enumerate(net.model))
    else:  # U-Net: level k is down block k - 1's output; the last, the bottleneck's
        modules = {k + 1: block for k, block in enumerate(net.down)} | {len(net.down) + 1: net.bottleneck}
    for index, module in modules.items():
        module.register_forward_hook(lambda m, i, out, index=index: seen.__setitem__(index, out))
    x = torch.randn(2, 1, 36, 36)
    net(x)
    if 0 not in seen:  # the U-Net's level 0: its input, padded to a multiple of 2**depth
        pad = (-36) % net.multiple
        seen[0] = torch.nn.functional.pad(x, (0, pad, 0, pad), mode="replicate")
    layers = tuple(reversed(net.feature_layers))
    features = net.encode(x, layers)
    assert len(features) == len(layers) >= 3
    for index, feature in zip(layers, features, strict=True):
        assert torch.equal(feature, seen[index]), f"{spec}: layer {index}"
