"""Connection masks: which weights to mask, initial density distributions, and exact-count mask selection.

Sparse training keeps a boolean mask ``M`` per weight tensor ``W`` and trains ``W * M``: a pruned connection is
exactly zero, a grown one becomes trainable. This module holds the pure pieces; the
:class:`~neuroplastic.structure.sparsity_manager.SparsityManager` attaches masks to a model and its optimizer.

- **Which weights** (:func:`select_parameters`). By module type (default: the weights of ``Linear``,
  ``Conv1d/2d/3d`` and the recurrent weights ``weight_ih_l*``, ``weight_hh_l*``, ``weight_hr_l*`` of
  ``RNN``/``LSTM``/``GRU`` and their cells; never biases or normalisation layers) or by name patterns
  (``fnmatch`` globs on ``named_parameters`` names).
- **Exact counts.** Initial per-layer active counts are exact integers (see :func:`layer_counts`); updates
  choose among candidates only (:func:`prune_lowest`, :func:`grow_highest`, :func:`keep_highest`), so they
  never pick an inactive position to prune nor an active one to grow, and densities never drift.

Initial distributions (``distribution=``):

- ``"uniform"``: every layer at the target density D.
- ``"erk"``: Erdős–Rényi-Kernel (Evci et al. 2020, "Rigging the lottery", sec. 3; Mocanu et al. 2018 for
  the Erdős–Rényi form): ``d_l = eps * (sum of the dims of W_l) / (product of the dims of W_l)``, with eps
  chosen so that ``sum_l d_l * n_l = D * sum_l n_l``; a layer with ``d_l > 1`` is made dense and eps is
  solved again over the rest, until no layer exceeds 1.
- a dict ``{name: density}`` for every selected weight.

Shapes: a mask has its weight's shape ``[*shape]`` and dtype ``torch.bool``, on the weight's device.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import Tensor, nn

from neuroplastic._checks import check_fraction, check_int, check_int_tuple, check_number

__all__ = [
    "DEFAULT_MODULE_TYPES", "DISTRIBUTIONS", "MASK_SUFFIX", "select_parameters", "uniform_densities",
    "erk_densities", "layer_counts", "random_mask", "prune_lowest", "grow_highest", "keep_highest",
    "keep_highest_global",
]

DEFAULT_MODULE_TYPES: tuple[type[nn.Module], ...] = (
    nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.RNNBase, nn.RNNCellBase,
)
DISTRIBUTIONS = ("uniform", "erk")
MASK_SUFFIX = "_mask"


# ------------------------------------------------------------------------------------------ selection
def _is_weight_name(local: str) -> bool:
    return local == "weight" or local.startswith("weight_")


def _model_names(model: nn.Module) -> str:
    return ", ".join(name for name, _ in model.named_parameters()) or "none"


def _check_patterns(name: str, patterns: object) -> list[str]:
    """Parameter-name patterns: one string or a sequence of strings, as a list."""
    if isinstance(patterns, str):
        return [patterns]
    if not isinstance(patterns, Iterable) or not all(isinstance(p, str) for p in patterns):
        raise TypeError(f"{name} must be a string or a sequence of strings, got {patterns!r}")
    return list(patterns)


def select_parameters(
    model: nn.Module,
    modules: Sequence[type[nn.Module]] = DEFAULT_MODULE_TYPES,
    patterns: str | Sequence[str] | None = None,
    exclude: str | Sequence[str] | None = None,
) -> list[str]:
    """Names (as in ``model.named_parameters()``) of the weights to sparsify, in the model's order.

    With ``patterns`` (``fnmatch`` globs such as ``"fc*.weight"`` or exact names) the parameters whose name
    matches one of them; otherwise the parameters called ``weight`` or ``weight_*`` of the modules that are
    instances of ``modules``. Names matching an ``exclude`` pattern are dropped. A pattern (in either list)
    that matches no parameter, or a selection that ends up empty, is a ``ValueError`` listing the model's
    parameter names.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    canonical = {id(p): name for name, p in model.named_parameters()}
    all_names = list(canonical.values())
    if patterns is not None:
        pattern_list = _check_patterns("patterns", patterns)
        for pattern in pattern_list:
            if not any(fnmatch.fnmatchcase(n, pattern) for n in all_names):
                raise ValueError(f"patterns: {pattern!r} matches no parameter; the model's parameters are: "
                                 f"{_model_names(model)}")
        selected = [n for n in all_names if any(fnmatch.fnmatchcase(n, p) for p in pattern_list)]
    else:
        types = tuple(modules)
        if not types or not all(isinstance(t, type) and issubclass(t, nn.Module) for t in types):
            raise TypeError(f"modules must be a non-empty sequence of nn.Module subclasses, got {modules!r}")
        chosen = set()
        for module in model.modules():
            if isinstance(module, types):
                for local, parameter in module.named_parameters(recurse=False):
                    if _is_weight_name(local) and id(parameter) in canonical:
                        chosen.add(canonical[id(parameter)])
        selected = [n for n in all_names if n in chosen]
    if exclude is not None:
        exclude_list = _check_patterns("exclude", exclude)
        for pattern in exclude_list:
            if not any(fnmatch.fnmatchcase(n, pattern) for n in all_names):
                raise ValueError(f"exclude: {pattern!r} matches no parameter; the model's parameters are: "
                                 f"{_model_names(model)}")
        selected = [n for n in selected if not any(fnmatch.fnmatchcase(n, p) for p in exclude_list)]
    if not selected:
        raise ValueError("no parameter selected for sparsity (modules/patterns/exclude); the model's parameters "
                         f"are: {_model_names(model)}")
    return selected


