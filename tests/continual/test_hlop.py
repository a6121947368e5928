"""HLOP: the gradient projection hook, the lateral neurons grown per task, rate and spiking networks, resume."""

from __future__ import annotations

import io

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from neuroplastic.continual import (
    HLOP,
    ContinualTrainer,
    GradientProjector,
    InputProjector,
    SubspaceProjection,
    digits_stream,
    hlop_sizes,
)
from neuroplastic.neurons import LIF
from neuroplastic.plasticity import orthonormal_rows


class _SpikingMLP(nn.Module):
    def __init__(self, d: int = 64, h: int = 24, c: int = 10, steps: int = 3) -> None:
        super().__init__()
        self.steps = steps
        self.fc1, self.lif1 = nn.Linear(d, h, bias=False), LIF(h, tau=2.0, threshold=0.3, surrogate="atan")
        self.fc2 = nn.Linear(h, c, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spikes, _ = self.lif1(self.fc1(x).unsqueeze(1).expand(x.shape[0], self.steps, -1).contiguous())
        return self.fc2(spikes).mean(1)


def _rate_mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 32, bias=False), nn.ReLU(), nn.Linear(32, 10, bias=False))


@pytest.fixture(scope="module")
def stream():
    full = digits_stream("permuted", 3, seed=0)
    # 256 training examples per task keep the tests fast
    tasks = tuple(type(t)(t.task_id, t.x_train[:256], t.y_train[:256], t.x_test, t.y_test, t.classes, t.head,
                          t.num_outputs, t.permutation) for t in full)
    return type(full)(tasks, full.scenario, full.num_classes, full.seed)


def _trainer(model, stream, strategy, seed=0):
    return ContinualTrainer(model, stream, lambda m: torch.optim.SGD(m.parameters(), lr=0.1), strategy=strategy,
                            epochs=1, batch_size=64, seed=seed)


def test_projector_makes_gradients_orthogonal_and_keeps_old_outputs():
    g = torch.Generator().manual_seed(0)
    layer = nn.Linear(10, 4, bias=False)
    basis = orthonormal_rows(torch.randn(3, 10, generator=g))
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.5)
    projector = GradientProjector([layer.weight], [basis]).attach(optimizer)
    assert projector.attached and len(optimizer._optimizer_step_pre_hooks) == 1
    old_inputs = torch.randn(7, 3, generator=g) @ basis
    before = layer(old_inputs).detach()
    layer(torch.randn(16, 10, generator=g)).pow(2).sum().backward()
    raw = layer.weight.grad.clone()
    optimizer.step()
    scale = float(raw.abs().max())  # float32: tolerances relative to the gradient's size
    assert torch.allclose(layer.weight.grad @ basis.T, torch.zeros(4, 3), atol=1e-6 * scale)
    assert torch.allclose(layer.weight.grad, raw - raw @ basis.T @ basis, atol=1e-6 * scale)
    assert torch.allclose(layer(old_inputs), before, atol=1e-5)
    assert not torch.allclose(layer(torch.randn(5, 10, generator=g)).detach(), layer(torch.zeros(5, 10)))
    projector.detach()
    assert not projector.attached and len(optimizer._optimizer_step_pre_hooks) == 0


def test_hlop_sizes_follow_the_paper_schedule():
    assert hlop_sizes(7, [80, 200, 100], [70, 70, 70], decrease=20, every=3) == [
        [80, 200, 100], [70, 70, 70], [70, 70, 70], [50, 50, 50], [50, 50, 50], [50, 50, 50], [30, 30, 30]]
    assert hlop_sizes(2, [5], [1]) == [[5], [1]]


