"""Measures and models of recurrent dynamics: Lyapunov exponents, spiking reservoirs and their readouts.

- :mod:`.lyapunov`: Lyapunov spectra (QR method) and the largest exponent (two trajectories) of any map
  ``x_{t+1} = f(x_t[, u_t])``.
- :mod:`.smooth_lif`: the recurrent LIF network as a sigmoid-smoothed map, its analytic tangent, its Lyapunov
  spectrum under a drive and its averaged Jacobian (how spiking networks are measured).
- :mod:`.reservoir`: a recurrent spiking reservoir with heterogeneous neurons (:class:`SpikingReservoir`,
  after Chakraborty & Mukhopadhyay's heterogeneous recurrent SNN): build, simulate, restrict, probe.
- :mod:`.readout`: the ridge-regression readout trained on a reservoir's filtered spikes.
- :mod:`.esn`: the echo-state network (leaky tanh or Fermi units with a per-unit gain and bias), batch-first.
- :mod:`.intrinsic`: intrinsic plasticity of the units' gain and bias (Triesch's exponential target, Schrauwen's
  Gaussian target) and a training phase that applies it to an echo-state network.
- :mod:`.measures`: a closed-form ridge readout, Jaeger's memory capacity, the largest Lyapunov exponent from
  a driven network's Jacobians, active information storage and transfer entropy (plug-in, binned).
- :mod:`.spectral`: spectral training of one-hidden-layer networks and input-output RNNs (Sedghi & Anandkumar):
  Gaussian score functions, cross-moment tensors, whitening, the tensor power method, the output layer.
- :mod:`.simulator`: a differentiable simulator of planar chains (pendulum, double pendulum) and the
  cart-pole: mass matrix and bias forces, semi-implicit Euler and RK4, and :class:`HybridSimulator` with
  learned physics, damping and a torque residual (after Heiden et al.'s NeuralSim); multiple-shooting windows
  for stable fitting.
- :mod:`.mujoco_reference`: the same chains as MuJoCo models (the ``sim`` extra) for ground-truth trajectories.
- :mod:`.plots`: predicted series, Lyapunov spectra and the time constants a pruning keeps, on matplotlib axes.

Imports: this package depends only on ``neurons`` (and ``tasks`` for the NRMSE metric), never on
``plasticity`` or ``structure``. Its measures are pure functions on maps and tensors, so ``structure`` may use
them (Lyapunov noise pruning, :mod:`neuroplastic.structure.lnp`, checks the stability of what it prunes).
"""

from neuroplastic.dynamics.esn import ACTIVATIONS, EchoStateNetwork, scale_to_spectral_radius, spectral_radius
from neuroplastic.dynamics.intrinsic import IP_RULES, adapt_intrinsic, exponential_ip_update, gaussian_ip_update
from neuroplastic.dynamics.lyapunov import (
    JACOBIAN_METHODS,
    LyapunovSpectrum,
    lyapunov_spectrum,
    perturbation_lyapunov_exponent,
)
from neuroplastic.dynamics.measures import (
    MemoryCapacity,
    active_information_storage,
    discretize,
    jacobian_lyapunov_exponent,
    memory_capacity,
    ridge_regression,
    transfer_entropy,
)
from neuroplastic.dynamics.readout import fit_readout, fit_validated_readout, predict, validation_scores
from neuroplastic.dynamics.reservoir import (
    SpikingReservoir,
    noise_currents,
    random_reservoir,
    reservoir_exponents,
    reservoir_readout,
    reservoir_stability,
    reservoir_validation_nrmse,
    simulate,
    spike_divergence,
    subnetwork,
)
from neuroplastic.dynamics.simulator import (
    INTEGRATORS,
    SYSTEMS,
    HybridSimulator,
    ResidualMLP,
    cartpole_dynamics,
    cartpole_energy,
    chain_acceleration,
    chain_dynamics,
    chain_energy,
    rk4_step,
    semi_implicit_euler_step,
    shooting_windows,
    simulate_chain,
    trajectory_loss,
)
from neuroplastic.dynamics.smooth_lif import (
    RESET_MODES,
    check_lif_network,
    lif_linearization,
    network_lyapunov_spectrum,
    smooth_lif_step,
    smooth_lif_tangent,
)
from neuroplastic.dynamics.spectral import (
    SPECTRAL_ACTIVATIONS,
    SpectralFit,
    cross_moment_matrix,
    cross_moment_tensor,
    fit_output_layer,
    gaussian_score,
    recovery_error,
    simulate_io_rnn,
    spectral_fit,
    spectral_input_weights,
    tensor_power_method,
    tensor_whitening,
    whitening_matrix,
)

__all__ = [
    "JACOBIAN_METHODS", "LyapunovSpectrum", "lyapunov_spectrum", "perturbation_lyapunov_exponent",
    "RESET_MODES", "check_lif_network", "smooth_lif_step", "smooth_lif_tangent", "network_lyapunov_spectrum",
    "lif_linearization",
    "SpikingReservoir", "random_reservoir", "subnetwork", "simulate", "reservoir_readout", "reservoir_validation_nrmse",
    "noise_currents", "reservoir_exponents", "spike_divergence", "reservoir_stability",
    "fit_readout", "predict", "validation_scores", "fit_validated_readout",
    "ACTIVATIONS", "EchoStateNetwork", "spectral_radius", "scale_to_spectral_radius",
    "IP_RULES", "gaussian_ip_update", "exponential_ip_update", "adapt_intrinsic",
    "MemoryCapacity", "ridge_regression", "memory_capacity", "jacobian_lyapunov_exponent", "discretize",
    "active_information_storage", "transfer_entropy",
    "SPECTRAL_ACTIVATIONS", "SpectralFit", "gaussian_score", "cross_moment_matrix", "cross_moment_tensor",
    "whitening_matrix", "tensor_whitening", "tensor_power_method", "spectral_input_weights", "fit_output_layer",
    "spectral_fit", "recovery_error", "simulate_io_rnn",
    "INTEGRATORS", "SYSTEMS", "cartpole_dynamics", "cartpole_energy",
    "chain_dynamics", "chain_acceleration", "chain_energy", "semi_implicit_euler_step", "rk4_step",
    "simulate_chain", "HybridSimulator", "ResidualMLP", "shooting_windows", "trajectory_loss",
]
