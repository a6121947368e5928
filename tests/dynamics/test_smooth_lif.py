"""The recurrent LIF network as a smooth map: its tangent, its limit (the spiking network), its exponents."""

from __future__ import annotations

import math

import pytest
import torch

from neuroplastic.dynamics.lyapunov import perturbation_lyapunov_exponent
from neuroplastic.dynamics.smooth_lif import (
    lif_linearization,
    network_lyapunov_spectrum,
    smooth_lif_step,
    smooth_lif_tangent,
)
from neuroplastic.neurons import lif_step
from neuroplastic.runs.threads import torch_threads

F64 = torch.float64


@pytest.fixture(autouse=True)
def one_thread():
    """Step-by-step loops over tiny tensors: one intra-op thread is much faster on a busy machine."""
    with torch_threads(1):
        yield



@pytest.mark.parametrize("reset", ["soft", "hard", "none"])
def test_smooth_lif_tangent_is_the_jacobian(small_lif_network, reset):
    weight, decay, currents = small_lif_network()
    h = 1.0 + 0.3 * torch.randn(12, generator=torch.Generator().manual_seed(1), dtype=F64)
    kw = dict(threshold=1.0, slope=6.0, reset=reset, v_reset=0.2)
    jac = torch.func.jacrev(lambda x: smooth_lif_step(x, currents[0], weight, decay, **kw))(h)
    q = torch.randn(12, 3, generator=torch.Generator().manual_seed(2), dtype=F64)
    torch.testing.assert_close(smooth_lif_tangent(h, weight, decay, q, **kw), jac @ q)


def test_smooth_map_with_a_steep_sigmoid_is_the_spiking_network(small_lif_network):
    weight, decay, currents = small_lif_network()
    h_smooth = torch.zeros(12, dtype=F64)
    v, s = torch.zeros(12, dtype=F64), torch.zeros(12, dtype=F64)
    closest = math.inf
    for t in range(60):
        # lif_step: h = decay * v + x with x = I_t + W s_{t-1}; we compare h with the smooth map's state.
        h_spiking = decay * v + currents[t] + weight @ s
        s, v = lif_step(v, currents[t] + weight @ s, decay, 1.0, reset="soft")
        h_smooth = smooth_lif_step(h_smooth, currents[t], weight, decay, slope=1e5) if t else currents[0].clone()
        closest = min(closest, float((h_spiking - 1.0).abs().min()))
        torch.testing.assert_close(h_smooth, h_spiking, atol=1e-6, rtol=0)
    assert closest > 1e-3  # no state sat on the threshold, where the two would legitimately differ


def test_network_exponent_qr_matches_two_trajectories(small_lif_network):
    weight, decay, currents = small_lif_network(gain=3.0)
    qr = float(network_lyapunov_spectrum(weight, decay, currents, 3, warmup=50, slope=6.0).exponents[0])
    two = perturbation_lyapunov_exponent(lambda h, u: smooth_lif_step(h, u, weight, decay, slope=6.0),
                                         torch.zeros(12, dtype=F64), 350, inputs=currents, warmup=50)
    assert abs(qr - two) < 0.02


def test_linearization_averages_the_jacobian_along_the_run(small_lif_network):
    weight, decay, currents = small_lif_network()
    a, gain = lif_linearization(weight, decay, currents[:30], warmup=10, slope=6.0)
    h = torch.zeros(12, dtype=F64)
    jacobians = []
    for t in range(30):
        if t >= 10:
            jacobians.append(torch.func.jacrev(lambda x: smooth_lif_step(x, currents[0], weight, decay,
                                                                         slope=6.0))(h))
        h = smooth_lif_step(h, currents[t], weight, decay, slope=6.0)
    torch.testing.assert_close(a, torch.stack(jacobians).mean(0))
    assert gain.shape == (12,) and bool((gain >= 0).all())


def test_bad_arguments_name_themselves(small_lif_network):
    weight, decay, currents = small_lif_network()
    with pytest.raises(ValueError, match="decay must lie in"):
        network_lyapunov_spectrum(weight, decay * 0 + 1.0, currents)
    with pytest.raises(ValueError, match="reset"):
        network_lyapunov_spectrum(weight, decay, currents, reset="sideways")
