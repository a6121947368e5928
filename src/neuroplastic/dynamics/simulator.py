"""A small differentiable simulator of planar articulated chains, with neural augmentation at named places.

Heiden, Millard, Coumans, Sheng & Sukhatme 2021, "NeuralSim: augmenting differentiable simulators with neural
networks" (ICRA): a differentiable rigid-body simulator in which small networks (or single learned weights)
are inserted at chosen places of the dynamics, e.g. a joint's damping, and the whole is fitted to observed
trajectories by gradient.

The chain: ``n`` links hanging from a fixed hinge in a vertical plane, point mass ``m_i`` at the end of a
massless rod of length ``l_i``; joint ``i`` is a hinge with relative angle ``q_i`` (``q = 0``: hanging
straight down). ``n = 1`` is the pendulum, ``n = 2`` the double pendulum. Absolute angles ``phi = T q`` with
``T`` the lower-triangular matrix of ones. In absolute angles, with ``mu_jk = sum_{i >= max(j, k)} m_i``::

    M_abs[j, k] = mu_jk l_j l_k cos(phi_j - phi_k)
    c_j         = sum_k mu_jk l_j l_k sin(phi_j - phi_k) phidot_k^2        (Coriolis / centrifugal)
    g_j         = mu_jj g l_j sin(phi_j)                                    (gravity)

and in joint coordinates ``M(q) = T^T M_abs T``, ``bias(q, qd) = T^T (c + g)``, so that
``M(q) qdd + bias(q, qd) = tau``. Energy ``E = 1/2 phidot^T M_abs phidot - g sum_i m_i sum_{k<=i} l_k cos phi_k``.

Joint torques of the :class:`HybridSimulator` (the named places where it is augmented)::

    tau = -damping * qd + residual([q, qd])          (damping: a learned parameter per joint;
                                                      residual: any nn.Module, [B, 2n] -> [B, n])

Integrators (dt fixed): semi-implicit Euler ``qd' = qd + dt qdd(q, qd); q' = q + dt qd'`` and classical RK4 on
the state ``(q, qd)``. Everything is plain torch and differentiable end to end; use float64.

Stable gradients through long trajectories: :func:`shooting_windows` cuts observed trajectories into windows
that each start from the observed state (multiple shooting with the shooting nodes pinned to the data), so a
loss back-propagates through at most ``window`` steps however long the recording; :func:`trajectory_loss`
can in addition divide step ``k``'s cost by ``1 + k / decay`` (the paper's growing time factor).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from neuroplastic._checks import check_choice, check_finite, check_int, check_number, check_tensor

__all__ = [
    "INTEGRATORS", "SYSTEMS", "cartpole_dynamics", "cartpole_energy",
    "chain_dynamics", "chain_acceleration", "chain_energy", "semi_implicit_euler_step", "rk4_step",
    "simulate_chain", "HybridSimulator", "ResidualMLP", "shooting_windows", "trajectory_loss",
]

INTEGRATORS = ("semi_implicit_euler", "rk4")
SYSTEMS = ("chain", "cartpole")

Acceleration = Callable[[Tensor, Tensor], Tensor]


def _chain_parameters(masses: Tensor, lengths: Tensor, q: Tensor) -> None:
    n = q.shape[-1]
    check_tensor("masses", masses, (n,))
    check_tensor("lengths", lengths, (n,))


def _absolute(q: Tensor) -> Tensor:
    """Absolute link angles ``phi = cumsum(q)``: ``[..., n] -> [..., n]``."""
    return torch.cumsum(q, dim=-1)


def chain_dynamics(q: Tensor, qd: Tensor, masses: Tensor, lengths: Tensor, gravity: float | Tensor = 9.81
                   ) -> tuple[Tensor, Tensor]:
    """Mass matrix and bias forces of a planar chain of point masses: ``M(q) qdd + bias(q, qd) = tau``.

    Equations in the module docstring. ``q, qd [B, n]`` (relative joint angles and velocities),
    ``masses, lengths [n]`` -> ``M [B, n, n]``, ``bias [B, n]`` (Coriolis, centrifugal and gravity).
    """
    n = q.shape[-1]
    phi, phid = _absolute(q), _absolute(qd)
    # mu_jk = sum_{i >= max(j, k)} m_i
    tail = torch.flip(torch.cumsum(torch.flip(masses, (0,)), 0), (0,))  # [n]: sum_{i >= j} m_i
    index = torch.arange(n, device=q.device)
    mu = tail[torch.maximum(index[:, None], index[None, :])]  # [n, n]
    ll = lengths[:, None] * lengths[None, :]
    diff = phi[..., :, None] - phi[..., None, :]  # [B, n, n]
    m_abs = mu * ll * torch.cos(diff)
    coriolis = (mu * ll * torch.sin(diff) * (phid**2)[..., None, :]).sum(-1)
    grav = tail * gravity * lengths * torch.sin(phi)
    t = torch.tril(torch.ones(n, n, dtype=q.dtype, device=q.device))
    mass = t.T @ m_abs @ t
    bias = (coriolis + grav) @ t  # T^T (c + g) as row vectors
    return mass, bias


def chain_acceleration(q: Tensor, qd: Tensor, tau: Tensor, masses: Tensor, lengths: Tensor,
                       gravity: float | Tensor = 9.81) -> Tensor:
    """Joint accelerations ``qdd = M(q)^-1 (tau - bias(q, qd))``: ``q, qd, tau [B, n]`` -> ``[B, n]``."""
    mass, bias = chain_dynamics(q, qd, masses, lengths, gravity)
    return torch.linalg.solve(mass, (tau - bias).unsqueeze(-1)).squeeze(-1)


def cartpole_dynamics(q: Tensor, qd: Tensor, masses: Tensor, lengths: Tensor, gravity: float | Tensor = 9.81
                      ) -> tuple[Tensor, Tensor]:
    """Mass matrix and bias forces of a cart-pole: a cart (mass ``masses[0]``, position ``q[:, 0]``) on a
    horizontal rail and a point mass ``masses[1]`` on a massless pole of length ``lengths[0]`` hinged to it
    (angle ``q[:, 1]``, 0 hanging down). ``M qdd + bias = tau`` (``tau[:, 0]``: force on the cart)::

        M    = [[m_c + m_p, m_p l cos th], [m_p l cos th, m_p l^2]]
        bias = [-m_p l sin(th) thd^2, m_p g l sin th]

    ``q, qd [B, 2]``, ``masses [2]``, ``lengths [1]`` -> ``M [B, 2, 2]``, ``bias [B, 2]``.
    """
    mc, mp, length = masses[0], masses[1], lengths[0]
    c, s = torch.cos(q[..., 1]), torch.sin(q[..., 1])
    top = torch.stack([(mc + mp).expand_as(c), mp * length * c], -1)
    bottom = torch.stack([mp * length * c, (mp * length**2).expand_as(c)], -1)
    mass = torch.stack([top, bottom], -2)
    bias = torch.stack([-mp * length * s * qd[..., 1] ** 2, mp * gravity * length * s], -1)
    return mass, bias


def cartpole_energy(q: Tensor, qd: Tensor, masses: Tensor, lengths: Tensor, gravity: float | Tensor = 9.81
                    ) -> Tensor:
    """Mechanical energy of a cart-pole (:func:`cartpole_dynamics`): ``[B, 2]`` -> ``[B]``.

    ``E = 1/2 (m_c + m_p) xd^2 + m_p l cos(th) xd thd + 1/2 m_p l^2 thd^2 - m_p g l cos th``.
    """
    mc, mp, length = masses[0], masses[1], lengths[0]
    xd, thd, th = qd[..., 0], qd[..., 1], q[..., 1]
    return (0.5 * (mc + mp) * xd**2 + mp * length * torch.cos(th) * xd * thd + 0.5 * mp * length**2 * thd**2
            - mp * gravity * length * torch.cos(th))


def chain_energy(q: Tensor, qd: Tensor, masses: Tensor, lengths: Tensor, gravity: float | Tensor = 9.81) -> Tensor:
    """Total mechanical energy (kinetic + potential, zero potential at the hinge's height): ``[B, n]`` -> ``[B]``.

    ``E = 1/2 sum_i m_i |v_i|^2 + g sum_i m_i y_i`` with ``y_i = -sum_{k<=i} l_k cos(phi_k)``.
    """
    _chain_parameters(masses, lengths, q)
    phi, phid = _absolute(q), _absolute(qd)
    vx = torch.cumsum(lengths * torch.cos(phi) * phid, -1)
    vy = torch.cumsum(lengths * torch.sin(phi) * phid, -1)
    y = -torch.cumsum(lengths * torch.cos(phi), -1)
    return (0.5 * masses * (vx**2 + vy**2)).sum(-1) + gravity * (masses * y).sum(-1)


def semi_implicit_euler_step(q: Tensor, qd: Tensor, acceleration: Acceleration, dt: float) -> tuple[Tensor, Tensor]:
    """One semi-implicit (symplectic) Euler step: ``qd' = qd + dt a(q, qd)``, ``q' = q + dt qd'``."""
    qd_next = qd + dt * acceleration(q, qd)
    return q + dt * qd_next, qd_next


def rk4_step(q: Tensor, qd: Tensor, acceleration: Acceleration, dt: float) -> tuple[Tensor, Tensor]:
    """One classical Runge-Kutta 4 step of ``d/dt (q, qd) = (qd, a(q, qd))``."""
    a1 = acceleration(q, qd)
    q2, v2 = q + 0.5 * dt * qd, qd + 0.5 * dt * a1
    a2 = acceleration(q2, v2)
    q3, v3 = q + 0.5 * dt * v2, qd + 0.5 * dt * a2
    a3 = acceleration(q3, v3)
    q4, v4 = q + dt * v3, qd + dt * a3
    a4 = acceleration(q4, v4)
    q_next = q + dt / 6 * (qd + 2 * v2 + 2 * v3 + v4)
    qd_next = qd + dt / 6 * (a1 + 2 * a2 + 2 * a3 + a4)
    return q_next, qd_next


_STEPS = {"semi_implicit_euler": semi_implicit_euler_step, "rk4": rk4_step}


def simulate_chain(q0: Tensor, qd0: Tensor, steps: int, acceleration: Acceleration, dt: float,
                   integrator: str = "rk4") -> tuple[Tensor, Tensor]:
    """Roll a state forward ``steps`` steps: ``q0, qd0 [B, n]`` -> ``q, qd [B, steps + 1, n]`` (index 0: the start).

    ``acceleration(q, qd) -> qdd`` (all ``[B, n]``) is any differentiable function, e.g. a chain's
    :func:`chain_acceleration` with its joint torques.
    """
    check_int("steps", steps, minimum=0)
    check_choice("integrator", integrator, INTEGRATORS)
    step = _STEPS[integrator]
    qs, qds = [q0], [qd0]
    q, qd = q0, qd0
    for _ in range(steps):
        q, qd = step(q, qd, acceleration, dt)
        qs.append(q)
        qds.append(qd)
    return torch.stack(qs, 1), torch.stack(qds, 1)


class ResidualMLP(nn.Module):
    """A joint-torque residual ``tau = f([q, qd])`` for an ``n``-joint chain: features ``[sin q, cos q, qd]``,
    ``layers`` tanh layers, a linear output initialised to zero (so the hybrid starts as its physics).

    Shapes: ``[B, 2n] -> [B, n]``.
    """

    def __init__(self, joints: int, hidden: Sequence[int] = (32, 32), dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        self.joints = check_int("joints", joints)
        widths = [3 * joints, *[check_int("hidden", h) for h in hidden]]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(a, b, dtype=dtype), nn.Tanh()]
        out = nn.Linear(widths[-1], joints, dtype=dtype)
        nn.init.zeros_(out.weight)
        nn.init.zeros_(out.bias)
        self.net = nn.Sequential(*layers, out)

    def forward(self, state: Tensor) -> Tensor:
        q, qd = state[..., : self.joints], state[..., self.joints:]
        return self.net(torch.cat([torch.sin(q), torch.cos(q), qd], -1))


class HybridSimulator(nn.Module):
    """A planar chain whose physics (masses, lengths) and augmentations (damping, torque residual) are learned.

    Heiden et al. 2021 (NeuralSim). Joint torques ``tau = -damping * qd + residual([q, qd])`` enter
    ``M(q) qdd + bias(q, qd) = tau`` (module docstring). The augmentations are named: ``"damping"`` (a
    parameter ``[n]``) and ``"residual"`` (any ``nn.Module`` ``[B, 2n] -> [B, n]``); each is optional
    (``damping=None`` / ``residual=None``: absent). ``learn_physics=False`` keeps masses and lengths fixed
    (buffers).

    Args:
        masses, lengths: one per link (``n`` links), positive; for ``system="cartpole"``: masses
            ``[cart, pole]`` and lengths ``[pole]``.
        system: ``"chain"`` (:func:`chain_dynamics`) or ``"cartpole"`` (:func:`cartpole_dynamics`; the damping
            and residual then act on ``(x, th)``).
        gravity, dt: gravitational acceleration and step size.
        integrator: ``"rk4"`` or ``"semi_implicit_euler"``.
        damping: initial damping per joint (learned), or None.
        residual: a torque residual module, or None.
        dtype: float64 by default (long rollouts and finite-difference checks need it).
    """

    AUGMENTATIONS = ("damping", "residual")

    def __init__(self, masses: Sequence[float], lengths: Sequence[float], *, gravity: float = 9.81,
                 dt: float = 1 / 500, integrator: str = "rk4", damping: Sequence[float] | None = None,
                 residual: nn.Module | None = None, learn_physics: bool = True,
                 dtype: torch.dtype = torch.float64, system: str = "chain") -> None:
        super().__init__()
        self.system = check_choice("system", system, SYSTEMS)
        masses, lengths = list(masses), list(lengths)
        if system == "cartpole":
            if len(masses) != 2 or len(lengths) != 1:
                raise ValueError(f"a cart-pole needs masses [cart, pole] and lengths [pole], got {len(masses)} and "
                                 f"{len(lengths)} values")
        elif not masses or len(masses) != len(lengths):
            raise ValueError(f"masses and lengths must be non-empty and of equal length, got {len(masses)} and "
                             f"{len(lengths)}")
        for i, m in enumerate(masses):
            check_number(f"masses[{i}]", m, minimum=0, exclusive_minimum=True)
        for i, length in enumerate(lengths):
            check_number(f"lengths[{i}]", length, minimum=0, exclusive_minimum=True)
        self.joints = len(masses)
        self.gravity = float(check_number("gravity", gravity))
        self.dt = float(check_number("dt", dt, minimum=0, exclusive_minimum=True))
        self.integrator = check_choice("integrator", integrator, INTEGRATORS)
        m = torch.tensor(masses, dtype=dtype)
        ln = torch.tensor(lengths, dtype=dtype)
        if learn_physics:
            self.masses = nn.Parameter(m)
            self.lengths = nn.Parameter(ln)
        else:
            self.register_buffer("masses", m)
            self.register_buffer("lengths", ln)
        if damping is not None:
            damping = list(damping)
            if len(damping) != self.joints:
                raise ValueError(f"damping must have one value per joint ({self.joints}), got {len(damping)}")
            for i, d in enumerate(damping):
                check_number(f"damping[{i}]", d)
            self.damping: nn.Parameter | None = nn.Parameter(torch.tensor(damping, dtype=dtype))
        else:
            self.damping = None
        if residual is not None and not isinstance(residual, nn.Module):
            raise TypeError(f"residual must be an nn.Module or None, got {type(residual).__name__}")
        self.residual = residual

    def augmentations(self) -> dict[str, nn.Module | Tensor]:
        """The augmentations present, by name."""
        found: dict[str, nn.Module | Tensor] = {}
        if self.damping is not None:
            found["damping"] = self.damping
        if self.residual is not None:
            found["residual"] = self.residual
        return found

    def joint_torque(self, q: Tensor, qd: Tensor) -> Tensor:
        """``tau = -damping * qd + residual([q, qd])``: ``[B, n]`` -> ``[B, n]`` (zeros without augmentations)."""
        tau = torch.zeros_like(qd)
        if self.damping is not None:
            tau = tau - self.damping * qd
        if self.residual is not None:
            tau = tau + self.residual(torch.cat([q, qd], -1))
        return tau

    def acceleration(self, q: Tensor, qd: Tensor) -> Tensor:
        """``qdd = M(q)^-1 (tau(q, qd) - bias(q, qd))``: ``[B, n]`` -> ``[B, n]``."""
        if self.system == "cartpole":
            mass, bias = cartpole_dynamics(q, qd, self.masses, self.lengths, self.gravity)
            return torch.linalg.solve(mass, (self.joint_torque(q, qd) - bias).unsqueeze(-1)).squeeze(-1)
        return chain_acceleration(q, qd, self.joint_torque(q, qd), self.masses, self.lengths, self.gravity)

    def energy(self, q: Tensor, qd: Tensor) -> Tensor:
        """Mechanical energy of states ``[..., n]`` -> ``[...]`` under the current masses and lengths."""
        if self.system == "cartpole":
            return cartpole_energy(q, qd, self.masses, self.lengths, self.gravity)
        return chain_energy(q, qd, self.masses, self.lengths, self.gravity)

    def _check_state(self, q0: object, qd0: object) -> tuple[Tensor, Tensor]:
        q0 = check_tensor("q0", q0, ("B", self.joints), like=self.masses, like_name="the simulator's parameters")
        qd0 = check_tensor("qd0", qd0, ("B", self.joints), like=self.masses,
                           like_name="the simulator's parameters")
        if q0.shape != qd0.shape:
            raise ValueError(f"q0 and qd0 must have the same shape, got {list(q0.shape)} and {list(qd0.shape)}")
        check_finite("q0", q0)
        check_finite("qd0", qd0)
        return q0, qd0

    def rollout(self, q0: Tensor, qd0: Tensor, steps: int) -> tuple[Tensor, Tensor]:
        """Trajectories from ``q0, qd0 [B, n]``: ``q, qd [B, steps + 1, n]`` (index 0: the start)."""
        q0, qd0 = self._check_state(q0, qd0)
        return simulate_chain(q0, qd0, steps, self.acceleration, self.dt, self.integrator)

    def forward(self, q0: Tensor, qd0: Tensor, steps: int) -> tuple[Tensor, Tensor]:
        """Same as :meth:`rollout`."""
        return self.rollout(q0, qd0, steps)


def shooting_windows(q: Tensor, qd: Tensor, window: int, stride: int | None = None
                     ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Cut observed trajectories into windows that each start from the observed state (multiple shooting with
    the nodes pinned to the data).

    ``q, qd [B, T + 1, n]``; windows of ``window`` steps every ``stride`` steps (default: ``window``) ->
    ``q0, qd0 [W, n]`` (the window starts) and ``q_target, qd_target [W, window + 1, n]`` (index 0: the
    start), ``W = B * (number of windows per trajectory)``.
    """
    q = check_tensor("q", q, ("B", "T", "n"))
    qd = check_tensor("qd", qd, tuple(q.shape))
    window = check_int("window", window)
    stride = window if stride is None else check_int("stride", stride)
    if window > q.shape[1] - 1:
        raise ValueError(f"window must be at most the trajectories' length in steps ({q.shape[1] - 1}), got {window}")
    q_win = q.unfold(1, window + 1, stride).movedim(-1, 2)  # [B, K, window + 1, n]
    qd_win = qd.unfold(1, window + 1, stride).movedim(-1, 2)
    q_win = q_win.reshape(-1, window + 1, q.shape[-1])
    qd_win = qd_win.reshape(-1, window + 1, q.shape[-1])
    return q_win[:, 0], qd_win[:, 0], q_win, qd_win


def trajectory_loss(q_pred: Tensor, qd_pred: Tensor, q_true: Tensor, qd_true: Tensor, *,
                    velocity_weight: float = 1.0, decay: float | None = None) -> Tensor:
    """Mean squared error of predicted trajectories ``[B, T + 1, n]``, step ``k``'s cost divided by
    ``1 + k / decay`` (the paper's growing time factor; ``decay=None``: equal weights).

    ``loss = mean_{b, k, j} w_k [(q - q*)^2 + velocity_weight (qd - qd*)^2]`` with ``w_k`` normalised to mean 1.
    """
    check_number("velocity_weight", velocity_weight, minimum=0)
    steps = q_pred.shape[1]
    weights = torch.ones(steps, dtype=q_pred.dtype, device=q_pred.device)
    if decay is not None:
        check_number("decay", decay, minimum=0, exclusive_minimum=True)
        weights = 1 / (1 + torch.arange(steps, dtype=q_pred.dtype, device=q_pred.device) / decay)
    weights = weights / weights.mean()
    per_step = ((q_pred - q_true) ** 2 + velocity_weight * (qd_pred - qd_true) ** 2).mean((0, 2))
    return (weights * per_step).mean()
