"""A small plain CNN for image classification: convolution -> BatchNorm -> ReLU blocks, global average
pooling, a linear classifier (no residual connections).

Used by the ``backdoor-pruning`` experiment in place of the paper's ResNet-18; every BatchNorm layer
(``blocks.i.bn``) is a place for per-channel masks (:class:`~neuroplastic.structure.NeuronMasks`)::

    x [B, C_in, H, W] -> (conv 3x3 -> BN -> ReLU) x len(channels) -> mean over H, W -> linear -> [B, classes]
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F

from neuroplastic._checks import check_int, check_int_tuple

__all__ = ["ConvBlock", "SmallCNN"]


class ConvBlock(nn.Module):
    """``relu(bn(conv(x)))``: 3x3 convolution (no bias), BatchNorm, ReLU. ``[B, C_in, H, W] -> [B, C_out, H', W']``."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


class SmallCNN(nn.Module):
    """Conv-BN-ReLU blocks, global average pooling and a linear classifier: ``[B, C_in, H, W] -> [B, classes]``.

    Block ``i`` has ``channels[i]`` output channels and stride ``strides[i]``. The BatchNorm layers
    (``blocks.i.bn``) are where RNP's channel masks go.
    """

    def __init__(self, channels: tuple[int, ...], strides: tuple[int, ...], num_classes: int = 10,
                 in_channels: int = 1) -> None:
        super().__init__()
        if len(channels) == 0 or len(channels) != len(strides):
            raise ValueError(f"channels and strides must be non-empty and of the same length, got {channels} "
                             f"and {strides}")
        check_int_tuple("channels", channels)
        check_int_tuple("strides", strides)
        check_int("in_channels", in_channels)
        check_int("num_classes", num_classes)
        sizes = (in_channels, *channels)
        self.blocks = nn.ModuleList(ConvBlock(sizes[i], sizes[i + 1], strides[i]) for i in range(len(channels)))
        self.head = nn.Linear(channels[-1], num_classes)

    def forward(self, x: Tensor) -> Tensor:
        for block in self.blocks:
            x = block(x)
        return self.head(x.mean(dim=(2, 3)))
