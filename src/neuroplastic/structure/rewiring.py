"""Gradient rewiring (Grad R): learn which connections exist together with their weights.

Chen, Yu, Fang, Huang & Tian 2021, "Pruning of deep spiking neural networks through gradient rewiring"
(IJCAI). Each synapse has a hidden parameter ``theta`` (its strength) and a sign ``s`` fixed at the start
(the sign of the initial weight). The weight the network uses is::

    w = s * relu(theta)                      (theta <= 0: the connection is pruned, w is exactly 0)

and the gradient of ``theta`` is *redefined* so that it ignores the relu::

    dL/dtheta := s * dL/dw                   (the true gradient would be s * dL/dw * [theta > 0])

so a pruned connection keeps receiving the gradient it would get if it existed, and regrows when that
gradient pushes ``theta`` above 0. Pruning comes from a Laplace prior on ``theta`` with scale ``1/alpha``
and location ``mu`` (the paper's choice), whose gradient pulls ``theta`` towards ``mu`` < 0::

    p(theta) = alpha/2 * exp(-alpha * |theta - mu|)
    -d log p(theta) / dtheta = alpha * sign(theta - mu)
    theta <- theta - lr * alpha * sign(theta - mu)          (applied after each optimizer step)

``mu`` is chosen so that a fraction ``s_target`` of the prior's mass lies below 0, i.e. a synapse that the
loss does not care about is pruned with probability ``s_target`` under the prior::

    P(theta < 0) = 1 - exp(alpha * mu) / 2 = s_target   =>   mu = ln(2 * (1 - s_target)) / alpha   (s_target >= 1/2)

(and ``mu = -ln(2 * s_target) / alpha`` > 0 for ``s_target`` < 1/2). In practice the prior strength
``alpha`` decides how sparse a trained network becomes: with an adaptive optimizer such as Adam, whose
steps are about ``lr`` in size, a connection survives only if its normalised gradient keeps pushing
``theta`` up harder than the prior's ``lr * alpha`` pulls it down; ``mu`` matters once ``theta`` reaches it.
The prior step is decoupled from the optimizer (added after its step, as the authors' Adam-based
implementation does, which also divides it by Adam's first-moment bias correction; we do not); for plain
SGD this is exactly gradient descent on ``L - log p(theta)``.

Functional core (shapes: ``theta`` and ``sign`` have the weight's shape, any number of dimensions):

- :func:`rewired_weight`: ``w = s * relu(theta)`` with the redefined gradient.
- :func:`laplace_location`, :func:`prior_sparsity`: ``mu`` from a target sparsity, and back.
- :func:`laplace_prior_grad`, :func:`prior_update`: the prior's gradient and its decoupled step.
- :func:`connectivity_fraction`: the fraction of connections that exist (``theta > 0``).

Module shell: :class:`GradRewiring` attaches Grad R to chosen weight parameters of **any** ``nn.Module``
(selected by module type, e.g. ``nn.Linear``, or by parameter name or glob pattern, e.g.
``"lstm.weight_hh_l0"`` or ``"*.weight_hh_*"``; biases are never selected) through
``torch.nn.utils.parametrize``. The model stays an ordinary module: its parameter ``...weight`` becomes
``...parametrizations.weight.original`` (that is ``theta``), the sign is a buffer
``...parametrizations.weight.0.sign`` saved in ``state_dict``, and any optimizer built *after* attaching
trains ``theta`` through the redefined gradient::

    rewiring = GradRewiring(model, nn.Linear, alpha=0.1, target_sparsity=0.95)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    ...
    loss.backward()
    optimizer.step()
    rewiring.prior_step(optimizer)        # theta <- theta - lr * alpha * sign(theta - mu)
    rewiring.connectivity().overall       # fraction of nonzero weights

To restore a checkpoint, attach Grad R to a freshly built model first (same targets), then call
``model.load_state_dict``: it overwrites ``theta`` and the signs. A module that reads its weight many times
per forward (a hand-written recurrent loop) can compute ``w`` once with ``parametrize.cached()``.

Training: :func:`grad_r_epoch` runs one epoch of minibatch training with the prior step after every optimizer
step and counts the connections that were pruned (``theta`` crossed 0 downwards) and regrown (upwards).
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from neuroplastic._checks import check_bool, check_fraction, check_int, check_number

__all__ = ["rewired_weight", "laplace_location", "prior_sparsity", "laplace_prior_grad", "prior_update",
           "connectivity_fraction", "RewiredWeight", "Connectivity", "GradRewiring", "GradREpoch", "grad_r_epoch"]


# ---------------------------------------------------------------------------------------------- core
class _RectifyWithRedefinedGrad(torch.autograd.Function):
    """``s * relu(theta)`` forward; ``s * grad_w`` backward for every entry, pruned or not."""

    generate_vmap_rule = True

    @staticmethod
    def forward(theta: Tensor, sign: Tensor) -> Tensor:  # type: ignore[override]
        return theta.clamp(min=0).mul_(sign)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:  # type: ignore[override]
        ctx.save_for_backward(inputs[1])

    @staticmethod
    def backward(ctx, grad_weight: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        (sign,) = ctx.saved_tensors
        return sign * grad_weight, None


def rewired_weight(theta: Tensor, sign: Tensor) -> Tensor:
    """The effective weight ``w = sign * relu(theta)``, whose gradient to ``theta`` is ``sign * dL/dw``.

    Chen et al. 2021, Grad R. ``w`` is exactly 0 where ``theta <= 0`` (pruned), but backpropagation gives
    ``dL/dtheta = sign * dL/dw`` everywhere (the relu's derivative is dropped), so pruned connections can
    regrow. ``theta`` and ``sign`` (entries ±1, no gradient) have the same shape, any number of dimensions;
    the result has that shape too.
    """
    if not isinstance(theta, Tensor) or not isinstance(sign, Tensor):
        raise TypeError(f"theta and sign must be tensors, got {type(theta).__name__} and {type(sign).__name__}")
    if theta.shape != sign.shape:
        raise ValueError(f"sign must have theta's shape {list(theta.shape)}, got {list(sign.shape)}")
    return _RectifyWithRedefinedGrad.apply(theta, sign)


_ALPHA = "alpha (the Laplace prior's inverse scale 1/b)"
_SPARSITY = "target_sparsity (the prior's mass below 0)"


def _check_alpha(alpha: object) -> float:
    """The Laplace prior's inverse scale, which five functions take: a finite number > 0, as a float."""
    return float(check_number(_ALPHA, alpha, minimum=0, exclusive_minimum=True))


def laplace_location(alpha: float, target_sparsity: float) -> float:
    """The Laplace prior's location ``mu`` that puts a fraction ``target_sparsity`` of its mass below 0.

    Chen et al. 2021: with ``p(theta) = alpha/2 * exp(-alpha * |theta - mu|)``,
    ``P(theta < 0) = 1 - exp(alpha * mu) / 2`` for ``mu <= 0``, so ``mu = ln(2 * (1 - s)) / alpha`` for
    ``s >= 1/2`` (the paper's case); for ``s < 1/2``, ``P(theta < 0) = exp(-alpha * mu) / 2`` and
    ``mu = -ln(2 * s) / alpha``.
    """
    alpha, s = _check_alpha(alpha), check_fraction(_SPARSITY, target_sparsity, low_open=True, high_open=True)
    return math.log(2 * (1 - s)) / alpha if s >= 0.5 else -math.log(2 * s) / alpha


def prior_sparsity(alpha: float, location: float) -> float:
    """The fraction of a Laplace(``location``, ``1/alpha``) prior's mass below 0 (inverse of laplace_location)."""
    alpha = _check_alpha(alpha)
    check_number("location", location)
    if location <= 0:
        return 1 - math.exp(alpha * location) / 2
    return math.exp(-alpha * location) / 2


def laplace_prior_grad(theta: Tensor, alpha: float, location: float) -> Tensor:
    """The gradient of the negative log Laplace prior: ``-d log p / d theta = alpha * sign(theta - mu)``.

    Chen et al. 2021. Shape: that of ``theta``; 0 where ``theta == mu``.
    """
    return _check_alpha(alpha) * torch.sign(theta - location)


@torch.no_grad()
def prior_update(theta: Tensor, alpha: float, location: float, lr: float) -> Tensor:
    """One decoupled prior step, in place: ``theta <- theta - lr * alpha * sign(theta - mu)``; returns ``theta``.

    Chen et al. 2021 (the authors add this after Adam's step). Shape: that of ``theta``.
    """
    check_number("lr", lr, minimum=0)
    step = torch.sub(theta, location).sign_()
    return theta.sub_(step, alpha=lr * _check_alpha(alpha))


def connectivity_fraction(theta: Tensor) -> float:
    """The fraction of connections that exist, ``mean(theta > 0)`` (the nonzero weights of ``s * relu(theta)``)."""
    if theta.numel() == 0:
        raise ValueError("theta is empty: the connectivity of no connections is undefined")
    return float((theta > 0).float().mean())


# ---------------------------------------------------------------------------------------------- shell
class RewiredWeight(nn.Module):
    """A parametrization ``theta -> sign * relu(theta)`` (Grad R) holding the fixed signs as a buffer.

    Chen et al. 2021. ``sign`` has the weight's shape (entries ±1). ``right_inverse(w) = sign * w``, so
    assigning a weight ``w`` gives ``theta = |w|`` where ``w`` has the stored sign and ``theta <= 0``
    (pruned) where it has the other sign or is 0.
    """

    def __init__(self, sign: Tensor) -> None:
        super().__init__()
        self.register_buffer("sign", sign.detach().clone())

    def forward(self, theta: Tensor) -> Tensor:
        return rewired_weight(theta, self.sign)

    def right_inverse(self, weight: Tensor) -> Tensor:
        return self.sign * weight


class Connectivity(NamedTuple):
    """The connections that exist: overall fraction, per parameter, and the counts behind them."""

    overall: float
    per_parameter: dict[str, float]
    connected: int
    total: int


Target = type | str


def _is_bias(local_name: str) -> bool:
    return local_name.startswith("bias")


def _candidates(model: nn.Module) -> dict[str, tuple[nn.Module, str]]:
    """Every non-bias weight tensor of the model: dotted name -> (owner module, local name).

    Tensors that are already parametrized are listed under their plain name (``fc.weight``); the
    parametrization's internals (``...parametrizations...``) are not candidates.
    """
    found: dict[str, tuple[nn.Module, str]] = {}
    for prefix, module in model.named_modules():
        if "parametrizations" in prefix.split("."):
            continue
        local_names = [n for n, _ in module.named_parameters(recurse=False)]
        if parametrize.is_parametrized(module):
            local_names += list(module.parametrizations.keys())
        for local in local_names:
            if not _is_bias(local):
                found[f"{prefix}.{local}" if prefix else local] = (module, local)
    return found


def _select(model: nn.Module, targets: Target | Sequence[Target]) -> dict[str, tuple[nn.Module, str]]:
    if isinstance(targets, (str, type)):
        targets = [targets]
    if not isinstance(targets, Sequence) or len(targets) == 0:
        raise ValueError(f"targets must be a module type, a parameter name or glob pattern, or a non-empty list of "
                         f"these; got {targets!r}")
    candidates = _candidates(model)
    selected: dict[str, tuple[nn.Module, str]] = {}
    for target in targets:
        if isinstance(target, type):
            if not issubclass(target, nn.Module):
                raise TypeError(f"targets: a type must be an nn.Module subclass, got {target.__name__}")
            matched = [name for name, (module, _) in candidates.items() if isinstance(module, target)]
            what = f"module type {target.__name__}"
        elif isinstance(target, str):
            matched = [name for name in candidates if fnmatch.fnmatchcase(name, target)]
            what = f"name or pattern {target!r}"
        else:
            raise TypeError(f"targets: each entry must be an nn.Module type or a string, got {type(target).__name__}")
        if not matched:
            names = ", ".join(candidates) or "none"
            raise ValueError(f"targets: {what} matches no weight parameter (biases are excluded); the model's "
                             f"weight parameters are: {names}")
        for name in matched:
            selected[name] = candidates[name]
    for name, (module, local) in selected.items():
        if parametrize.is_parametrized(module, local):
            raise ValueError(f"targets: parameter {name!r} is already parametrized (Grad R attached twice, or "
                             "another parametrization); Grad R needs the plain weight")
    return selected


class GradRewiring:
    """Grad R attached to chosen weights of any module: ``w = s * relu(theta)``, redefined gradient, Laplace prior.

    Chen et al. 2021, "Pruning of deep spiking neural networks through gradient rewiring" (IJCAI); see the
    module docstring for the equations. Attaching replaces each selected weight ``W`` (any shape) by a
    parametrization: ``theta = |W|`` and ``sign = sign(W)`` (+1 where ``W == 0``, which starts pruned).

    Args:
        model: any module; it is changed in place and stays an ordinary module.
        targets: which weights: an ``nn.Module`` subclass (every non-bias parameter of every module of that
            type, e.g. ``nn.Linear`` -> each ``.weight``; ``nn.LSTM`` -> each ``weight_ih_l*``,
            ``weight_hh_l*``), a dotted parameter name (``"lstm.weight_hh_l0"``) or a glob pattern
            (``"*.weight_hh_*"``), or a list of these. Biases are never selected.
        alpha: the prior strength, the Laplace prior's inverse scale (> 0).
        target_sparsity: the fraction of the prior's mass below 0, in (0, 1); sets the location
            ``mu = ln(2 * (1 - target_sparsity)) / alpha``. The paper uses 0.95.
        prior: False to leave the prior out (only the reparametrisation and the redefined gradient).

    Raises ``ValueError`` (or ``TypeError``) naming the argument for targets that match nothing, weights that
    are already parametrized, ``alpha <= 0`` or a target sparsity outside (0, 1).
    """

    def __init__(self, model: nn.Module, targets: Target | Sequence[Target], *, alpha: float = 1.0,
                 target_sparsity: float = 0.95, prior: bool = True) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        self.alpha = _check_alpha(alpha)
        self.target_sparsity = check_fraction(_SPARSITY, target_sparsity, low_open=True, high_open=True)
        self.location = laplace_location(self.alpha, self.target_sparsity)
        self.prior = check_bool("prior", prior)
        self.model = model
        self._modules: dict[str, tuple[nn.Module, str]] = {}
        for name, (module, local) in _select(model, targets).items():
            weight = getattr(module, local).detach()
            sign = torch.where(weight < 0, -1.0, 1.0).to(weight.dtype)
            parametrize.register_parametrization(module, local, RewiredWeight(sign))
            self._modules[name] = (module, local)

    @property
    def names(self) -> list[str]:
        """The dotted names of the rewired weights, e.g. ``["0.weight", "2.weight"]``."""
        return list(self._modules)

    def theta(self, name: str) -> nn.Parameter:
        """The hidden parameter ``theta`` of weight ``name`` (what the optimizer trains)."""
        module, local = self._entry(name)
        return module.parametrizations[local].original

    def sign(self, name: str) -> Tensor:
        """The fixed signs ``s`` of weight ``name`` (a buffer, saved in the model's ``state_dict``)."""
        module, local = self._entry(name)
        return module.parametrizations[local][0].sign

    def thetas(self) -> dict[str, nn.Parameter]:
        """Every rewired weight's ``theta``, by name."""
        return {name: self.theta(name) for name in self._modules}

    @torch.no_grad()
    def prior_step(self, lr: float | torch.optim.Optimizer) -> None:
        """Apply the prior after an optimizer step: ``theta <- theta - lr * alpha * sign(theta - mu)``.

        ``lr`` is a number, or the optimizer, whose param group's ``lr`` is used for each ``theta`` (every
        ``theta`` must be among its parameters). Does nothing when the prior is off.
        """
        rates = self._learning_rates(lr)
        if not self.prior:
            return
        for name, theta in self.thetas().items():
            prior_update(theta, self.alpha, self.location, rates[name])

    def connectivity(self) -> Connectivity:
        """The fraction of nonzero weights (``theta > 0``), overall and per rewired weight."""
        per, connected, total = {}, 0, 0
        for name, theta in self.thetas().items():
            count = int((theta.detach() > 0).sum())
            per[name] = count / theta.numel()
            connected += count
            total += theta.numel()
        return Connectivity(connected / total, per, connected, total)

    def remove(self) -> None:
        """Detach Grad R, leaving each weight a plain parameter equal to ``s * relu(theta)`` (pruned ones 0)."""
        for module, local in self._modules.values():
            parametrize.remove_parametrizations(module, local, leave_parametrized=True)
        self._modules = {}

    def _entry(self, name: str) -> tuple[nn.Module, str]:
        if name not in self._modules:
            raise ValueError(f"name must be one of the rewired weights {self.names}, got {name!r}")
        return self._modules[name]

    def _learning_rates(self, lr: float | torch.optim.Optimizer) -> dict[str, float]:
        if isinstance(lr, torch.optim.Optimizer):
            rates = {}
            for name, theta in self.thetas().items():
                group = next((g for g in lr.param_groups if any(p is theta for p in g["params"])), None)
                if group is None:
                    raise ValueError(f"lr: the optimizer does not train theta of {name!r}; build the optimizer "
                                     "after attaching GradRewiring")
                rates[name] = float(group["lr"])
            return rates
        check_number("lr (a number or a torch.optim.Optimizer)", lr, minimum=0)
        return dict.fromkeys(self._modules, float(lr))

    def __repr__(self) -> str:
        return (f"GradRewiring(alpha={self.alpha:g}, target_sparsity={self.target_sparsity:g}, "
                f"location={self.location:.4g}, prior={self.prior}, weights={self.names})")


# ---------------------------------------------------------------------------------------------- training
class GradREpoch(NamedTuple):
    """What one epoch of :func:`grad_r_epoch` measured on its training batches."""

    loss: float
    """Mean training loss per sample (each batch's loss weighted by its size), before each step."""
    correct: int
    """Training samples whose output's arg-max was the label, before each step."""
    pruned: int
    """Connections whose ``theta`` went from > 0 to <= 0 over a step (optimizer and prior), summed."""
    regrown: int
    """Connections whose ``theta`` went from <= 0 to > 0 over a step, summed."""


def grad_r_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: Callable[[Tensor, Tensor], Tensor],
                 inputs: Tensor, labels: Tensor, order: Tensor, batch_size: int,
                 rewiring: GradRewiring | None = None) -> GradREpoch:
    """One epoch of minibatch training, with Grad R's prior step after every optimizer step.

    Chen et al. 2021. The batches are ``order [n]`` (indices into ``inputs [N, ...]`` and ``labels [N]``) cut
    into pieces of ``batch_size``; for each: ``outputs = model(inputs[batch])``, ``loss_fn(outputs,
    labels[batch])`` (a scalar), ``optimizer.zero_grad()``, backward, ``optimizer.step()``, then
    ``rewiring.prior_step(optimizer)`` (``rewiring`` None: a dense network, no prior, nothing counted). The
    optimizer must have been built after ``rewiring`` was attached. Predictions are ``outputs.argmax(1)``.
    """
    check_int("batch_size", batch_size)
    if order.dim() != 1 or order.numel() == 0:
        raise ValueError(f"order must be a non-empty [n] tensor of indices, got shape {list(order.shape)}")
    thetas = list(rewiring.thetas().values()) if rewiring is not None else []
    loss_sum, correct, pruned, regrown = 0.0, 0, 0, 0
    for start in range(0, len(order), batch_size):
        index = order[start:start + batch_size]
        before = [theta.detach() > 0 for theta in thetas]
        outputs = model(inputs[index])
        loss = loss_fn(outputs, labels[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if rewiring is not None:
            rewiring.prior_step(optimizer)
            for was, theta in zip(before, thetas, strict=True):
                now = theta.detach() > 0
                pruned += int((was & ~now).sum())
                regrown += int((~was & now).sum())
        loss_sum += float(loss.detach()) * len(index)
        correct += int((outputs.detach().argmax(dim=1) == labels[index]).sum())
    return GradREpoch(loss_sum / len(order), correct, pruned, regrown)
