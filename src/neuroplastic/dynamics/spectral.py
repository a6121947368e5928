"""Spectral training of one-hidden-layer networks and input-output RNNs: score functions, cross-moment tensors,
whitening, the tensor power method and the output layer by least squares.

Sedghi & Anandkumar 2016, "Training input-output recurrent neural networks through spectral methods" (arXiv
1603.00954), after Janzamin, Sedghi & Anandkumar's NN-LIFT. For an input ``x`` with density ``p`` the m-th
order score function is ``S_m(x) = (-1)^m grad^m p(x) / p(x)``; Stein's identity gives
``E[y S_m(x)] = E[grad_x^m y]``. For ``y = sum_j c_j sigma(a_j^T x + b_j)``::

    E[y S3(x)] = sum_j lambda_j a_j (x) a_j (x) a_j,     lambda_j = c_j E[sigma'''(a_j^T x + b_j)]

a rank-k symmetric tensor whose components are the input weights (up to sign and scale). For ``x ~ N(0, I)``::

    S1 = x,   S2 = x x^T - I,   S3 = x (x) x (x) x - sum_i sym(x (x) e_i (x) e_i)

(:func:`gaussian_score`). The weights are recovered by whitening (a matrix ``M = A diag(mu) A^T`` of the
same components with ``mu_j`` of one sign gives ``W = U_k |Lambda_k|^-1/2``, so that ``W^T a_j`` are
orthogonal), the robust tensor power method with random restarts and deflation on the whitened ``k x k x k``
tensor, and un-whitening ``a_j ~ U_k |Lambda_k|^1/2 v_j`` (:func:`spectral_input_weights`). The output layer
then follows by least squares on ``sigma(A_hat x)`` (:func:`fit_output_layer`).

Input-output RNN ``h_t = sigma(A x_t + U h_{t-1})``, ``y_t = c^T h_t`` (:func:`simulate_io_rnn`): with i.i.d.
inputs ``x_t ~ N(0, I)``, ``h_{t-1}`` is independent of ``x_t`` and acts as a random bias, so
``E[y_t S3(x_t)] = sum_j c_j E[sigma'''(a_j^T x_t + u_j^T h_{t-1})] a_j^(x)3``: the same decomposition of the
pairs ``(x_t, y_t)`` recovers ``A``. Markov inputs (the paper's setting) need the conditional scores
``S3(x_t | x_{t-1})``: for a Gaussian AR(1) input ``x_t = rho x_{t-1} + sqrt(1 - rho^2) e_t``, pass
``mean = rho x_{t-1}`` and ``scale = sqrt(1 - rho^2)`` (the past enters ``y_t`` only through ``h_{t-1}``, and
Stein's identity holds given the past). The recurrent weights ``U`` are not recovered here.

Whitening: the second-order moment ``E[y S2(x)]`` has ``mu_j = c_j E[sigma''(.)]``, zero for an odd ``sigma``
without bias (tanh), so the whitening matrix is a contraction ``M3(I, I, theta)`` (``mu_j = lambda_j a_j^T
theta``): by default ``theta`` is chosen from a first estimate of the ``a_j`` so that every ``mu_j ~ 1``
(:func:`spectral_input_weights`); :func:`tensor_whitening` draws random ``theta`` instead, kept only when the
top-k eigenvalues share one sign (by Sylvester's law of inertia, then every ``mu_j`` does).

Every tensor op is in the inputs' dtype (use float64); sample moments are accumulated over chunks, never
materialising ``[n, d, d, d]``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import NamedTuple

import torch

from neuroplastic._checks import check_choice, check_finite, check_int, check_tensor

__all__ = ["SPECTRAL_ACTIVATIONS", "SpectralFit", "gaussian_score", "cross_moment_matrix", "cross_moment_tensor",
           "whitening_matrix", "tensor_whitening", "tensor_power_method", "spectral_input_weights",
           "fit_output_layer", "spectral_fit", "recovery_error", "simulate_io_rnn"]

SPECTRAL_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "square": lambda z: z * z,
}
"""Activations by name: tanh and sigmoid (``E[sigma''']`` nonzero), and ``z^2`` (``sigma''' = 0``: the
cross-moment tensor vanishes, spectral recovery must fail)."""


def _check_xy(x: object, y: object) -> tuple[torch.Tensor, torch.Tensor]:
    """``x [n, d]`` and ``y [n]`` finite, same dtype and device, ``n >= 1``."""
    check_tensor("x", x, ("n", "d"))
    check_tensor("y", y, ("n",), like=x, like_name="x")
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"y must have one entry per row of x ([{x.shape[0]}]), got {list(y.shape)}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"x must have at least one sample and one input, got shape {list(x.shape)}")
    check_finite("x", x)
    check_finite("y", y)
    return x, y


def gaussian_score(x: torch.Tensor, order: int) -> torch.Tensor:
    """The score function of order 1, 2 or 3 of the standard normal density at each sample.

    Paper: Sedghi & Anandkumar 2016 (and Janzamin et al. 2014), for ``x ~ N(0, I)``::

        S1 = x,   S2 = x x^T - I,
        S3 = x (x) x (x) x - sum_i (x (x) e_i (x) e_i + e_i (x) x (x) e_i + e_i (x) e_i (x) x)

    Shapes: ``x [n, d]`` -> ``[n, d]``, ``[n, d, d]`` or ``[n, d, d, d]`` (small n only; the moments use
    :func:`cross_moment_tensor`, which never builds this).
    """
    check_tensor("x", x, ("n", "d"))
    order = check_int("order", order, minimum=1, maximum=3)
    if order == 1:
        return x.clone()
    eye = torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
    if order == 2:
        return torch.einsum("na,nb->nab", x, x) - eye
    outer = torch.einsum("na,nb,nc->nabc", x, x, x)
    return outer - (torch.einsum("na,bc->nabc", x, eye) + torch.einsum("nb,ac->nabc", x, eye)
                    + torch.einsum("nc,ab->nabc", x, eye))


def _standardise(x: torch.Tensor, mean: torch.Tensor | None, scale: float) -> torch.Tensor:
    """``(x - mean) / scale`` after checking ``mean [n, d]`` (or None) and ``scale > 0``."""
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale < math.inf:
        raise ValueError(f"scale must be a finite number > 0, got {scale!r}")
    if mean is None:
        return x if scale == 1 else x / scale
    check_tensor("mean", mean, (x.shape[0], x.shape[1]), like=x, like_name="x")
    check_finite("mean", mean)
    return (x - mean) / scale


def cross_moment_matrix(x: torch.Tensor, y: torch.Tensor, *, mean: torch.Tensor | None = None, scale: float = 1.0,
                        chunk_size: int = 65536) -> torch.Tensor:
    """The empirical second-order cross moment ``M2 = mean_i y_i S2(x_i)`` for Gaussian inputs
    ``x_i ~ N(mean_i, scale^2 I)`` (= ``sum_j c_j E[sigma''(a_j^T x + b_j)] a_j a_j^T`` in expectation)::

        S2(x) = (z z^T - I) / scale^2,   z = (x - mean) / scale

    ``mean`` given: the conditional score of a Markov input, e.g. ``mean_i = rho x_{i-1}`` for an AR(1) input
    (Sedghi & Anandkumar 2016); None: zero. Shapes: ``x [n, d]``, ``y [n]``, ``mean [n, d]`` -> ``[d, d]``;
    accumulated over chunks of ``chunk_size`` rows.
    """
    x, y = _check_xy(x, y)
    chunk_size = check_int("chunk_size", chunk_size)
    z = _standardise(x, mean, scale)
    d = x.shape[1]
    total = torch.zeros(d, d, dtype=x.dtype, device=x.device)
    for start in range(0, z.shape[0], chunk_size):
        zs, ys = z[start:start + chunk_size], y[start:start + chunk_size]
        total += (zs * ys[:, None]).T @ zs
    eye = torch.eye(d, dtype=x.dtype, device=x.device)
    return (total / x.shape[0] - y.mean() * eye) / scale ** 2


def cross_moment_tensor(x: torch.Tensor, y: torch.Tensor, *, mean: torch.Tensor | None = None,
                        scale: float = 1.0, chunk_size: int = 65536) -> torch.Tensor:
    """The empirical third-order cross moment ``M3 = mean_i y_i S3(x_i)`` for Gaussian inputs
    ``x_i ~ N(mean_i, scale^2 I)``.

    Paper: Sedghi & Anandkumar 2016, ``E[y S3(x)] = sum_j lambda_j a_j (x) a_j (x) a_j``. Computed as::

        M3 = (mean_i y_i z_i (x) z_i (x) z_i - sym(m (x) I)) / scale^3,   z_i = (x_i - mean_i) / scale,
        m = mean_i y_i z_i

    with ``sym(m (x) I)_abc = m_a d_bc + m_b d_ac + m_c d_ab``. ``mean`` given: the conditional score of a Markov
    input (e.g. ``mean_i = rho x_{i-1}``, ``scale = sqrt(1 - rho^2)`` for an AR(1) input); Stein's identity then
    holds conditionally on the past. Shapes: ``x [n, d]``, ``y [n]``, ``mean [n, d]`` -> ``[d, d, d]``; memory
    ``chunk_size * d^2`` (never ``[n, d, d, d]``).
    """
    x, y = _check_xy(x, y)
    chunk_size = check_int("chunk_size", chunk_size)
    x = _standardise(x, mean, scale)
    n, d = x.shape
    total = torch.zeros(d * d, d, dtype=x.dtype, device=x.device)
    first = torch.zeros(d, dtype=x.dtype, device=x.device)
    for start in range(0, n, chunk_size):
        xs, ys = x[start:start + chunk_size], y[start:start + chunk_size]
        yx = xs * ys[:, None]
        total += torch.einsum("na,nb->nab", yx, xs).reshape(-1, d * d).T @ xs
        first += yx.sum(0)
    total, first = total.reshape(d, d, d) / n, first / n
    eye = torch.eye(d, dtype=x.dtype, device=x.device)
    return (total - (torch.einsum("a,bc->abc", first, eye) + torch.einsum("b,ac->abc", first, eye)
                     + torch.einsum("c,ab->abc", first, eye))) / scale ** 3


def _check_tensor3(name: str, t: object) -> torch.Tensor:
    check_tensor(name, t, ("d", "d", "d"))
    if not (t.shape[0] == t.shape[1] == t.shape[2]) or t.shape[0] == 0:
        raise ValueError(f"{name} must be a cubical tensor [d, d, d] with d >= 1, got {list(t.shape)}")
    return check_finite(name, t)


def whitening_matrix(m: torch.Tensor, k: int) -> torch.Tensor:
    """The whitening matrix ``W = U_k |Lambda_k|^-1/2`` of a symmetric matrix ``m = A diag(mu) A^T`` whose k
    largest-magnitude eigenvalues (``Lambda_k``, eigenvectors ``U_k``) share one sign, so ``W^T m W = +-I``.

    Paper: Sedghi & Anandkumar 2016 (whitening before the tensor power method). Shapes: ``m [d, d]`` -> ``W
    [d, k]``. Raises ValueError if the top-k eigenvalues have mixed signs (``W`` would not orthogonalise the
    components) or one is zero.
    """
    check_tensor("m", m, ("d", "d"))
    d = m.shape[0]
    if m.shape[1] != d:
        raise ValueError(f"m must be square, got {list(m.shape)}")
    k = check_int("k", k, maximum=d)
    check_finite("m", m)
    values, vectors = torch.linalg.eigh((m + m.T) / 2)
    top = values.abs().argsort(descending=True)[:k]
    lam, u = values[top], vectors[:, top]
    if bool((lam == 0).any()) or not (bool((lam > 0).all()) or bool((lam < 0).all())):
        raise ValueError(f"m's {k} largest-magnitude eigenvalues must be nonzero and of one sign, got "
                         f"{[round(float(v), 6) for v in lam]}")
    return u / lam.abs().sqrt()


def tensor_whitening(t: torch.Tensor, k: int, *, generator: torch.Generator, draws: int = 32) -> torch.Tensor:
    """A whitening matrix from the tensor itself: ``W`` of :func:`whitening_matrix` on ``t(I, I, theta)
    = sum_j lambda_j (a_j^T theta) a_j a_j^T`` for the best conditioned of ``draws`` random unit ``theta``
    (``theta ~ N(0, I)`` from ``generator``) whose top-k eigenvalues share one sign.

    Conditioning: ``min |eig| / max |eig|`` of the top k. Shapes: ``t [d, d, d]`` -> ``W [d, k]``. Raises
    ValueError if no draw has top-k eigenvalues of one sign.
    """
    t = _check_tensor3("t", t)
    d = t.shape[0]
    k = check_int("k", k, maximum=d)
    draws = check_int("draws", draws)
    best, best_ratio = None, -1.0
    thetas = torch.randn(draws, d, generator=generator, dtype=t.dtype, device=t.device)
    for theta in thetas:
        m = torch.einsum("abc,c->ab", t, theta / theta.norm())
        values = torch.linalg.eigvalsh((m + m.T) / 2)
        lam = values[values.abs().argsort(descending=True)[:k]]
        if not (bool((lam > 0).all()) or bool((lam < 0).all())):
            continue
        ratio = float(lam.abs().min() / lam.abs().max())
        if ratio > best_ratio:
            best, best_ratio = m, ratio
    if best is None:
        raise ValueError(f"no contraction t(I, I, theta) of {draws} draws had {k} top eigenvalues of one sign; "
                         "raise draws or check that t has rank k")
    return whitening_matrix(best, k)


def tensor_power_method(t: torch.Tensor, k: int, *, generator: torch.Generator, restarts: int = 10,
                        iterations: int = 100, tol: float = 1e-12) -> tuple[torch.Tensor, torch.Tensor]:
    """The robust tensor power method with deflation: the k components of a symmetric, orthogonally
    decomposable tensor ``t = sum_j w_j v_j (x) v_j (x) v_j`` (``v_j`` orthonormal, ``w_j`` of any sign).

    Anandkumar, Ge, Hsu, Kakade & Telgarsky 2014 ("Tensor decompositions for learning latent variable
    models"), as used by Sedghi & Anandkumar 2016. For each component: ``restarts`` random unit starts (from
    ``generator``), each iterated ``u <- t(I, u, u) / |t(I, u, u)|`` up to ``iterations`` times (stop when
    ``|u_new - u| < tol``); keep the start of largest ``|t(u, u, u)|``, iterate it again, take ``w = t(u, u, u)``
    and deflate ``t <- t - w u (x) u (x) u``.

    Shapes: ``t [p, p, p]`` -> ``(weights [k], vectors [k, p])`` (vectors as rows, unit norm, in the order
    found: largest ``|w|`` first). The sign of each ``(w_j, v_j)`` pair is fixed by ``w_j v_j^3``; here
    ``w_j`` carries it with ``v_j`` as iterated.
    """
    t = _check_tensor3("t", t)
    p = t.shape[0]
    k = check_int("k", k, maximum=p)
    restarts = check_int("restarts", restarts)
    iterations = check_int("iterations", iterations)
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not tol >= 0 or math.isinf(tol):
        raise ValueError(f"tol must be a finite number >= 0, got {tol!r}")

    def iterate(u: torch.Tensor) -> torch.Tensor:
        for _ in range(iterations):
            new = torch.einsum("abc,b,c->a", t, u, u)
            norm = new.norm()
            if norm == 0:
                return u
            new = new / norm
            done = bool((new - u).norm() < tol)
            u = new
            if done:
                break
        return u

    weights, vectors = [], []
    for _ in range(k):
        starts = torch.randn(restarts, p, generator=generator, dtype=t.dtype, device=t.device)
        best, best_value = None, -1.0
        for start in starts:
            u = iterate(start / start.norm())
            value = abs(float(torch.einsum("abc,a,b,c->", t, u, u, u)))
            if value > best_value:
                best, best_value = u, value
        u = iterate(best)
        w = torch.einsum("abc,a,b,c->", t, u, u, u)
        weights.append(w)
        vectors.append(u)
        t = t - w * torch.einsum("a,b,c->abc", u, u, u)
    return torch.stack(weights), torch.stack(vectors)


def spectral_input_weights(x: torch.Tensor, y: torch.Tensor, k: int, *, generator: torch.Generator,
                           whitening: str = "subspace", restarts: int = 10, iterations: int = 100,
                           refinements: int = 2, mean: torch.Tensor | None = None, scale: float = 1.0,
                           chunk_size: int = 65536) -> tuple[torch.Tensor, torch.Tensor]:
    """The input weights of ``y = sum_j c_j sigma(a_j^T x + b_j)`` (``x ~ N(0, I)``) up to sign, scale and
    order, from samples by the method of moments.

    Sedghi & Anandkumar 2016: ``M3 = E[y S3(x)]`` (:func:`cross_moment_tensor`); a first ``W [d, k]``;
    ``T = M3(W, W, W)``; ``(w_j, v_j)`` by :func:`tensor_power_method`; un-whitening
    ``a_j ~ pinv(W^T) v_j``, normalised. The first ``W``: ``"subspace"`` the top-k left singular vectors of
    the unfolding ``M3 [d, d^2]`` (span of the a_j, not yet whitening: the first decomposition is approximate),
    ``"tensor"`` :func:`tensor_whitening`, ``"moment2"`` :func:`whitening_matrix` of ``M2 = E[y S2(x)]``
    (needs ``E[sigma''] != 0``). Then ``refinements`` times: ``lambda_j`` by least squares on
    ``M3 ~ sum_j lambda_j a_hat_j^(x)3``, ``theta`` with ``a_hat_j^T theta = 1 / lambda_j``, and the whitening
    of ``M3(I, I, theta) ~ sum_j a_j a_j^T`` (balanced, of one sign) for a new decomposition (this step is
    ours: it makes the whitening well conditioned whatever the signs of ``lambda_j``). ``mean``, ``scale``: the
    conditional Gaussian scores of :func:`cross_moment_tensor` (Markov inputs).

    Shapes: ``x [n, d]``, ``y [n]`` -> ``(a_hat [k, d]`` unit rows, ``weights [k]`` the whitened tensor's
    eigenvalues).
    """
    x, y = _check_xy(x, y)
    k = check_int("k", k, maximum=x.shape[1])
    whitening = check_choice("whitening", whitening, ("subspace", "tensor", "moment2"))
    m3 = cross_moment_tensor(x, y, mean=mean, scale=scale, chunk_size=chunk_size)
    refinements = check_int("refinements", refinements, minimum=0)
    if whitening == "subspace":
        w = torch.linalg.svd(m3.reshape(m3.shape[0], -1), full_matrices=False).U[:, :k]
    elif whitening == "tensor":
        w = tensor_whitening(m3, k, generator=generator)
    else:
        w = whitening_matrix(cross_moment_matrix(x, y, mean=mean, scale=scale, chunk_size=chunk_size), k)
    a_hat, weights = _decompose(m3, w, k, generator, restarts, iterations)
    for _ in range(refinements):
        # lambda_j by least squares on M3 ~ sum_j lambda_j a_hat_j^(x)3, then theta with a_hat_j^T theta = 1/lambda_j:
        # M3(I, I, theta) ~ sum_j a_j a_j^T, positive and balanced
        atoms = torch.einsum("ja,jb,jc->abcj", a_hat, a_hat, a_hat).reshape(-1, k)
        lam = torch.linalg.lstsq(atoms, m3.reshape(-1, 1)).solution[:, 0]
        if bool((lam == 0).any()):
            break
        theta = torch.linalg.lstsq(a_hat, (1 / lam)[:, None]).solution[:, 0]
        try:
            w = whitening_matrix(torch.einsum("abc,c->ab", m3, theta), k)
        except ValueError:
            break
        a_hat, weights = _decompose(m3, w, k, generator, restarts, iterations)
    return a_hat, weights


def _decompose(m3: torch.Tensor, w: torch.Tensor, k: int, generator: torch.Generator, restarts: int,
               iterations: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Whiten ``m3 [d, d, d]`` with ``w [d, k]``, decompose, un-whiten: ``(a_hat [k, d]`` unit rows, ``[k])``."""
    whitened = torch.einsum("abc,ai,bj,ck->ijk", m3, w, w, w)
    weights, vectors = tensor_power_method(whitened, k, generator=generator, restarts=restarts,
                                           iterations=iterations)
    a_hat = vectors @ torch.linalg.pinv(w)  # rows: pinv(W^T) v_j = (v_j^T pinv(W))^T
    return a_hat / a_hat.norm(dim=1, keepdim=True), weights


def fit_output_layer(x: torch.Tensor, y: torch.Tensor, a_hat: torch.Tensor, activation: str = "tanh", *,
                     bias: bool = True) -> torch.Tensor:
    """The output layer by least squares on the recovered hidden units: ``c = argmin |y - [sigma(X A_hat^T), 1]
    c|^2`` (``torch.linalg.lstsq``), Sedghi & Anandkumar 2016's last step.

    Shapes: ``x [n, d]``, ``y [n]``, ``a_hat [k, d]`` -> ``c [k + 1]`` (last entry the bias; ``[k]`` with
    ``bias=False``).
    """
    x, y = _check_xy(x, y)
    check_tensor("a_hat", a_hat, ("k", x.shape[1]), like=x, like_name="x")
    activation = check_choice("activation", activation, tuple(SPECTRAL_ACTIVATIONS))
    features = SPECTRAL_ACTIVATIONS[activation](x @ a_hat.T)
    if bias:
        features = torch.cat([features, torch.ones_like(features[:, :1])], dim=1)
    return torch.linalg.lstsq(features, y[:, None]).solution[:, 0]


class SpectralFit(NamedTuple):
    """A network fitted by :func:`spectral_fit`: ``y_hat = sigma(x @ a_hat.T) @ c[:k] + c[k]``."""

    a_hat: torch.Tensor  # [k, d] unit rows
    weights: torch.Tensor  # [k] eigenvalues of the whitened tensor
    c: torch.Tensor  # [k + 1] output weights and bias

    def predict(self, x: torch.Tensor, activation: str = "tanh") -> torch.Tensor:
        """``y_hat [n]`` for ``x [n, d]``."""
        activation = check_choice("activation", activation, tuple(SPECTRAL_ACTIVATIONS))
        return SPECTRAL_ACTIVATIONS[activation](x @ self.a_hat.T) @ self.c[:-1] + self.c[-1]


def spectral_fit(x: torch.Tensor, y: torch.Tensor, k: int, *, generator: torch.Generator,
                 activation: str = "tanh", whitening: str = "subspace", restarts: int = 10) -> SpectralFit:
    """:func:`spectral_input_weights` then :func:`fit_output_layer` on the same samples.

    Shapes: ``x [n, d]``, ``y [n]`` -> :class:`SpectralFit` (``a_hat [k, d]``, ``weights [k]``, ``c [k + 1]``).
    """
    a_hat, weights = spectral_input_weights(x, y, k, generator=generator, whitening=whitening, restarts=restarts)
    return SpectralFit(a_hat, weights, fit_output_layer(x, y, a_hat, activation))


def recovery_error(a: torch.Tensor, a_hat: torch.Tensor) -> float:
    """The recovery error ``max_j (1 - |cos(a_j, a_hat_pi(j))|)`` under the permutation ``pi`` that minimises it
    (the components are recovered up to sign and order). Exhaustive over permutations (``k <= 8``).

    Shapes: ``a [k, d]``, ``a_hat [k, d]`` -> float in [0, 1].
    """
    check_tensor("a", a, ("k", "d"))
    check_tensor("a_hat", a_hat, (a.shape[0], a.shape[1]), like=a, like_name="a")
    k = a.shape[0]
    if not 1 <= k <= 8:
        raise ValueError(f"a must have 1 to 8 rows (exhaustive matching), got {k}")
    check_finite("a", a)
    check_finite("a_hat", a_hat)
    cos = (a / a.norm(dim=1, keepdim=True)) @ (a_hat / a_hat.norm(dim=1, keepdim=True)).T
    gap = (1 - cos.abs()).clamp(min=0)
    best = min(max(float(gap[j, p[j]]) for j in range(k)) for p in itertools.permutations(range(k)))
    return best


def simulate_io_rnn(x: torch.Tensor, a: torch.Tensor, u: torch.Tensor, c: torch.Tensor,
                    activation: str = "tanh") -> torch.Tensor:
    """The outputs of an input-output RNN ``h_t = sigma(A x_t + U h_{t-1})``, ``h_0 = 0``, ``y_t = c^T h_t``
    (Sedghi & Anandkumar 2016's IO-RNN with one output).

    Shapes: ``x [B, T, d]``, ``a [k, d]``, ``u [k, k]``, ``c [k]`` -> ``y [B, T]``. ``u = 0`` gives the
    one-hidden-layer network applied per step.
    """
    check_tensor("x", x, ("B", "T", "d"))
    check_tensor("a", a, ("k", x.shape[2]), like=x, like_name="x")
    k = a.shape[0]
    check_tensor("u", u, (k, k), like=x, like_name="x")
    check_tensor("c", c, (k,), like=x, like_name="x")
    activation = check_choice("activation", activation, tuple(SPECTRAL_ACTIVATIONS))
    sigma = SPECTRAL_ACTIVATIONS[activation]
    drive = x @ a.T  # [B, T, k]
    h = torch.zeros(x.shape[0], k, dtype=x.dtype, device=x.device)
    out = []
    for step in range(x.shape[1]):
        h = sigma(drive[:, step] + h @ u.T)
        out.append(h @ c)
    return torch.stack(out, dim=1)
