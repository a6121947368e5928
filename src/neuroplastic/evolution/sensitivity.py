"""Output sensitivities of a model's weights, the denominators of the safe mutations SM-G-SUM, SM-G-ABS, SM-G-SO.

Lehman, Chen, Clune & Stanley 2018, "Safe mutations for deep and recurrent neural networks through output
gradients". For a genome ``w [D]`` and a buffer of ``S`` input states, each function returns ``s [D]``, how much
each weight moves the outputs ``y_o(x_t)`` (see :mod:`neuroplastic.evolution.safe_mutation` for how a
perturbation is scaled by it, and :mod:`neuroplastic.evolution.divergence` for models, buffers and outputs).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.func import jacrev, jvp, vjp, vmap

from .._checks import check_choice
from .divergence import _check_genome, _check_inputs, _check_setup, _chunks, _outputs_of
from .genome import ParameterLayout

__all__ = ["VECTORIZE", "sensitivity_abs", "sensitivity_so", "sensitivity_sum"]

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
