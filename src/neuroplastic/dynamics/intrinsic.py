"""Intrinsic plasticity: each unit adapts its gain ``a`` and bias ``b`` so its output ``y = f(a z + b)``
approaches a target distribution (the KL divergence to it is descended online, one sample at a time).

- :func:`exponential_ip_update`: Triesch 2005 ("A gradient rule for the plasticity of a neuron's intrinsic
  excitability", ICANN), Fermi units ``y = 1 / (1 + exp(-(a z + b)))`` and an exponential target of mean
  ``mu``::

      db = eta * (1 - (2 + 1/mu) y + y^2 / mu)
      da = eta / a + db * z

- :func:`gaussian_ip_update`: Schrauwen, Wardermann, Verstraeten, Steil & Stroobandt 2008 ("Improving
  reservoirs using intrinsic plasticity", Neurocomputing 71), tanh units and a Gaussian target
  ``N(mu, sigma^2)``::

      db = -eta * (-mu / sigma^2 + y / sigma^2 * (2 sigma^2 + 1 - y^2 + mu y))
      da = eta / a + db * z

- :func:`adapt_intrinsic`: a training phase: run an :class:`~neuroplastic.dynamics.esn.EchoStateNetwork` on an
  input stream and apply the rule after every step (averaged over the batch), in place on its ``gain`` and
  ``bias``.

The rules are pure functions of ``z``, ``y`` ``[..., N]`` and ``a`` ``[N]``. They live in ``dynamics`` (not in
``plasticity``) because they act on the transfer function of the reservoir's units, and the training phase needs
the reservoir, which ``plasticity`` may not import (docs/architecture.md).
"""

from __future__ import annotations

import torch
from torch import Tensor

from neuroplastic._checks import check_choice, check_int, check_number, check_positive, check_tensor
from neuroplastic.dynamics.esn import EchoStateNetwork

__all__ = ["IP_RULES", "exponential_ip_update", "gaussian_ip_update", "adapt_intrinsic"]

IP_RULES = ("gaussian", "exponential")


def _check_rule_args(net_input: object, output: object, gain: object, eta: object) -> None:
    check_tensor("net_input", net_input, None)
    check_tensor("output", output, None)
    check_tensor("gain", gain, ("N",))
    if net_input.shape != output.shape or net_input.shape[-1:] != gain.shape:  # type: ignore[union-attr]
        raise ValueError(f"net_input and output must have one shape [..., N] with N = gain's size "
                         f"{gain.shape[0]}, got {list(net_input.shape)} and {list(output.shape)}")  # type: ignore
    check_number("eta", eta, minimum=0)


def gaussian_ip_update(net_input: Tensor, output: Tensor, gain: Tensor, *, eta: float, mu: float = 0.0,
                       sigma: float = 0.2) -> tuple[Tensor, Tensor]:
    """Schrauwen et al. 2008's IP step for tanh units toward ``N(mu, sigma^2)``: ``(da [N], db [N])``.

    ``db = -eta (-mu/sigma^2 + y/sigma^2 (2 sigma^2 + 1 - y^2 + mu y))``, ``da = eta / a + db z``, averaged
    over the leading dimensions of ``net_input`` ``z`` and ``output`` ``y = tanh(a z + b)`` ``[..., N]``;
    ``gain`` ``a`` ``[N]``; ``eta`` >= 0, ``mu`` finite, ``sigma`` > 0.
    """
    _check_rule_args(net_input, output, gain, eta)
    check_number("mu", mu)
    check_positive("sigma", sigma)
    s2 = sigma * sigma
    db = -eta * (-mu / s2 + output / s2 * (2 * s2 + 1 - output * output + mu * output))
    da = eta / gain + db * net_input
    dims = tuple(range(net_input.dim() - 1))
    return (da.mean(dims) if dims else da), (db.mean(dims) if dims else db)


def exponential_ip_update(net_input: Tensor, output: Tensor, gain: Tensor, *, eta: float,
                          mu: float = 0.2) -> tuple[Tensor, Tensor]:
    """Triesch 2005's IP step for Fermi units toward an exponential of mean ``mu``: ``(da [N], db [N])``.

    ``db = eta (1 - (2 + 1/mu) y + y^2/mu)``, ``da = eta / a + db z``, averaged over the leading dimensions of
    ``net_input`` ``z`` and ``output`` ``y = 1 / (1 + exp(-(a z + b)))`` ``[..., N]``; ``gain`` ``a`` ``[N]``;
    ``eta`` >= 0, ``mu`` in (0, 1).
    """
    _check_rule_args(net_input, output, gain, eta)
    check_number("mu", mu, minimum=0, maximum=1, exclusive_minimum=True, exclusive_maximum=True)
    db = eta * (1 - (2 + 1 / mu) * output + output * output / mu)
    da = eta / gain + db * net_input
    dims = tuple(range(net_input.dim() - 1))
    return (da.mean(dims) if dims else da), (db.mean(dims) if dims else db)


@torch.no_grad()
def adapt_intrinsic(net: EchoStateNetwork, inputs: Tensor, *, rule: str = "gaussian", eta: float = 1e-3,
                    mu: float = 0.0, sigma: float = 0.2, state: Tensor | None = None) -> Tensor:
    """Run ``net`` on ``inputs [B, T, I]`` and apply the IP ``rule`` after every step, in place on
    ``net.gain`` and ``net.bias``; return the final state ``[B, N]``.

    ``rule``: "gaussian" (:func:`gaussian_ip_update`, tanh units, target ``N(mu, sigma^2)``) or "exponential"
    (:func:`exponential_ip_update`, Fermi units, target mean ``mu``; ``sigma`` unused). The rule must match
    the network's activation. ``state [B, N]``: the initial state (default zeros).
    """
    check_choice("rule", rule, IP_RULES)
    wanted = "tanh" if rule == "gaussian" else "fermi"
    if net.activation != wanted:
        raise ValueError(f"rule {rule!r} is for {wanted} units, but the network's activation is "
                         f"{net.activation!r}")
    net.check_inputs(inputs, state)
    check_number("eta", eta, minimum=0)
    if rule == "gaussian":
        check_number("mu", mu)
        check_positive("sigma", sigma)
    else:
        check_number("mu", mu, minimum=0, maximum=1, exclusive_minimum=True, exclusive_maximum=True)
    check_int("steps", inputs.shape[1])
    drive = inputs @ net.input_weight.T
    x = inputs.new_zeros(inputs.shape[0], net.units) if state is None else state.clone()
    weight_t = net.weight.T.contiguous()
    leak = net.leak
    s2 = sigma * sigma
    for t in range(inputs.shape[1]):
        z = torch.addmm(drive[:, t], x, weight_t)
        y = net._f(net.gain * z + net.bias)
        if rule == "gaussian":
            db = (-eta * (-mu / s2 + y / s2 * (2 * s2 + 1 - y * y + mu * y)))
        else:
            db = eta * (1 - (2 + 1 / mu) * y + y * y / mu)
        da = eta / net.gain + (db * z).mean(0)
        net.gain += da
        net.bias += db.mean(0)
        x = y if leak == 1.0 else (1 - leak) * x + leak * y
    return x
