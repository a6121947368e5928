"""Oja's subspace rule (HLOP), orthonormal bases, projection, principal angles and the lateral neurons."""

from __future__ import annotations

import torch

from neuroplastic.plasticity import (
    SubspaceNeurons,
    complement_rows,
    oja_subspace_update,
    orthonormal_rows,
    principal_angle_cosines,
    project_out,
)


def _low_rank(n: int = 24, k: int = 4, samples: int = 1500, noise: float = 0.05, seed: int = 0,
              low: float = 1.0):
    g = torch.Generator().manual_seed(seed)
    basis = torch.linalg.qr(torch.randn(n, k, generator=g, dtype=torch.float64))[0].T
    z = torch.randn(samples, k, generator=g, dtype=torch.float64) * torch.linspace(3.0, low, k, dtype=torch.float64)
    return z @ basis + noise * torch.randn(samples, n, generator=g, dtype=torch.float64), basis


def test_oja_update_by_hand_and_fixed_rows():
    h = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.5, 0.0]], dtype=torch.float64)
    x = torch.tensor([[1.0, 2.0, 3.0], [0.0, 1.0, -1.0]], dtype=torch.float64)
    expected = h.clone()
    for b in range(2):  # mean over the batch of y (x - H^T y)^T, y = H x, written per example
        y = h @ x[b]
        expected += 0.1 * torch.outer(y, x[b] - h.T @ y) / 2
    assert torch.allclose(oja_subspace_update(h, x, 0.1), expected)
    held = oja_subspace_update(h, x, 0.1, fixed=1)
    assert torch.equal(held[0], h[0]) and torch.allclose(held[1], expected[1])
    clipped = oja_subspace_update(h, 100 * x, 1.0, clip=0.5)
    assert ((clipped - h).abs() <= 0.5 + 1e-12).all()


def test_hebbian_subspace_matches_the_svd_principal_subspace():
    x, basis = _low_rank()
    neurons = SubspaceNeurons(24, seed=3).double()
    neurons.grow(4)
    neurons.fit(x, rate=0.5 / float(x.pow(2).sum(1).mean()), epochs=8, batch_size=64)
    principal = torch.linalg.svd(x, full_matrices=False)[2][:4]
    assert float(principal_angle_cosines(neurons.weight, principal)[-1]) >= 0.99
    assert float(principal_angle_cosines(neurons.weight, basis)[-1]) >= 0.99
    assert torch.allclose(neurons.weight @ neurons.weight.T, torch.eye(4, dtype=torch.float64), atol=0.05)


def test_growth_keeps_old_rows_and_learns_the_residual():
    x, basis = _low_rank(k=6, low=2.0)
    neurons = SubspaceNeurons(24, seed=0).double()
    neurons.grow(3)
    neurons.fit(x, rate=0.5 / float(x.pow(2).sum(1).mean()), epochs=8)
    old = neurons.weight.clone()
    assert neurons.grow(3) == 3 and neurons.fixed == 3 and neurons.sizes == [3, 3]
    neurons.fit(x, rate=0.5 / float(x.pow(2).sum(1).mean()), epochs=24)
    assert torch.equal(neurons.weight[:3], old)
    # the fixed rows are only approximately orthonormal, so the new ones learn a slightly biased residual
    assert float(principal_angle_cosines(neurons.weight, basis)[-1]) >= 0.95
    assert neurons.grow(100) == 24 - 6  # capped at the input size


