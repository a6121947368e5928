"""Safe mutations: perturbations scaled by how much each weight moves the network's outputs.

Lehman, Chen, Clune & Stanley 2018, "Safe mutations for deep and recurrent neural networks through output
gradients". A Gaussian perturbation ``delta ~ N(0, std^2 I)`` of a genome ``w [D]`` is divided weight by weight
by a sensitivity ``s [D]`` measured on a buffer of ``S`` input states the parent saw (SM-G-SUM, SM-G-ABS,
SM-G-SO), or its length is chosen by a line search so that the output divergence on the buffer hits a target
(SM-R, :func:`~neuroplastic.evolution.divergence_line_search`). :class:`SafeMutation` is the operator a genetic
algorithm calls; the functions below are its pure parts. Models, buffers and outputs: see
:mod:`neuroplastic.evolution.divergence`.

The reference code (uber-research/safemutations, Python 2, torch 0.2) was read for its exact choices; where this
module differs it says so. In short: SUM and SO as the reference; ABS as its recurrent-domain code (mean of
absolute gradients; its ``sm_simple.py`` divides by the number of entries twice); the floor (0.01) and
``s == 0 -> 1`` as the reference; SM-R's objective and line search rewritten (the reference's
``sqrt(change - threshold)**2`` is NaN below the threshold and its SciPy call fails on modern SciPy); the
reference's clipping of each weight change to +-10 is not reproduced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.func import jacrev, jvp, vjp, vmap

from .._checks import check_bool, check_choice, check_int, check_number, check_optional_int
from .divergence import (
    _check_genome,
    _check_inputs,
    _check_setup,
    _chunks,
    _outputs_of,
    check_step_range,
    divergence_line_search,
    output_divergence,
)
from .experience import ExperienceBuffer
from .genome import ParameterLayout
from .protocols import MutationContext

__all__ = [
    "METHODS",
    "MutationRecord",
    "SafeMutation",
    "SafeMutationConfig",
    "safe_mutate",
    "scale_perturbation",
    "scaled_perturbation",
    "sensitivity_abs",
    "sensitivity_so",
    "sensitivity_sum",
]

METHODS = ("gaussian", "sum", "abs", "so", "r")
"""Plain Gaussian mutation, SM-G-SUM, SM-G-ABS, SM-G-SO and SM-R."""

VECTORIZE = ("auto", "linear", "samples", "outputs")
"""How :func:`sensitivity_abs` computes per-entry gradients."""


# ---------------------------------------------------------------------------------------------------- sensitivities


def sensitivity_sum(layout: ParameterLayout, model: nn.Module, genome: Tensor, inputs: Tensor, *,
                    chunk_size: int | None = None) -> Tensor:
    """SM-G-SUM sensitivity of every weight: the norm over outputs of the gradient summed over the buffer.

    Lehman et al. 2018, SM-G-SUM: ``s_w = sqrt(sum_o (sum_t dy_o(x_t)/dw)^2)``, as the paper and the reference
    define it: the gradients are summed over the buffer *before* squaring, so gradients of opposite signs on two
    entries cancel and a weight that matters a lot may get a small ``s`` (then a large step); use
    :func:`sensitivity_abs` for the average magnitude. The sum is not divided by ``S`` (as the reference), so
    ``s`` grows with the buffer size.

    Computed as the Jacobian ``[O, D]`` of ``sum_t y(x_t)`` (``torch.func.jacrev``: ``O`` vectorised backward
    passes through the buffer), summed over chunks of ``chunk_size`` entries (None: the buffer at once).

    Args:
        layout, model, genome ``[D]``, inputs ``[S, ...]``: as :func:`buffer_outputs`.
        chunk_size: entries per vectorised call (memory ``O * D`` plus one batch of activations per output).

    Returns:
        ``s [D]``, non-negative, in the genome's dtype.
    """
    _check_setup(layout, model)
    genome = _check_genome("genome", genome, layout)
    inputs = _check_inputs(inputs, genome)
    params = layout.unflatten(genome)
    total: dict[str, Tensor] = {}
    for chunk in _chunks(inputs, chunk_size):
        jac = jacrev(lambda p, c=chunk: _outputs_of(model, p, c).sum(0))(params)  # name -> [O, *shape]
        total = _accumulate(total, jac)
    return _norm_over_outputs(layout, total, 1)


def _accumulate(total: dict[str, Tensor], new: dict[str, Tensor]) -> dict[str, Tensor]:
    """``total + new`` name by name; the first chunk's tensors are kept as they are (no copy)."""
    return {name: value if name not in total else total[name] + value for name, value in new.items()}


