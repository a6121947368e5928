"""Lyapunov noise pruning (LNP) of a recurrent spiking network, and its baselines.

Chakraborty, Kang, Kumar & Mukhopadhyay 2024, "Sparse Spiking Neural Network: Exploiting Heterogeneity in
Timescales for Pruning Recurrent SNN" (ICLR): prune a large, randomly initialised heterogeneous recurrent
SNN *before any training* (task-agnostic) into a smaller one that stays stable, by graph sparsification driven
by noise and checked with Lyapunov exponents; compared with activity-based pruning of a trained dense network.
The network is analysed as the sigmoid-smoothed LIF map of :mod:`neuroplastic.dynamics.smooth_lif`.

Lyapunov noise pruning (:func:`lyapunov_noise_prune`, :class:`LNPConfig`)
--------------------------------------------------------------------------
1. **Linearise** the dense network around its noise-driven operating point (task-agnostic: the drive is
   white noise, not task data): run the smooth map on the noise currents, average its Jacobian::

       A = diag(decay * (1 - threshold * g_mean)) + L,     L = W diag(g_mean)   (effective coupling)

   ``decay = exp(-dt / tau)`` carries the neurons' heterogeneous timescales into ``A``.
2. **Noise covariance**: the stationary covariance of ``h' = A h + xi`` with white ``xi`` solves the discrete
   Lyapunov equation ``C = A C A^T + I`` (:func:`discrete_lyapunov_covariance`, doubling iteration).
3. **Noise-aware synapse sampling** (Moore & Chaudhuri 2020, "Using noise to probe recurrent neural network
   structure and prune synapses", which LNP builds on; an effective-resistance spectral sparsifier)::

       score_ij = |L_ij| * (C_ii + C_jj - 2 sign(L_ij) C_ij)
       p_ij     = min(1, kappa * score_ij),   kappa such that sum_ij p_ij = synapse_fraction * (#synapses)
       keep ij with probability p_ij (independently); kept weights W_ij / p_ij (unbiased in expectation;
       ``rescale="sqrt_inverse"`` keeps E[W'^2] = W^2 instead, see below)

   (:func:`noise_prune_scores`, :func:`noise_prune_probabilities`, :func:`sample_synapses`). Synapses between
   neurons whose noise-driven fluctuations are large and weakly correlated (long time constants, few
   redundant paths) are kept; redundant ones are dropped.
4. **Low-centrality neurons** are removed: betweenness centrality (Brandes 2001; unweighted shortest paths
   on the directed graph of kept synapses), lowest first, recomputed over ``centrality_rounds`` rounds, until
   ``neuron_fraction`` of the neurons remain (:mod:`neuroplastic.structure.centrality`). Their synapses go
   with them.
5. **Stability**: the largest Lyapunov exponent of the pruned network (smooth map, same noise drive) must
   not exceed ``lyapunov_target`` (default ``min(lambda_max(dense), 0)``: at least as stable as the dense
   network, and never chaotic). If it does, the recurrent weights are scaled down, ``W <- c W``, with the
   largest ``c`` on a geometric grid (then refined by bisection) that satisfies the bound
   (:func:`stabilize`). The kept neurons' own leak bounds what scaling can reach: as ``c`` goes to 0 the
   exponent goes to that of the uncoupled neurons, and a stable dense network can sit below it (its coupling
   under the drive makes it more stable than its neurons alone). When the default bound is below that floor,
   "as stable as the dense network" cannot be met by scaling and the bound falls back to 0 (stable);
   ``LNPResult.lyapunov_target`` says which bound was applied. An explicit ``lyapunov_target`` is never
   relaxed. Every evaluation uses the same noise drive and initial tangent vectors.
   :func:`scale_to_lyapunov` is the two-sided version (scale up or down to a given exponent), used to compare
   networks at equal stability.

Baselines: :func:`activity_prune` (keep the most active neurons of the *trained* dense network, then its
strongest synapses, to given counts) and :func:`random_prune` (uniformly random neurons and synapses).

Deviations from the paper
-------------------------
The paper's method section was not reachable (only its abstract, introduction and the public OpenReview
reviews, which list the steps: Lyapunov-driven synapse dropout after Moore & Chaudhuri 2020, removal of the
neurons of lowest betweenness, adding edges for local degree heterogeneity, Bayesian optimisation of the
neurons' hyperparameters, with a linearised model built from the untrained network's spike frequencies). The
equations (the sampling probability, how the exponent enters it, the stability criterion) and any reference
code were not found, so these choices are reconstructions:

- Step 1 uses the average Jacobian of the sigmoid-smoothed map on a white-noise drive, not a rate model
  ``dr/dt = -D r + L r + noise`` fitted to firing; the discrete-time covariance solves ``C = A C A^T + I``
  instead of the continuous ``A C + C A^T + I = 0``. If the averaged ``A`` has spectral radius >= 1 (no
  stationary covariance), it is scaled to spectral radius ``max_radius`` (0.99) for this step only.
- The Lyapunov exponents enter as the stability check and the rescaling of step 5; they do not modulate the
  per-synapse probabilities (the paper's "dropout rate determined by the Lyapunov exponent" is not specified
  enough to reproduce).
- Not implemented: adding edges to delocalise eigenvectors / maximise local degree heterogeneity, and the
  Bayesian optimisation of the neurons' hyperparameters after pruning (which needs a task objective). LNP
  here only removes synapses and neurons, so the budget comparison with other prunings is exact.
- The ``W / p`` rescaling preserves the mean of the weight matrix (what noise-prune's spectral guarantee is
  about, for structured, diagonally dominant matrices). For an unstructured random matrix it inflates the
  summed squared weights by about ``1 / p``, i.e. the radius of its eigenvalue bulk by ``1 / sqrt(p)``; step 5
  then scales everything back down. ``rescale="sqrt_inverse"`` (``W / sqrt(p)``) is an option, not the
  default (measured: once the exponent is bounded the choice does not matter; docs/results/snn-lnp.md).
- Betweenness is computed on the unweighted graph of kept synapses (a weighted variant with lengths
  ``1 / |w|`` is equally defensible; the paper names betweenness centrality without the weighting).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from neuroplastic._checks import check_choice, check_positive, check_tensor
from neuroplastic.dynamics.esn import spectral_radius
from neuroplastic.dynamics.smooth_lif import (
    RESET_MODES,
    check_lif_network,
    lif_linearization,
    network_lyapunov_spectrum,
)
from neuroplastic.structure.centrality import prune_low_centrality

__all__ = [
    "RESCALE_MODES", "discrete_lyapunov_covariance", "noise_prune_scores", "noise_prune_probabilities",
    "sample_synapses", "stabilize", "smallest_stabilize_scale", "stability_target", "scale_to_lyapunov",
    "LNPConfig", "LNPResult", "lyapunov_noise_prune", "activity_prune", "random_prune",
]

RESCALE_MODES = ("inverse", "sqrt_inverse", "none")


# ----------------------------------------------------------------------------- noise-aware sparsification
def discrete_lyapunov_covariance(matrix: Tensor, noise: Tensor | None = None, *, tol: float = 1e-12,
                                 max_iterations: int = 64) -> Tensor:
    """The stationary covariance ``C`` of ``x' = A x + xi``, ``Cov(xi) = Q``: ``C = A C A^T + Q``.

    Solved by the doubling (Smith) iteration ``C <- C + A_k C A_k^T``, ``A_{k+1} = A_k^2``, which sums
    ``sum_j A^j Q (A^j)^T`` in ``log2`` as many steps. ``matrix`` ``[N, N]`` must have spectral radius < 1;
    ``noise`` ``[N, N]`` defaults to the identity. Returns ``[N, N]`` (symmetric).
    """
    check_tensor("matrix", matrix, ("N", "N"))
    n = matrix.shape[0]
    if matrix.shape[1] != n:
        raise ValueError(f"matrix must be square, got {list(matrix.shape)}")
    radius = spectral_radius(matrix)
    if radius >= 1.0:
        raise ValueError(f"matrix must have spectral radius < 1 for a stationary covariance, got {radius:.4f}")
    if noise is None:
        noise = torch.eye(n, dtype=matrix.dtype, device=matrix.device)
    else:
        check_tensor("noise", noise, (n, n))
    a = matrix.clone()
    cov = noise.clone()
    for _ in range(max_iterations):
        update = a @ cov @ a.T
        cov = cov + update
        if float(update.abs().max()) <= tol * float(cov.abs().max()):
            break
        a = a @ a
    return 0.5 * (cov + cov.T)


def noise_prune_scores(coupling: Tensor, covariance: Tensor) -> Tensor:
    """Noise-prune importance of each synapse (Moore & Chaudhuri 2020), ``[N, N]``::

        score_ij = |L_ij| * (C_ii + C_jj - 2 sign(L_ij) C_ij)     (0 on the diagonal and where L_ij = 0)

    ``coupling`` ``L`` ``[N_post, N_pre]`` (effective weights), ``covariance`` ``C`` ``[N, N]`` of the
    noise-driven activity. Negative scores (possible for non-normal ``L``) are clamped to 0.
    """
    check_tensor("coupling", coupling, ("N", "N"))
    n = coupling.shape[0]
    check_tensor("covariance", covariance, (n, n))
    diag = torch.diagonal(covariance)
    difference = diag[:, None] + diag[None, :] - 2.0 * torch.sign(coupling) * covariance
    scores = (coupling.abs() * difference).clamp_min(0.0)
    scores.fill_diagonal_(0.0)
    return scores


def noise_prune_probabilities(scores: Tensor, expected_count: float, *, iterations: int = 200) -> Tensor:
    """Keep probabilities ``p = min(1, kappa * scores)`` with ``kappa`` set so that ``sum p = expected_count``.

    ``kappa`` is found by bisection on a log scale. If ``expected_count`` is at least the number of positive
    scores, every synapse with a positive score gets ``p = 1``. Shapes: ``scores`` any, non-negative.
    """
    if not isinstance(scores, Tensor):
        raise TypeError(f"scores must be a tensor, got {type(scores).__name__}")
    if bool((scores < 0).any()):
        raise ValueError("scores must be non-negative")
    check_positive("expected_count", expected_count)
    positive = int((scores > 0).sum())
    if expected_count >= positive:
        return (scores > 0).to(scores.dtype)
    s = scores.double()
    lo, hi = math.log(1e-300), math.log(1.0 / float(s[s > 0].min())) + 1.0
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        if float((math.exp(mid) * s).clamp(max=1.0).sum()) < expected_count:
            lo = mid
        else:
            hi = mid
    return (math.exp(0.5 * (lo + hi)) * s).clamp(max=1.0).to(scores.dtype)


def sample_synapses(weight: Tensor, probabilities: Tensor, *, generator: torch.Generator,
                    rescale: str = "inverse") -> tuple[Tensor, Tensor]:
    """Keep each synapse ``ij`` independently with probability ``p_ij`` and rescale the kept weights.

    ``rescale``: "inverse" ``W_ij / p_ij`` (noise-prune's choice: ``E[W'] = W``), "sqrt_inverse"
    ``W_ij / sqrt(p_ij)`` (``E[W'^2] = W^2``: keeps each row's summed squared weight, hence the radius of a
    random matrix's eigenvalue bulk, in expectation) or "none". Returns ``(sparse_weight [N, M],
    mask [N, M] bool)``; pruned entries are exactly zero. The draw uses ``generator`` (CPU).
    """
    check_choice("rescale", rescale, RESCALE_MODES)
    check_tensor("weight", weight, ("N", "M"))
    check_tensor("probabilities", probabilities, tuple(weight.shape))
    if bool(((probabilities < 0) | (probabilities > 1)).any()):
        raise ValueError("probabilities must lie in [0, 1]")
    draws = torch.rand(tuple(weight.shape), generator=generator, dtype=torch.float64).to(weight.device)
    mask = (draws < probabilities.double()) & (probabilities > 0) & (weight != 0)
    if rescale == "inverse":
        kept = weight / probabilities.clamp_min(1e-30)
    elif rescale == "sqrt_inverse":
        kept = weight / probabilities.clamp_min(1e-30).sqrt()
    else:
        kept = weight
    return torch.where(mask, kept, torch.zeros_like(weight)), mask


# ------------------------------------------------------------------------------------------------ stability
STABILIZE_SHRINK, STABILIZE_MAX_SHRINKS = 0.85, 40  # stabilize's defaults (also LNP's reachability check)


def smallest_stabilize_scale(shrink: float = STABILIZE_SHRINK, max_shrinks: int = STABILIZE_MAX_SHRINKS) -> float:
    """The last (smallest) factor :func:`stabilize` tries, ``shrink ** max_shrinks`` computed as it does."""
    c = 1.0
    for _ in range(max_shrinks):
        c *= shrink
    return c


def stabilize(weight: Tensor, decay: Tensor, currents: Tensor, target: float, *, shrink: float = STABILIZE_SHRINK,
              max_shrinks: int = STABILIZE_MAX_SHRINKS, refine: int = 4, warmup: int = 100, threshold: float = 1.0,
              slope: float = 10.0, reset: str = "soft", generator_seed: int = 0) -> tuple[Tensor, float, float]:
    """Scale ``weight`` down until the largest Lyapunov exponent of the smooth network is ``<= target``.

    Tries ``c = 1, shrink, shrink^2, ...`` (at most ``max_shrinks`` times), then ``refine`` bisection steps
    between the last failing and the first passing ``c``, keeping the largest ``c`` that passes. Every
    evaluation uses the same ``currents`` ``[T, N]`` and initial tangent vector (seed ``generator_seed``).
    Returns ``(c * weight, c, lambda_max(c * weight))``.
    """
    check_positive("shrink", shrink)
    if not shrink < 1:
        raise ValueError(f"shrink must be in (0, 1), got {shrink!r}")

    def lam(c: float) -> float:
        gen = torch.Generator().manual_seed(generator_seed)
        return float(network_lyapunov_spectrum(c * weight, decay, currents, 1, warmup=warmup, threshold=threshold,
                                               slope=slope, reset=reset, generator=gen).exponents[0])

    c, value = 1.0, lam(1.0)
    if value <= target:
        return weight, 1.0, value
    failing = 1.0
    for _ in range(max_shrinks):
        failing = c
        c *= shrink
        value = lam(c)
        if value <= target:
            break
    else:
        raise ValueError(f"could not bring the largest Lyapunov exponent below {target} by scaling the weights "
                         f"down to {c:.3g} (last value {value:.4f})")
    passing, passing_value = c, value
    for _ in range(refine):
        mid = 0.5 * (passing + failing)
        mid_value = lam(mid)
        if mid_value <= target:
            passing, passing_value = mid, mid_value
        else:
            failing = mid
    return passing * weight, passing, passing_value


def scale_to_lyapunov(weight: Tensor, decay: Tensor, currents: Tensor, target: float, *, tol: float = 0.005,
                      max_iterations: int = 30, warmup: int = 100, threshold: float = 1.0, slope: float = 10.0,
                      reset: str = "soft", generator_seed: int = 0) -> tuple[Tensor, float, float]:
    """Scale ``weight`` by ``c > 0`` so that the smooth network's largest exponent is ``target`` (within ``tol``).

    A two-sided version of :func:`stabilize`, for comparing networks at equal stability: the exponent is
    assumed to grow with ``c``. ``c = 1`` is kept if its exponent is already within ``tol``; else ``c`` is
    bracketed by doubling / halving from 1, then bisected (on a log scale) until ``|lambda - target| <= tol``
    or ``max_iterations`` evaluations. The bracketing stops early when a doubling or halving moves the exponent
    by less than ``tol / 5`` (it has reached the floor the leak sets, or a ceiling): the target is then out of
    reach, and the network is not scaled further toward zero recurrence. Returns ``(c * weight, c, lambda)``:
    of the evaluated ``c`` within ``tol`` of the target, the one closest to 1 (log scale); if none is within
    ``tol``, the one whose exponent is closest to the target (ties: closest to 1).
    """
    check_positive("tol", tol)
    evaluated: list[tuple[float, float]] = []

    def lam(c: float) -> float:
        gen = torch.Generator().manual_seed(generator_seed)
        value = float(network_lyapunov_spectrum(c * weight, decay, currents, 1, warmup=warmup, threshold=threshold,
                                                slope=slope, reset=reset, generator=gen).exponents[0])
        evaluated.append((c, value))
        return value

    def done() -> bool:
        return any(abs(value - target) <= tol for _, value in evaluated) or len(evaluated) >= max_iterations

    previous = lam(1.0)
    lo = hi = None
    if not done():
        above = previous > target  # too unstable: scale down, else up
        c = 0.5 if above else 2.0
        if above:
            hi = 1.0
        else:
            lo = 1.0
        while not done():
            value = lam(c)
            if (value <= target) if above else (value >= target):
                lo, hi = (c, hi) if above else (lo, c)
                break
            if abs(value - previous) < tol / 5:  # the exponent no longer follows the scale: out of reach
                break
            previous = value
            if above:
                hi, c = c, c / 2
            else:
                lo, c = c, c * 2
    while lo is not None and hi is not None and not done():
        mid = math.sqrt(lo * hi)
        if lam(mid) <= target:
            lo = mid
        else:
            hi = mid
    within = [cv for cv in evaluated if abs(cv[1] - target) <= tol]
    if within:
        c, value = min(within, key=lambda cv: abs(math.log(cv[0])))
    else:
        c, value = min(evaluated, key=lambda cv: (abs(cv[1] - target), abs(math.log(cv[0]))))
    return c * weight, c, value


# ------------------------------------------------------------------------------------------------------ LNP
@dataclass
class LNPConfig:
    """Settings of :func:`lyapunov_noise_prune` (see the module docstring for the steps).

    Attributes:
        synapse_fraction: expected fraction of the dense network's synapses kept by the noise-aware sampling.
        neuron_fraction: fraction of neurons kept after the centrality step.
        rescale: how kept weights are rescaled (:func:`sample_synapses`): "inverse" ``W / p`` (noise-prune's
            unbiased estimator, the default), "sqrt_inverse" ``W / sqrt(p)`` (a deviation, see the module
            docstring) or "none".
        centrality_rounds: rounds of betweenness recomputation while removing neurons.
        lyapunov_target: bound on the pruned network's largest exponent; None = ``min(lambda_dense, 0)``.
        stabilize: apply step 5 (scale the weights down when the bound is exceeded).
        threshold, slope, reset, v_reset: the smooth LIF map (slope of the sigmoid smoothing).
        warmup: steps of the noise drive before averaging / before the QR iteration.
        max_radius: spectral radius the linearisation is scaled to if it is >= 1 (step 1).
    """

    synapse_fraction: float = 0.2
    neuron_fraction: float = 0.75
    rescale: str = "inverse"
    centrality_rounds: int = 4
    lyapunov_target: float | None = None
    stabilize: bool = True
    threshold: float = 1.0
    slope: float = 10.0
    reset: str = "soft"
    v_reset: float = 0.0
    warmup: int = 100
    max_radius: float = 0.99


class LNPResult(NamedTuple):
    """The outcome of :func:`lyapunov_noise_prune`.

    Attributes:
        weight: ``[N, N]`` the pruned (rescaled, stabilised) recurrent weights; rows and columns of removed
            neurons and pruned synapses are exactly zero.
        neuron_mask: ``[N]`` bool, kept neurons.
        synapse_mask: ``[N, N]`` bool, kept synapses (between kept neurons).
        probabilities: ``[N, N]`` the noise-aware keep probabilities of step 3.
        covariance_diag: ``[N]`` the stationary variances ``C_ii`` of step 2.
        centrality: ``[N]`` betweenness of the last centrality round.
        lyapunov_dense: largest exponent of the dense network (smooth map, noise drive).
        lyapunov_sampled: largest exponent after synapse sampling and neuron removal, before step 5.
        lyapunov_pruned: largest exponent of the returned network.
        scale: the factor ``c`` of step 5 (1.0 if not needed).
        linearization_radius: spectral radius of the averaged Jacobian of step 1 (before any scaling).
        lyapunov_target: the bound step 5 applied (see :func:`stability_target`).
    """

    weight: Tensor
    neuron_mask: Tensor
    synapse_mask: Tensor
    probabilities: Tensor
    covariance_diag: Tensor
    centrality: Tensor
    lyapunov_dense: float
    lyapunov_sampled: float
    lyapunov_pruned: float
    scale: float
    linearization_radius: float
    lyapunov_target: float


def _check_fraction(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ValueError(f"{name} must be a number in (0, 1], got {value!r}")
    return float(value)


def lyapunov_noise_prune(weight: Tensor, decay: Tensor, currents: Tensor, config: LNPConfig | None = None, *,
                         generator: torch.Generator) -> LNPResult:
    """Lyapunov noise pruning of a recurrent LIF network, before any training (task-agnostic).

    Chakraborty et al. 2024 (ICLR), LNP: linearise around the noise-driven state, sample synapses with the
    noise-prune probabilities ``p_ij = min(1, kappa |L_ij| (C_ii + C_jj - 2 sign(L_ij) C_ij))``, remove the
    neurons of lowest betweenness centrality, then scale the weights down if the largest Lyapunov exponent
    exceeds the target (module docstring, steps 1-5).

    Args:
        weight: ``[N, N]`` dense recurrent weights ``[post, pre]``.
        decay: ``[N]`` membrane decay factors ``exp(-dt / tau)`` (heterogeneous).
        currents: ``[T, N]`` the task-agnostic drive: white noise (through the input weights, plus any bias)
            as the network would receive it; used for the linearisation and every Lyapunov estimate.
        config: :class:`LNPConfig`.
        generator: CPU generator for the synapse sampling.
    """
    config = LNPConfig() if config is None else config
    n = check_lif_network(weight, decay)
    check_tensor("currents", currents, ("T", n))
    _check_fraction("synapse_fraction", config.synapse_fraction)
    _check_fraction("neuron_fraction", config.neuron_fraction)
    check_choice("reset", config.reset, RESET_MODES)
    check_choice("rescale", config.rescale, RESCALE_MODES)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    smooth = dict(threshold=config.threshold, slope=config.slope, reset=config.reset)
    work = weight.detach().double()
    decay64 = decay.detach().double()
    drive = currents.detach().double()

    def lam(w: Tensor, keep: Tensor | None = None) -> float:
        if keep is not None:
            w, d, c = w[keep][:, keep], decay64[keep], drive[:, keep]
        else:
            d, c = decay64, drive
        gen = torch.Generator().manual_seed(0)
        return float(network_lyapunov_spectrum(w, d, c, 1, warmup=config.warmup, generator=gen,
                                               v_reset=config.v_reset, **smooth).exponents[0])

    lambda_dense = lam(work)
    # Steps 1-2: linearisation and noise covariance.
    linear, gain = lif_linearization(work, decay64, drive, warmup=config.warmup, v_reset=config.v_reset, **smooth)
    radius = spectral_radius(linear)
    if radius >= 1.0:
        linear = linear * (config.max_radius / radius)
    covariance = discrete_lyapunov_covariance(linear)
    coupling = work * gain[None, :]
    if radius >= 1.0:
        coupling = coupling * (config.max_radius / radius)
    # Step 3: noise-aware synapse sampling.
    existing = (work != 0)
    existing.fill_diagonal_(False)
    scores = noise_prune_scores(coupling, covariance) * existing
    expected = config.synapse_fraction * float(existing.sum())
    probabilities = noise_prune_probabilities(scores, expected)
    sampled, synapse_mask = sample_synapses(work, probabilities, generator=generator, rescale=config.rescale)
    # Step 4: remove low-centrality neurons.
    keep_count = max(1, round(config.neuron_fraction * n))
    neuron_mask, centrality = prune_low_centrality(sampled, keep_count, rounds=config.centrality_rounds)
    both = neuron_mask[:, None] & neuron_mask[None, :]
    synapse_mask = synapse_mask & both
    sampled = torch.where(synapse_mask, sampled, torch.zeros_like(sampled))
    # Step 5: stability.
    index = neuron_mask.nonzero().squeeze(1)
    lambda_sampled = lam(sampled, neuron_mask)
    target = min(lambda_dense, 0.0) if config.lyapunov_target is None else config.lyapunov_target
    if config.stabilize and lambda_sampled > target and config.lyapunov_target is None:
        # the lowest exponent stabilize can reach: at its smallest factor, the kept neurons nearly uncoupled
        floor = lam(sampled * smallest_stabilize_scale(), neuron_mask)
        target = stability_target(lambda_dense, floor)
    scale, lambda_pruned = 1.0, lambda_sampled
    if config.stabilize and lambda_sampled > target:
        sub, scale, lambda_pruned = stabilize(sampled[index][:, index], decay64[index], drive[:, index], target,
                                              warmup=config.warmup, **smooth)
        sampled = sampled * scale
    return LNPResult(
        weight=sampled.to(weight.dtype), neuron_mask=neuron_mask, synapse_mask=synapse_mask,
        probabilities=probabilities.to(weight.dtype), covariance_diag=torch.diagonal(covariance).to(weight.dtype),
        centrality=centrality, lyapunov_dense=lambda_dense, lyapunov_sampled=lambda_sampled,
        lyapunov_pruned=lambda_pruned, scale=scale, linearization_radius=radius, lyapunov_target=target,
    )


def stability_target(lambda_dense: float, floor: float) -> float:
    """The default bound of LNP's step 5: ``min(lambda_dense, 0)``, or 0 when that is below ``floor``.

    ``floor`` is the pruned network's largest exponent at the smallest factor :func:`stabilize` tries
    (:func:`smallest_stabilize_scale`, 0.85^40: its neurons nearly uncoupled), the lowest that scaling can
    reach; a stable dense network can lie below it. Then "at least as stable as the dense network" cannot be
    met by scaling, and the bound is only "stable" (0).
    """
    target = min(lambda_dense, 0.0)
    return target if floor <= target else 0.0


# ------------------------------------------------------------------------------------------------ baselines
def _check_counts(weight: Tensor, neuron_count: int, synapse_count: int | None) -> int:
    check_tensor("weight", weight, ("N", "N"))
    n = weight.shape[0]
    if isinstance(neuron_count, bool) or not isinstance(neuron_count, int) or not 1 <= neuron_count <= n:
        raise ValueError(f"neuron_count must be an int in 1..{n}, got {neuron_count!r}")
    if synapse_count is not None and (isinstance(synapse_count, bool) or not isinstance(synapse_count, int)
                                      or synapse_count < 0):
        raise ValueError(f"synapse_count must be an int >= 0, got {synapse_count!r}")
    return n


def _keep_synapses(weight: Tensor, neuron_mask: Tensor, synapse_count: int | None,
                   scores: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    candidates = (weight != 0) & neuron_mask[:, None] & neuron_mask[None, :]
    available = int(candidates.sum())
    synapse_count = available if synapse_count is None else synapse_count
    if synapse_count > available:
        raise ValueError(f"synapse_count={synapse_count} exceeds the {available} synapses among the kept neurons")
    flat = torch.where(candidates, scores, torch.full_like(scores, -math.inf)).flatten()
    order = torch.sort(flat, descending=True, stable=True).indices[:synapse_count]
    mask = torch.zeros(weight.numel(), dtype=torch.bool, device=weight.device)
    mask[order] = True
    mask = mask.view_as(weight)
    return torch.where(mask, weight, torch.zeros_like(weight)), neuron_mask, mask


def activity_prune(weight: Tensor, activity: Tensor, neuron_count: int,
                   synapse_count: int | None) -> tuple[Tensor, Tensor, Tensor]:
    """Activity-based pruning: keep the ``neuron_count`` most active neurons, then the strongest synapses.

    The baseline LNP is compared with (Chakraborty et al. 2024): neurons are ranked by ``activity`` ``[N]``
    (e.g. firing rates of the dense network on the training data of the task; ties to the lower index),
    then the ``synapse_count`` synapses of largest ``|w|`` among the kept neurons are kept (None: every synapse
    among them, the paper's pruning of neurons only).
    Returns ``(weight [N, N], neuron_mask [N], synapse_mask [N, N])``; pruned entries are exactly zero.
    """
    n = _check_counts(weight, neuron_count, synapse_count)
    check_tensor("activity", activity, (n,))
    order = torch.sort(activity, descending=True, stable=True).indices[:neuron_count]
    neuron_mask = torch.zeros(n, dtype=torch.bool, device=weight.device)
    neuron_mask[order] = True
    return _keep_synapses(weight, neuron_mask, synapse_count, weight.abs())


def random_prune(weight: Tensor, neuron_count: int, synapse_count: int, *,
                 generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    """Uniformly random pruning to the same counts: ``neuron_count`` neurons, then ``synapse_count`` synapses.

    Returns ``(weight [N, N], neuron_mask [N], synapse_mask [N, N])``.
    """
    n = _check_counts(weight, neuron_count, synapse_count)
    order = torch.randperm(n, generator=generator)[:neuron_count].to(weight.device)
    neuron_mask = torch.zeros(n, dtype=torch.bool, device=weight.device)
    neuron_mask[order] = True
    scores = torch.rand(tuple(weight.shape), generator=generator, dtype=torch.float64).to(weight.device)
    return _keep_synapses(weight, neuron_mask, synapse_count, scores.to(weight.dtype))
