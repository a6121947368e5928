"""The continual trainer: hook order, the accuracy matrix, forgetting, exact resume mid-task, heads, bad inputs."""

from __future__ import annotations

import copy
import io

import pytest
import torch
from torch import nn

from neuroplastic.continual import (
    EWC,
    Batch,
    ContinualTrainer,
    ExperienceReplay,
    FineTuning,
    JointTraining,
    MultiHeadClassifier,
    Strategy,
    permuted_tasks,
    split_tasks,
)
from neuroplastic.data import load_digits_dataset


@pytest.fixture(scope="module")
def digits():
    """Small streams of the 8 x 8 digits (the first 400 training images, all test images) to keep tests fast."""
    x, y = load_digits_dataset("train")
    xt, yt = load_digits_dataset("test")
    data = (x[:400], y[:400], xt, yt)
    return {"permuted": permuted_tasks(*data, 3, seed=0),
            "split-task": split_tasks(*data, 2, scenario="task-incremental"),
            "split-class": split_tasks(*data, 2, scenario="class-incremental")}


def _model(stream, seed=0):
    torch.manual_seed(seed)
    if stream.task_incremental:
        return MultiHeadClassifier(nn.Sequential(nn.Linear(64, 16), nn.ReLU()), 16, stream.head_sizes)
    return nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))


def _accuracy(model, task, task_incremental):
    with torch.no_grad():
        logits = model(task.x_test, task.task_id) if task_incremental else model(task.x_test)
    return (logits.argmax(1) == task.y_test).double().mean().item()


class Recorder(Strategy):
    def __init__(self):
        self.calls = []

    def before_task(self, trainer, task):
        self.calls.append(("before_task", task.task_id))

    def resume_task(self, trainer, task):
        self.calls.append(("resume_task", task.task_id))

    def training_data(self, trainer, task_index):
        self.calls.append(("training_data", task_index))
        return super().training_data(trainer, task_index)

    def before_step(self, trainer, batch):
        self.calls.append("before_step")
        return batch

    def loss_term(self, trainer, batch, logits):
        self.calls.append("loss_term")
        return None

    def after_backward(self, trainer, batch):
        assert all(p.grad is not None for p in trainer.model.parameters())
        self.calls.append("after_backward")

    def after_step(self, trainer, batch):
        self.calls.append("after_step")

    def after_task(self, trainer, task):
        assert trainer.accuracy.rows_recorded == task.task_id
        self.calls.append(("after_task", task.task_id))


def test_hooks_run_in_order_and_resume_task_replaces_before_task():
    x = torch.rand(6, 4)
    stream = permuted_tasks(x, torch.arange(6) % 2, x, torch.arange(6) % 2, 2, seed=0)
    recorder = Recorder()
    trainer = ContinualTrainer(nn.Linear(4, 2), stream, lambda m: torch.optim.SGD(m.parameters(), lr=0.1),
                               strategy=recorder, batch_size=4)
    assert trainer.total_steps == 4
    recorder.calls.clear()  # total_steps asked training_data for every task
    step = ["before_step", "loss_term", "after_backward", "after_step"]
    trainer.step()
    state = trainer.state_dict()
    trainer.run()
    assert recorder.calls == [("before_task", 0), ("training_data", 0), *step, *step, ("after_task", 0),
                              ("before_task", 1), ("training_data", 1), *step, *step, ("after_task", 1)]
    fresh = Recorder()
    resumed = ContinualTrainer(nn.Linear(4, 2), stream, lambda m: torch.optim.SGD(m.parameters(), lr=0.1),
                               strategy=fresh, batch_size=4)
    resumed.load_state_dict(state)
    resumed.step()
    assert fresh.calls == [("resume_task", 0), ("training_data", 0), *step, ("after_task", 0)]
    with pytest.raises(RuntimeError, match="finished"):
        trainer.step()


@pytest.mark.parametrize("kind", ["permuted", "split-task", "split-class"])
def test_the_matrix_holds_direct_evaluations(digits, kind):
    stream = digits[kind]
    model = _model(stream)
    initial = copy.deepcopy(model)
    trainer = ContinualTrainer(model, stream, lambda m: torch.optim.SGD(m.parameters(), lr=0.2), batch_size=64)
    rows = []
    while not trainer.done:
        info = trainer.step()
        if info.task_done:  # the row right after the task, evaluated by hand
            rows.append([_accuracy(model, t, stream.task_incremental) for t in stream])
            assert torch.equal(info.row, torch.tensor(rows[-1], dtype=torch.float64))
    assert trainer.accuracy.R.shape == (len(stream), len(stream)) and trainer.accuracy.complete
    assert torch.allclose(trainer.accuracy.R, torch.tensor(rows, dtype=torch.float64))
    b = torch.tensor([_accuracy(initial, t, stream.task_incremental) for t in stream], dtype=torch.float64)
    assert torch.allclose(trainer.accuracy.initial, b)
    assert trainer.global_step == trainer.total_steps
    assert trainer.evaluate_task(stream[1]) == trainer.evaluate(1) == rows[-1][1]


