"""Output divergence of a mutation on a buffer of inputs, and the SM-R line search on the step size.

Lehman, Chen, Clune & Stanley 2018, "Safe mutations for deep and recurrent neural networks through output
gradients": a mutation is safe when the child's outputs on the parent's experience (a buffer of up to 100 input
states) stay close to the parent's. :func:`output_divergence` measures that change overall and per layer;
:func:`divergence_line_search` (SM-R) scales a perturbation so that the change hits a target.

Any ``nn.Module`` works, through :class:`~neuroplastic.evolution.ParameterLayout` and ``torch.func``:

- the model is called on a batch of buffer entries ``inputs [S, ...]`` and returns ``[S, ...]`` (a tensor, or a
  tuple/list whose first element is that tensor, as ``nn.LSTM`` / ``nn.GRU`` return ``(output, state)``); the
  output of entry ``t`` flattened is its output vector ``y(x_t) [O]``. An entry may be a whole sequence: for an
  LSTM with ``batch_first=True`` and ``inputs [S, T, F]``, ``y(x_t)`` is the output at every step. Wrap the
  model in a module returning the wanted tensor otherwise.
- entries must not interact in the batch (no batch norm in training mode) and the model must be deterministic
  (no dropout in training mode): sensitivities and divergences are properties of one genome.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .._checks import check_choice, check_int, check_number, check_optional_int
from .genome import ParameterLayout

__all__ = ["ROOT", "StepSearch", "buffer_outputs", "divergence_line_search", "output_divergence"]

ROOT = "(root)"
"""The layer name of parameters owned by the model itself (no module prefix), e.g. all of an ``nn.LSTM``'s."""


# ---------------------------------------------------------------------------------------------------- checks


def _check_setup(layout: object, model: object) -> None:
    if not isinstance(layout, ParameterLayout):
        raise TypeError(f"layout must be a ParameterLayout, got {type(layout).__name__}")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")


def _check_genome(name: str, genome: object, layout: ParameterLayout) -> Tensor:
    if not isinstance(genome, Tensor):
        raise TypeError(f"{name} must be a tensor [{layout.size}], got {type(genome).__name__}")
    if genome.dim() != 1 or genome.shape[0] != layout.size:
        raise ValueError(f"{name} must have shape [{layout.size}] (the layout's size), got {list(genome.shape)}")
    if not genome.is_floating_point():
        raise TypeError(f"{name} must be floating point, got {genome.dtype}")
    return genome.detach()


def _check_inputs(inputs: object, genome: Tensor) -> Tensor:
    if not isinstance(inputs, Tensor):
        raise TypeError(f"inputs must be a tensor [S, ...] of buffer entries, got {type(inputs).__name__}")
    if inputs.dim() == 0 or inputs.shape[0] == 0:
        raise ValueError(f"inputs must be a tensor [S, ...] with at least one entry, got shape "
                         f"{list(inputs.shape)}")
    if inputs.device != genome.device:
        raise ValueError(f"inputs are on {inputs.device} but the genome is on {genome.device}: move one to the "
                         f"other")
    if inputs.is_floating_point() and inputs.dtype != genome.dtype:
        raise ValueError(f"inputs have dtype {inputs.dtype} but the genome has {genome.dtype}: convert one "
                         f"(inputs.to(genome.dtype))")
    return inputs.detach()


def check_step_range(step_range: object) -> tuple[float, float]:
    """Return ``step_range`` as ``(smallest, largest)`` floats if it is a pair of finite numbers with
    ``0 < smallest <= largest``, else a ``TypeError`` / ``ValueError`` naming it."""
    if not isinstance(step_range, (tuple, list)) or len(step_range) != 2:
        raise TypeError(f"step_range must be a pair (smallest, largest), got {step_range!r}")
    low = float(check_number("step_range[0]", step_range[0], minimum=0, exclusive_minimum=True))
    return low, float(check_number("step_range[1]", step_range[1], minimum=low))