def _norm_over_outputs(layout: ParameterLayout, tree: dict[str, Tensor], divisor: int) -> Tensor:
    """``[D]``: ``sqrt(sum_o (g_o / divisor)^2)`` from ``{name: [O, *shape]}``, reduced parameter by parameter
    (no ``[O, D]`` concatenation: at large ``O * D`` that copy costs as much as a backward pass)."""
    return torch.cat([(tree[slot.name] if divisor == 1 else tree[slot.name] / divisor).square().sum(0).reshape(-1)
                      for slot in layout]).sqrt()


def _flat(layout: ParameterLayout, tree: dict[str, Tensor], lead: int) -> Tensor:
    """``[*lead dims, D]`` from per-parameter tensors ``{name: [*lead dims, *shape]}`` in genome order.

    The derivatives are taken with respect to the parameters (``layout.unflatten``), not the flat genome: the
    backward of slicing a flat vector would fill a zero tensor ``[..., D]`` per parameter and output.
    """
    return torch.cat([tree[slot.name].reshape(*tree[slot.name].shape[:lead], -1) for slot in layout], dim=-1)


def _per_entry_jacobians(model: nn.Module, params: dict[str, Tensor], chunk: Tensor,
                         vectorize: str) -> dict[str, Tensor]:
    """``{name: [C, O, *shape]}``: the Jacobian of each entry's output vector with respect to the parameters."""
    if vectorize == "samples":
        def one(p: dict[str, Tensor], x: Tensor) -> Tensor:
            return _outputs_of(model, p, x.unsqueeze(0))[0]

        return vmap(jacrev(one), in_dims=(None, 0))(params, chunk)
    # entries do not interact, so the Jacobian of the batch's outputs [C, O] holds each entry's own
    return jacrev(lambda p: _outputs_of(model, p, chunk))(params)


def _linear_owners(layout: ParameterLayout, model: nn.Module) -> dict[str, tuple[str, str]] | None:
    """``{module name: (weight name or "", bias name or "")}`` when every genome parameter is the weight or bias
    of an ``nn.Linear`` owned by that module alone (not shared, not tied); None otherwise."""
    owners: dict[str, list[str]] = {}
    for slot in layout:
        prefix, _, attr = slot.name.rpartition(".")
        try:
            module = model.get_submodule(prefix)
        except AttributeError:
            return None
        if type(module) is not nn.Linear or attr not in ("weight", "bias"):
            return None
        owners.setdefault(prefix, ["", ""])[attr == "bias"] = slot.name
    # a tied parameter, or one of a module registered twice, is listed more than once here
    uses = [id(p) for _, p in model.named_parameters(remove_duplicate=False)]
    if any(uses.count(id(p)) != 1 for _, p in model.named_parameters()):
        return None
    return {name: (pair[0], pair[1]) for name, pair in owners.items()}


