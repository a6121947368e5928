"""Quine and AuxiliaryQuine: replication loss against a per-parameter reference, exact regeneration, the fixed
embedding, detached targets, shapes, loss composition and bad inputs."""

from __future__ import annotations

import math

import pytest
import torch

from neuroplastic.evolution import (
    AuxiliaryQuine,
    ParameterLayout,
    Quine,
    index_embedding,
    random_projection,
    regenerate_,
    relative_error,
    replication_loss,
)


def _quine(seed: int = 0, **kwargs) -> Quine:
    kwargs = {"embedding_dim": 5, "hidden": (6, 4), "activation": "tanh", **kwargs}
    return Quine(generator=torch.Generator().manual_seed(seed), **kwargs)


def _slow_parameter(quine: Quine, i: int) -> torch.Tensor:
    """Parameter ``i`` found by walking the named parameters (the community code's get_param)."""
    for p in quine.parameters():
        if i < p.numel():
            return p.reshape(-1)[i]
        i -= p.numel()
    raise IndexError(i)


def _slow_prediction(quine: Quine, i: int) -> torch.Tensor:
    """One parameter at a time: one-hot(i) @ P, then the layers by hand."""
    onehot = torch.zeros(quine.num_parameters, dtype=quine.projection.dtype)
    onehot[i] = 1.0
    x = onehot @ quine.projection
    layers = list(quine.layers)
    for layer in layers[:-1]:
        x = torch.tanh(layer.weight @ x + layer.bias)
    return (layers[-1].weight @ x + layers[-1].bias)[0]


def test_replication_loss_matches_a_per_parameter_loop():
    quine = _quine(dtype=torch.float64)
    expected = sum((_slow_prediction(quine, i) - _slow_parameter(quine, i).detach()) ** 2
                   for i in range(quine.num_parameters))
    assert quine.num_parameters == 5 * 6 + 6 + 6 * 4 + 4 + 4 + 1
    torch.testing.assert_close(quine.replication_loss(), expected)
    torch.testing.assert_close(quine.replication_loss(reduction="mean"), expected / quine.num_parameters)
    subset = torch.tensor([3, 0, 60])
    part = sum((_slow_prediction(quine, i) - _slow_parameter(quine, i).detach()) ** 2 for i in subset.tolist())
    torch.testing.assert_close(quine.replication_loss(subset), part)
    # the gradient too: the loop's and the batched pass's agree
    quine.replication_loss().backward()
    batched = [p.grad.clone() for p in quine.parameters()]
    quine.zero_grad()
    expected = sum((_slow_prediction(quine, i) - _slow_parameter(quine, i).detach()) ** 2
                   for i in range(quine.num_parameters))
    expected.backward()
    for a, p in zip(batched, quine.parameters(), strict=True):
        torch.testing.assert_close(a, p.grad)


def test_pure_functions_hand_computed():
    w_hat, w = torch.tensor([1.0, 2.0, 0.0]), torch.tensor([0.0, 2.0, 3.0])
    assert float(replication_loss(w_hat, w)) == 10.0
    assert float(replication_loss(w_hat, w, "mean")) == pytest.approx(10 / 3)
    assert float(relative_error(w_hat, w)) == pytest.approx(math.sqrt(10) / math.sqrt(13))
    assert float(relative_error(torch.zeros(2), torch.zeros(2))) == 0.0
    assert float(relative_error(torch.ones(2), torch.zeros(2))) == math.inf


def test_target_is_detached():
    w = torch.tensor([1.0, -2.0], requires_grad=True)
    w_hat = torch.tensor([0.5, 0.0], requires_grad=True)
    replication_loss(w_hat, w).backward()
    assert w.grad is None  # no gradient through the target
    torch.testing.assert_close(w_hat.grad, 2 * (w_hat - w).detach())
    # in the module, a parameter's gradient is only the one through the predictions
    quine = _quine(dtype=torch.float64)
    quine.replication_loss().backward()
    through_target = [p.grad.clone() for p in quine.parameters()]
    quine.zero_grad()
    pred, flat = quine.predict_parameters(), quine.flat_parameters()
    ((pred - flat) ** 2).sum().backward()  # not detached: an extra -2 (w_hat - w) on each weight
    diff = (quine.predict_parameters() - quine.flat_parameters()).detach()
    extra = torch.cat([(b - a).reshape(-1) for a, b in zip(through_target, (p.grad for p in quine.parameters()),
                                                           strict=True)])
    torch.testing.assert_close(extra, -2 * diff)


def test_regeneration_is_exact():
    quine = _quine(3)
    before = quine.predict_parameters().detach().clone()
    returned = quine.regenerate()
    assert torch.equal(returned, before)
    assert torch.equal(quine.flat_parameters().detach(), before)
    assert torch.equal(ParameterLayout(quine).flatten(quine), before)
    model = torch.nn.Linear(2, 1)
    layout = ParameterLayout(model)
    out = regenerate_(layout, model, torch.tensor([1.0, 2.0, 3.0]))
    assert torch.equal(model.weight.detach(), torch.tensor([[1.0, 2.0]])) and float(model.bias.detach()) == 3.0
    assert torch.equal(out, torch.tensor([1.0, 2.0, 3.0]))