def _chunks(inputs: Tensor, chunk_size: int | None) -> list[Tensor]:
    chunk_size = check_optional_int("chunk_size", chunk_size, minimum=1)
    return [inputs] if chunk_size is None else list(inputs.split(chunk_size))


# ---------------------------------------------------------------------------------------------------- outputs


def _outputs(layout: ParameterLayout, model: nn.Module, genome: Tensor, inputs: Tensor) -> Tensor:
    return _outputs_of(model, layout.unflatten(genome), inputs)


def _outputs_of(model: nn.Module, params: dict[str, Tensor], inputs: Tensor) -> Tensor:
    """``[S, O]``: the model run with ``params`` (name -> tensor, the rest its own) on ``inputs [S, ...]``."""
    out = torch.func.functional_call(model, params, (inputs,))
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], Tensor):
        out = out[0]
    if not isinstance(out, Tensor):
        raise TypeError(f"the model must return a tensor [S, ...] (or a tuple/list whose first element is one), "
                        f"got {type(out).__name__}; wrap it in a module returning the outputs to compare")
    if out.dim() == 0 or out.shape[0] != inputs.shape[0]:
        raise ValueError(f"the model must return one output per buffer entry, [S, ...] with S = "
                         f"{inputs.shape[0]}, got shape {list(out.shape)}")
    return out.reshape(out.shape[0], -1)


def buffer_outputs(layout: ParameterLayout, model: nn.Module, genome: Tensor, inputs: Tensor) -> Tensor:
    """The output vector of every buffer entry, ``y(x_t)`` flattened: ``[S, O]`` (no gradient).

    Args:
        layout: the genome layout of ``model``.
        model: the template, called as ``model(inputs)`` with ``genome``'s parameters (see the module docstring).
        genome: ``[D]``.
        inputs: the buffer ``[S, ...]``.
    """
    _check_setup(layout, model)
    genome = _check_genome("genome", genome, layout)
    inputs = _check_inputs(inputs, genome)
    with torch.no_grad():
        return _outputs(layout, model, genome, inputs)


# ---------------------------------------------------------------------------------------------------- divergence


def _groups(layout: ParameterLayout, by: str) -> dict[str, list[slice]]:
    groups: dict[str, list[slice]] = {}
    for slot in layout:
        module, _, leaf = slot.name.rpartition(".")
        key = slot.name if by == "parameter" else (module or ROOT)
        suffix = leaf.rpartition("_")[2]
        if by == "stacked" and leaf.rpartition("_")[0] and suffix[:1] == "l" and suffix[1:].isdigit():
            key = f"{module}.{suffix}" if module else suffix  # "rnn.weight_hh_l1" -> "rnn.l1"
        groups.setdefault(key, []).append(slot.slice)
    return groups