# -------------------------------------------------------------------------------------- distributions
def _check_shapes(shapes: Mapping[str, Sequence[int]]) -> dict[str, tuple[int, ...]]:
    """Layer shapes: a non-empty mapping from name to a non-empty shape of positive sizes."""
    if not isinstance(shapes, Mapping) or not shapes:
        raise ValueError(f"shapes must be a non-empty mapping of name -> shape, got {shapes!r}")
    # ints only: int(s) read "34" as (3, 4) and 3.5 as 3
    return {name: check_int_tuple(f"shapes[{name!r}]", shape) for name, shape in shapes.items()}


def uniform_densities(shapes: Mapping[str, Sequence[int]], density: float) -> dict[str, float]:
    """Every layer at ``density`` (in (0, 1])."""
    density = check_fraction("density", density, low_open=True)
    return dict.fromkeys(_check_shapes(shapes), density)


def erk_densities(shapes: Mapping[str, Sequence[int]], density: float, power_scale: float = 1.0) -> dict[str, float]:
    """Erdős–Rényi-Kernel densities (Evci et al. 2020) with overall density ``density``.

    ``d_l = eps * (sum(shape_l) / prod(shape_l)) ** power_scale``, eps solved so that
    ``sum_l d_l * n_l = density * sum_l n_l``; layers whose d_l would exceed 1 are set dense (the one with
    the largest raw score first) and eps is solved again over the others. ``power_scale = 0`` gives uniform.
    """
    density = check_fraction("density", density, low_open=True)
    shapes = _check_shapes(shapes)
    check_number("power_scale", power_scale, minimum=0)  # NaN made the loop below endless
    sizes = {name: math.prod(shape) for name, shape in shapes.items()}
    if density == 1.0:
        return dict.fromkeys(shapes, 1.0)
    try:
        raw = {name: (sum(shape) / sizes[name]) ** power_scale for name, shape in shapes.items()}
    except OverflowError:
        raw = {}
    if len(raw) < len(shapes) or not all(0 < r < math.inf for r in raw.values()):
        raise ValueError(f"power_scale={power_scale!r} is too large for these shapes: the ERK scores "
                         "(sum(shape) / prod(shape)) ** power_scale overflow or underflow")
    dense: set[str] = set()
    total = sum(sizes.values())
    while True:
        sparse = [n for n in shapes if n not in dense]
        budget = density * total - sum(sizes[n] for n in dense)
        eps = budget / sum(raw[n] * sizes[n] for n in sparse)
        largest = max(raw[n] for n in sparse)
        if eps * largest <= 1.0:
            break
        dense.update(n for n in sparse if raw[n] == largest)
        if len(dense) == len(shapes):  # only possible through rounding when density is ~1
            break
    return {n: 1.0 if n in dense else eps * raw[n] for n in shapes}


def layer_counts(shapes: Mapping[str, Sequence[int]], densities: Mapping[str, float]) -> dict[str, int]:
    """Exact integer numbers of active weights per layer for real-valued ``densities``.

    Rounding rule (largest remainder): the total is ``round(sum_l d_l * n_l)`` (half up); each layer gets
    ``floor(d_l * n_l)`` plus one more for the layers with the largest fractional parts (ties in the order
    of ``shapes``) until the total is reached. So every layer has ``floor`` or ``ceil`` of its real target
    and the overall density is exact. Finally a layer is given at least one active weight (only matters
    when ``d_l * n_l < 1``).
    """
    shapes = _check_shapes(shapes)
    if set(densities) != set(shapes):
        raise ValueError(f"densities must have the keys of shapes {sorted(shapes)}, got {sorted(densities)}")
    targets = {}
    for name, shape in shapes.items():
        targets[name] = check_fraction(f"densities[{name!r}]", densities[name], low_open=True) * math.prod(shape)
    total = int(math.floor(sum(targets.values()) + 0.5))
    counts = {name: min(int(math.floor(t + 1e-9)), math.prod(shapes[name])) for name, t in targets.items()}
    order = sorted(shapes, key=lambda n: -(targets[n] - math.floor(targets[n] + 1e-9)))
    missing = total - sum(counts.values())
    for name in order:
        if missing <= 0:
            break
        if counts[name] < math.prod(shapes[name]):
            counts[name] += 1
            missing -= 1
    return {name: max(1, count) for name, count in counts.items()}


