"""The small plain CNN and the image-classifier builder."""

import pytest
import torch
from torch.nn import functional as F

from neuroplastic.models import IMAGE_ARCHITECTURES, ConvBlock, ResNet, SmallCNN, build_image_classifier
from neuroplastic.structure.neuron_masks import default_mask_layers


def test_conv_block_is_conv_then_batchnorm_then_relu():
    torch.manual_seed(0)
    block = ConvBlock(2, 3, stride=2).eval()
    x = torch.randn(4, 2, 7, 7)
    bn = block.bn
    expected = F.relu(F.batch_norm(F.conv2d(x, block.conv.weight, stride=2, padding=1), bn.running_mean,
                                   bn.running_var, bn.weight, bn.bias, training=False, eps=bn.eps))
    with torch.no_grad():
        torch.testing.assert_close(block(x), expected)
    assert block.conv.bias is None and expected.shape == (4, 3, 4, 4)


def test_small_cnn_shapes_layers_and_global_average_pooling():
    model = SmallCNN((4, 8), (2, 2), num_classes=5, in_channels=3)
    assert model(torch.rand(2, 3, 28, 28)).shape == (2, 5)
    assert default_mask_layers(model) == ["blocks.0.bn", "blocks.1.bn"]  # RNP's masks go on the BatchNorms
    assert [block.conv.stride for block in model.blocks] == [(2, 2), (2, 2)]
    model.eval()
    x = torch.rand(3, 3, 12, 12)
    features = model.blocks[1](model.blocks[0](x))
    with torch.no_grad():
        torch.testing.assert_close(model(x), model.head(features.mean(dim=(2, 3))))


def test_small_cnn_rejects_bad_layouts():
    with pytest.raises(ValueError, match="same length"):
        SmallCNN((4, 8), (2,))
    with pytest.raises(ValueError, match="same length"):
        SmallCNN((), ())
    with pytest.raises(ValueError, match=r"channels must be a non-empty sequence of ints >= 1, got \(4, 0\)"):
        SmallCNN((4, 0), (1, 1))
    with pytest.raises(ValueError, match=r"strides must be a non-empty sequence of ints >= 1, got \(1, 0\)"):
        SmallCNN((4, 8), (1, 0))
    with pytest.raises(ValueError, match="in_channels"):
        SmallCNN((4,), (1,), in_channels=0)


def test_builder_creates_parameters_in_the_same_order_as_the_classes():
    """Seeded construction gives bit-identical weights whichever way the network is built."""
    torch.manual_seed(3)
    built = build_image_classifier("plain", channels=(4, 8), strides=(2, 1), in_channels=3, width=99)
    torch.manual_seed(3)
    direct = SmallCNN((4, 8), (2, 1), in_channels=3)
    assert all(torch.equal(a, b) for a, b in zip(built.state_dict().values(), direct.state_dict().values(),
                                                 strict=True))
    torch.manual_seed(4)
    built = build_image_classifier("resnet", width=4, stages=(1, 1), stem_stride=2, channels=(1,), strides=(9,))
    torch.manual_seed(4)
    direct = ResNet(4, (1, 1), 2)
    assert list(built.state_dict()) == list(direct.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(built.state_dict().values(), direct.state_dict().values(),
                                                 strict=True))
    assert IMAGE_ARCHITECTURES == ("plain", "resnet")
    with pytest.raises(ValueError, match="architecture must be one of 'plain', 'resnet'; got 'vgg'"):
        build_image_classifier("vgg")
