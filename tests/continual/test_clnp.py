"""CLNP: old outputs bit-exact, frozen weights, free-neuron counts, the L1 term, the tolerance, resume, bad inputs."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from neuroplastic.continual import (
    CLNP,
    ContinualTrainer,
    MultiHeadClassifier,
    activation_l1,
    clnp_layers,
    split_tasks,
    split_validation,
)
from neuroplastic.data import load_digits_dataset


@pytest.fixture(scope="module")
def streams():
    """A tiny 3-task split stream of the 8 x 8 digits (first 300 training images) and its validation stream."""
    x, y = load_digits_dataset("train")
    xt, yt = load_digits_dataset("test")
    stream = split_tasks(x[:300], y[:300], xt[:200], yt[:200], 5, scenario="task-incremental")
    stream = type(stream)(stream.tasks[:3], stream.scenario, stream.num_classes, stream.seed)
    return split_validation(stream, 0.25, seed=0)


def _model(stream, seed=0, hidden=24):
    torch.manual_seed(seed)
    body = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
    return MultiHeadClassifier(body, hidden, stream.head_sizes)


def _trainer(stream, valid, *, seed=0, tolerance=0.0, optimizer=None):
    opt = optimizer or (lambda m: torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3))
    return ContinualTrainer(_model(stream, seed), stream, opt, strategy=CLNP(1e-3, tolerance=tolerance,
                            validation=valid, search_steps=8), epochs=2, batch_size=32, seed=3)


def _logits(model, task):
    model.eval()
    with torch.no_grad():
        return model(task.x_test, task.task_id)


def test_old_outputs_and_frozen_weights_stay_bit_identical(streams):
    stream, valid = streams
    trainer = _trainer(stream, valid)
    strategy = trainer.strategy
    snapshots = []
    while not trainer.done:
        info = trainer.step()
        if info.task_done:
            snapshots.append((_logits(trainer.model, stream[info.task]),
                              {k: (m.clone(), v.clone()) for k, (m, v) in strategy.frozen.items()}))
    params = dict(trainer.model.named_parameters())
    for t, (logits, frozen) in enumerate(snapshots):
        assert torch.equal(_logits(trainer.model, stream[t]), logits), f"task {t}'s outputs changed"
        for name, (mask, values) in frozen.items():
            assert torch.equal(params[name].detach()[mask], values[mask]), name
    R = trainer.accuracy.R
    for t in range(len(stream)):
        assert (R[t:, t] == R[t, t]).all()  # BWT exactly 0
    # the newest task's neurons did train: some free weights moved after task 0
    assert not torch.equal(params["body.0.weight"].detach(), snapshots[0][1]["body.0.weight"][1])


def test_free_counts_ownership_and_interference(streams):
    stream, valid = streams
    trainer = _trainer(stream, valid, tolerance=0.05)
    trainer.run()
    strategy = trainer.strategy
    assert strategy.layers == [("body.0", "body.1"), ("body.2", "body.3")]
    history = torch.tensor(strategy.free_history)
    assert history.shape == (3, 2)
    assert (history[1:] <= history[:-1]).all() and (history >= 0).all() and (history <= 24).all()
    for layer, owner in enumerate(strategy.owners):
        assert int((owner < 0).sum()) == history[-1, layer]
        assert owner.min() >= -1 and owner.max() <= 2
    params = dict(trainer.model.named_parameters())
    used0, used1 = (o >= 0 for o in strategy.owners)
    w1 = params["body.2.weight"].detach()
    assert (w1[used1][:, ~used0] == 0).all()  # no connections from free neurons into used ones
    for t in range(3):
        assert (params[f"heads.{t}.weight"].detach()[:, ~used1] == 0).all()
        assert strategy.owners[1].eq(t).sum() == history[t - 1, 1] - history[t, 1] if t else True


def test_l1_term_against_hand_computed_value(library_error):
    h1 = torch.tensor([[1.0, -2.0], [0.0, 3.0]])
    h2 = torch.tensor([[0.5], [-1.5]])
    # mean_b sum_i |h|: (3 + 3) / 2 = 3 and (0.5 + 1.5) / 2 = 1
    assert activation_l1([h1, h2], 0.1).item() == pytest.approx(0.4)
    stream = split_tasks(torch.rand(8, 64), torch.arange(8) % 2, torch.rand(4, 64), torch.arange(4) % 2, 1,
                         scenario="task-incremental")
    model = _model(stream)
    strategy = CLNP(0.25)
    trainer = ContinualTrainer(model, stream, lambda m: torch.optim.SGD(m.parameters(), lr=0.0), strategy=strategy)
    strategy.before_task(trainer, stream[0])
    x = stream[0].x_train
    logits = trainer.forward(x, torch.zeros(8, dtype=torch.long))
    a1 = torch.relu(model.body[0](x))
    a2 = torch.relu(model.body[2](a1))
    expected = 0.25 * (a1.abs().sum(1).mean() + a2.abs().sum(1).mean())
    assert torch.allclose(strategy.loss_term(trainer, None, logits), expected)
    with library_error() as info:
        activation_l1([torch.ones(3)], 0.1)
    assert info.match("activations")


@pytest.mark.parametrize("tolerance", [0.0, 0.1])
def test_pruning_respects_the_tolerance_on_the_validation_split(streams, tolerance):
    stream, valid = streams
    trainer = _trainer(stream, valid, tolerance=tolerance)
    trainer.run()
    strategy = trainer.strategy
    for t, (base, pruned) in enumerate(strategy.validation_accuracy):
        assert pruned >= base - tolerance - 1e-9
        # the pruned network measured on the validation split is the network the trainer now holds
        assert trainer.evaluate_task(valid[t]) == pruned
        assert strategy.unpruned_accuracy[t] >= 0
    if tolerance > 0:
        tight = _trainer(stream, valid, tolerance=0.0)
        tight.run(max_steps=tight._batches_in_task(0))
        assert strategy.free_history[0][0] + strategy.free_history[0][1] >= sum(tight.strategy.free_history[0])


def _save_and_load(state):
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def test_resume_mid_stream_is_exact(streams):
    stream, valid = streams
    adam = lambda m: torch.optim.Adam(m.parameters(), lr=0.01)  # noqa: E731
    straight = _trainer(stream, valid, optimizer=adam)
    straight.run()
    first = straight._batches_in_task(0)
    for stop in (first, first + 2):
        stopped = _trainer(stream, valid, optimizer=adam)
        stopped.run(max_steps=stop)
        resumed = _trainer(stream, valid, seed=1, optimizer=adam)
        resumed.load_state_dict(_save_and_load(stopped.state_dict()))
        resumed.run()
        assert torch.equal(resumed.accuracy.R, straight.accuracy.R)
        assert resumed.strategy.free_history == straight.strategy.free_history
        for a, b in zip(resumed.model.state_dict().values(), straight.model.state_dict().values(), strict=True):
            assert torch.equal(a, b)


def test_bad_inputs(library_error, streams):
    stream, valid = streams
    for kwargs, match in (({"strength": -1.0}, "strength"), ({"strength": float("nan")}, "strength"),
                          ({"strength": True}, "strength"), ({"strength": 0.1, "tolerance": 1.5}, "tolerance"),
                          ({"strength": 0.1, "search_steps": 0}, "search_steps"),
                          ({"strength": 0.1, "validation": "x"}, "validation")):
        with library_error() as info:
            CLNP(**kwargs)
        assert info.match(match)
    with library_error() as info:
        clnp_layers(nn.Linear(3, 2))
    assert info.match("MultiHeadClassifier")
    with library_error() as info:
        clnp_layers(MultiHeadClassifier(nn.Sequential(nn.Linear(64, 8), nn.BatchNorm1d(8)), 8, (2,)))
    assert info.match("activation")
    with library_error() as info:
        clnp_layers(MultiHeadClassifier(nn.Sequential(nn.Linear(64, 8), nn.ReLU()), 9, (2,)))
    assert info.match("heads")
    short = type(valid)(valid.tasks[:2], valid.scenario, valid.num_classes, valid.seed)
    trainer = ContinualTrainer(_model(stream), stream, lambda m: torch.optim.SGD(m.parameters(), lr=0.1),
                               strategy=CLNP(0.1, validation=short))
    with library_error() as info:
        trainer.step()
    assert info.match("validation")
    with library_error() as info:
        CLNP(0.1).load_state_dict({"owners": []})
    assert info.match("missing")


def test_without_a_validation_stream_the_training_set_measures_and_recycling_can_be_off(streams):
    stream, _ = streams
    one = type(stream)(stream.tasks[:2], stream.scenario, stream.num_classes, stream.seed)
    model = _model(one)
    strategy = CLNP(1e-3, tolerance=0.0, search_steps=4, reinit_free=False)
    trainer = ContinualTrainer(model, one, lambda m: torch.optim.SGD(m.parameters(), lr=0.1), strategy=strategy,
                               epochs=1, batch_size=32)
    trainer.run(max_steps=trainer._batches_in_task(0))
    base, pruned = strategy.validation_accuracy[0]
    task = one[0]
    assert pruned >= base
    on_train = type(task)(0, task.x_train, task.y_train, task.x_train, task.y_train, task.classes, task.head,
                          task.num_outputs)
    assert trainer.evaluate_task(on_train) == pruned
    free = strategy.owners[0] < 0
    recycled = ContinualTrainer(_model(one), one, lambda m: torch.optim.SGD(m.parameters(), lr=0.1),
                                strategy=CLNP(1e-3, tolerance=0.0, search_steps=4), epochs=1, batch_size=32)
    recycled.run(max_steps=recycled._batches_in_task(0))
    assert torch.equal(recycled.strategy.owners[0], strategy.owners[0])
    plain, fresh = model.body[0].weight.detach(), recycled.model.body[0].weight.detach()
    assert free.any() and torch.equal(plain[~free], fresh[~free])  # used rows untouched by recycling
    assert not torch.equal(plain[free], fresh[free])  # free rows re-initialised
    used1 = recycled.strategy.owners[1] >= 0
    w1 = recycled.model.body[2].weight.detach()
    assert (w1[used1][:, free] == 0).all()  # nothing flows from them into used neurons
    assert (w1[~used1][:, free] != 0).any()  # free rows of the next layer are fresh, their inputs included