def _abs_sums_linear(model: nn.Module, params: dict[str, Tensor], chunk: Tensor,
                     owners: dict[str, tuple[str, str]]) -> dict[str, Tensor] | None:
    """``{name: [O, *shape]}``: ``sum_t |dy_o(x_t)/dw|`` over the chunk's entries for a model whose parameters all
    belong to ``nn.Linear`` layers each called once on a ``[C, in]`` batch (None when a call breaks that).

    For such a layer entry ``t``'s gradient is the outer product ``d_t a_t^T`` (``d_t = dy_o(x_t)/dz_t`` at the
    layer's output ``z_t``, ``a_t`` its input), so ``sum_t |d_t a_t^T| = |D|^T |A|``: one matrix product per layer
    and output, no per-entry gradient materialised. ``D`` for all outputs comes from one forward pass and one
    ``vmap`` over outputs of its pullback, taken with respect to zero "probes" added to each layer's output.
    """
    modules = [model.get_submodule(name) for name in owners]
    index = {id(module): i for i, module in enumerate(modules)}
    rows, broken = chunk.shape[0], [False]

    def run(probes: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        seen: list[Tensor | None] = [None] * len(modules)

        def hook(module: nn.Module, args: tuple, output: Tensor) -> Tensor | None:
            i, x = index[id(module)], (args[0] if args else None)
            if seen[i] is not None or not isinstance(x, Tensor) or x.dim() != 2 or len(x) != rows:
                broken[0] = True  # called twice, or not on a [C, in] batch
                return None
            seen[i] = x
            return output + probes[i]

        handles = [module.register_forward_hook(hook) for module in modules]
        try:
            out = _outputs_of(model, params, chunk)
        finally:
            for handle in handles:
                handle.remove()
        broken[0] = broken[0] or any(x is None for x in seen)
        return out, [probe if x is None else x for probe, x in zip(probes, seen, strict=True)]

    probes = [chunk.new_zeros(rows, module.out_features) for module in modules]
    out, pullback, seen = vjp(run, probes, has_aux=True)
    if broken[0]:
        return None
    width = out.shape[1]
    cotangents = torch.eye(width, dtype=out.dtype, device=out.device).unsqueeze(1).expand(width, rows, width)
    (deltas,) = vmap(pullback)(cotangents)  # per layer [O, C, out]
    result: dict[str, Tensor] = {}
    for (weight, bias), delta, a in zip(owners.values(), deltas, seen, strict=True):
        delta = delta.abs()
        if weight:  # [O, out, in], as one matrix product [O * out, C] @ [C, in]
            result[weight] = (delta.transpose(1, 2).reshape(-1, rows) @ a.abs()).reshape(width, -1, a.shape[1])
        if bias:
            result[bias] = delta.sum(1)
    return result


def sensitivity_abs(layout: ParameterLayout, model: nn.Module, genome: Tensor, inputs: Tensor, *,
                    chunk_size: int | None = None, vectorize: str = "auto") -> Tensor:
    """SM-G-ABS sensitivity of every weight: the norm over outputs of the mean absolute per-entry gradient.

    Lehman et al. 2018, SM-G-ABS: ``s_w = sqrt(sum_o (mean_t |dy_o(x_t)/dw|)^2)``. The mean over entries is
    the reference's recurrent-domain code (its ``sm_simple.py`` divides by the number of entries twice); unlike
    :func:`sensitivity_sum`, gradients of opposite signs do not cancel.

    Per-entry gradients with ``torch.func``, no Python loop over entries or outputs, summed over chunks of
    ``chunk_size`` entries:

    - ``vectorize="linear"``: for models whose every trainable parameter is the weight or bias of an
      ``nn.Linear`` (not shared) called once per forward pass on a ``[C, in]`` batch, such as an MLP: an entry's
      gradient of a layer's weight is the outer product ``d_t a_t^T`` of the output's gradient at the layer's
      output and the layer's input, so ``sum_t |d_t a_t^T| = |D|^T |A|`` (one matrix product per layer and
      output; one forward pass and ``O`` vectorised backward passes of the chunk, memory ``O * D``). The
      parameters must not be used outside the layers' calls. A model that breaks a condition raises
      ``ValueError``.
    - ``"samples"``: ``vmap`` over the entries of ``jacrev`` of one entry's outputs (``S * O`` backward
      passes of one entry, vectorised; memory ``chunk_size * O * D``). Needs batching rules for every operation
      of the model.
    - ``"outputs"``: ``jacrev`` of the chunk's outputs ``[C, O]`` (exact since entries do not interact; ``C * O``
      backward passes of the whole chunk, so a small ``chunk_size`` is cheaper). Works where ``vmap`` cannot
      batch the model, such as ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN``.
    - ``"auto"``: ``"linear"`` where it applies, else ``"samples"``, or ``"outputs"`` when ``vmap`` raises a
      ``RuntimeError`` on the model.

    Returns:
        ``s [D]``, non-negative, in the genome's dtype.
    """
    _check_setup(layout, model)
    genome = _check_genome("genome", genome, layout)
    inputs = _check_inputs(inputs, genome)
    vectorize = check_choice("vectorize", vectorize, VECTORIZE)
    params = layout.unflatten(genome)
    total = None
    owners = _linear_owners(layout, model) if vectorize in ("auto", "linear") else None
    if vectorize == "linear" and owners is None:
        raise ValueError("vectorize='linear' needs every trainable parameter to be the weight or bias of an "
                         "nn.Linear of its own; use 'auto', 'samples' or 'outputs' for this model")
    if owners is not None:
        total = _abs_totals_linear(model, params, inputs, chunk_size, owners)
        if total is None and vectorize == "linear":
            raise ValueError("vectorize='linear' needs each nn.Linear called once per forward pass on an "
                             "[S, in] batch; use 'auto', 'samples' or 'outputs' for this model")
    if total is None:
        total = _abs_totals_jacobians(model, params, inputs, chunk_size, vectorize)
    return _norm_over_outputs(layout, total, inputs.shape[0])


def _abs_totals_linear(model: nn.Module, params: dict[str, Tensor], inputs: Tensor, chunk_size: int | None,
                       owners: dict[str, tuple[str, str]]) -> dict[str, Tensor] | None:
    """``{name: [O, *shape]}``: ``sum_t |dy_o(x_t)/dw|`` by :func:`_abs_sums_linear` chunk by chunk (None: the
    model's calls break its conditions)."""
    total: dict[str, Tensor] = {}
    for chunk in _chunks(inputs, chunk_size):
        sums = _abs_sums_linear(model, params, chunk, owners)
        if sums is None:
            return None
        total = _accumulate(total, sums)
    return total


def _abs_totals_jacobians(model: nn.Module, params: dict[str, Tensor], inputs: Tensor, chunk_size: int | None,
                          vectorize: str) -> dict[str, Tensor]:
    """``{name: [O, *shape]}``: ``sum_t |dy_o(x_t)/dw|`` from per-entry Jacobians ("samples" / "outputs";
    "auto" and "linear" try "samples" first)."""
    total: dict[str, Tensor] = {}
    for chunk in _chunks(inputs, chunk_size):
        if vectorize in ("auto", "linear"):
            try:
                jac = _per_entry_jacobians(model, params, chunk, "samples")
                vectorize = "samples"
            except RuntimeError:
                jac = _per_entry_jacobians(model, params, chunk, "outputs")
                vectorize = "outputs"
        else:
            jac = _per_entry_jacobians(model, params, chunk, vectorize)
        total = _accumulate(total, {name: value.abs().sum(0) for name, value in jac.items()})
    return total


def sensitivity_so(layout: ParameterLayout, model: nn.Module, genome: Tensor, inputs: Tensor, direction: Tensor,
                   *, chunk_size: int | None = None) -> Tensor:
    """SM-G-SO sensitivity of every weight along a perturbation direction, from a Hessian-vector product.

    Lehman et al. 2018, SM-G-SO, as the reference computes it: with the divergence from the parent's outputs
    ``L(w') = mean_t sum_o (y_o(x_t; w') - y_o(x_t; w))^2`` (summed over outputs, averaged over entries) and the
    unit direction ``v = direction / |direction|``, ``s = sqrt(|H v|)`` with ``H`` the Hessian of ``L`` at the
    parent ``w' = w``. The residuals are zero there, so ``H`` is exactly the Gauss-Newton matrix
    ``(2 / S) sum_t J_t^T J_t`` (``J_t [O, D]`` the Jacobian of entry ``t``'s outputs): this computes
    ``H v = (2 / S) J^T (J v)`` with one forward-mode product (``torch.func.jvp``) and one backward pass
    (``torch.func.vjp``) per chunk, the same value as the reference's double backward at a fraction of the cost.

    Args:
        layout, model, genome ``[D]``, inputs ``[S, ...]``: as :func:`buffer_outputs`.
        direction: ``[D]``, the perturbation the sensitivity will scale (only its direction matters; not zero).
        chunk_size: entries per vectorised call (None: the buffer at once).

    Returns:
        ``s [D]``, non-negative, in the genome's dtype.
    """
    _check_setup(layout, model)
    genome = _check_genome("genome", genome, layout)
    inputs = _check_inputs(inputs, genome)
    direction = _check_genome("direction", direction, layout).to(genome.dtype)
    norm = direction.norm()
    if not bool(torch.isfinite(norm)) or float(norm) == 0.0:
        raise ValueError(f"direction must be finite and not zero, got a norm of {float(norm)}")
    params = layout.unflatten(genome)
    tangent = layout.unflatten(direction / norm)
    hv: dict[str, Tensor] = {}
    for chunk in _chunks(inputs, chunk_size):
        def f(p: dict[str, Tensor], c: Tensor = chunk) -> Tensor:
            return _outputs_of(model, p, c)

        _, jv = jvp(f, (params,), (tangent,))
        _, pullback = vjp(f, params)
        hv = _accumulate(hv, pullback(jv)[0])
    return (_flat(layout, hv, 0) * (2.0 / inputs.shape[0])).abs().sqrt()


def scale_perturbation(delta: Tensor, sensitivity: Tensor, floor: float = 0.01) -> Tensor:
    """A perturbation divided by the weights' sensitivities: ``delta / s'`` with ``s' = max(s, floor)`` where
    ``s > 0`` and ``s' = max(1, floor)`` where ``s == 0`` (the reference: a weight that moves no output is
    perturbed as plain mutation; the floor bounds the step where the first-order picture stops holding).

    Args:
        delta: ``[..., D]``.
        sensitivity: ``[..., D]`` (broadcast with ``delta``), non-negative.
        floor: the smallest divisor, ``>= 0`` (the reference's 0.01).

    Returns:
        ``[..., D]``.
    """
    floor = float(check_number("floor", floor, minimum=0))
    if not isinstance(delta, Tensor) or not isinstance(sensitivity, Tensor):
        raise TypeError(f"delta and sensitivity must be tensors, got {type(delta).__name__} and "
                        f"{type(sensitivity).__name__}")
    if bool((sensitivity < 0).any()) or bool(sensitivity.isnan().any()):
        raise ValueError("sensitivity must be non-negative (not NaN)")
    try:
        torch.broadcast_shapes(delta.shape, sensitivity.shape)
    except RuntimeError as error:
        raise ValueError(f"sensitivity {list(sensitivity.shape)} must broadcast with delta "
                         f"{list(delta.shape)}") from error
    divisor = torch.where(sensitivity == 0, torch.ones_like(sensitivity), sensitivity).clamp_min(floor)
    return delta / divisor


def scaled_perturbation(layout: ParameterLayout, model: nn.Module, genome: Tensor, inputs: Tensor | None,
                        delta: Tensor, method: str, *, floor: float = 0.01, chunk_size: int | None = None,
                        vectorize: str = "auto") -> Tensor:
    """The perturbation ``[D]`` of one method before any line search: ``delta`` itself for ``"gaussian"`` and
    ``"r"``, ``delta / s`` (:func:`scale_perturbation`) for ``"sum"``, ``"abs"`` and ``"so"`` (``s`` from
    :func:`sensitivity_sum`, :func:`sensitivity_abs`, :func:`sensitivity_so` along ``delta``) on ``inputs``."""
    method = check_choice("method", method, METHODS)
    delta = _check_genome("delta", delta, layout)
    if method in ("gaussian", "r"):
        return delta
    if method == "sum":
        s = sensitivity_sum(layout, model, genome, inputs, chunk_size=chunk_size)
    elif method == "abs":
        s = sensitivity_abs(layout, model, genome, inputs, chunk_size=chunk_size, vectorize=vectorize)
    else:
        s = sensitivity_so(layout, model, genome, inputs, delta, chunk_size=chunk_size)
    return scale_perturbation(delta, s, floor)



# ---------------------------------------------------------------------------------------------------- operator


@dataclass(frozen=True)
class SafeMutationConfig:
    """How :class:`SafeMutation` perturbs a parent.

    Attributes:
        method: ``"gaussian"`` (plain: ``delta``), ``"sum"`` / ``"abs"`` / ``"so"`` (SM-G-SUM / ABS / SO:
            ``delta / s``), ``"r"`` (SM-R: ``lambda * delta`` with ``lambda`` from the line search).
        std: the standard deviation of the Gaussian draw ``delta ~ N(0, std^2 I)``, ``> 0``.
        target: the output divergence SM-R aims at (required by ``"r"``). With ``"sum"`` / ``"abs"`` / ``"so"``
            the scaled perturbation is line-searched to it as well (the reference's SM-G with line search);
            None: no line search. Not with ``"gaussian"`` (that is ``"r"``).
        floor: the smallest sensitivity divisor (:func:`scale_perturbation`; the reference's 0.01).
        buffer_size: the most experience entries used per parent: a parent given more uses a uniform sample of
            this many, without replacement (the paper's 100).
        equal_norm: rescale each perturbation to the norm of its Gaussian draw, so that methods are compared at
            equal perturbation norm (not the paper's operators; not with ``target``).
        chunk_size, vectorize: passed to the sensitivities (:func:`sensitivity_abs`).
        step_range, rtol, max_evaluations: passed to :func:`~neuroplastic.evolution.divergence_line_search`.
        record: ``"layer"`` (each child's divergence overall and per layer), ``"parameter"`` (per parameter),
            ``"total"`` (overall only) or ``"none"`` (no forward pass for logging).
    """

    method: str = "abs"
    std: float = 0.1
    target: float | None = None
    floor: float = 0.01
    buffer_size: int = 100
    equal_norm: bool = False
    chunk_size: int | None = None
    vectorize: str = "auto"
    step_range: tuple[float, float] = (1e-6, 1e6)
    rtol: float = 0.05
    max_evaluations: int = 40
    record: str = "layer"

    def __post_init__(self) -> None:
        check_choice("method", self.method, METHODS)
        check_number("std", self.std, minimum=0, exclusive_minimum=True)
        if self.target is not None:
            check_number("target", self.target, minimum=0, exclusive_minimum=True)
        if self.method == "r" and self.target is None:
            raise ValueError("method 'r' (SM-R) needs a target divergence: SafeMutationConfig(method='r', "
                             "target=...)")
        if self.method == "gaussian" and self.target is not None:
            raise ValueError("method 'gaussian' takes no target: a Gaussian draw line-searched to a target "
                             "divergence is method 'r'")
        check_number("floor", self.floor, minimum=0)
        check_int("buffer_size", self.buffer_size, minimum=1)
        check_bool("equal_norm", self.equal_norm)
        if self.equal_norm and self.target is not None:
            raise ValueError("equal_norm and target both set the perturbation's size: choose one")
        check_optional_int("chunk_size", self.chunk_size, minimum=1)
        check_choice("vectorize", self.vectorize, VECTORIZE)
        object.__setattr__(self, "step_range", check_step_range(self.step_range))
        check_number("rtol", self.rtol, minimum=0, maximum=1, exclusive_minimum=True, exclusive_maximum=True)
        check_int("max_evaluations", self.max_evaluations, minimum=1)
        check_choice("record", self.record, ("layer", "parameter", "total", "none"))


@dataclass(frozen=True)
class MutationRecord:
    """What one mutation did, for logging.

    Attributes:
        method: the config's method.
        perturbation_norm: ``|child - parent|``.
        step: the line-search step ``lambda`` (1 without a line search).
        status: the line search's :class:`~neuroplastic.evolution.StepSearch` status, or ``"none"``.
        divergence: the output divergence of the child on the parent's buffer (None: not recorded).
        layer_divergence: per layer (or parameter) name, the divergence with only that part of the perturbation
            (empty unless recorded).
    """

    method: str
    perturbation_norm: float
    step: float = 1.0
    status: str = "none"
    divergence: float | None = None
    layer_divergence: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, float | str]:
        """A flat row: ``perturbation_norm``, ``step``, ``status``, ``divergence``, ``divergence/<name>``."""
        row: dict[str, float | str] = {"method": self.method, "perturbation_norm": self.perturbation_norm,
                                       "step": self.step, "status": self.status}
        if self.divergence is not None:
            row["divergence"] = self.divergence
        row.update({f"divergence/{name}": value for name, value in self.layer_divergence.items()})
        return row