def test_orthonormal_rows_projection_and_angles():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(3, 8, generator=g, dtype=torch.float64)
    q = orthonormal_rows(torch.cat([w, w[:1] + w[1:2]]))  # a dependent row is dropped
    assert q.shape == (3, 8) and torch.allclose(q @ q.T, torch.eye(3, dtype=torch.float64))
    grad = torch.randn(5, 8, generator=g, dtype=torch.float64)
    projected = project_out(grad, q)
    assert torch.allclose(projected @ q.T, torch.zeros(5, 3, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(projected, grad @ (torch.eye(8, dtype=torch.float64) - q.T @ q))
    # principal angles: a subspace and itself, and two orthogonal coordinate planes
    assert torch.allclose(principal_angle_cosines(w, 2 * w), torch.ones(3, dtype=torch.float64))
    e = torch.eye(4, dtype=torch.float64)
    assert torch.allclose(principal_angle_cosines(e[:2], e[2:]), torch.zeros(2, dtype=torch.float64))
    c = principal_angle_cosines(e[:2], torch.stack([e[0], (e[1] + e[2]) / 2 ** 0.5]))
    assert torch.allclose(c, torch.tensor([1.0, 2 ** -0.5], dtype=torch.float64))


def test_fit_equals_a_loop_of_the_rule_with_momentum():
    x, _ = _low_rank()
    neurons = SubspaceNeurons(24, seed=3).double()
    neurons.grow(3)
    neurons.fit(x[:100], rate=0.01, batch_size=32)
    neurons.grow(2)
    weight, velocity = neurons.weight.clone(), neurons.momentum.clone()
    neurons.fit(x[100:300], rate=0.02, epochs=2, batch_size=48, momentum=0.8, clip=0.05, iterations=2)
    for _ in range(2):  # the slow reference: oja_subspace_update on each batch, momentum on the free rows
        for start in range(100, 300, 48):
            for _ in range(2):
                delta = oja_subspace_update(weight, x[start:min(start + 48, 300)], 1.0, fixed=3, clip=0.05) - weight
                velocity[3:] = 0.8 * velocity[3:] + 0.2 * delta[3:]
                weight[3:] += 0.02 * velocity[3:]
    assert torch.allclose(neurons.weight, weight, atol=1e-12) and torch.allclose(neurons.momentum, velocity,
                                                                                 atol=1e-12)
    assert torch.equal(neurons.weight[:3], weight[:3])


def test_fit_min_updates_adds_whole_passes():
    x, _ = _low_rank()

    def fit(epochs, min_updates):  # 96 rows in batches of 32: 3 updates a pass
        neurons = SubspaceNeurons(24, seed=3).double()
        neurons.grow(3)
        neurons.fit(x[:96], rate=0.01, epochs=epochs, batch_size=32, min_updates=min_updates)
        return neurons.weight

    assert torch.equal(fit(1, 9), fit(3, 0))  # 9 updates: 3 passes
    assert torch.equal(fit(1, 10), fit(4, 0))  # 10 updates: 4 whole passes
    assert torch.equal(fit(5, 10), fit(5, 0))  # epochs already give more
    assert not torch.equal(fit(3, 0), fit(4, 0))


def test_complement_rows_span_the_orthogonal_complement():
    g = torch.Generator().manual_seed(2)
    eye = torch.eye(9, dtype=torch.float64)
    for k in (0, 4, 7, 9):
        q = orthonormal_rows(torch.randn(k, 9, generator=g, dtype=torch.float64))
        c = complement_rows(q)
        assert c.shape == (9 - k, 9)
        assert torch.allclose(c @ c.T, torch.eye(9 - k, dtype=torch.float64), atol=1e-12)
        assert torch.allclose(c.T @ c + q.T @ q, eye, atol=1e-12)  # together: the whole space
    q32 = orthonormal_rows(torch.randn(6, 9, generator=g))
    assert complement_rows(q32).dtype == torch.float32


def test_state_dict_round_trip_continues_exactly():
    x, _ = _low_rank()
    a = SubspaceNeurons(24, seed=5).double()
    a.grow(2)
    a.fit(x[:200], rate=0.01)
    b = SubspaceNeurons(24, seed=99).double()
    b.load_state_dict(a.state_dict())
    for m in (a, b):
        m.grow(2)
        m.fit(x[200:400], rate=0.01)
    assert torch.equal(a.weight, b.weight) and torch.equal(a.momentum, b.momentum) and a.sizes == b.sizes


def test_bad_inputs_are_refused(library_error):
    h = torch.zeros(2, 3)
    for call, message in (
        (lambda: oja_subspace_update(h, torch.zeros(4, 5), 0.1), "x must have shape"),
        (lambda: oja_subspace_update(h, torch.zeros(4, 3), 0.0), "rate"),
        (lambda: oja_subspace_update(h, torch.zeros(4, 3), 0.1, fixed=3), "fixed"),
        (lambda: oja_subspace_update(h, torch.zeros(0, 3), 0.1), "at least one"),
        (lambda: oja_subspace_update(torch.full((2, 3), float("nan")), torch.zeros(1, 3), 0.1), "finite"),
        (lambda: project_out(torch.zeros(2, 3), torch.zeros(1, 4)), "basis"),
        (lambda: complement_rows(torch.ones(2, 3)), "orthonormal"),
        (lambda: complement_rows(torch.eye(4, 3)), "at most"),
        (lambda: principal_angle_cosines(torch.zeros(1, 3), torch.ones(1, 3)), "non-zero"),
        (lambda: SubspaceNeurons(0), "features"),
        (lambda: SubspaceNeurons(3).grow(-1), "count"),
        (lambda: SubspaceNeurons(3).fit(torch.zeros(2, 3), rate=0.1, momentum=1.0), "momentum"),
        (lambda: SubspaceNeurons(3).fit(torch.zeros(2, 4), rate=0.1), "x must have shape"),
    ):
        with library_error() as info:
            call()
        assert info.match(message)
    with library_error() as info:
        SubspaceNeurons(3).load_state_dict({"weight": torch.zeros(1, 4), "momentum": torch.zeros(1, 4),
                                            "_extra_state": {}})
    assert info.match("shape")