# ------------------------------------------------------------------------------------ mask selection
def _check_mask_scores(mask: Tensor, scores: Tensor) -> None:
    """A boolean mask and a score tensor of the same shape."""
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
        raise TypeError(f"mask must be a boolean tensor, got {getattr(mask, 'dtype', type(mask).__name__)}")
    if not isinstance(scores, Tensor) or scores.shape != mask.shape:
        raise ValueError(f"scores must be a tensor of the mask's shape {list(mask.shape)}, "
                         f"got {list(getattr(scores, 'shape', []))}")


def random_mask(shape: Sequence[int] | torch.Size, count: int, generator: torch.Generator,
                device: torch.device | str | None = None) -> Tensor:
    """A boolean mask of ``shape`` with exactly ``count`` True entries at uniformly random positions."""
    numel = math.prod(shape)
    check_int("count (the number of entries)", count, minimum=0, maximum=numel)
    mask = torch.zeros(numel, dtype=torch.bool, device=device)
    if count == numel:
        mask.fill_(True)
    elif count > 0:
        scores = torch.rand(numel, generator=generator, device=generator.device)
        mask[torch.topk(scores, count, sorted=False).indices.to(mask.device)] = True
    return mask.reshape(tuple(shape))


def prune_lowest(mask: Tensor, scores: Tensor, count: int) -> Tensor:
    """A new mask with the ``count`` active entries of lowest ``scores`` switched off. Shapes: ``[*]``.

    Only active entries are candidates, so exactly ``count`` entries are pruned (``0 <= count <= active``).
    """
    _check_mask_scores(mask, scores)
    flat = mask.reshape(-1)
    candidates = flat.nonzero().squeeze(1)
    check_int("count (the number of active entries)", count, minimum=0, maximum=candidates.numel())
    new = flat.clone()
    if count:
        chosen = torch.topk(scores.reshape(-1)[candidates], count, largest=False, sorted=False).indices
        new[candidates[chosen]] = False
    return new.reshape(mask.shape)


def grow_highest(mask: Tensor, scores: Tensor, count: int) -> Tensor:
    """A new mask with the ``count`` inactive entries of highest ``scores`` switched on. Shapes: ``[*]``.

    Only inactive entries are candidates: growth never picks an active position, so exactly ``count``
    entries are added (``0 <= count <= inactive``).
    """
    _check_mask_scores(mask, scores)
    flat = mask.reshape(-1)
    candidates = (~flat).nonzero().squeeze(1)
    check_int("count (the number of inactive entries)", count, minimum=0, maximum=candidates.numel())
    new = flat.clone()
    if count:
        chosen = torch.topk(scores.reshape(-1)[candidates], count, largest=True, sorted=False).indices
        new[candidates[chosen]] = True
    return new.reshape(mask.shape)


def keep_highest(mask: Tensor, scores: Tensor, count: int) -> Tensor:
    """A new mask keeping only the ``count`` active entries of highest ``scores`` (``0 <= count <= active``)."""
    _check_mask_scores(mask, scores)
    active = int(mask.sum())
    check_int("count (the number of active entries)", count, minimum=0, maximum=active)
    return prune_lowest(mask, scores, active - count)


def keep_highest_global(masks: Mapping[str, Tensor], scores: Mapping[str, Tensor], count: int) -> dict[str, Tensor]:
    """Global selection: keep the ``count`` active entries of highest score over all ``masks`` together.

    Returns new masks (same keys and shapes). Only active entries are candidates; the total is exact.
    """
    flats, offsets, start = [], {}, 0
    for name, mask in masks.items():
        _check_mask_scores(mask, scores[name])
        candidates = mask.reshape(-1).nonzero().squeeze(1)
        flats.append(scores[name].reshape(-1)[candidates].float())
        offsets[name] = (start, candidates)
        start += candidates.numel()
    check_int("count (the number of active entries over all masks)", count, minimum=0, maximum=start)
    everything = torch.cat([f.to(flats[0].device) for f in flats]) if flats else torch.zeros(0)
    keep = torch.zeros(start, dtype=torch.bool, device=everything.device)
    if count:
        keep[torch.topk(everything, count, largest=True, sorted=False).indices] = True
    out = {}
    for name, mask in masks.items():
        begin, candidates = offsets[name]
        new = torch.zeros(mask.numel(), dtype=torch.bool, device=mask.device)
        new[candidates[keep[begin:begin + candidates.numel()].to(mask.device)]] = True
        out[name] = new.reshape(mask.shape)
    return out