def safe_mutate(layout: ParameterLayout, model: nn.Module, parent: Tensor, delta: Tensor, inputs: Tensor | None,
                config: SafeMutationConfig) -> tuple[Tensor, MutationRecord]:
    """One parent's child under ``config``, from a given Gaussian draw; pure (no random draw).

    ``child = parent + lambda * p`` with ``p`` the :func:`scaled_perturbation` of ``delta`` (rescaled to
    ``|delta|`` with ``equal_norm``) and ``lambda`` from the line search to ``config.target`` (1 without one).

    Args:
        layout, model: as :func:`~neuroplastic.evolution.buffer_outputs`.
        parent: ``[D]``.
        delta: ``[D]``, the Gaussian draw (``std`` already applied).
        inputs: the parent's experience ``[S, ...]``; None only for ``"gaussian"`` with ``record="none"``.
        config: a :class:`SafeMutationConfig`.

    Returns:
        ``(child [D], MutationRecord)``.
    """
    if not isinstance(config, SafeMutationConfig):
        raise TypeError(f"config must be a SafeMutationConfig, got {type(config).__name__}")
    _check_setup(layout, model)
    parent = _check_genome("parent", parent, layout)
    delta = _check_genome("delta", delta, layout).to(parent.dtype)
    if inputs is None and (config.method != "gaussian" or config.record != "none"):
        raise ValueError(f"inputs (the parent's experience [S, ...]) are needed by method {config.method!r} with "
                         f"record {config.record!r}; only 'gaussian' with record='none' works without")
    perturbation = scaled_perturbation(layout, model, parent, inputs, delta, config.method, floor=config.floor,
                                       chunk_size=config.chunk_size, vectorize=config.vectorize)
    if config.equal_norm:
        norm = perturbation.norm()
        if float(norm) > 0:
            perturbation = perturbation * (delta.norm() / norm)
    step, status = 1.0, "none"
    if config.target is not None:
        search = divergence_line_search(layout, model, parent, perturbation, inputs, config.target,
                                        step_range=config.step_range, rtol=config.rtol,
                                        max_evaluations=config.max_evaluations)
        step, status = search.step, search.status
    child = parent + step * perturbation
    divergence, parts = None, {}
    if config.record != "none":
        total, by_name = output_divergence(layout, model, parent, child, inputs,
                                           by="parameter" if config.record == "parameter" else "layer")
        divergence = float(total)
        parts = {} if config.record == "total" else {name: float(value) for name, value in by_name.items()}
    record = MutationRecord(method=config.method, perturbation_norm=float((child - parent).norm()), step=step,
                            status=status, divergence=divergence, layer_divergence=parts)
    return child, record


