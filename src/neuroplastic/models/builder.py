"""Build an image classifier of this package by the name of its architecture."""

from __future__ import annotations

from torch import nn

from neuroplastic._checks import check_choice
from neuroplastic.models.cnn import SmallCNN
from neuroplastic.models.resnet import ResNet

__all__ = ["IMAGE_ARCHITECTURES", "build_image_classifier"]

IMAGE_ARCHITECTURES = ("plain", "resnet")


def build_image_classifier(architecture: str, *, in_channels: int = 1, num_classes: int = 10,
                           channels: tuple[int, ...] = (16, 32, 32, 64), strides: tuple[int, ...] = (2, 1, 2, 1),
                           width: int = 16, stages: tuple[int, ...] = (2, 2, 2, 2),
                           stem_stride: int = 1) -> nn.Module:
    """A classifier of images ``[B, in_channels, H, W] -> logits [B, num_classes]``.

    ``architecture``: "plain" (:class:`~neuroplastic.models.SmallCNN` of ``channels`` and ``strides``; the
    ResNet arguments are ignored) or "resnet" (:class:`~neuroplastic.models.ResNet` of ``width``, ``stages``,
    ``stem_stride``; ``channels`` and ``strides`` are ignored).
    """
    check_choice("architecture", architecture, IMAGE_ARCHITECTURES)
    if architecture == "plain":
        return SmallCNN(tuple(channels), tuple(strides), num_classes=num_classes, in_channels=in_channels)
    return ResNet(width, tuple(stages), stem_stride, in_channels=in_channels, num_classes=num_classes)