def output_divergence(layout: ParameterLayout, model: nn.Module, parent: Tensor, child: Tensor, inputs: Tensor,
                      *, by: str = "layer") -> tuple[Tensor, dict[str, Tensor]]:
    """How far a child's outputs moved from its parent's on a buffer, overall and one layer at a time.

    Lehman et al. 2018 measure a mutation's safety as the output divergence on the parent's experience: the mean
    squared output change ``mean_{t, o} (y_o(x_t; child) - y_o(x_t; parent))^2`` (mean over entries and
    outputs, the reference's ``MSELoss``). Per layer: the same divergence when only that layer's part of the
    perturbation ``child - parent`` is applied (the rest of the genome stays the parent's).

    A layer is the module owning the parameters: the parameter name without its last component
    (``"body.3.weight"`` and ``"body.3.bias"`` -> ``"body.3"``); parameters of the model itself (no prefix, e.g.
    every parameter of a bare ``nn.LSTM``) form the layer ``"(root)"``. ``by="parameter"``: one entry per
    parameter name instead; ``by="stacked"``: as ``"layer"``, with each layer of a stacked ``nn.LSTM`` /
    ``nn.GRU`` / ``nn.RNN`` apart (its parameters ending in ``_l{k}``: ``"rnn.weight_hh_l1"`` -> ``"rnn.l1"``,
    ``"(root)"`` -> ``"l1"``).

    Args:
        layout, model, inputs ``[S, ...]``: as :func:`buffer_outputs`.
        parent, child: ``[D]``.
        by: ``"layer"``, ``"stacked"`` or ``"parameter"``.

    Returns:
        ``(total, {layer or parameter name: divergence})``, 0-dim tensors in the genomes' dtype (no gradient);
        the dict in genome order. ``1 + (number of layers)`` forward passes on the buffer.
    """
    _check_setup(layout, model)
    parent = _check_genome("parent", parent, layout)
    child = _check_genome("child", child, layout).to(parent.dtype)
    inputs = _check_inputs(inputs, parent)
    by = check_choice("by", by, ("layer", "stacked", "parameter"))
    with torch.no_grad():
        before = _outputs(layout, model, parent, inputs)
        total = (_outputs(layout, model, child, inputs) - before).square().mean()
        parts = {}
        for name, slices in _groups(layout, by).items():
            partial = parent.clone()
            for part in slices:
                partial[part] = child[part]
            parts[name] = (_outputs(layout, model, partial, inputs) - before).square().mean()
    return total, parts


# ---------------------------------------------------------------------------------------------------- SM-R


@dataclass(frozen=True)
class StepSearch:
    """The result of :func:`divergence_line_search`.

    Attributes:
        step: the step size ``lambda`` found (the child is ``parent + step * direction``).
        divergence: the output divergence at ``step``.
        status: ``"hit"`` (within the tolerance of the target), ``"below"`` (even the largest step of the range
            moves the outputs less than the target: ``step`` is the evaluated step closest to it, normally the
            largest), ``"above"`` (even the smallest step moves them more: ``step`` is the closest, normally the
            smallest) or ``"budget"`` (the evaluations ran out before the tolerance was met: ``step`` is the
            evaluated step whose divergence is closest to the target in ratio).
        evaluations: forward passes of the child on the buffer (one per step tried).
    """

    step: float
    divergence: float
    status: str
    evaluations: int


def divergence_line_search(
    layout: ParameterLayout,
    model: nn.Module,
    parent: Tensor,
    direction: Tensor,
    inputs: Tensor,
    target: float,
    *,
    step_range: tuple[float, float] = (1e-6, 1e6),
    rtol: float = 0.05,
    max_evaluations: int = 40,
) -> StepSearch:
    """SM-R: the step size ``lambda`` at which ``parent + lambda * direction`` has a given output divergence.

    Lehman et al. 2018, SM-R: solve ``f(lambda) = target`` with ``f`` the total of :func:`output_divergence`
    on ``inputs``, for ``lambda`` in ``step_range``, to a relative tolerance ``|f / target - 1| <= rtol``.
    Written here, in ``x = log(lambda)``: from ``lambda = 1`` (clamped to the range), steps outwards guided by the
    small-step law ``f ~ lambda^2`` (each step a factor in [2, 100]) until a ``lambda`` on each side of the
    target brackets it, then safeguarded secant steps on ``log f - log target`` against ``x``, bisection when a
    secant step leaves the middle 80% of the bracket. A non-finite divergence counts as above the target.

    Differences from the reference: the objective is never NaN (its ``sqrt(change - threshold)**2`` is NaN below
    the threshold, so its minimiser could not see which side it was on) and no SciPy is needed (its bounded
    ``minimize_scalar`` call fails on modern SciPy); the divergence is the mean squared output change of
    :func:`output_divergence` (the reference's recurrent domain; its ``sm_simple.py`` used the mean over entries
    of the output change's Euclidean norm); the step range is an argument (the reference: ``(0, 3)`` or
    unbounded) and the direction is not normalised (the reference's recurrent SM-R used a unit direction: only
    the starting point ``lambda = 1`` differs). Where the target is out of reach the result says so
    (``status``) instead of returning a minimiser's last point.

    Args:
        layout, model, inputs ``[S, ...]``: as :func:`buffer_outputs`.
        parent: ``[D]``.
        direction: ``[D]``, the perturbation to scale.
        target: the divergence to reach, a finite number ``> 0``.
        step_range: ``(smallest, largest)`` step, ``0 < smallest <= largest``, finite.
        rtol: the relative tolerance on the divergence, in ``(0, 1)``.
        max_evaluations: the most forward passes (``>= 1``).

    Returns:
        A :class:`StepSearch`.
    """
    _check_setup(layout, model)
    parent = _check_genome("parent", parent, layout)
    direction = _check_genome("direction", direction, layout).to(parent.dtype)
    inputs = _check_inputs(inputs, parent)
    target = float(check_number("target", target, minimum=0, exclusive_minimum=True))
    rtol = float(check_number("rtol", rtol, minimum=0, maximum=1, exclusive_minimum=True, exclusive_maximum=True))
    max_evaluations = check_int("max_evaluations", max_evaluations, minimum=1)
    low, high = check_step_range(step_range)
    with torch.no_grad():
        before = _outputs(layout, model, parent, inputs)

        def divergence(step: float) -> float:
            after = _outputs(layout, model, parent + step * direction, inputs)
            value = float((after - before).square().mean())
            return value if math.isfinite(value) else math.inf

        return _search(divergence, target, math.log(low), math.log(high), rtol, max_evaluations)