class SafeMutation:
    """The safe-mutation operator for a genetic algorithm: parents ``[N, D]`` -> children ``[N, D]``.

    Lehman et al. 2018. ``mutation(parents, generator, experience)``:

    - ``parents``: ``[N, D]`` genomes of ``model``'s layout.
    - ``generator``: every random draw: first ``delta = std * randn(N, D)`` (on the generator's device, in the
      parents' dtype), then, parent by parent, the subsample of an experience larger than ``buffer_size``.
    - ``experience``: each parent's buffer of input states: a sequence of ``N`` tensors ``[S_i, ...]`` (or
      :class:`~neuroplastic.evolution.ExperienceBuffer` objects), or one tensor ``[N, S, ...]``; None only for
      ``"gaussian"`` with ``record="none"``. A genetic algorithm passes a
      :class:`~neuroplastic.evolution.MutationContext` instead: its ``experience`` is used (what each parent's
      evaluation reported through ``tell(..., experience=...)``).

    Returns the children ``[N, D]`` (the parents' dtype and device) and keeps one :class:`MutationRecord` per
    child in :attr:`records` (replaced at each call; :meth:`MutationRecord.as_dict` for a metrics row). The
    operator holds no other state: the generator is the caller's, saved with the caller's state.

    Args:
        model: the template (see :mod:`neuroplastic.evolution.divergence` for what it must return).
        config: a :class:`SafeMutationConfig` (default: SM-G-ABS, std 0.1).
        layout: the genome layout (default: ``ParameterLayout(model)``).
    """

    def __init__(self, model: nn.Module, config: SafeMutationConfig | None = None,
                 layout: ParameterLayout | None = None) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        config = SafeMutationConfig() if config is None else config
        if not isinstance(config, SafeMutationConfig):
            raise TypeError(f"config must be a SafeMutationConfig, got {type(config).__name__}")
        layout = ParameterLayout(model) if layout is None else layout
        _check_setup(layout, model)
        self.model, self.config, self.layout = model, config, layout
        self.records: list[MutationRecord] = []

    def __repr__(self) -> str:
        return f"SafeMutation(method={self.config.method!r}, std={self.config.std}, size={self.layout.size})"

    def __call__(self, parents: Tensor, generator: torch.Generator,
                 experience: Sequence[Tensor | ExperienceBuffer] | Tensor | MutationContext | None = None) -> Tensor:
        if isinstance(experience, MutationContext):  # called by a genetic algorithm: what each parent saw
            experience = experience.experience
        if not isinstance(parents, Tensor) or parents.dim() != 2 or parents.shape[1] != self.layout.size:
            shape = list(parents.shape) if isinstance(parents, Tensor) else type(parents).__name__
            raise ValueError(f"parents must be a tensor [N, {self.layout.size}], got {shape}")
        if not parents.is_floating_point():
            raise TypeError(f"parents must be floating point, got {parents.dtype}")
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        n = parents.shape[0]
        buffers = self._experiences(experience, n)
        deltas = torch.randn(parents.shape, generator=generator, dtype=parents.dtype, device=generator.device)
        deltas = deltas.to(parents.device) * self.config.std
        children, records = [], []
        for i in range(n):
            inputs = buffers[i]
            if inputs is not None and inputs.shape[0] > self.config.buffer_size:
                keep = torch.randperm(inputs.shape[0], generator=generator, device=generator.device)
                inputs = inputs[keep[: self.config.buffer_size].to(inputs.device)]
            child, record = safe_mutate(self.layout, self.model, parents[i].detach(), deltas[i], inputs,
                                        self.config)
            children.append(child)
            records.append(record)
        self.records = records
        return torch.stack(children) if children else parents.detach().clone()

    @staticmethod
    def _experiences(experience: Sequence[Tensor | ExperienceBuffer] | Tensor | None,
                     n: int) -> list[Tensor | None]:
        if experience is None:
            return [None] * n
        if isinstance(experience, Tensor):
            if experience.dim() < 2 or experience.shape[0] != n:
                raise ValueError(f"experience as one tensor must be [N, S, ...] with N = {n} parents, got "
                                 f"{list(experience.shape)}")
            return list(experience.unbind(0))
        if isinstance(experience, (str, bytes)) or not isinstance(experience, Sequence):
            raise TypeError(f"experience must be a sequence of N tensors [S_i, ...] or a tensor [N, S, ...], got "
                            f"{type(experience).__name__}")
        if len(experience) != n:
            raise ValueError(f"experience must hold one buffer per parent, {n}, got {len(experience)}")
        buffers = [e.states if isinstance(e, ExperienceBuffer) else e for e in experience]
        bad = [i for i, e in enumerate(buffers) if not isinstance(e, Tensor)]
        if bad:
            raise TypeError(f"experience[{bad[0]}] must be a tensor [S, ...] or an ExperienceBuffer, got "
                            f"{type(experience[bad[0]]).__name__}")
        return buffers