@pytest.mark.parametrize("spiking", [False, True])
def test_hlop_grows_subspaces_and_protects_them(stream, spiking):
    torch.manual_seed(0)
    model = _SpikingMLP() if spiking else _rate_mlp()
    layers = ["fc1", "fc2"] if spiking else ["0", "2"]
    hlop = HLOP(model, [[6, 5], [4, 3]], layers=layers, hebbian_epochs=2)
    trainer = _trainer(model, stream, hlop)
    steps_task = trainer.total_steps // 3
    trainer.run(steps_task)  # task 0 done: the subspaces of task 0 exist
    assert hlop.subspace_rows() == [6, 5] and hlop.tasks_learnt == 1
    assert hlop.projector is not None and not hlop.projector.attached  # detached after the task
    trainer.step()  # first step of task 1: the hook is attached to the new optimizer and projects
    assert hlop.projector.attached and hlop.projector.optimizer is trainer.optimizer
    modules = dict(model.named_modules())
    for name, neurons in zip(layers, hlop.neurons, strict=True):
        weight = modules[name].weight
        basis = neurons.basis()
        assert torch.allclose(weight.grad @ basis.T, torch.zeros(weight.shape[0], basis.shape[0]),
                              atol=1e-6 * float(weight.grad.abs().max()) + 1e-9)
    # a further step leaves every layer's response to inputs in its stored subspace unchanged
    probes = [torch.randn(5, n.rows) @ n.basis() for n in hlop.neurons]
    before = [modules[name](p).detach() for name, p in zip(layers, probes, strict=True)]
    trainer.step()
    for name, p, b in zip(layers, probes, before, strict=True):
        assert torch.allclose(modules[name](p), b, atol=1e-5)
    trainer.run()
    assert hlop.subspace_rows() == [6 + 4 + 4, 5 + 3 + 3]  # the last row of sizes repeats


def test_hlop_forgets_less_than_fine_tuning(stream):
    results = {}
    for name in ("fine-tuning", "hlop"):
        model = _rate_mlp()
        strategy = HLOP(model, [[40, 20], [8, 6]]) if name == "hlop" else None
        trainer = _trainer(model, stream, strategy)
        trainer.run()
        results[name] = trainer.accuracy.metrics()["bwt"]
    assert results["hlop"] > results["fine-tuning"]


