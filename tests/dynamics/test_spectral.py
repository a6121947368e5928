"""Spectral training: score functions, cross moments, whitening, the tensor power method, weight recovery."""

from __future__ import annotations

import pytest
import torch

from neuroplastic.dynamics.spectral import (
    cross_moment_matrix,
    cross_moment_tensor,
    fit_output_layer,
    gaussian_score,
    recovery_error,
    simulate_io_rnn,
    spectral_fit,
    spectral_input_weights,
    tensor_power_method,
    tensor_whitening,
    whitening_matrix,
)

F64 = torch.float64


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def odeco(k: int = 3, p: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """An orthogonally decomposable tensor sum_j w_j v_j^(x)3 with signed weights."""
    q, _ = torch.linalg.qr(torch.randn(p, p, generator=gen(seed), dtype=F64))
    v = q[:, :k].T
    w = torch.tensor([3.0, -2.0, 1.2, 0.7, -0.5][:k], dtype=F64)
    return torch.einsum("j,ja,jb,jc->abc", w, v, v, v), w, v


def test_tensor_power_method_recovers_an_orthogonal_decomposition():
    t, w, v = odeco()
    weights, vectors = tensor_power_method(t, 3, generator=gen(1))
    # w_j v_j^3 is the invariant (sign of v and w may flip together)
    found = torch.einsum("j,ja,jb,jc->jabc", weights, vectors, vectors, vectors)
    true = torch.einsum("j,ja,jb,jc->jabc", w, v, v, v)
    assert torch.allclose(found, true, atol=1e-9)  # largest |w| first, as true is ordered
    assert torch.allclose(vectors @ vectors.T, torch.eye(3, dtype=F64), atol=1e-9)


def test_whitening_then_power_method_recovers_non_orthogonal_components():
    a = torch.randn(3, 6, generator=gen(2), dtype=F64)
    a = a / a.norm(dim=1, keepdim=True)
    lam = torch.tensor([1.0, -0.7, 0.5], dtype=F64)
    t = torch.einsum("j,ja,jb,jc->abc", lam, a, a, a)
    w = tensor_whitening(t, 3, generator=gen(3))
    whitened = torch.einsum("abc,ai,bj,ck->ijk", t, w, w, w)
    _, vectors = tensor_power_method(whitened, 3, generator=gen(4))
    a_hat = vectors @ torch.linalg.pinv(w)
    assert recovery_error(a, a_hat) < 1e-10


def test_power_method_agrees_with_tensorly_parafac():
    tensorly = pytest.importorskip("tensorly")
    from tensorly.decomposition import parafac

    t, w, v = odeco(seed=5)
    weights, vectors = tensor_power_method(t, 3, generator=gen(6))
    cp = parafac(tensorly.tensor(t.numpy()), rank=3, init="svd", n_iter_max=500, tol=1e-14, random_state=0)
    rebuilt = torch.as_tensor(tensorly.cp_to_tensor(cp))
    mine = torch.einsum("j,ja,jb,jc->abc", weights, vectors, vectors, vectors)
    assert torch.allclose(rebuilt, t, atol=1e-6) and torch.allclose(mine, rebuilt, atol=1e-6)
    # the same components (each factor column of parafac is +-v_j up to scale)
    factor = torch.as_tensor(cp.factors[0])
    assert recovery_error(vectors, factor.T.contiguous()) < 1e-6


def test_gaussian_scores_have_zero_mean_and_satisfy_stein():
    x = torch.randn(200_000, 3, generator=gen(7), dtype=F64)
    for order in (1, 2):
        assert gaussian_score(x, order).mean(0).abs().max() < 0.02
    assert gaussian_score(x[:20_000], 3).mean(0).abs().max() < 0.1
    # Stein: E[f(x) S1(x)] = E[grad f(x)] for f(x) = sin(x0) + x1^2 x2: grad = (cos x0, 2 x1 x2, x1^2)
    f = torch.sin(x[:, 0]) + x[:, 1] ** 2 * x[:, 2]
    lhs = (f[:, None] * gaussian_score(x, 1)).mean(0)
    expected = torch.tensor([torch.exp(torch.tensor(-0.5)).item(), 0.0, 1.0], dtype=F64)  # E cos z = e^-1/2
    assert torch.allclose(lhs, expected, atol=0.03)
    # second order: E[f S2] = E[hessian f]; for f = x0 x1: hessian has 1 at (0, 1) and (1, 0)
    m2 = cross_moment_matrix(x, x[:, 0] * x[:, 1])
    assert torch.allclose(m2, torch.tensor([[0, 1, 0], [1, 0, 0], [0, 0, 0]], dtype=F64), atol=0.03)


def test_cross_moment_tensor_matches_the_score_tensor_in_chunks():
    x = torch.randn(301, 4, generator=gen(8), dtype=F64)
    y = torch.randn(301, generator=gen(9), dtype=F64)
    direct = (y[:, None, None, None] * gaussian_score(x, 3)).mean(0)
    assert torch.allclose(cross_moment_tensor(x, y, chunk_size=64), direct, atol=1e-12)
    direct2 = (y[:, None, None] * gaussian_score(x, 2)).mean(0)
    assert torch.allclose(cross_moment_matrix(x, y, chunk_size=50), direct2, atol=1e-12)
    # Stein at third order: f = x0 x1 x2 has third derivative 1 at every permutation of (0, 1, 2)
    big = torch.randn(100_000, 3, generator=gen(10), dtype=F64)
    m3 = cross_moment_tensor(big, big.prod(1))
    assert abs(float(m3[0, 1, 2]) - 1) < 0.05 and abs(float(m3[2, 1, 0]) - 1) < 0.05 and m3[0, 0, 0].abs() < 0.05


def network(seed: int = 0, d: int = 8, k: int = 3):
    a = torch.randn(k, d, generator=gen(seed), dtype=F64)
    return a / a.norm(dim=1, keepdim=True), torch.tensor([1.0, -0.8, 0.6], dtype=F64)


def test_recovery_of_a_one_hidden_layer_network_improves_with_n():
    a, c = network()
    g = gen(11)
    errors = []
    for n in (20_000, 320_000):
        x = torch.randn(n, 1, 8, generator=g, dtype=F64)
        y = simulate_io_rnn(x, a, torch.zeros(3, 3, dtype=F64), c)[:, 0]
        fit = spectral_fit(x[:, 0], y, 3, generator=gen(12))
        errors.append(recovery_error(a, fit.a_hat))
    assert errors[1] < errors[0] / 4 and errors[1] < 0.005
    # the output layer by least squares reproduces y closely once the weights are right
    residual = (fit.predict(x[:, 0]) - y).pow(2).mean() / y.var()
    assert residual < 0.01


def test_square_activation_gives_a_vanishing_third_moment():
    a, c = network(1)
    x = torch.randn(100_000, 8, generator=gen(13), dtype=F64)
    # third derivative 0: the sample tensor is noise, its norm halves with 4x the samples; tanh's stays put
    for sigma, low, high in ((lambda z: z * z, 1.5, 3.0), (torch.tanh, 0.7, 1.3)):
        y = sigma(x @ a.T) @ c
        ratio = cross_moment_tensor(x[:25_000], y[:25_000]).norm() / cross_moment_tensor(x, y).norm()
        assert low < ratio < high


def test_io_rnn_simulation_matches_a_loop_and_the_input_weights_are_recovered():
    a, c = network(2)
    u = 0.3 * torch.randn(3, 3, generator=gen(14), dtype=F64)
    x = torch.randn(4, 5, 8, generator=gen(15), dtype=F64)
    y = simulate_io_rnn(x, a, u, c)
    h = torch.zeros(4, 3, dtype=F64)
    for t in range(5):
        h = torch.tanh(x[:, t] @ a.T + h @ u.T)
        assert torch.allclose(y[:, t], h @ c)
    x = torch.randn(2_500, 50, 8, generator=gen(16), dtype=F64)
    y = simulate_io_rnn(x, a, u, c)
    a_hat, _ = spectral_input_weights(x.reshape(-1, 8), y.reshape(-1), 3, generator=gen(17))
    assert recovery_error(a, a_hat) < 0.01


def test_recovery_error_matches_by_permutation_and_sign():
    a = torch.eye(3, dtype=F64)
    assert recovery_error(a, -a[[2, 0, 1]]) == 0.0
    tilted = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0], [0.0, 0.0, 1.0]], dtype=F64)
    assert recovery_error(a, tilted) == pytest.approx(1 - 2 ** -0.5)


