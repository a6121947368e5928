import pytest
import torch
from torch import nn

from neuroplastic.evaluation import accuracy, correct_mask, count_parameters, predict_classes


class Fixed(nn.Module):
    """Predicts class = first input column, and records the mode it was called in."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))
        self.modes: list[bool] = []

    def forward(self, x):
        self.modes.append(self.training)
        return nn.functional.one_hot(x[:, 0].long(), 3).float() * self.scale


def test_accuracy_hand_computed_and_batched():
    model = Fixed()
    x = torch.tensor([[0.0], [1.0], [2.0], [1.0], [0.0]])
    y = torch.tensor([0, 1, 1, 1, 2])
    assert predict_classes(model, x, batch_size=2).tolist() == [0, 1, 2, 1, 0]
    assert correct_mask(model, x, y, batch_size=2).tolist() == [True, True, False, True, False]
    assert accuracy(model, x, y, batch_size=2) == 3 / 5
    assert model.modes == [False] * 9  # three calls of three batches each, all in eval mode
    assert model.training  # restored


def test_accuracy_restores_eval_mode_and_rejects_bad_input():
    model = Fixed().eval()
    accuracy(model, torch.zeros(4, 1), torch.zeros(4, dtype=torch.long))
    assert not model.training
    with pytest.raises(ValueError, match="labels"):
        accuracy(model, torch.zeros(4, 1), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="empty"):
        accuracy(model, torch.zeros(0, 1), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="batch_size"):
        accuracy(model, torch.zeros(4, 1), torch.zeros(4, dtype=torch.long), batch_size=0)


def test_count_parameters():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    assert count_parameters(model) == 3 * 4 + 4 + 4 * 2 + 2
    model[0].weight.requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == 4 + 4 * 2 + 2
    tied = nn.Sequential(model[1], model[1])
    assert count_parameters(tied) == 10
