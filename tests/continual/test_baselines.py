"""Baseline strategies: EWC's Fisher and penalty against hand-computed values, replay, joint training."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from neuroplastic.continual import (
    EWC,
    Batch,
    ContinualTrainer,
    ExperienceReplay,
    JointTraining,
    diagonal_fisher,
    ewc_penalty,
    permuted_tasks,
)


def _stream(num_tasks=2, n=12, features=3, classes=3):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, features, generator=gen, dtype=torch.float64)
    y = torch.arange(n) % classes
    return permuted_tasks(x, y, x, y, num_tasks, seed=0)


def _sgd(model):
    return torch.optim.SGD(model.parameters(), lr=0.1)


def test_ewc_penalty_hand_computed():
    theta = {"w": torch.tensor([1.0, 2.0], requires_grad=True), "b": torch.tensor([0.5], requires_grad=True)}
    anchors = [{"w": torch.tensor([0.0, 2.0]), "b": torch.tensor([1.5])},
               {"w": torch.tensor([1.0, 1.0]), "b": torch.tensor([0.5])}]
    fishers = [{"w": torch.tensor([2.0, 7.0]), "b": torch.tensor([3.0])},
               {"w": torch.tensor([1.0, 0.5]), "b": torch.tensor([9.0])}]
    # task 0: 2*1 + 7*0 + 3*1 = 5; task 1: 1*0 + 0.5*1 + 9*0 = 0.5; times strength/2 = 2
    penalty = ewc_penalty(theta, anchors, fishers, strength=4.0)
    assert penalty.item() == pytest.approx(2.0 * 5.5)
    penalty.backward()  # d/dw = strength * sum_k F_k (w - w*_k) = 4 * ([2, 0] + [0, 0.5])
    assert torch.allclose(theta["w"].grad, torch.tensor([8.0, 2.0]))
    assert torch.allclose(theta["b"].grad, torch.tensor([4.0 * 3.0 * -1.0]))
    assert ewc_penalty(theta, [], [], 1.0).item() == 0.0


def test_diagonal_fisher_is_the_mean_squared_per_example_gradient():
    model = nn.Linear(3, 3, bias=False).double()
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    y = torch.tensor([0, 2, 1, 1, 0])
    ids = torch.zeros(5, dtype=torch.long)
    fisher = diagonal_fisher(lambda x, t: model(x), dict(model.named_parameters()), x, y, ids)
    # softmax regression: d log p_y / dW = (onehot(y) - p) x^T, per example
    p = torch.softmax(x @ model.weight.detach().T, dim=1)
    grads = (torch.eye(3, dtype=torch.float64)[y] - p).unsqueeze(2) * x.unsqueeze(1)
    assert torch.allclose(fisher["weight"], (grads ** 2).mean(0))
    assert not torch.allclose(fisher["weight"], grads.mean(0) ** 2)  # not the squared batch gradient
    assert model.weight.grad is None


def test_ewc_separate_and_online_store_what_the_papers_say():
    stream = _stream()
    for mode in ("separate", "online"):
        model = nn.Linear(3, 3).double()
        strategy = EWC(10.0, mode=mode, gamma=0.5, fisher_samples=None)
        trainer = ContinualTrainer(model, stream, _sgd, strategy=strategy)
        data = [trainer.task_data(i) for i in range(2)]
        params = dict(model.named_parameters())
        first = diagonal_fisher(trainer.forward, params, *data[0])
        strategy.after_task(trainer, stream[0])
        anchor0 = {k: v.detach().clone() for k, v in params.items()}
        with torch.no_grad():
            model.weight.add_(0.3)
        second = diagonal_fisher(trainer.forward, params, *data[1])
        strategy.after_task(trainer, stream[1])
        if mode == "separate":
            assert len(strategy.fishers) == 2
            assert all(torch.equal(strategy.fishers[0][k], first[k]) for k in first)
            assert all(torch.equal(strategy.anchors[0][k], anchor0[k]) for k in first)
        else:  # Schwarz et al.: F~ = gamma F~_prev + F_new, anchored at the latest parameters
            assert len(strategy.fishers) == 1
            assert all(torch.allclose(strategy.fishers[0][k], 0.5 * first[k] + second[k]) for k in first)
            assert torch.equal(strategy.anchors[0]["weight"], model.weight.detach())
        with torch.no_grad():
            model.weight.add_(0.1)
        term = strategy.loss_term(trainer, data[0], model(data[0].x))
        assert term.item() == pytest.approx(ewc_penalty(params, strategy.anchors, strategy.fishers, 10.0).item())


def test_replay_appends_buffered_examples_and_keeps_the_task_batch_first():
    stream = _stream()
    strategy = ExperienceReplay(4, replay_batch_size=3, seed=1)
    trainer = ContinualTrainer(nn.Linear(3, 3).double(), stream, _sgd, strategy=strategy)
    batch = Batch(*(t[:2] for t in trainer.task_data(0)))
    assert strategy.before_step(trainer, batch) is batch  # empty buffer: nothing to replay
    for start in range(0, 12, 2):
        strategy.after_step(trainer, Batch(*(t[start:start + 2] for t in trainer.task_data(0))))
        assert len(strategy) == min(start + 2, 4) and strategy.seen == start + 2
    other = Batch(*(t[:2] for t in trainer.task_data(1)))
    mixed = strategy.before_step(trainer, other)
    assert len(mixed) == 5 and torch.equal(mixed.x[:2], other.x)
    for x, y, t in zip(*(part[2:] for part in mixed), strict=True):  # replayed rows are buffered examples
        row = (strategy.buffer[0] == x).all(1)
        assert row.any() and strategy.buffer[1][row][0] == y and t == 0


def test_joint_training_trains_on_every_task_seen_so_far():
    stream = _stream(num_tasks=3)
    trainer = ContinualTrainer(nn.Linear(3, 3).double(), stream, _sgd, strategy=JointTraining(), batch_size=5)
    data = JointTraining().training_data(trainer, 2)
    assert torch.equal(data.x, torch.cat([t.x_train for t in stream]))
    assert torch.equal(data.task_ids, torch.arange(3).repeat_interleave(12))
    assert trainer.total_steps == 3 + 5 + 8  # ceil(12/5), ceil(24/5), ceil(36/5)


def test_bad_arguments(library_error):
    for make, pattern in ((lambda: EWC(-1.0), "strength"), (lambda: EWC(1.0, mode="offline"), "mode"),
                          (lambda: EWC(1.0, gamma=1.5), "gamma"),
                          (lambda: EWC(1.0, fisher_samples=0), "fisher_samples"),
                          (lambda: ExperienceReplay(0), "capacity"),
                          (lambda: ExperienceReplay(3, replay_batch_size=True), "replay_batch_size")):
        with library_error() as info:
            make()
        assert info.match(pattern)
    with library_error() as info:
        EWC(1.0).load_state_dict({"mode": "online"})
    assert info.match("mode")
    with library_error() as info:
        ExperienceReplay(3).load_state_dict({"capacity": 3, "seen": 2, "buffer": None})
    assert info.match("buffer")
    with library_error() as info:
        ewc_penalty({"w": torch.zeros(2)}, [{}], [], 1.0)
    assert info.match("pair up")
    with library_error() as info:
        diagonal_fisher(lambda x, t: x, {"w": torch.zeros(2)}, torch.zeros(2, 2), torch.zeros(2, dtype=torch.long),
                        torch.zeros(2, dtype=torch.long))
    assert info.match("requires grad")
