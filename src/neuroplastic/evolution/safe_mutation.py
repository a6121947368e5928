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

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from .._checks import check_bool, check_choice, check_int, check_number, check_optional_int
from .divergence import (
    _check_genome,
    _check_setup,
    check_step_range,
    divergence_line_search,
    output_divergence,
)
from .experience import ExperienceBuffer
from .genome import ParameterLayout
from .protocols import MutationContext
from .sensitivity import VECTORIZE, sensitivity_abs, sensitivity_so, sensitivity_sum

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
                config: SafeMutationConfig, *, sensitivity: Tensor | None = None) -> tuple[Tensor, MutationRecord]:
    """One parent's child under ``config``, from a given Gaussian draw; pure (no random draw).

    ``child = parent + lambda * p`` with ``p`` the :func:`scaled_perturbation` of ``delta`` (rescaled to
    ``|delta|`` with ``equal_norm``) and ``lambda`` from the line search to ``config.target`` (1 without one).

    Args:
        layout, model: as :func:`~neuroplastic.evolution.buffer_outputs`.
        parent: ``[D]``.
        delta: ``[D]``, the Gaussian draw (``std`` already applied).
        inputs: the parent's experience ``[S, ...]``; None only for ``"gaussian"`` with ``record="none"``.
        config: a :class:`SafeMutationConfig`.
        sensitivity: for ``"sum"`` / ``"abs"`` only, the parent's sensitivity ``[D]`` on ``inputs`` computed
            before (:class:`SafeMutation` caches it for a parent mutated again); None: computed here.

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
    if sensitivity is not None:
        if config.method not in ("sum", "abs"):
            raise ValueError(f"a precomputed sensitivity is for methods 'sum' and 'abs', not {config.method!r}")
        perturbation = scale_perturbation(delta, _check_genome("sensitivity", sensitivity, layout), config.floor)
    else:
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

    Sensitivity cache (``cache_size > 0``, methods ``"sum"`` and ``"abs"``): a steady-state GA mutates the few
    winners of its tournaments again and again, so the sensitivity of up to ``cache_size`` parents is kept, keyed
    by the parent id of the :class:`~neuroplastic.evolution.MutationContext` and reused when the same id comes
    with the same genome and the same buffer (compared exactly; a crossover child's genome differs from its first
    parent's and is recomputed). Buffers subsampled to ``buffer_size`` are never cached. The children are the same
    with or without the cache (the same computation on the same tensors); the cache is not part of any state.
    :attr:`cache_hits` counts the reuses.

    Args:
        model: the template (see :mod:`neuroplastic.evolution.divergence` for what it must return).
        config: a :class:`SafeMutationConfig` (default: SM-G-ABS, std 0.1).
        layout: the genome layout (default: ``ParameterLayout(model)``).
        cache_size: the most parents whose sensitivity is kept (least recently used dropped first; 0: none).
    """

    def __init__(self, model: nn.Module, config: SafeMutationConfig | None = None,
                 layout: ParameterLayout | None = None, *, cache_size: int = 0) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        config = SafeMutationConfig() if config is None else config
        if not isinstance(config, SafeMutationConfig):
            raise TypeError(f"config must be a SafeMutationConfig, got {type(config).__name__}")
        layout = ParameterLayout(model) if layout is None else layout
        _check_setup(layout, model)
        self.model, self.config, self.layout = model, config, layout
        self.records: list[MutationRecord] = []
        self.cache_size = check_int("cache_size", cache_size, minimum=0)
        self.cache_hits = 0
        self._cache: OrderedDict[int, tuple[Tensor, Tensor, Tensor]] = OrderedDict()

    def __repr__(self) -> str:
        return f"SafeMutation(method={self.config.method!r}, std={self.config.std}, size={self.layout.size})"

    def __call__(self, parents: Tensor, generator: torch.Generator,
                 experience: Sequence[Tensor | ExperienceBuffer] | Tensor | MutationContext | None = None) -> Tensor:
        ids = None
        if isinstance(experience, MutationContext):  # called by a genetic algorithm: what each parent saw
            ids, experience = experience.parent_ids.tolist(), experience.experience
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
            inputs, sensitivity = buffers[i], None
            if inputs is not None and inputs.shape[0] > self.config.buffer_size:
                keep = torch.randperm(inputs.shape[0], generator=generator, device=generator.device)
                inputs = inputs[keep[: self.config.buffer_size].to(inputs.device)]
            elif ids is not None and inputs is not None and self.cache_size and self.config.method in ("sum", "abs"):
                sensitivity = self._sensitivity(ids[i], parents[i].detach(), inputs)
            child, record = safe_mutate(self.layout, self.model, parents[i].detach(), deltas[i], inputs,
                                        self.config, sensitivity=sensitivity)
            children.append(child)
            records.append(record)
        self.records = records
        return torch.stack(children) if children else parents.detach().clone()

    def _sensitivity(self, parent_id: int, genome: Tensor, inputs: Tensor) -> Tensor:
        """The parent's sensitivity, from the cache when it holds the same id, genome and buffer."""
        held = self._cache.get(parent_id)
        if (held is not None and held[0].shape == genome.shape and held[1].shape == inputs.shape
                and torch.equal(held[0], genome) and torch.equal(held[1], inputs)):
            self._cache.move_to_end(parent_id)
            self.cache_hits += 1
            return held[2]
        config = self.config
        if config.method == "sum":
            s = sensitivity_sum(self.layout, self.model, genome, inputs, chunk_size=config.chunk_size)
        else:
            s = sensitivity_abs(self.layout, self.model, genome, inputs, chunk_size=config.chunk_size,
                                vectorize=config.vectorize)
        self._cache[parent_id] = (genome.clone(), inputs.detach().clone(), s)
        self._cache.move_to_end(parent_id)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return s

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