def test_fine_tuning_forgets_the_first_classes_in_a_class_incremental_stream(digits):
    stream = digits["split-class"]  # digits 0-4, then 5-9, one shared head
    trainer = ContinualTrainer(_model(stream), stream, lambda m: torch.optim.SGD(m.parameters(), lr=0.2),
                               strategy=FineTuning(), epochs=20, batch_size=32)
    trainer.run()
    r = trainer.accuracy.R
    assert r[0, 0] > 0.8 and r[1, 1] > 0.8
    assert r[1, 0] < 0.2  # the network now answers 5-9: catastrophic forgetting
    assert trainer.accuracy.metrics()["forgetting"] > 0.3


def _save_and_load(state):
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, map_location="cpu", weights_only=True)  # as the run platform loads checkpoints


@pytest.mark.parametrize("kind, make_strategy", [
    ("split-class", lambda: ExperienceReplay(50, seed=3)),
    ("split-task", lambda: EWC(5.0, mode="online", gamma=0.9, fisher_samples=40, seed=2)),
    ("permuted", lambda: JointTraining()),
])
def test_resuming_mid_task_gives_identical_results(digits, kind, make_strategy):
    stream = digits[kind]

    def build(seed):
        return ContinualTrainer(_model(stream, seed), stream, lambda m: torch.optim.Adam(m.parameters(), lr=0.01),
                                strategy=make_strategy(), epochs=2, batch_size=48, seed=5)

    straight = build(0)
    straight.run()
    first_task = straight._batches_in_task(0)
    # at the start, at the end of task 0, and in the middle of task 1's first epoch
    for stop in (0, first_task, first_task + 3):
        stopped = build(0)
        stopped.run(max_steps=stop)
        assert stopped.task_index == (0 if stop == 0 else 1)
        assert stopped.position == (3 * 48 if stop > first_task else 0)
        state = _save_and_load(stopped.state_dict())
        resumed = build(1)  # other initial weights: everything must come from the state
        resumed.load_state_dict(state)
        resumed.run()
        assert torch.equal(resumed.accuracy.R, straight.accuracy.R)
        assert torch.equal(resumed.accuracy.initial, straight.accuracy.initial)
        for a, b in zip(resumed.model.state_dict().values(), straight.model.state_dict().values(), strict=True):
            assert torch.equal(a, b)
        assert resumed.global_step == straight.global_step == straight.total_steps


def test_multi_head_classifier_routes_each_example_to_its_task_head(library_error):
    torch.manual_seed(0)
    model = MultiHeadClassifier(nn.Identity(), 3, (2, 3))
    x = torch.randn(4, 3)
    out = model(x, torch.tensor([0, 1, 1, 0]))
    assert out.shape == (4, 3)
    assert torch.allclose(out[0, :2], model.heads[0](x[0])) and out[0, 2] == float("-inf")
    assert torch.allclose(out[1], model.heads[1](x[1]))
    assert torch.equal(model(x, 1), model.heads[1](x))
    loss = nn.functional.cross_entropy(out, torch.tensor([1, 2, 0, 0]))
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in model.parameters())
    with library_error() as info:
        model(x, torch.tensor([0, 2, 1, 0]))
    assert info.match("task_ids must be in 0..1")
    with library_error() as info:
        model(x, torch.zeros(3, dtype=torch.long))
    assert info.match("task_ids must be")
    with library_error() as info:
        MultiHeadClassifier(nn.Identity(), 3, ())
    assert info.match("head_sizes")


def test_bad_inputs(library_error):
    x = torch.rand(6, 4)
    stream = split_tasks(x, torch.arange(6) % 2, x, torch.arange(6) % 2, 1, scenario="class-incremental")
    sgd = lambda m: torch.optim.SGD(m.parameters(), lr=0.1)  # noqa: E731
    model = nn.Linear(4, 2)
    for kwargs, pattern in (({"epochs": 0}, "epochs"), ({"batch_size": 1.5}, "batch_size"),
                            ({"strategy": object()}, "strategy"), ({"seed": -1}, "seed"),
                            ({"reset_optimizer": 1}, "reset_optimizer")):
        with library_error() as info:
            ContinualTrainer(model, stream, sgd, **kwargs)
        assert info.match(pattern)
    with library_error() as info:
        ContinualTrainer(model, stream, torch.optim.SGD(model.parameters(), lr=0.1))
    assert info.match("factory")
    with library_error() as info:
        ContinualTrainer(model, [stream[0]], sgd)
    assert info.match("TaskStream")

    class NoData(Strategy):
        def training_data(self, trainer, task_index):
            return (x, x)

    with library_error() as info:
        ContinualTrainer(model, stream, sgd, strategy=NoData()).step()
    assert info.match("must return a Batch")
    trainer = ContinualTrainer(model, stream, sgd)
    state = trainer.state_dict()
    with library_error() as info:
        trainer.load_state_dict({k: v for k, v in state.items() if k != "model"})
    assert info.match("missing")
    with library_error() as info:
        trainer.load_state_dict({**state, "num_tasks": 4})
    assert info.match("num_tasks")
    with library_error() as info:
        ContinualTrainer(model, stream, lambda m: None).step()
    assert info.match("Optimizer")
    assert isinstance(Batch(x, x[:, 0].long(), x[:, 0].long()).to("cpu"), Batch)
