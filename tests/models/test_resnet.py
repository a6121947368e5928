"""The ResNet-18-style network: layout, channel counts and a residual block against a literal computation."""

import pytest
import torch
from torch.nn import functional as F

from neuroplastic.models import BasicBlock, ResNet
from neuroplastic.structure.neuron_masks import default_mask_layers


def _bn_names(model):
    return [name for name, module in model.named_modules() if isinstance(module, torch.nn.BatchNorm2d)]


def test_resnet_layout_counts_channels_like_resnet18():
    model = ResNet(16, (2, 2, 2, 2), stem_stride=2)
    sizes = {name: model.get_submodule(name).num_features for name in _bn_names(model)}
    # stem 16; stage 0: 2 blocks x 2 BNs x 16; stages 1-3: 4 BNs + 1 shortcut BN of 32 / 64 / 128 channels
    assert sum(sizes.values()) == 16 + 4 * 16 + 5 * 32 + 5 * 64 + 5 * 128 == 1200
    assert [name for name in sizes if "shortcut" in name] == ["stages.1.0.shortcut_bn", "stages.2.0.shortcut_bn",
                                                             "stages.3.0.shortcut_bn"]
    assert model(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    assert ResNet(4, (1,), stem_stride=1).stem(torch.rand(2, 1, 28, 28)).shape == (2, 4, 28, 28)
    assert default_mask_layers(model) == list(sizes)  # RNP masks every BatchNorm layer, shortcuts included


@pytest.mark.parametrize("stride,out_channels", [(1, 3), (2, 5)])  # identity shortcut; 1x1 conv + BN shortcut
def test_basic_block_matches_a_literal_computation(stride, out_channels):
    torch.manual_seed(0)
    block = BasicBlock(3, out_channels, stride)
    with torch.no_grad():  # non-trivial BatchNorm parameters and running statistics
        for module in block.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
    block.eval()
    x = torch.randn(2, 3, 6, 6)

    def bn(module, h):
        scale = module.weight / torch.sqrt(module.running_var + module.eps)
        return (h - module.running_mean[:, None, None]) * scale[:, None, None] + module.bias[:, None, None]

    out = F.relu(bn(block.bn1, F.conv2d(x, block.conv1.weight, stride=stride, padding=1)))
    out = bn(block.bn2, F.conv2d(out, block.conv2.weight, padding=1))
    if stride == 1:
        assert block.shortcut_conv is None and block.shortcut_bn is None
        skip = x
    else:
        assert block.shortcut_conv.weight.shape == (out_channels, 3, 1, 1)
        skip = bn(block.shortcut_bn, F.conv2d(x, block.shortcut_conv.weight, stride=2))
    expected = F.relu(out + skip)
    with torch.no_grad():
        torch.testing.assert_close(block(x), expected)
    assert expected.shape == (2, out_channels, 6 // stride, 6 // stride)


def test_resnet_names_its_batchnorm_layers_in_order():
    names = _bn_names(ResNet(4, (1, 1), stem_stride=2))
    assert names == ["stem.bn", "stages.0.0.bn1", "stages.0.0.bn2", "stages.1.0.bn1", "stages.1.0.bn2",
                     "stages.1.0.shortcut_bn"]


def test_resnet_rejects_bad_arguments():
    with pytest.raises(ValueError, match="width"):
        ResNet(0)
    with pytest.raises(ValueError, match="stages"):
        ResNet(4, (1, 0))
    with pytest.raises(TypeError, match="stem_stride must be an int >= 1, got bool True"):
        ResNet(4, stem_stride=True)
