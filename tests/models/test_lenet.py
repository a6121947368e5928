"""LeNet-300-100 and LeNet-5: shapes, layers, He initialisation in creation order."""

import pytest
import torch
from torch import nn

from neuroplastic.models import LeNet5, LeNet300100


def _reference_init(layers: list[nn.Module]) -> None:
    for layer in layers:
        nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
        nn.init.zeros_(layer.bias)


def test_lenet_300_100_shapes_and_layers():
    model = LeNet300100()
    assert [name for name, _ in model.named_parameters()] == [
        "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias"]
    assert [tuple(p.shape) for p in model.parameters()] == [(300, 784), (300,), (100, 300), (100,), (10, 100), (10,)]
    assert model(torch.rand(5, 784)).shape == (5, 10)
    assert model(torch.rand(5, 1, 28, 28)).shape == (5, 10)  # flattened
    small = LeNet300100(in_features=20, hidden=(8, 4), classes=3)
    assert small(torch.rand(2, 20)).shape == (2, 3)
    x = torch.rand(3, 20)
    with torch.no_grad():
        expected = small.fc3(torch.relu(small.fc2(torch.relu(small.fc1(x)))))
        torch.testing.assert_close(small(x), expected)


def test_lenet_5_shapes_and_layers():
    model = LeNet5()
    assert [name for name, _ in model.named_parameters()] == [
        f"{layer}.{kind}" for layer in ("conv1", "conv2", "fc1", "fc2", "fc3") for kind in ("weight", "bias")]
    assert model.conv1.weight.shape == (6, 1, 5, 5) and model.conv2.weight.shape == (16, 6, 5, 5)
    assert model.fc1.weight.shape == (120, 256) and model.fc3.weight.shape == (10, 84)
    x = torch.rand(4, 1, 28, 28)
    out = model(x)
    assert out.shape == (4, 10)
    torch.testing.assert_close(model(x.flatten(1)), out)  # [B, 784] is viewed as [B, 1, 28, 28]
    rgb = LeNet5(in_channels=3, image_size=32, classes=7)
    assert rgb.fc1.in_features == 16 * 5 * 5 and rgb(torch.rand(2, 3, 32, 32)).shape == (2, 7)


def test_seeded_init_is_he_in_creation_order():
    torch.manual_seed(0)
    model = LeNet300100()
    torch.manual_seed(0)
    layers = [nn.Linear(784, 300), nn.Linear(300, 100), nn.Linear(100, 10)]
    _reference_init(layers)
    for got, want in zip(model.parameters(), [p for layer in layers for p in layer.parameters()], strict=True):
        assert torch.equal(got, want)

    torch.manual_seed(1)
    model = LeNet5()
    torch.manual_seed(1)
    layers = [nn.Conv2d(1, 6, 5), nn.Conv2d(6, 16, 5), nn.Linear(256, 120), nn.Linear(120, 84), nn.Linear(84, 10)]
    _reference_init(layers)
    for got, want in zip(model.parameters(), [p for layer in layers for p in layer.parameters()], strict=True):
        assert torch.equal(got, want)
    assert all(not layer.bias.detach().any() for layer in (model.conv1, model.fc3))
    # He: weight std close to sqrt(2 / fan_in)
    assert float(LeNet300100().fc1.weight.detach().std()) == pytest.approx((2 / 784) ** 0.5, rel=0.05)


def test_bad_arguments():
    with pytest.raises(ValueError, match="two layer widths"):
        LeNet300100(hidden=(300,))
    with pytest.raises(ValueError, match="hidden"):
        LeNet300100(hidden=(300, 0))
    with pytest.raises(ValueError, match="image_size"):
        LeNet5(image_size=12)
    with pytest.raises(TypeError, match="in_channels"):
        LeNet5(in_channels=1.5)
