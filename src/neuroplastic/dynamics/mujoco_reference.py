"""Ground-truth trajectories of planar chains from MuJoCo (the ``mujoco`` package, the ``sim`` extra).

The MJCF model matches :mod:`neuroplastic.dynamics.simulator`'s chain: each link is a body hanging from a
hinge about the y axis, whose mass sits at the end of the link (``<inertial>`` at ``(0, 0, -l)`` with a
negligible rotational inertia of ``1e-10`` kg m^2, which MuJoCo needs to be positive), gravity along -z,
and no other geometry that has mass. MuJoCo adds what the analytic model lacks: joint ``damping`` (viscous,
``-d qd``) and ``frictionloss`` (dry friction, solved as a constraint). Hinge angles are relative, as in the
simulator. MuJoCo's hinge about +y moves the link end to ``x = -l sin q`` (the simulator's to ``+l sin q``),
a mirror image with the same equations of motion in ``q``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from neuroplastic._checks import check_choice, check_int, check_number, check_tensor

__all__ = ["chain_mjcf", "mujoco_rollout"]


def chain_mjcf(masses: Sequence[float], lengths: Sequence[float], *, damping: Sequence[float] | None = None,
               frictionloss: Sequence[float] | None = None, gravity: float = 9.81, dt: float = 1 / 500,
               integrator: str = "RK4") -> str:
    """The MJCF text of a planar chain of point masses (module docstring); ``integrator``: MuJoCo's
    ``"RK4"``, ``"Euler"`` (semi-implicit, damping implicit) or ``"implicitfast"``."""
    n = len(masses)
    if n == 0 or len(lengths) != n:
        raise ValueError(f"masses and lengths must be non-empty and of equal length, got {n} and {len(lengths)}")
    damping = [0.0] * n if damping is None else list(damping)
    frictionloss = [0.0] * n if frictionloss is None else list(frictionloss)
    if len(damping) != n or len(frictionloss) != n:
        raise ValueError(f"damping and frictionloss must have one value per joint ({n})")
    for i in range(n):
        check_number(f"masses[{i}]", masses[i], minimum=0, exclusive_minimum=True)
        check_number(f"lengths[{i}]", lengths[i], minimum=0, exclusive_minimum=True)
        check_number(f"damping[{i}]", damping[i], minimum=0)
        check_number(f"frictionloss[{i}]", frictionloss[i], minimum=0)
    check_number("dt", dt, minimum=0, exclusive_minimum=True)
    check_choice("integrator", integrator, ("RK4", "Euler", "implicitfast"))
    body = ""
    for i in reversed(range(n)):
        pos = "0 0 0" if i == 0 else f"0 0 {-lengths[i - 1]!r}"
        body = (f'<body name="link{i}" pos="{pos}">'
                f'<joint name="joint{i}" type="hinge" axis="0 1 0" damping="{damping[i]!r}" '
                f'frictionloss="{frictionloss[i]!r}"/>'
                f'<inertial pos="0 0 {-lengths[i]!r}" mass="{masses[i]!r}" diaginertia="1e-10 1e-10 1e-10"/>'
                f"{body}</body>")
    return (f'<mujoco model="chain"><option timestep="{dt!r}" gravity="0 0 {-gravity!r}" integrator="{integrator}"/>'
            f"<worldbody>{body}</worldbody></mujoco>")


def mujoco_rollout(xml: str, q0: Tensor, qd0: Tensor, steps: int) -> tuple[Tensor, Tensor]:
    """Simulate the MJCF model ``xml`` from each start ``q0, qd0 [B, n]`` for ``steps`` steps:
    ``q, qd [B, steps + 1, n]`` (float64, on the inputs' device; index 0: the start)."""
    import mujoco  # the ``sim`` extra

    check_int("steps", steps, minimum=0)
    q0 = check_tensor("q0", q0, ("B", "n"))
    qd0 = check_tensor("qd0", qd0, tuple(q0.shape))
    model = mujoco.MjModel.from_xml_string(xml)
    if model.nq != q0.shape[1]:
        raise ValueError(f"q0 must have one column per joint of the model ({model.nq}), got {q0.shape[1]}")
    data = mujoco.MjData(model)
    start_q = q0.detach().cpu().double().numpy()
    start_qd = qd0.detach().cpu().double().numpy()
    out_q = np.empty((q0.shape[0], steps + 1, model.nq))
    out_qd = np.empty_like(out_q)
    for b in range(q0.shape[0]):
        mujoco.mj_resetData(model, data)
        data.qpos[:] = start_q[b]
        data.qvel[:] = start_qd[b]
        out_q[b, 0], out_qd[b, 0] = data.qpos, data.qvel
        for t in range(steps):
            mujoco.mj_step(model, data)
            out_q[b, t + 1], out_qd[b, t + 1] = data.qpos, data.qvel
    return (torch.from_numpy(out_q).to(q0.device), torch.from_numpy(out_qd).to(q0.device))