def test_resume_mid_task_is_exact(stream):
    def build():
        model = _SpikingMLP()
        return model, _trainer(model, stream, HLOP(model, [[6, 5], [4, 3]], hebbian_epochs=1, seed=3), seed=2)

    torch.manual_seed(1)
    model, reference = build()
    reference.run()
    torch.manual_seed(1)
    model, first = build()
    first.run(reference.total_steps // 3 + 2)  # two steps into task 1
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    torch.manual_seed(99)
    model, second = build()
    second.load_state_dict(torch.load(buffer, weights_only=True))
    second.run()
    assert torch.equal(second.accuracy.R, reference.accuracy.R)
    for a, b in zip(second.model.state_dict().values(), reference.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    for a, b in zip(second.strategy.neurons, reference.strategy.neurons, strict=True):
        assert torch.equal(a.weight, b.weight)


def test_bad_inputs_are_refused(library_error, stream):
    model = _rate_mlp()
    with_bias = nn.Sequential(nn.Linear(64, 10))
    for call, message in (
        (lambda: HLOP(model, [[1, 1]], layers=["1"]), "not an nn.Linear"),
        (lambda: HLOP(model, [[1, 1]], layers=["nope"]), "not an nn.Linear"),
        (lambda: HLOP(with_bias, [[1]]), "trainable bias"),
        (lambda: HLOP(model, [[1, 1, 1]]), "one entry per layer"),
        (lambda: HLOP(model, [[1, -1]]), "sizes"),
        (lambda: HLOP(model, [[1, 1]], hebbian_rate=0.0), "hebbian_rate"),
        (lambda: HLOP(model, []), "sizes"),
        (lambda: HLOP("model", [[1]]), "model"),
        (lambda: hlop_sizes(0, [1], [1]), "num_tasks"),
        (lambda: GradientProjector([torch.zeros(2, 3)], [torch.zeros(1, 4)]), "bases"),
        (lambda: GradientProjector([torch.zeros(2, 3)], []), "bases"),
        (lambda: HLOP(model, [[1, 1]], projection="weights"), "projection"),
        (lambda: HLOP(model, [[1, 1]], hebbian_min_updates=-1), "hebbian_min_updates"),
        (lambda: HLOP(model, [[1, 1]], projection=["input"]), "projection"),
        (lambda: InputProjector([nn.ReLU()], [torch.zeros(1, 3)]), "nn.Linear"),
        (lambda: InputProjector([with_bias[0]], [torch.zeros(1, 64)]), "trainable bias"),
        (lambda: InputProjector([model[0]], [torch.zeros(1, 3)]), "bases"),
    ):
        with library_error() as info:
            call()
        assert info.match(message)
    other = HLOP(_rate_mlp(), [[1, 1]])
    with library_error() as info:
        _trainer(model, stream, other).step()
    assert info.match("another model")
    hlop = HLOP(model, [[1, 1]])
    with library_error() as info:
        hlop.load_state_dict({**hlop.state_dict(), "layers": ["x"]})
    assert info.match("layers")


def test_subspace_projection_takes_the_cheapest_route_and_agrees():
    g = torch.Generator().manual_seed(4)
    m = torch.randn(5, 3, 6, generator=g, dtype=torch.float64)
    for rows, orthonormal, kind in ((2, True, "basis"), (5, True, "complement"), (6, True, "complement"),
                                    (4, False, "matrix"), (2, False, "basis")):
        raw = torch.randn(rows, 6, generator=g, dtype=torch.float64)
        basis = orthonormal_rows(raw) if orthonormal else raw
        projection = SubspaceProjection(basis)
        assert projection.kind == kind
        expected = m - (m @ basis.T) @ basis  # the paper's g - g H^T H, orthonormal or not
        assert torch.allclose(projection(m), expected, atol=1e-12)
        flat = m.reshape(15, 6).clone()
        assert projection.project_(flat) is flat and torch.allclose(flat, expected.reshape(15, 6), atol=1e-12)


def test_projector_with_a_large_subspace_uses_the_complement_and_agrees():
    g = torch.Generator().manual_seed(4)
    weight = torch.nn.Parameter(torch.randn(3, 6, generator=g, dtype=torch.float64))
    basis = orthonormal_rows(torch.randn(5, 6, generator=g, dtype=torch.float64))
    weight.grad = torch.randn(3, 6, generator=g, dtype=torch.float64)
    raw = weight.grad.clone()
    projector = GradientProjector([weight], [basis])
    assert projector.projections[0].kind == "complement"
    projector.project()
    assert torch.allclose(weight.grad, raw - raw @ basis.T @ basis)


class _TwoCalls(nn.Module):
    """A layer called twice per forward, on static inputs [B, n] and on time-step inputs [B, T, n]."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 4, bias=False).double()

    def forward(self, x: torch.Tensor, seq: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.fc(x)).sum() + self.fc(seq).relu_().pow(2).sum()


@pytest.mark.parametrize("rows", [2, 5])
def test_input_projector_gives_the_projected_gradient(rows):
    g = torch.Generator().manual_seed(rows)
    torch.manual_seed(0)
    plain, projected = _TwoCalls(), _TwoCalls()
    projected.load_state_dict(plain.state_dict())
    basis = orthonormal_rows(torch.randn(rows, 6, generator=g, dtype=torch.float64))
    x = torch.randn(3, 6, generator=g, dtype=torch.float64, requires_grad=True)
    seq = torch.randn(3, 2, 6, generator=g, dtype=torch.float64)
    projector = InputProjector([projected.fc], [basis]).attach()
    assert projector.attached
    out_plain, out_projected = plain(x, seq), projected(x, seq)
    assert torch.equal(out_plain, out_projected)  # the forward pass is the module's own
    grad_x_plain = torch.autograd.grad(out_plain, x, retain_graph=True)[0]
    grad_x_projected = torch.autograd.grad(out_projected, x, retain_graph=True)[0]
    assert torch.allclose(grad_x_projected, grad_x_plain, atol=1e-12)  # inputs' gradients unchanged
    out_plain.backward()
    out_projected.backward()
    raw = plain.fc.weight.grad
    assert torch.allclose(projected.fc.weight.grad, raw - raw @ basis.T @ basis, atol=1e-12)
    with torch.no_grad():  # evaluation: the hook stays out of the way
        assert torch.equal(projected(x, seq), plain(x, seq))
    projector.detach()
    assert not projector.attached
    projected.fc.weight.grad = None
    projected(x, seq).backward()
    assert torch.allclose(projected.fc.weight.grad, raw, atol=1e-12)


def test_hlop_projecting_inputs_trains_like_projecting_gradients(stream):
    models = []
    for projection in ("gradient", ["input", "gradient"]):
        torch.manual_seed(0)
        model = _SpikingMLP()
        strategy = HLOP(model, [[6, 5], [4, 3]], layers=["fc1", "fc2"], projection=projection, hebbian_epochs=1)
        trainer = _trainer(model, stream, strategy)
        trainer.run(trainer.total_steps // 3 + 3)  # three projected steps of task 1 (of four)
        models.append(model)
    assert strategy.input_projector is not None and strategy.input_projector.attached
    for a, b in zip(models[0].parameters(), models[1].parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)  # float32: the two routes round differently


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 12), k_fraction=st.floats(0.0, 1.0), rows=st.integers(1, 5), out=st.integers(1, 6),
       orthonormal=st.booleans(), seed=st.integers(0, 2**16))
def test_every_route_equals_the_projection_and_leaves_old_inputs_alone(n, k_fraction, rows, out, orthonormal,
                                                                       seed):
    g = torch.Generator().manual_seed(seed)
    k = round(k_fraction * n)
    raw = torch.randn(k, n, generator=g, dtype=torch.float64)
    basis = orthonormal_rows(raw) if orthonormal else raw * 0.5
    projection = SubspaceProjection(basis)
    m = torch.randn(rows, n, generator=g, dtype=torch.float64)
    expected = m - (m @ basis.T) @ basis
    assert torch.allclose(projection(m), expected, atol=1e-10)
    assert torch.allclose(projection.project_(m.clone()), expected, atol=1e-10)
    if orthonormal:  # the projected rows act on the basis's span as zero: W x is unchanged for old inputs x
        assert torch.allclose(projection(m) @ basis.T, torch.zeros(rows, basis.shape[0], dtype=torch.float64),
                              atol=1e-10)
        weight = nn.Linear(n, out, bias=False).double()
        x = torch.randn(rows, n, generator=g, dtype=torch.float64)
        projector = InputProjector([weight], [basis]).attach()
        weight(x).pow(2).sum().backward()
        old = torch.randn(3, basis.shape[0], generator=g, dtype=torch.float64) @ basis
        assert torch.allclose(weight.weight.grad @ old.T, torch.zeros(out, 3, dtype=torch.float64), atol=1e-9)
        projector.detach()


def test_min_updates_adds_passes_only_where_a_layer_has_few_rows(stream):
    # 256 images a task in batches of 64: fc1 sees 4 batches a pass, fc2 (3 time steps) 12
    weights = []
    for epochs, min_updates in ((1, 12), (3, 0), (1, 0)):
        torch.manual_seed(0)
        model = _SpikingMLP()
        hlop = HLOP(model, [[6, 5]], layers=["fc1", "fc2"], hebbian_epochs=epochs, hebbian_min_updates=min_updates)
        trainer = _trainer(model, stream, hlop)
        trainer.run(trainer.total_steps // 3)  # task 0 and its Hebbian learning
        weights.append([n.weight.clone() for n in hlop.neurons])
    at_least_12, three_passes, one_pass = weights
    assert torch.equal(at_least_12[0], three_passes[0])  # fc1: 12 updates need 3 passes
    assert torch.equal(at_least_12[1], one_pass[1]) and not torch.equal(at_least_12[1], three_passes[1])