def _search(divergence: Callable[[float], float], target: float, lo: float, hi: float, rtol: float,
            budget: int) -> StepSearch:
    """The log-space search of :func:`divergence_line_search` on a scalar function ``divergence(step)``."""
    tried: list[tuple[float, float]] = []  # (x, f)

    def g(f: float) -> float:  # log f - log target; -inf at f = 0, +inf at f = inf
        return -math.inf if f <= 0 else math.log(f / target)

    def evaluate(x: float) -> float:
        f = divergence(math.exp(x))
        tried.append((x, f))
        return f

    def result(status: str) -> StepSearch:
        x, f = min(tried, key=lambda item: abs(g(item[1])))
        return StepSearch(step=math.exp(x), divergence=f, status=status, evaluations=len(tried))

    def hit(f: float) -> bool:
        return abs(f / target - 1.0) <= rtol

    x = min(max(0.0, lo), hi)
    f = evaluate(x)
    if hit(f):
        return result("hit")
    # bracket: step outwards until the sign of g changes or a bound is reached
    while True:
        gx = g(f)
        side = -1.0 if gx < 0 else 1.0
        bound = hi if side < 0 else lo
        if x == bound:
            return result("below" if side < 0 else "above")
        if len(tried) >= budget:
            return result("budget")
        move = min(max(abs(gx) / 2.0 if math.isfinite(gx) else math.log(100.0), math.log(2.0)), math.log(100.0))
        nx = min(x + move, hi) if side < 0 else max(x - move, lo)
        nf = evaluate(nx)
        if hit(nf):
            return result("hit")
        if (g(nf) < 0) != (gx < 0):
            a, ga, b, gb = (x, gx, nx, g(nf)) if side < 0 else (nx, g(nf), x, gx)  # g(a) < 0 < g(b)
            break
        x, f = nx, nf
    # refine inside [a, b] with a secant step in (x, log f), bisection when it falls near an end
    while len(tried) < budget and b - a > 1e-12:
        mid = 0.5 * (a + b)
        nx = a - ga * (b - a) / (gb - ga) if math.isfinite(ga) and math.isfinite(gb) else mid
        if not a + 0.1 * (b - a) <= nx <= b - 0.1 * (b - a):
            nx = mid
        nf = evaluate(nx)
        if hit(nf):
            return result("hit")
        if g(nf) < 0:
            a, ga = nx, g(nf)
        else:
            b, gb = nx, g(nf)
    return result("budget")
