"""LeNet-300-100 and LeNet-5 (with ReLU and max pooling), He-initialised: the small MNIST networks of the
pruning and sparse-training literature (LeCun et al. 1998; Han et al. 2015; Liu et al. 2021).

Used by the ``sparse-training`` experiment::

    LeNet300100: x [B, 784] -> Linear 784 -> 300 -> ReLU -> Linear 300 -> 100 -> ReLU -> Linear 100 -> 10
    LeNet5:      x [B, 1, 28, 28] -> conv 5x5 1 -> 6 -> ReLU -> max pool 2 -> conv 5x5 6 -> 16 -> ReLU
                 -> max pool 2 -> flatten (16 * 4 * 4 = 256) -> Linear 256 -> 120 -> ReLU -> Linear 120 -> 84
                 -> ReLU -> Linear 84 -> 10

Initialisation: every conv and linear weight is He (Kaiming normal, fan-in, ReLU gain), every bias zero, in
the order the layers are created (``conv1, conv2, fc1, fc2, fc3``), so a seeded network is reproducible.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from neuroplastic._checks import check_int

__all__ = ["LeNet300100", "LeNet5"]


def _he_init(module: nn.Module) -> None:
    """He (Kaiming normal, fan-in, ReLU) weights and zero biases for every conv and linear layer, in order."""
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            nn.init.zeros_(layer.bias)


class LeNet300100(nn.Module):
    """LeNet-300-100: ``in_features -> hidden[0] -> hidden[1] -> classes`` with ReLU, He initialisation.

    ``[B, in_features]`` (or any ``[B, ...]`` with that many features) -> logits ``[B, classes]``.
    Layers ``fc1, fc2, fc3``, created in that order.
    """

    def __init__(self, in_features: int = 784, hidden: tuple[int, int] = (300, 100), classes: int = 10) -> None:
        super().__init__()
        check_int("in_features", in_features, minimum=1)
        check_int("classes", classes, minimum=1)
        if len(hidden) != 2:
            raise ValueError(f"hidden must hold two layer widths, got {hidden!r}")
        check_int("hidden[0]", hidden[0], minimum=1)
        check_int("hidden[1]", hidden[1], minimum=1)
        self.fc1 = nn.Linear(in_features, hidden[0])
        self.fc2 = nn.Linear(hidden[0], hidden[1])
        self.fc3 = nn.Linear(hidden[1], classes)
        _he_init(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x.flatten(1))))))


class LeNet5(nn.Module):
    """LeNet-5 with ReLU, max pooling and He initialisation.

    ``[B, in_channels, image_size, image_size]`` (or the same flattened, ``[B, in_channels * image_size**2]``)
    -> logits ``[B, classes]``. Two 5x5 convolutions (6 and 16 channels, no padding), each followed by ReLU and
    2x2 max pooling, then ``fc1`` (16 * s * s -> 120, ``s = ((image_size - 4) // 2 - 4) // 2``: 4 for 28x28),
    ``fc2`` (120 -> 84), ``fc3`` (84 -> classes). Layers created in the order ``conv1, conv2, fc1, fc2, fc3``.
    """

    def __init__(self, in_channels: int = 1, image_size: int = 28, classes: int = 10) -> None:
        super().__init__()
        check_int("in_channels", in_channels, minimum=1)
        check_int("image_size", image_size, minimum=16)  # the smallest that leaves 1x1 after both stages
        check_int("classes", classes, minimum=1)
        self.in_channels, self.image_size = in_channels, image_size
        side = ((image_size - 4) // 2 - 4) // 2
        self.conv1 = nn.Conv2d(in_channels, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * side * side, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, classes)
        _he_init(self)

    def forward(self, x: Tensor) -> Tensor:
        x = x.view(-1, self.in_channels, self.image_size, self.image_size)
        x = nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x.flatten(1))))))