def test_embedding_is_a_fixed_buffer():
    a, b, c = _quine(7), _quine(7), _quine(8)
    assert "projection" in dict(a.named_buffers()) and "projection" in a.state_dict()
    assert all(p is not a.projection for p in a.parameters())
    assert a.num_parameters == sum(p.numel() for p in a.parameters())  # the projection is not replicated
    assert a.projection.shape == (a.num_parameters, 5) and not a.projection.requires_grad
    assert torch.equal(a.projection, b.projection) and not torch.equal(a.projection, c.projection)
    assert torch.equal(a.flat_parameters(), b.flat_parameters())
    projection = a.projection.clone()
    optimizer = torch.optim.SGD(a.parameters(), lr=0.1)
    a.replication_loss().backward()
    optimizer.step()
    assert torch.equal(a.projection, projection)  # not trained
    # one-hot times the matrix is the row lookup
    p = random_projection(7, 3, generator=torch.Generator().manual_seed(0))
    idx = torch.tensor([6, 0, 2])
    torch.testing.assert_close(index_embedding(p, idx), torch.nn.functional.one_hot(idx, 7).float() @ p)
    assert abs(float(random_projection(2000, 50).square().sum(1).mean()) - 1.0) < 0.05  # E||e||^2 = 1


def test_state_dict_and_norm():
    a, b = _quine(1), _quine(2)
    b.load_state_dict(a.state_dict())
    assert torch.equal(a.predict_parameters(), b.predict_parameters())
    torch.testing.assert_close(a.parameter_norm(), a.flat_parameters().detach().norm())
    assert a(torch.tensor([0, 5])).shape == (2,) and a().shape == (a.num_parameters,)


def test_auxiliary_quine_shapes_and_loss():
    g = torch.Generator().manual_seed(0)
    aux = AuxiliaryQuine(12, 4, embedding_dim=3, hidden=(5,), generator=g, dtype=torch.float64)
    assert aux.num_parameters == (3 + 12) * 5 + 5 + 5 * 5 + 5  # both heads are replicated
    images = torch.rand(6, 12, dtype=torch.float64, generator=g)
    idx = torch.tensor([0, 1, 2, 3, 4, 5])
    weights, logits = aux(idx, images)
    assert weights.shape == (6,) and logits.shape == (6, 4)
    rep_images = torch.rand(aux.num_parameters, 12, dtype=torch.float64, generator=g)
    assert aux.predict_parameters(rep_images).shape == (aux.num_parameters,)
    assert aux.predict_parameters(images[0]).shape == (aux.num_parameters,)  # one image for all indices
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    loss = aux.loss(idx, images, labels, rep_images, task_weight=0.3)
    rep = ((aux.predict_parameters(rep_images) - aux.flat_parameters().detach()) ** 2).mean()
    ce = torch.nn.functional.cross_entropy(logits, labels)
    torch.testing.assert_close(loss.replication, rep)
    torch.testing.assert_close(loss.task, ce)
    torch.testing.assert_close(loss.total, rep + 0.3 * ce)
    before = aux.predict_parameters(rep_images).detach()
    assert torch.equal(aux.regenerate(rep_images), before) and torch.equal(aux.flat_parameters().detach(), before)
    assert aux.classify(images, idx).shape == (6,)


@pytest.mark.parametrize("make", [
    lambda: Quine(0), lambda: Quine(4, ()), lambda: Quine(4, (3,), "swish"), lambda: Quine(4, (True,)),
    lambda: Quine(4, generator=3), lambda: Quine(4, dtype=torch.int64), lambda: random_projection(0, 3),
    lambda: AuxiliaryQuine(0), lambda: AuxiliaryQuine(4, 1),
])
def test_bad_constructors_are_refused(library_error, make):
    with library_error():
        make()


def test_bad_inputs_are_refused(library_error):
    quine = _quine()
    aux = AuxiliaryQuine(4, 3, embedding_dim=2, hidden=(3,))
    cases = [
        (lambda: quine(torch.tensor([quine.num_parameters])), "indices must lie in"),
        (lambda: quine(torch.tensor([0.0])), "indices must be a 1-D torch.long"),
        (lambda: quine.replication_loss(reduction="max"), "reduction must be one of"),
        (lambda: replication_loss(torch.zeros(3), torch.zeros(2)), "same shape"),
        (lambda: replication_loss(torch.zeros(0), torch.zeros(0)), "at least one"),
        (lambda: relative_error(torch.zeros(2, 2), torch.zeros(2, 2)), "must have shape"),
        (lambda: regenerate_(quine.layout, quine, torch.zeros(3)), "must have shape"),
        (lambda: aux(torch.tensor([0]), torch.zeros(1, 5)), "images must have shape"),
        (lambda: aux.predict_parameters(torch.zeros(2, 4)), "images must have shape"),
        (lambda: aux.task_loss(torch.tensor([0]), torch.zeros(1, 4), torch.tensor([3])), "labels must lie"),
        (lambda: aux.task_loss(torch.tensor([0]), torch.zeros(1, 4), torch.tensor([0.0])), "labels must be"),
        (lambda: aux.loss(torch.tensor([0]), torch.zeros(1, 4), torch.tensor([0]), torch.zeros(4),
                          task_weight=-1.0), "task_weight"),
        (lambda: aux.loss(torch.tensor([0]), torch.zeros(1, 4), torch.tensor([0]), torch.zeros(4),
                          task_weight=float("nan")), "task_weight"),
    ]
    for call, message in cases:
        with library_error() as info:
            call()
        assert info.match(message)