def test_bad_inputs_are_refused(library_error):
    x, y = torch.randn(10, 3, dtype=F64), torch.randn(10, dtype=F64)
    with library_error() as info:
        cross_moment_tensor(x, y[:5])
    assert info.match("y must have one entry per row")
    with library_error() as info:
        cross_moment_tensor(x, torch.full((10,), float("nan"), dtype=F64))
    assert info.match("y must be finite")
    with library_error() as info:
        spectral_input_weights(x, y, 4, generator=gen())
    assert info.match("k must be")
    with library_error() as info:
        spectral_input_weights(x, y, 2, generator=gen(), whitening="pca")
    assert info.match("whitening")
    with library_error() as info:
        tensor_power_method(torch.zeros(3, 3, 2, dtype=F64), 2, generator=gen())
    assert info.match("cubical")
    with library_error() as info:
        whitening_matrix(torch.diag(torch.tensor([1.0, -1.0, 0.0], dtype=F64)), 2)
    assert info.match("one sign")
    with library_error() as info:
        fit_output_layer(x, y, torch.randn(2, 3, dtype=F64), activation="relu")
    assert info.match("activation")
    with library_error() as info:
        gaussian_score(x, 4)
    assert info.match("order")


def test_conditional_scores_recover_an_io_rnn_driven_by_a_markov_input():
    """AR(1) input x_t = rho x_{t-1} + s e_t: the conditional score S3(x_t | x_{t-1}) (mean rho x_{t-1}, scale s)
    recovers A; the conditional moment of a hand example obeys Stein's identity given the past."""
    rho, s = 0.6, 0.8  # s = sqrt(1 - rho^2)
    g = gen(18)
    prev = torch.randn(100_000, 3, generator=g, dtype=F64)
    x = rho * prev + s * torch.randn(100_000, 3, generator=g, dtype=F64)
    # y = x0 x1 x2 + prev0 x0: third derivative of y in x is 1 at permutations of (0, 1, 2), 0 elsewhere; the
    # marginal score would see prev0 x0 = (x0 - s e0) x0 / rho as a function of x alone and get it wrong
    y = x.prod(1) + prev[:, 0] * x[:, 0]
    m3 = cross_moment_tensor(x, y, mean=rho * prev, scale=s)
    assert abs(float(m3[0, 1, 2]) - 1) < 0.06 and m3[0, 0, 0].abs() < 0.06
    m2 = cross_moment_matrix(x, y, mean=rho * prev, scale=s)  # E[hessian] = E[x2] at (0, 1): 0
    assert m2.abs().max() < 0.06
    a, c = network(3)
    u = 0.3 * torch.randn(3, 3, generator=gen(19), dtype=F64)
    steps = torch.randn(2_000, 60, 8, generator=gen(20), dtype=F64)
    seq = torch.empty_like(steps)
    seq[:, 0] = steps[:, 0]
    for t in range(1, 60):
        seq[:, t] = rho * seq[:, t - 1] + s * steps[:, t]
    out = simulate_io_rnn(seq, a, u, c)
    xs, ys, means = seq[:, 1:].reshape(-1, 8), out[:, 1:].reshape(-1), rho * seq[:, :-1].reshape(-1, 8)
    a_hat, _ = spectral_input_weights(xs, ys, 3, generator=gen(21), mean=means, scale=s)
    assert recovery_error(a, a_hat) < 0.05  # 1.2e5 pairs; the scale 0.8 amplifies the noise by 1/0.8^3
    with pytest.raises(ValueError, match="scale must be"):
        cross_moment_tensor(xs, ys, scale=0.0)
