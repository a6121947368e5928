"""A recurrent spiking reservoir with heterogeneous neurons: build, simulate, restrict, probe.

After the heterogeneous recurrent SNN (HRSNN) of Chakraborty & Mukhopadhyay 2023 ("Heterogeneous recurrent
spiking neural network for spatio-temporal classification", Frontiers in Neuroscience 17), the network that
Chakraborty, Kang, Kumar & Mukhopadhyay 2024 ("Sparse Spiking Neural Network: Exploiting Heterogeneity in
Timescales for Pruning Recurrent SNN", ICLR) prune: leaky integrate-and-fire neurons with their own membrane
time constants and random recurrent weights. Deviations: the weights stay fixed (the original trains them with
heterogeneous STDP) and only a readout is trained (:mod:`neuroplastic.dynamics.readout`); the distributions
are this library's choices::

    tau_i ~ Erlang(shape tau_shape, mean tau_mean), clipped to [1, 10 tau_mean];   decay_i = exp(-1 / tau_i)
    I_t = U u_t + b          U [N, D] ~ N(0, input_gain^2),  b_i ~ U(0, bias_max)
    x_t = I_t + W s_{t-1}    W [N, N] ~ N(0, recurrent_gain^2 / N), no self-connections (fully connected)
    s_t, v_t = lif_step(v_{t-1}, x_t, decay, threshold, reset="soft")         (neuroplastic.neurons)
    r_t = a r_{t-1} + s_t    a = exp(-1 / trace_tau)                          (filtered spikes: the features)

- :class:`SpikingReservoir`: the network's tensors; :func:`random_reservoir` draws one;
  :func:`subnetwork` restricts it to some neurons with new recurrent weights (after a pruning).
- :func:`simulate`: the spiking run on a batch of input series, returning the filtered spikes and rates.
- :func:`reservoir_readout`: train a ridge readout (:mod:`neuroplastic.dynamics.readout`) on a training series
  and test it on held-out series; :func:`reservoir_validation_nrmse`: the validation error alone.
- :func:`noise_currents`: a task-agnostic white-noise drive through the input weights.
- :func:`reservoir_exponents`: Lyapunov exponents of the network's smooth map (:mod:`.smooth_lif`) under a drive.
- :func:`spike_divergence`: how the spiking network (not a smoothed map) treats a small membrane perturbation.
- :func:`reservoir_stability`: both measures under a fresh noise drive, in one call.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from torch import Tensor

from neuroplastic._checks import (
    check_finite,
    check_int,
    check_nonempty_sequence,
    check_number,
    check_tensor,
)
from neuroplastic.dynamics.lyapunov import perturbation_lyapunov_exponent
from neuroplastic.dynamics.readout import fit_validated_readout, predict, validation_scores
from neuroplastic.dynamics.smooth_lif import network_lyapunov_spectrum, smooth_lif_step
from neuroplastic.neurons import decay_from_tau, get_surrogate
from neuroplastic.neurons.lif import _lif_step
from neuroplastic.tasks.lorenz import nrmse

__all__ = ["SpikingReservoir", "random_reservoir", "subnetwork", "simulate", "reservoir_readout",
           "reservoir_validation_nrmse", "noise_currents", "reservoir_exponents", "spike_divergence",
           "reservoir_stability"]


class SpikingReservoir(NamedTuple):
    """A heterogeneous recurrent LIF network (fixed weights), all tensors on one device (the paper's HRSNN).

    Attributes: ``weight [N, N]`` recurrent (``[post, pre]``), ``tau [N]``, ``decay [N]``,
    ``input_weight [N, D]``, ``bias [N]``.
    """

    weight: Tensor
    tau: Tensor
    decay: Tensor
    input_weight: Tensor
    bias: Tensor

    @property
    def neurons(self) -> int:
        return self.weight.shape[0]

    @property
    def synapses(self) -> int:
        return int((self.weight != 0).sum())


def check_reservoir(net: object) -> SpikingReservoir:
    """Return ``net`` if it is a :class:`SpikingReservoir` whose tensors agree: ``weight [N, N]``, ``tau``,
    ``decay``, ``bias [N]``, ``input_weight [N, D]``, all floating point on one device and of one dtype."""
    if not isinstance(net, SpikingReservoir):
        raise TypeError(f"net must be a SpikingReservoir, got {type(net).__name__}")
    check_tensor("net.weight", net.weight, ("N", "N"))
    n = net.weight.shape[0]
    if net.weight.shape[1] != n:
        raise ValueError(f"net.weight must be square [N, N], got {list(net.weight.shape)}")
    for name in ("tau", "decay", "bias"):
        check_tensor(f"net.{name}", getattr(net, name), (n,), like=net.weight, like_name="net.weight")
    check_tensor("net.input_weight", net.input_weight, (n, "D"), like=net.weight, like_name="net.weight")
    return net


def random_reservoir(neurons: int, *, inputs: int, tau_mean: float, tau_shape: int, recurrent_gain: float,
                     input_gain: float, bias_max: float, generator: torch.Generator,
                     device: torch.device | str = "cpu") -> SpikingReservoir:
    """A dense random reservoir (module docstring), drawn from ``generator`` (CPU), then moved to ``device``.

    Draw order: the ``tau_shape`` exponentials of the time constants ``[tau_shape, N]``, ``W``, ``U``, ``b``;
    the gains only scale fixed draws (every ``recurrent_gain``, ``input_gain``, ``bias_max`` gives the same
    network up to those scales).
    """
    n = neurons
    uniforms = torch.rand(tau_shape, n, generator=generator, dtype=torch.float64)
    tau = (tau_mean / tau_shape) * (-torch.log1p(-uniforms)).sum(0)
    tau = tau.clamp(1.0, 10.0 * tau_mean).float()
    weight = torch.randn(n, n, generator=generator) * (recurrent_gain / math.sqrt(n))
    weight.fill_diagonal_(0.0)
    input_weight = torch.randn(n, inputs, generator=generator) * input_gain
    bias = torch.rand(n, generator=generator) * bias_max
    net = SpikingReservoir(weight, tau, decay_from_tau(tau), input_weight, bias)
    return SpikingReservoir(*(t.to(device) for t in net))


def subnetwork(net: SpikingReservoir, neuron_mask: Tensor, weight: Tensor) -> SpikingReservoir:
    """The network restricted to ``neuron_mask`` ``[N]``, with recurrent weights ``weight`` ``[N, N]`` (full
    size; the kept rows and columns are taken)."""
    index = neuron_mask.nonzero().squeeze(1)
    return SpikingReservoir(weight[index][:, index], net.tau[index], net.decay[index], net.input_weight[index],
                            net.bias[index])


@torch.no_grad()
def simulate(net: SpikingReservoir, inputs: Tensor, *, trace_tau: float,
             threshold: float = 1.0) -> tuple[Tensor, Tensor]:
    """Run the spiking network on ``inputs`` ``[B, T, D]``; return ``(filtered spikes [B, T, N], rates [N])``.

    The spikes are filtered with ``a = exp(-1 / trace_tau)`` (soft reset at ``threshold``, from ``v = 0`` and
    no spikes). ``rates`` is each neuron's mean spike count per step over the batch and time.

    ``inputs``: finite, of the network's dtype and device, with ``B, T >= 1`` and ``D`` its input size;
    ``trace_tau`` and ``threshold``: finite numbers > 0.
    """
    check_reservoir(net)
    check_tensor("inputs", inputs, ("B", "T", net.input_weight.shape[1]), like=net.weight, like_name="net.weight")
    check_nonempty_sequence("inputs", inputs)
    check_finite("inputs", inputs)
    check_number("trace_tau", trace_tau, minimum=0, exclusive_minimum=True)
    check_number("threshold", threshold, minimum=0, exclusive_minimum=True)
    surrogate = get_surrogate("fast_sigmoid")  # (no gradient here: any surrogate gives the same spikes)
    batch, steps, _ = inputs.shape
    n = net.neurons
    currents = inputs @ net.input_weight.T + net.bias
    v = inputs.new_zeros(batch, n)
    spikes = inputs.new_zeros(batch, n)
    trace = inputs.new_zeros(batch, n)
    counts = inputs.new_zeros(n)
    out = inputs.new_empty(batch, steps, n)
    a = math.exp(-1.0 / trace_tau)
    weight_t = net.weight.T.contiguous()
    for t in range(steps):
        spikes, v = _lif_step(v, currents[:, t] + spikes @ weight_t, net.decay, threshold, "soft", 0.0, False,
                              False, surrogate)  # (lif_step, its arguments checked above)
        counts += spikes.sum(0)
        trace = a * trace + spikes
        out[:, t] = trace
    return out, counts / (batch * steps)


def reservoir_readout(net: SpikingReservoir, train_inputs: Tensor, train_targets: Tensor, test_inputs: Tensor,
                      test_targets: Tensor, *, trace_tau: float, washout: int, ridges: tuple[float, ...],
                      validation_fraction: float, threshold: float = 1.0) -> dict[str, Any]:
    """Train a ridge readout on the network's filtered spikes over a training series, test it on held-out series.

    ``train_inputs [T, D]`` / ``train_targets [T, O]``, ``test_inputs [S, T', D]`` / ``test_targets [S, T', O]``;
    each series is simulated from rest (:func:`simulate`) and its first ``washout`` steps are dropped. The ridge
    strength is the one of ``ridges`` with the lowest NRMSE on the training series' last ``validation_fraction``
    (:func:`~neuroplastic.dynamics.readout.fit_validated_readout`), the readout refitted on the whole series.

    Returns ``nrmse`` (all test series together), ``nrmse_series`` (per series), ``train_nrmse``, ``ridge``,
    ``rates [N]`` (on the training series) and ``prediction`` / ``target`` ``[S, T' - washout, O]``.
    """
    train_features, rates = simulate(net, train_inputs[None], trace_tau=trace_tau, threshold=threshold)
    features, targets = train_features[0, washout:], train_targets[washout:]
    readout, ridge = fit_validated_readout(features, targets, ridges, validation_fraction)
    test_features, _ = simulate(net, test_inputs, trace_tau=trace_tau, threshold=threshold)
    prediction = predict(test_features[:, washout:], readout)
    target = test_targets[:, washout:]
    return {"nrmse": float(nrmse(prediction, target)),
            "nrmse_series": [float(nrmse(prediction[s], target[s])) for s in range(target.shape[0])],
            "train_nrmse": float(nrmse(predict(features, readout), targets)), "ridge": ridge,
            "rates": rates, "prediction": prediction, "target": target}


def reservoir_validation_nrmse(net: SpikingReservoir, inputs: Tensor, targets: Tensor, *, trace_tau: float,
                               washout: int, ridges: tuple[float, ...], validation_fraction: float,
                               threshold: float = 1.0) -> float:
    """The validation NRMSE that :func:`reservoir_readout` chooses its ridge by (the lowest over ``ridges``, on
    the last ``validation_fraction`` of the series ``inputs [T, D]`` / ``targets [T, O]`` after ``washout``),
    without any held-out series."""
    features, _ = simulate(net, inputs[None], trace_tau=trace_tau, threshold=threshold)
    return min(validation_scores(features[0, washout:], targets[washout:], ridges, validation_fraction))


def noise_currents(net: SpikingReservoir, steps: int, generator: torch.Generator) -> Tensor:
    """Task-agnostic drive ``[steps, N]``: white noise ``N(0, I)`` in the input channels, through ``U``, plus
    the bias (normalised task inputs have the same mean and variance, not the same time structure).
    ``steps >= 0`` (0: an empty ``[0, N]`` drive); ``generator``: a CPU ``torch.Generator``."""
    check_reservoir(net)
    check_int("steps", steps, minimum=0)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    noise = torch.randn(steps, net.input_weight.shape[1], generator=generator).to(net.weight.device)
    return noise @ net.input_weight.T + net.bias


def reservoir_exponents(net: SpikingReservoir, currents: Tensor, k: int, *, warmup: int, threshold: float = 1.0,
                        slope: float = 10.0) -> tuple[Tensor, float]:
    """Lyapunov exponents of the network's smooth LIF map driven by ``currents`` ``[warmup + T, N]``, in float64.

    Returns ``(spectrum [k], largest)``: the ``k`` largest exponents by the QR method
    (:func:`~neuroplastic.dynamics.smooth_lif.network_lyapunov_spectrum`, initial tangent vectors from seed 0)
    and the largest by two trajectories (:func:`~neuroplastic.dynamics.lyapunov.perturbation_lyapunov_exponent`,
    its defaults), both over the ``T`` steps after ``warmup`` from ``h = 0``.
    """
    weight, decay, currents = net.weight.double(), net.decay.double(), currents.double()
    spectrum = network_lyapunov_spectrum(weight, decay, currents, k, warmup=warmup, threshold=threshold,
                                         slope=slope, generator=torch.Generator().manual_seed(0)).exponents

    def step(h: Tensor, u: Tensor) -> Tensor:
        return smooth_lif_step(h, u, weight, decay, threshold=threshold, slope=slope)

    largest = perturbation_lyapunov_exponent(step, weight.new_zeros(net.neurons), currents.shape[0] - warmup,
                                             inputs=currents, warmup=warmup)
    return spectrum, largest


@torch.no_grad()
def spike_divergence(net: SpikingReservoir, currents: Tensor, *, warmup: int, generator: torch.Generator,
                     threshold: float = 1.0, copies: int = 4, perturbation: float = 1e-3) -> float:
    """How the *spiking* network (not the smooth map) treats a small perturbation.

    The fraction of spikes that differ between a run and ``copies`` runs whose membranes got
    ``perturbation * N(0, 1)`` (drawn from ``generator``) after ``warmup`` steps, averaged over the second half
    of the remaining steps of ``currents`` ``[T, N]``. 0 means the perturbation died out (the network forgets its
    initial state); a lasting mismatch means finite-size instability (what a smooth map's positive exponents
    stand for).
    """
    check_reservoir(net)
    check_tensor("currents", currents, ("T", net.neurons), like=net.weight, like_name="net.weight")
    check_int("warmup", warmup, minimum=0, maximum=currents.shape[0] - 1)
    check_number("threshold", threshold, minimum=0, exclusive_minimum=True)
    surrogate = get_surrogate("fast_sigmoid")
    v = currents.new_zeros(1, net.neurons)
    s = currents.new_zeros(1, net.neurons)
    weight_t = net.weight.T.contiguous()
    for t in range(warmup):
        s, v = _lif_step(v, currents[t] + s @ weight_t, net.decay, threshold, "soft", 0.0, False, False, surrogate)
    v2 = v + perturbation * torch.randn(copies, net.neurons, generator=generator).to(v)
    s2 = s.expand(copies, -1).clone()
    mismatch = []
    for t in range(warmup, currents.shape[0]):
        s, v = _lif_step(v, currents[t] + s @ weight_t, net.decay, threshold, "soft", 0.0, False, False, surrogate)
        s2, v2 = _lif_step(v2, currents[t] + s2 @ weight_t, net.decay, threshold, "soft", 0.0, False, False,
                           surrogate)  # (lif_step, its arguments checked above, once rather than every step)
        mismatch.append(float((s2 != s).float().mean()))
    tail = mismatch[len(mismatch) // 2:]
    return sum(tail) / max(1, len(tail))


def reservoir_stability(net: SpikingReservoir, steps: int, k: int, *, warmup: int, generator: torch.Generator,
                        divergence_generator: torch.Generator, threshold: float = 1.0,
                        slope: float = 10.0) -> dict[str, Any]:
    """How stable the network is under task-agnostic noise: :func:`noise_currents` ``[warmup + steps, N]`` drawn
    from ``generator``, then :func:`reservoir_exponents` on it (float64; ``min(k, N)`` exponents over the ``steps``
    after ``warmup``) and :func:`spike_divergence` on its first ``steps`` rows (``warmup`` of them before the
    perturbation, drawn from ``divergence_generator``).

    Returns ``spectrum`` (a list, largest first), ``largest_qr`` (its first entry), ``largest_perturbation``
    (two trajectories) and ``spike_divergence``.
    """
    check_int("steps", steps, minimum=warmup + 1)
    drive = noise_currents(net, steps + warmup, generator).double()
    spectrum, largest = reservoir_exponents(net, drive, min(k, net.neurons), warmup=warmup, threshold=threshold,
                                            slope=slope)
    divergence = spike_divergence(net, drive[:steps].float(), warmup=warmup, threshold=threshold,
                                  generator=divergence_generator)
    return {"spectrum": spectrum.cpu().tolist(), "largest_qr": float(spectrum[0]), "largest_perturbation": largest,
            "spike_divergence": divergence}
