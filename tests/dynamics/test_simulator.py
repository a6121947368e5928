"""The differentiable chain simulator: energy, gradients, batching, MuJoCo agreement, input checks."""

from __future__ import annotations

import math

import pytest
import torch

from neuroplastic.dynamics.simulator import (
    HybridSimulator,
    ResidualMLP,
    chain_dynamics,
    chain_energy,
    shooting_windows,
    trajectory_loss,
)

F64 = torch.float64


def _starts(batch: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return 2 * torch.rand(batch, 2, generator=g, dtype=F64) - 1, 2 * torch.rand(batch, 2, generator=g, dtype=F64) - 1


def test_single_pendulum_matches_the_textbook_equation():
    # n = 1: M = m l^2, bias = m g l sin q
    q, qd = torch.tensor([[0.3]], dtype=F64), torch.tensor([[1.7]], dtype=F64)
    mass, bias = chain_dynamics(q, qd, torch.tensor([2.0], dtype=F64), torch.tensor([0.5], dtype=F64), 9.81)
    assert torch.allclose(mass, torch.tensor([[[0.5]]], dtype=F64))
    assert torch.allclose(bias, torch.tensor([[2.0 * 9.81 * 0.5 * math.sin(0.3)]], dtype=F64))


def test_double_pendulum_mass_matrix_matches_the_hand_derived_one():
    m1, m2, l1, l2, q2 = 1.3, 0.7, 0.9, 1.1, 0.4
    q = torch.tensor([[0.2, q2]], dtype=F64)
    mass, _ = chain_dynamics(q, torch.zeros_like(q), torch.tensor([m1, m2], dtype=F64),
                             torch.tensor([l1, l2], dtype=F64))
    c = math.cos(q2)
    expected = torch.tensor([[(m1 + m2) * l1**2 + m2 * l2**2 + 2 * m2 * l1 * l2 * c, m2 * l2**2 + m2 * l1 * l2 * c],
                             [m2 * l2**2 + m2 * l1 * l2 * c, m2 * l2**2]], dtype=F64)
    torch.testing.assert_close(mass[0], expected)


@pytest.mark.parametrize(("integrator", "tolerance"), [("rk4", 1e-8), ("semi_implicit_euler", 2e-2)])
def test_energy_is_conserved_without_damping(integrator, tolerance):
    sim = HybridSimulator([1.0, 1.0], [1.0, 1.0], integrator=integrator)
    q0, qd0 = _starts(2)
    with torch.no_grad():
        q, qd = sim.rollout(q0, qd0, 1000)  # 2 s at dt 1/500
        energy = sim.energy(q, qd)
    drift = (energy - energy[:, :1]).abs().max() / energy.abs().max()
    assert drift < tolerance


def test_damping_dissipates_energy_monotonically():
    sim = HybridSimulator([1.0, 1.0], [1.0, 1.0], damping=[0.2, 0.1])
    with torch.no_grad():
        q, qd = sim.rollout(*_starts(2), 200)
        energy = sim.energy(q, qd)
    assert (energy[:, 1:] <= energy[:, :-1] + 1e-12).all()
    assert (energy[:, -1] < energy[:, 0] - 1e-4).all()


def test_gradients_match_finite_differences():
    sim = HybridSimulator([1.0, 0.8], [1.0, 0.6], damping=[0.2, 0.1], residual=ResidualMLP(2, (4,)))
    torch.nn.init.normal_(sim.residual.net[-1].weight, std=0.1)
    q0, qd0 = _starts(2)
    names = ["masses", "lengths", "damping", "residual.net.2.weight"]
    params = dict(sim.named_parameters())
    base = [params[n].detach().clone().requires_grad_(True) for n in names]

    def loss(*values):
        q, qd = torch.func.functional_call(sim, dict(zip(names, values, strict=True)), (q0, qd0, 10))
        return (q**2).sum() + 0.3 * (qd**3).sum()

    assert torch.autograd.gradcheck(loss, base)


def test_batched_rollout_equals_one_by_one():
    sim = HybridSimulator([1.0, 1.0], [1.0, 1.0], damping=[0.2, 0.1], residual=ResidualMLP(2, (8,)))
    torch.nn.init.normal_(sim.residual.net[-1].weight, std=0.5)
    q0, qd0 = _starts(4)
    with torch.no_grad():
        q, qd = sim.rollout(q0, qd0, 50)
        for b in range(4):
            qb, qdb = sim.rollout(q0[b:b + 1], qd0[b:b + 1], 50)
            torch.testing.assert_close(qb[0], q[b], rtol=1e-12, atol=1e-12)
            torch.testing.assert_close(qdb[0], qd[b], rtol=1e-12, atol=1e-12)


def test_analytic_rollout_matches_mujoco_without_damping():
    pytest.importorskip("mujoco")
    from neuroplastic.dynamics.mujoco_reference import chain_mjcf, mujoco_rollout

    masses, lengths = [1.0, 0.7], [1.0, 0.8]
    q0, qd0 = _starts(2)
    mq, mqd = mujoco_rollout(chain_mjcf(masses, lengths), q0, qd0, 500)  # 1 s
    with torch.no_grad():
        q, qd = HybridSimulator(masses, lengths).rollout(q0, qd0, 500)
    assert (q - mq).abs().max() < 1e-6  # measured: ~1e-9 rad
    assert (qd - mqd).abs().max() < 1e-6
    # with damping in both, they agree too (MuJoCo's RK4 treats damping explicitly, as here)
    mq, _ = mujoco_rollout(chain_mjcf(masses, lengths, damping=[0.2, 0.1]), q0, qd0, 500)
    with torch.no_grad():
        q, _ = HybridSimulator(masses, lengths, damping=[0.2, 0.1]).rollout(q0, qd0, 500)
    assert (q - mq).abs().max() < 1e-6


def test_shooting_windows_start_from_the_data_and_the_loss_weights_decay():
    q = torch.arange(11, dtype=F64).reshape(1, 11, 1)
    q0, qd0, qw, qdw = shooting_windows(q, -q, 5)
    assert qw.shape == (2, 6, 1) and torch.equal(q0[:, 0], torch.tensor([0.0, 5.0], dtype=F64))
    assert torch.equal(qw[1, :, 0], torch.arange(5, 11, dtype=F64)) and torch.equal(qd0, -q0)
    pred, true = torch.zeros(1, 3, 1, dtype=F64), torch.tensor([[[1.0], [1.0], [1.0]]], dtype=F64)
    err = torch.tensor([[[1.0], [0.0], [0.0]]], dtype=F64)
    # weights 1, 1/2, 1/3 normalised to mean 1 (w_0 = 18/11); only step 0 in error -> (18/11) / 3
    got = trajectory_loss(err, pred, torch.zeros_like(err), pred, decay=1.0)
    assert math.isclose(float(got), 6 / 11, rel_tol=1e-12)
    assert float(trajectory_loss(pred, pred, true, true, velocity_weight=0.0)) == 1.0


def test_bad_inputs_are_refused(library_error):
    sim = HybridSimulator([1.0, 1.0], [1.0, 1.0])
    q0, qd0 = _starts(2)
    for call, match in [
        (lambda: sim.rollout(q0[:, :1], qd0, 3), "q0 must have shape"),
        (lambda: sim.rollout(q0.float(), qd0.float(), 3), "q0"),
        (lambda: sim.rollout(q0 * float("nan"), qd0, 3), "q0"),
        (lambda: sim.rollout(q0, qd0, -1), "steps"),
        (lambda: sim.rollout(q0, qd0, 2.5), "steps"),
        (lambda: HybridSimulator([1.0, -1.0], [1.0, 1.0]), "masses"),
        (lambda: HybridSimulator([1.0], [1.0, 1.0]), "equal length"),
        (lambda: HybridSimulator([1.0], [1.0], integrator="euler"), "integrator"),
        (lambda: HybridSimulator([1.0], [1.0], damping=[0.1, 0.2]), "damping"),
        (lambda: HybridSimulator([1.0], [1.0], dt=0.0), "dt"),
        (lambda: HybridSimulator([1.0], [1.0], residual=lambda x: x), "residual"),
        (lambda: shooting_windows(q0[:, None], qd0[:, None], 1), "window"),
    ]:
        with library_error() as info:
            call()
        assert info.match(match)
    assert chain_energy(q0, qd0, sim.masses, sim.lengths).shape == (2,)


def test_cartpole_conserves_energy_and_its_cart_recoils():
    sim = HybridSimulator([1.5, 0.5], [0.8], system="cartpole")
    q0 = torch.tensor([[0.0, 1.0], [0.3, -2.0]], dtype=F64)
    qd0 = torch.tensor([[0.0, 0.0], [0.5, 1.0]], dtype=F64)
    with torch.no_grad():
        q, qd = sim.rollout(q0, qd0, 500)
        energy = sim.energy(q, qd)
        momentum = (1.5 + 0.5) * qd[..., 0] + 0.5 * 0.8 * torch.cos(q[..., 1]) * qd[..., 1]  # no horizontal force
    assert (energy - energy[:, :1]).abs().max() / energy.abs().max() < 1e-8
    assert (momentum - momentum[:, :1]).abs().max() < 1e-8
    assert q[0, 1:, 0].abs().max() > 1e-2  # the pole swinging moves the cart
    with pytest.raises(ValueError, match="cart-pole needs"):
        HybridSimulator([1.0, 1.0], [1.0, 1.0], system="cartpole")
