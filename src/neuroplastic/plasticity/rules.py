"""Plasticity rules: how a Hebbian trace changes with pre- and post-synaptic activity.

Every rule is a pure function on tensors, batch-first, one trace per batch element:

- ``trace``: ``[B, I, O]`` (I pre-synaptic inputs, O post-synaptic outputs),
- ``pre``: ``[B, I]``, ``post``: ``[B, O]``,
- ``rate``: the plasticity rate eta. A number, a 0-d tensor, one rate per receiving neuron ``[O]``,
  one per batch element ``[B]`` or ``[B, 1]``, or one per batch element and receiving neuron ``[B, O]``
  (the shapes a neuromodulator produces). It always broadcasts over the pre-synaptic index.

The rule objects at the bottom wrap the functions behind one call signature so that layers can take
any of them (or a user's own subclass of :class:`PlasticityRule`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from neuroplastic._checks import check_choice, check_number, check_positive, check_tensor

Rate = float | Tensor

__all__ = [
    "hebbian_update",
    "oja_update",
    "bcm_update",
    "bcm_threshold_update",
    "clipped_hebbian_update",
    "soft_bounded_update",
    "outer",
    "PlasticityRule",
    "DecayingHebbianRule",
    "OjaRule",
    "BCMRule",
    "ClippedHebbianRule",
    "SoftBoundedHebbianRule",
    "RULES",
    "make_rule",
]


def _outer(pre: Tensor, post: Tensor) -> Tensor:
    return pre.unsqueeze(2) * post.unsqueeze(1)


def _add_outer(trace: Tensor, pre: Tensor, post_row: Tensor) -> Tensor:
    """``trace + pre ⊗ post_row`` in one batched matrix product: ``[B, I, O]``, ``[B, I]``, ``[B or 1, 1, O]``.

    The rate of every rule broadcasts along the post-synaptic index only, so ``eta * pre ⊗ post`` is
    ``pre ⊗ (eta * post)``; one ``baddbmm`` replaces an outer product, a product and a sum (fewer passes over
    ``[B, I, O]`` and fewer autograd nodes).
    """
    return torch.baddbmm(trace, pre.unsqueeze(2), post_row.expand(trace.shape[0], 1, trace.shape[2]))


def _post_rate(rate: Rate, trace: Tensor) -> Rate:
    """Reshape a rate so that it broadcasts against ``[B, I, O]`` along the post-synaptic index."""
    if not isinstance(rate, Tensor) or rate.dim() == 0:
        return rate
    batch, _, out = trace.shape
    if rate.dim() == 1:
        if rate.shape[0] == out and rate.shape[0] != batch:
            return rate.view(1, 1, out)
        if rate.shape[0] == batch and rate.shape[0] != out:
            return rate.view(batch, 1, 1)
        if rate.shape[0] == out:  # B == O: ambiguous; a 1-d rate is taken as per receiving neuron
            return rate.view(1, 1, out)
    elif rate.dim() == 2 and rate.shape[0] in (batch, 1) and rate.shape[1] in (out, 1):
        return rate.unsqueeze(1)
    raise ValueError(
        f"rate must be a scalar, [O], [B], [B, 1] or [B, O] with B={batch}, O={out}; got {list(rate.shape)}"
    )


def _hebbian_update(trace: Tensor, pre: Tensor, post: Tensor, rate: Rate) -> Tensor:
    eta = _post_rate(rate, trace)
    return _add_outer((1 - eta) * trace, pre, eta * post.unsqueeze(1))


def _oja_update(trace: Tensor, pre: Tensor, post: Tensor, rate: Rate) -> Tensor:
    eta = _post_rate(rate, trace)
    post_ = post.unsqueeze(1)
    return trace + eta * post_ * (pre.unsqueeze(2) - post_ * trace)


def _bcm_threshold_update(threshold: Tensor, post: Tensor, decay: Rate) -> Tensor:
    return threshold + decay * (post * post - threshold)


def _bcm_update(trace: Tensor, pre: Tensor, post: Tensor, rate: Rate, threshold: Tensor) -> Tensor:
    return _add_outer(trace, pre, _post_rate(rate, trace) * (post * (post - threshold)).unsqueeze(1))


def _clipped_hebbian_update(trace: Tensor, pre: Tensor, post: Tensor, rate: Rate, clip: float) -> Tensor:
    return torch.clamp(_add_outer(trace, pre, _post_rate(rate, trace) * post.unsqueeze(1)), -clip, clip)


def _soft_bounded_update(trace: Tensor, pre: Tensor, post: Tensor, rate: Rate) -> Tensor:
    delta = _post_rate(rate, trace) * _outer(pre, post)
    return trace + torch.relu(delta) * (1 - trace) + torch.clamp(delta, max=0) * (trace + 1)


def _check_rule_inputs(trace: object, pre: object, post: object, rate: object, *, threshold: object = None,
                       rate_name: str = "rate") -> None:
    """The arguments of a pure rule: ``trace [B, I, O]``, ``pre [B, I]``, ``post [B, O]`` (and ``threshold
    [B, O]``), floating-point tensors of one dtype and device, and a rate that is a finite number or a
    floating-point tensor of one of the shapes of the module docstring (``_post_rate`` checks the shape)."""
    check_tensor("trace", trace, ("B", "I", "O"))
    batch, inputs, outputs = trace.shape
    check_tensor("pre", pre, (batch, inputs))
    _check_like("pre", pre, trace)
    check_tensor("post", post, (batch, outputs))
    _check_like("post", post, trace)
    if threshold is not None:
        check_tensor("threshold", threshold, (batch, outputs))
        _check_like("threshold", threshold, trace)
    _check_rate(rate_name, rate, trace)


def _check_like(name: str, tensor: Tensor, like: Tensor, like_name: str = "trace") -> None:
    if tensor.dtype != like.dtype or tensor.device != like.device:
        raise ValueError(f"{name} must have the dtype and device of {like_name} ({like.dtype} on {like.device}), "
                         f"got {tensor.dtype} on {tensor.device}")


def _check_rate(name: str, rate: object, like: Tensor, like_name: str = "trace") -> None:
    if isinstance(rate, Tensor):
        check_tensor(name, rate, None)
        _check_like(name, rate, like, like_name)
    elif isinstance(rate, bool) or not isinstance(rate, (int, float)):
        raise TypeError(f"{name} must be a finite number or a tensor, got {type(rate).__name__}")
    else:
        check_number(name, rate)


def outer(pre: Tensor, post: Tensor) -> Tensor:
    """Batched outer product ``pre ⊗ post``: ``[B, I]``, ``[B, O]`` -> ``[B, I, O]``."""
    check_tensor("pre", pre, ("B", "I"))
    check_tensor("post", post, (pre.shape[0], "O"))
    _check_like("post", post, pre, "pre")
    return _outer(pre, post)


def hebbian_update(trace: Tensor, pre: Tensor, post: Tensor, rate: Rate) -> Tensor:
    """Decaying Hebbian trace: a running average of pre ⊗ post.

    Miconi et al. 2018, Differentiable plasticity.
    ``H <- (1 - eta) * H + eta * pre ⊗ post``.
    Shapes: trace ``[B, I, O]``, pre ``[B, I]``, post ``[B, O]``; returns ``[B, I, O]``.
    Raises ``ValueError``/``TypeError`` naming the argument for tensors of other shapes, dtypes or devices, or a rate
    that is not a finite number or a tensor of a rate shape.
    """
    _check_rule_inputs(trace, pre, post, rate)
    return _hebbian_update(trace, pre, post, rate)


def oja_update(trace: Tensor, pre: Tensor, post: Tensor, rate: Rate) -> Tensor:
    """Oja's rule: Hebbian growth with a decay that keeps each receiving neuron's weights bounded.

    Oja 1982; as used for differentiable plasticity by Miconi et al. 2018.
    ``H[i, j] <- H[i, j] + eta * post[j] * (pre[i] - post[j] * H[i, j])``.
    Shapes: trace ``[B, I, O]``, pre ``[B, I]``, post ``[B, O]``; returns ``[B, I, O]``.
    Raises ``ValueError``/``TypeError`` naming the argument for tensors of other shapes, dtypes or devices, or a rate
    that is not a finite number or a tensor of a rate shape.
    """
    _check_rule_inputs(trace, pre, post, rate)
    return _oja_update(trace, pre, post, rate)


def bcm_threshold_update(threshold: Tensor, post: Tensor, decay: Rate) -> Tensor:
    """Sliding modification threshold of the BCM rule: a running mean of post².

    Bienenstock, Cooper & Munro 1982.
    ``theta <- (1 - decay) * theta + decay * post**2``. Shapes: threshold and post ``[B, O]``; ``decay`` a finite
    number or a tensor of a rate shape (see the module docstring). Raises ``ValueError``/``TypeError`` naming the
    argument otherwise.
    """
    check_tensor("threshold", threshold, ("B", "O"))
    check_tensor("post", post, tuple(threshold.shape))
    _check_like("post", post, threshold, "threshold")
    _check_rate("decay", decay, threshold, "threshold")
    return _bcm_threshold_update(threshold, post, _rate_rows(decay, post))


def bcm_update(trace: Tensor, pre: Tensor, post: Tensor, rate: Rate, threshold: Tensor) -> Tensor:
    """BCM rule: potentiation when post-synaptic activity is above its sliding threshold, depression below.

    Bienenstock, Cooper & Munro 1982.
    ``H[i, j] <- H[i, j] + eta * pre[i] * post[j] * (post[j] - theta[j])``.
    Shapes: trace ``[B, I, O]``, pre ``[B, I]``, post and threshold ``[B, O]``; returns ``[B, I, O]``.
    The threshold is updated separately by :func:`bcm_threshold_update`.
    Raises ``ValueError``/``TypeError`` naming the argument for tensors of other shapes, dtypes or devices, or a rate
    that is not a finite number or a tensor of a rate shape.
    """
    _check_rule_inputs(trace, pre, post, rate, threshold=check_tensor("threshold", threshold, None))
    return _bcm_update(trace, pre, post, rate, threshold)


def clipped_hebbian_update(trace: Tensor, pre: Tensor, post: Tensor, rate: Rate, clip: float) -> Tensor:
    """Additive Hebbian update with a hard clip, the rule of neuromodulated plasticity.

    Miconi et al. 2019, Backpropamine (simple neuromodulation, where eta is the modulator output M(t)).
    ``H <- clip(H + eta * pre ⊗ post, -clip, clip)``.
    Shapes: trace ``[B, I, O]``, pre ``[B, I]``, post ``[B, O]``; returns ``[B, I, O]``.
    Raises ``ValueError``/``TypeError`` naming the argument for tensors of other shapes, dtypes or devices, or a rate
    that is not a finite number or a tensor of a rate shape.
    """
    _check_rule_inputs(trace, pre, post, rate)
    check_positive("clip", clip)
    return _clipped_hebbian_update(trace, pre, post, rate, clip)


def soft_bounded_update(trace: Tensor, pre: Tensor, post: Tensor, rate: Rate) -> Tensor:
    """Additive Hebbian update with soft bounds at ±1: steps shrink as the trace nears a bound.

    Miconi et al. 2019, Backpropamine (the soft-clip variant).
    ``D = eta * pre ⊗ post;  H <- H + relu(D) * (1 - H) + min(D, 0) * (H + 1)``.
    A trace inside [-1, 1] stays inside while ``|D| <= 1`` (e.g. tanh activities and eta <= 1).
    Shapes: trace ``[B, I, O]``, pre ``[B, I]``, post ``[B, O]``; returns ``[B, I, O]``.
    Raises ``ValueError``/``TypeError`` naming the argument for tensors of other shapes, dtypes or devices, or a rate
    that is not a finite number or a tensor of a rate shape.
    """
    _check_rule_inputs(trace, pre, post, rate)
    return _soft_bounded_update(trace, pre, post, rate)


def _rate_rows(rate: Rate, post: Tensor) -> Rate:
    """A rate shaped to broadcast against ``post [B, O]`` (``[]``, ``[1, O]``, ``[B, 1]`` or ``[B, O]``)."""
    rate = _post_rate(rate, post.unsqueeze(1))
    return rate.squeeze(1) if isinstance(rate, Tensor) and rate.dim() == 3 else rate


class PlasticityRule(nn.Module):
    """A plasticity rule: maps ``(trace, pre, post, rate, threshold)`` to ``(trace, threshold)``.

    ``threshold`` is per-rule auxiliary state ``[B, O]`` (the BCM sliding threshold); rules that do not
    need it receive ``None`` and return it unchanged. Subclass and implement :meth:`forward` to plug
    in a rule of your own; set ``uses_threshold = True`` if it needs the auxiliary state.

    Rules that are *post-wise linear* in the trace, ``rule(H) = keep * H + pre ⊗ delta`` with ``keep`` and
    ``delta`` depending on the post-synaptic side only, set ``linear = True`` and implement
    :meth:`linear_factors`; layers can then keep the trace as a sum of outer products instead of a
    ``[B, I, O]`` tensor (:mod:`neuroplastic.plasticity.spiking`, ``backend="lowrank"``).
    """

    uses_threshold: bool = False
    linear: bool = False

    def forward(
        self, trace: Tensor, pre: Tensor, post: Tensor, rate: Rate, threshold: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """The trace after one step, and the updated auxiliary state.

        Shapes: ``trace [B, I, O]``, ``pre [B, I]``, ``post [B, O]``, ``rate`` (see the module docstring),
        ``threshold [B, O]`` or None; returns ``(trace [B, I, O], threshold)``.
        """
        raise NotImplementedError

    def linear_factors(
        self, post: Tensor, rate: Rate, threshold: Tensor | None = None
    ) -> tuple[Tensor | None, Tensor, Tensor | None]:
        """``(keep, delta, threshold)`` such that ``forward(H, pre, post, rate)`` is ``keep * H + pre ⊗ delta``.

        Shapes: ``post [B, O]``; ``keep`` broadcasts against ``[B, O]`` (``None``: 1), ``delta [B, O]``;
        ``threshold`` is the updated auxiliary state, as :meth:`forward` returns it.
        """
        raise NotImplementedError(f"{type(self).__name__} is not post-wise linear in the trace")


class DecayingHebbianRule(PlasticityRule):
    """``H <- (1 - eta) H + eta pre ⊗ post`` (Miconi et al. 2018). See :func:`hebbian_update`.

    Post-wise linear: ``keep = 1 - eta``, ``delta = eta * post``.
    """

    linear = True

    def forward(self, trace, pre, post, rate, threshold=None):
        return _hebbian_update(trace, pre, post, rate), threshold

    def linear_factors(self, post, rate, threshold=None):
        eta = _rate_rows(rate, post)
        return 1 - eta, eta * post, threshold


class OjaRule(PlasticityRule):
    """``H <- H + eta post (pre - post H)`` (Oja 1982). See :func:`oja_update`.

    Post-wise linear: ``keep = 1 - eta * post²``, ``delta = eta * post``.
    """

    linear = True

    def forward(self, trace, pre, post, rate, threshold=None):
        return _oja_update(trace, pre, post, rate), threshold

    def linear_factors(self, post, rate, threshold=None):
        eta_post = _rate_rows(rate, post) * post
        return 1 - eta_post * post, eta_post, threshold


class BCMRule(PlasticityRule):
    """BCM with a sliding threshold (Bienenstock, Cooper & Munro 1982).

    ``theta <- (1 - decay) theta + decay post²``, then ``H <- H + eta pre ⊗ (post (post - theta))``
    with the updated threshold. ``decay`` is a fixed number in (0, 1].
    Post-wise linear: ``keep = 1``, ``delta = eta * post * (post - theta)``.
    """

    uses_threshold = True
    linear = True

    def __init__(self, threshold_decay: float = 0.1) -> None:
        super().__init__()
        check_positive("threshold_decay", threshold_decay)
        if threshold_decay > 1:
            raise ValueError(f"threshold_decay must be in (0, 1], got {threshold_decay!r}")
        self.threshold_decay = float(threshold_decay)

    def forward(self, trace, pre, post, rate, threshold=None):
        if threshold is None:
            threshold = torch.zeros_like(post)
        threshold = _bcm_threshold_update(threshold, post, self.threshold_decay)
        return _bcm_update(trace, pre, post, rate, threshold), threshold

    def linear_factors(self, post, rate, threshold=None):
        if threshold is None:
            threshold = torch.zeros_like(post)
        threshold = _bcm_threshold_update(threshold, post, self.threshold_decay)
        return None, _rate_rows(rate, post) * post * (post - threshold), threshold

    def extra_repr(self) -> str:
        return f"threshold_decay={self.threshold_decay}"


class ClippedHebbianRule(PlasticityRule):
    """``H <- clip(H + eta pre ⊗ post, ±clip)`` (Miconi et al. 2019). See :func:`clipped_hebbian_update`."""

    def __init__(self, clip: float = 2.0) -> None:
        super().__init__()
        check_positive("clip", clip)
        self.clip = float(clip)

    def forward(self, trace, pre, post, rate, threshold=None):
        return _clipped_hebbian_update(trace, pre, post, rate, self.clip), threshold

    def extra_repr(self) -> str:
        return f"clip={self.clip}"


class SoftBoundedHebbianRule(PlasticityRule):
    """Additive update with soft bounds at ±1 (Miconi et al. 2019). See :func:`soft_bounded_update`."""

    def forward(self, trace, pre, post, rate, threshold=None):
        return _soft_bounded_update(trace, pre, post, rate), threshold


RULES: dict[str, type[PlasticityRule]] = {
    "hebbian": DecayingHebbianRule,
    "oja": OjaRule,
    "bcm": BCMRule,
    "clip": ClippedHebbianRule,
    "soft_bound": SoftBoundedHebbianRule,
}


def make_rule(rule: str | PlasticityRule, *, clip: float = 2.0) -> PlasticityRule:
    """A rule object from its name (``hebbian``, ``oja``, ``bcm``, ``clip``, ``soft_bound``) or as given."""
    if isinstance(rule, PlasticityRule):
        return rule
    check_choice("rule", rule, RULES)
    if rule == "clip":
        return ClippedHebbianRule(clip)
    return RULES[rule]()
