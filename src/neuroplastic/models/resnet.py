"""A ResNet-18-style network (He et al. 2016, "Deep residual learning for image recognition"), scalable
down to small images and widths.

A 3x3 stem, stages of :class:`BasicBlock` s with identity or 1x1-convolution + BN shortcuts, stage widths
``width * 2**i``, global average pooling, a linear classifier::

    x [B, C_in, H, W] -> conv 3x3 (stride stem_stride) -> BN -> ReLU
                      -> stages of BasicBlocks (first block of stage i > 0: stride 2)
                      -> mean over H, W -> linear -> logits [B, classes]

With ``width=64, stages=(2, 2, 2, 2), stem_stride=1`` this is CIFAR-10's ResNet-18 layout (4,800 BatchNorm
channels, shortcut BNs included).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from neuroplastic._checks import check_int, check_int_tuple
from neuroplastic.models.cnn import ConvBlock

__all__ = ["BasicBlock", "ResNet"]


class BasicBlock(nn.Module):
    """A residual block of ResNet-18's layout, ``[B, C_in, H, W] -> [B, C_out, H', W']``::

        out = relu(bn1(conv1(x)))                       conv1: 3x3, stride ``stride``
        out = relu(bn2(conv2(out)) + shortcut(x))       conv2: 3x3, stride 1

    ``shortcut(x)`` is ``x`` when the shape is kept, else ``shortcut_bn(shortcut_conv(x))`` (1x1 convolution
    with the block's stride, BatchNorm). Convolutions have no bias; every BatchNorm can carry an RNP mask.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut_conv: nn.Conv2d | None = None
        self.shortcut_bn: nn.BatchNorm2d | None = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut_conv = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)
            self.shortcut_bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        skip = x if self.shortcut_conv is None else self.shortcut_bn(self.shortcut_conv(x))  # type: ignore[misc]
        return F.relu(out + skip)


class ResNet(nn.Module):
    """A ResNet-18-style network: ``[B, C_in, H, W] -> [B, classes]``.

    ``stem`` (3x3 convolution with stride ``stem_stride`` -> BN -> ReLU, ``width`` channels), then one stage
    per entry of ``stages`` (that many :class:`BasicBlock` s; stage ``i`` has ``width * 2**i`` channels and its
    first block has stride 1 for ``i = 0``, 2 after), global average pooling, a linear classifier. With
    ``width=16, stages=(2, 2, 2, 2)`` the stage widths are 16/32/64/128 and there are 1,200 BatchNorm
    channels (shortcut BNs included), a quarter of ResNet-18's 4,800 in each layer. The BatchNorm layers are
    ``stem.bn``, ``stages.i.j.bn1``, ``.bn2`` and ``.shortcut_bn``.
    """

    def __init__(self, width: int = 16, stages: tuple[int, ...] = (2, 2, 2, 2), stem_stride: int = 1,
                 in_channels: int = 1, num_classes: int = 10) -> None:
        super().__init__()
        for name, value in (("width", width), ("stem_stride", stem_stride), ("in_channels", in_channels),
                            ("num_classes", num_classes)):
            check_int(name, value)
        check_int_tuple("stages (block counts)", stages)
        self.stem = ConvBlock(in_channels, width, stem_stride)
        layers, channels = [], width
        for index, blocks in enumerate(stages):
            out = width * 2 ** index
            stride = 1 if index == 0 else 2
            layers.append(nn.Sequential(*(BasicBlock(channels if j == 0 else out, out, stride if j == 0 else 1)
                                          for j in range(blocks))))
            channels = out
        self.stages = nn.ModuleList(layers)
        self.head = nn.Linear(channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        # Standard strides: a one-channel batch from random_shift has strides (HW, 1, W, 1), which also read
        # as channels_last, and with them the backward pass crashed (heap corruption, torch 2.13 CPU, at
        # width 4 with a 1x1 shortcut convolution). The plain CNN keeps its inputs as they come.
        x = self.stem(x.clone(memory_format=torch.contiguous_format))
        for stage in self.stages:
            x = stage(x)
        return self.head(x.mean(dim=(2, 3)))
