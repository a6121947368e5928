"""Reusable network architectures.

- :class:`SmallCNN` (:class:`ConvBlock` s), :class:`ResNet` (:class:`BasicBlock` s) and
  :func:`build_image_classifier`: image classifiers with BatchNorm layers (the backdoor-pruning experiment).
"""

from neuroplastic.models.builder import IMAGE_ARCHITECTURES, build_image_classifier
from neuroplastic.models.cnn import ConvBlock, SmallCNN
from neuroplastic.models.resnet import BasicBlock, ResNet

__all__ = [
    "ConvBlock", "SmallCNN", "BasicBlock", "ResNet", "IMAGE_ARCHITECTURES", "build_image_classifier",
]
