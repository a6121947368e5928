"""NIR export and import for non-plastic spiking networks built from Linear, Conv2d, Flatten and LIF parts.

NIR, the Neuromorphic Intermediate Representation (Pedersen et al. 2024, "Neuromorphic intermediate
representation: A unified instruction set for interoperable brain-inspired computing", Nature
Communications), describes a network as a graph of continuous-time primitives (``Affine``, ``Linear``,
``Conv2d``, ``Flatten``, ``LIF``, ``IF``, ``LI``, ...) that snnTorch, Norse, SpikingJelly, Lava, Rockpool,
Sinabs, SpiNNaker2, Loihi 2 and others read and write. :func:`export_nir` turns a chain of our layers into a
``nir.NIRGraph``; :func:`import_nir` rebuilds a :class:`SpikingSequential` of our layers from a graph. The
``nir`` package is an optional dependency (``pip install neuroplastic[nir]``), imported only when these
functions run.

Mapping our discrete-time LIF to NIR's continuous-time LIF
----------------------------------------------------------
Ours (:func:`~neuroplastic.neurons.lif.lif_step`, hard reset), per time step ``t``::

    h_t = d * v_{t-1} + x_t            d = exp(-dt_m / tau)   (dt_m, tau: the module's dt and time constant)
    s_t = H(h_t - theta)
    v_t = h_t * (1 - s_t) + v_reset * s_t

NIR's ``LIF``: ``tau_N dv/dt = (v_leak - v) + r I``; a spike ``z = 1`` when ``v > v_threshold``, then
``v <- v_reset``. A simulator advances it in steps of length ``D`` (the ``dt`` argument of
:func:`export_nir`, in the graph's time unit, seconds by convention), holding the input ``I_t`` over a step:

- forward Euler (``discretization="euler"``, what snnTorch, Norse, SpikingJelly and most tool-chains do)::

      v_t = (1 - D / tau_N) v_{t-1} + (D / tau_N) (v_leak + r I_t)

- the exact solution for a constant input (``discretization="exact"``)::

      v_t = exp(-D / tau_N) v_{t-1} + (1 - exp(-D / tau_N)) (v_leak + r I_t)

Matching these to ours term by term (``I_t = x_t``, no constant term, so ``v_leak = 0``):

- euler: ``1 - D / tau_N = d`` -> ``tau_N = D / (1 - d)``; ``D r / tau_N = 1`` -> ``r = tau_N / D = 1 / (1 - d)``
- exact: ``exp(-D / tau_N) = d`` -> ``tau_N = -D / ln(d) = D tau / dt_m``; ``(1 - d) r = 1`` -> ``r = 1 / (1 - d)``
- both: ``v_threshold = theta``, ``v_reset = v_reset``, ``v_leak = 0``; spikes fire on ``v > v_threshold``
  (our ``H(0) = 0``), so the spike trains are the same step for step.

Example: ``tau = 10`` steps, ``D = 1``: ``d = exp(-0.1) = 0.904837``, ``r = 10.5083``; euler ``tau_N = 10.5083``,
exact ``tau_N = 10``. A pure integrator (``d == 1``) becomes an ``IF`` with ``r = 1 / D``
(``v_t = v_{t-1} + D r I_t``). :class:`~neuroplastic.neurons.modules.LeakyReadout` (``v_t = d v_{t-1} + x_t``,
no threshold) becomes an ``LI`` with the same ``tau_N`` and ``r``. ``Linear`` layers become ``Affine``
(``y = W x + b``) or ``Linear`` (no bias), ``Conv2d`` and ``Flatten`` map one to one (NIR shapes carry no
batch dimension, so ``nn.Flatten(start_dim=1)`` is NIR ``Flatten(start_dim=0)``).

Import inverts the mapping: ``d = 1 - D / tau_N`` (euler; ``tau_N`` must exceed ``D``) or ``exp(-D / tau_N)``,
with the input gain ``g = D r / tau_N`` (euler) or ``(1 - d) r`` (exact). A gain ``g != 1`` is folded into the
threshold (``u = v / g`` has the same spikes with threshold ``theta / g`` and reset ``v_reset / g``); for an
``LI`` it is folded into the ``Linear``/``Conv2d`` right before it. ``v_leak`` must be 0.

Time within a chain: every layer sees the output of the layer before it at the same time step (no synaptic
delay), as in snnTorch, Norse and SpikingJelly. A :class:`~neuroplastic.neurons.modules.RecurrentLIF`
becomes an ``Affine`` (its input weights) followed by a sub-graph ``input -> lif -> output`` with a cycle
``lif -> w_rec -> lif`` (the recurrent weights, a ``Linear``); the cycle carries the previous step's spikes,
which is how discrete-time simulators run a cycle (snnTorch's ``RLeaky`` import reads this form). A flat
cycle ``LIF <-> Linear`` in the top-level graph is read as the same recurrent layer.

What cannot be exported (``ValueError`` naming the module)
----------------------------------------------------------
- the soft reset (``reset="soft"``, the default of our LIF modules) and ``reset="none"``: NIR's ``LIF`` and
  ``IF`` only reset to ``v_reset``; build (or re-train) the model with ``reset="hard"``;
- adaptive thresholds (``ALIF``, ``ALIFCell``, ``RecurrentLIF(adaptive=True)``): there is no NIR primitive;
- plastic synapses (``neuroplastic.plasticity``: ``PlasticLIF``, ``PlasticLinear``, ...): NIR weights are fixed;
- any other module (pooling, normalisation, custom layers).

What is exported without being stored: surrogate gradients, the membrane potential rectifier (MPR, Guo et
al. 2022: it changes the gradient, not the spikes, since ``H(mpr(h) - theta) = H(h - theta)`` up to rounding
at ``h = theta``), ``detach_reset`` and which parameters are learnable. Imported modules use the defaults.
``nn.Identity`` and ``nn.Dropout`` are skipped (the graph describes inference).
"""


from __future__ import annotations

from neuroplastic.neurons.nir_common import DISCRETIZATIONS, SpikingSequential
from neuroplastic.neurons.nir_export import export_nir
from neuroplastic.neurons.nir_import import import_nir

__all__ = ["SpikingSequential", "export_nir", "import_nir", "DISCRETIZATIONS"]
