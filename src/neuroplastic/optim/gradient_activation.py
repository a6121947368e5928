"""Gradient activation functions (GAF): a bounded, sign-preserving function applied to gradients.

Liu, ..., Jin 2021, "Activated gradients for deep neural networks" (arXiv 2107.04228): apply

    g(x) = alpha * atan(beta * x)        element-wise (alpha = 0.3, beta = 4.5)

to the gradients. ``g`` keeps each gradient's sign, has slope ``alpha * beta`` (1.35) at 0 (small gradients
are enlarged, which speeds the escape from plateaus and saddles) and is bounded by ``alpha * pi / 2``
(about 0.471; large gradients are compressed, as a soft clipping). Two places, as the paper's two variants:

- ``where="gradient"``: on the raw gradients before the optimizer's update (any ``torch.optim`` optimizer):
  ``theta <- step(theta, g(grad))``;
- ``where="momentum"``: on the momentum after it is accumulated (``torch.optim.SGD`` with momentum):
  ``v <- mu v + (1 - dampening) grad``; ``theta <- theta - lr g(v)``; the buffer keeps ``v`` itself.

:class:`GradientActivation` attaches to an optimizer through its step hooks (like the sparsity manager), with
``alpha`` and ``beta`` per parameter group (the group keys ``"gaf_alpha"`` and ``"gaf_beta"``, saved in the
optimizer's own ``state_dict``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from neuroplastic._checks import check_choice, check_number

__all__ = ["gaf", "GradientActivation", "WHERE", "GAF_ALPHA", "GAF_BETA"]

WHERE = ("gradient", "momentum")
GAF_ALPHA = 0.3
"""The paper's alpha."""
GAF_BETA = 4.5
"""The paper's beta."""


def _check_alpha_beta(alpha: object, beta: object) -> tuple[float, float]:
    return (float(check_number("alpha", alpha, minimum=0, exclusive_minimum=True)),
            float(check_number("beta", beta, minimum=0, exclusive_minimum=True)))


def gaf(x: Tensor, alpha: float = GAF_ALPHA, beta: float = GAF_BETA) -> Tensor:
    """``alpha * atan(beta * x)`` element-wise (any shape): same sign as ``x``, ``|g(x)| < alpha pi / 2``."""
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got {getattr(x, 'dtype', type(x).__name__)}")
    alpha, beta = _check_alpha_beta(alpha, beta)
    return torch.atan(x * beta) * alpha


class GradientActivation:
    """Apply :func:`gaf` to an optimizer's gradients (``where="gradient"``) or momentum (``"momentum"``).

    Args:
        optimizer: any ``torch.optim.Optimizer`` for ``"gradient"``; ``torch.optim.SGD`` with momentum > 0,
            no Nesterov and ``maximize=False`` for ``"momentum"``.
        alpha, beta: defaults for every parameter group that has no ``"gaf_alpha"`` / ``"gaf_beta"`` key (> 0).
        where: ``"gradient"`` or ``"momentum"`` (see the module doc).

    The user calls ``optimizer.step()`` as usual. For ``"momentum"``, a pre-hook keeps a copy of the parameters
    and a post-hook redoes the update with ``g(v)`` (``theta <- theta_old - lr g(v)``). ``remove()`` detaches.
    ``bound`` is ``alpha pi / 2`` for the defaults.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, alpha: float = GAF_ALPHA, beta: float = GAF_BETA, *,
                 where: str = "gradient") -> None:
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
        self.alpha, self.beta = _check_alpha_beta(alpha, beta)
        self.where = check_choice("where", where, WHERE)
        for index, group in enumerate(optimizer.param_groups):
            group.setdefault("gaf_alpha", self.alpha)
            group.setdefault("gaf_beta", self.beta)
            _check_alpha_beta(group["gaf_alpha"], group["gaf_beta"])
            if self.where == "momentum" and (not isinstance(optimizer, torch.optim.SGD) or not group["momentum"] > 0
                                             or group["nesterov"] or group["maximize"]):
                raise ValueError(f"where='momentum' needs torch.optim.SGD with momentum > 0, nesterov=False and "
                                 f"maximize=False (parameter group {index} of a {type(optimizer).__name__})")
        self.optimizer = optimizer
        self.bound = self.alpha * math.pi / 2
        self._saved: list[list[Tensor | None]] = []
        self._handles = [optimizer.register_step_pre_hook(self._before_step)]
        if self.where == "momentum":
            self._handles.append(optimizer.register_step_post_hook(self._after_step))

    @torch.no_grad()
    def _before_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        if self.where == "gradient":
            for group in optimizer.param_groups:
                grads = [p.grad for p in group["params"] if p.grad is not None]
                for grad in grads:
                    grad.copy_(torch.atan(grad * group["gaf_beta"]) * group["gaf_alpha"])
        else:
            self._saved = [[p.detach().clone() if p.grad is not None else None for p in group["params"]]
                           for group in optimizer.param_groups]

    @torch.no_grad()
    def _after_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        for group, saved in zip(optimizer.param_groups, self._saved, strict=True):
            for parameter, old in zip(group["params"], saved, strict=True):
                buffer = optimizer.state.get(parameter, {}).get("momentum_buffer")
                if old is None or buffer is None:
                    continue
                parameter.copy_(old - group["lr"] * torch.atan(buffer * group["gaf_beta"]) * group["gaf_alpha"])
        self._saved = []

    def remove(self) -> None:
        """Detach the hooks (the optimizer then runs unchanged)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def state_dict(self) -> dict[str, Any]:
        """The variant and the defaults (per-group values live in the optimizer's state dict)."""
        return {"where": self.where, "alpha": self.alpha, "beta": self.beta}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Check that ``state`` is of the same variant and restore the defaults."""
        if state.get("where") != self.where:
            raise ValueError(f"the state dict is for where={state.get('where')!r}, this is where={self.where!r}")
        self.alpha, self.beta = _check_alpha_beta(state["alpha"], state["beta"])
        self.bound = self.alpha * math.pi / 2
