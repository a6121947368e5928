"""Lyapunov exponents (QR and two-trajectory) on maps with known exponents."""

from __future__ import annotations

import math

import pytest
import torch

from neuroplastic.dynamics.lyapunov import lyapunov_spectrum, perturbation_lyapunov_exponent
from neuroplastic.runs.threads import torch_threads

F64 = torch.float64
HENON_A, HENON_B = 1.4, 0.3


@pytest.fixture(autouse=True)
def one_thread():
    """Step-by-step loops over tiny tensors: one intra-op thread is much faster on a busy machine."""
    with torch_threads(1):
        yield


def henon(x):
    return torch.stack([1 - HENON_A * x[0] ** 2 + x[1], HENON_B * x[0]])


def henon_tangent(x, u, q):
    jac = torch.tensor([[-2 * HENON_A * float(x[0]), 1.0], [HENON_B, 0.0]], dtype=F64)
    return jac @ q


def logistic(x):
    return 4.0 * x * (1.0 - x)


def logistic_tangent(x, u, q):
    return (4.0 - 8.0 * x)[:, None] * q


# ------------------------------------------------------------------------------------------ known exponents
def test_linear_map_exponents_are_log_abs_eigenvalues():
    # Non-normal, eigenvalues 1.1, -0.6, 0.3 (distinct moduli).
    basis = torch.tensor([[1.0, 0.5, 0.2], [0.0, 1.0, 0.7], [0.3, 0.0, 1.0]], dtype=F64)
    a = basis @ torch.diag(torch.tensor([1.1, -0.6, 0.3], dtype=F64)) @ torch.linalg.inv(basis)
    result = lyapunov_spectrum(lambda x: a @ x, torch.ones(3, dtype=F64), 400, 3, method="jacrev")
    expected = torch.log(torch.tensor([1.1, 0.6, 0.3], dtype=F64))
    torch.testing.assert_close(result.exponents, expected, atol=0.01, rtol=0)


def test_logistic_map_at_r4_has_exponent_ln2():
    x0 = torch.tensor([0.3141], dtype=F64)
    qr = lyapunov_spectrum(logistic, x0, 8000, 1, warmup=100, tangent=logistic_tangent).exponents
    assert abs(float(qr[0]) - math.log(2)) < 0.02
    two = perturbation_lyapunov_exponent(logistic, x0, 5000, warmup=100, eps=1e-9)
    assert abs(two - math.log(2)) < 0.03


def test_henon_map_exponents_and_their_exact_sum():
    x0 = torch.tensor([0.1, 0.1], dtype=F64)
    result = lyapunov_spectrum(henon, x0, 8000, 2, warmup=100, tangent=henon_tangent, return_running=True)
    first, second = result.exponents.tolist()
    assert abs(first - 0.419) < 0.01
    assert abs(second - (-1.623)) < 0.01
    # |det J| = b at every step, so the exponents sum to ln b up to rounding, at any length.
    assert abs(first + second - math.log(HENON_B)) < 1e-10
    assert result.running.shape == (8000, 2)
    torch.testing.assert_close(result.running[-1].sort(descending=True).values, result.exponents)
    two = perturbation_lyapunov_exponent(henon, x0, 5000, warmup=100)
    assert abs(two - 0.419) < 0.02


def test_jacobian_methods_agree_with_the_analytic_tangent():
    x0 = torch.tensor([0.1, 0.1], dtype=F64)
    reference = lyapunov_spectrum(henon, x0, 60, 2, warmup=10, tangent=henon_tangent).exponents
    for method in ("jvp", "jacrev", "autograd"):
        torch.testing.assert_close(lyapunov_spectrum(henon, x0, 60, 2, warmup=10, method=method).exponents,
                                   reference, atol=1e-12, rtol=0)


def test_driven_map_uses_one_input_per_step():
    # x' = 0.5 x + u: the input does not change the exponent ln 0.5, but the final state is the filtered input.
    inputs = torch.arange(10, dtype=F64).reshape(10, 1)
    result = lyapunov_spectrum(lambda x, u: 0.5 * x + u, torch.zeros(1, dtype=F64), 7, 1, inputs=inputs, warmup=3,
                               method="jacrev")
    assert abs(float(result.exponents[0]) - math.log(0.5)) < 1e-12
    expected = 0.0
    for t in range(10):
        expected = 0.5 * expected + t
    assert float(result.state[0]) == pytest.approx(expected)



def test_bad_arguments_name_themselves():
    x0 = torch.zeros(2, dtype=F64)
    with pytest.raises(ValueError, match="k must be"):
        lyapunov_spectrum(henon, x0, 5, 3)
    with pytest.raises(ValueError, match="method"):
        lyapunov_spectrum(henon, x0, 5, method="finite")
    with pytest.raises(ValueError, match="inputs has 4 steps"):
        lyapunov_spectrum(lambda x, u: x, x0, 5, inputs=torch.zeros(4, 2))
    with pytest.raises(ValueError, match="num_steps"):
        perturbation_lyapunov_exponent(henon, x0, 0)
