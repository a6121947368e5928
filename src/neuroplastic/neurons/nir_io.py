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

import math
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from neuroplastic._checks import check_choice
from neuroplastic.neurons.modules import (
    ALIF,
    LIF,
    ALIFCell,
    LeakyReadout,
    LIFCell,
    RecurrentLIF,
    _ALIFBase,
    _LIFBase,
)

__all__ = ["SpikingSequential", "export_nir", "import_nir", "DISCRETIZATIONS"]

DISCRETIZATIONS = ("euler", "exact")
_SKIPPED = (nn.Identity, nn.Dropout)
_GAIN_TOL = 1e-9
# tau of a pure integrator (d == 1): exp(-1e-30) rounds to exactly 1.0 in float32 and float64.
_INTEGRATOR_TAU = 1e30


def _nir():
    """The ``nir`` package, imported on first use, with an error that says how to install it."""
    try:
        import nir
    except ImportError as error:
        raise ImportError("NIR export and import need the 'nir' package: pip install neuroplastic[nir] "
                          "(or pip install nir)") from error
    return nir


# --------------------------------------------------------------------------------------------------------
# A chain of layers over spike sequences
# --------------------------------------------------------------------------------------------------------

_SEQUENCE_MODULES = (LIF, ALIF, RecurrentLIF, LeakyReadout)


class SpikingSequential(nn.Sequential):
    """A chain of layers over sequences ``[B, T, ...]``: what :func:`import_nir` returns and :func:`export_nir` reads.

    Stateful sequence modules (:class:`~neuroplastic.neurons.modules.LIF`, ``ALIF``, ``RecurrentLIF``,
    ``LeakyReadout``) run over the whole sequence with explicit state (``out, state = module(x, state)``);
    every other module (``nn.Linear``, ``nn.Conv2d``, ``nn.Flatten``, ...) is applied to each time step, with
    the time steps folded into the batch (``[B * T, ...]``). ``forward(x: [B, T, *input_shape], state=None)
    -> (out [B, T, ...], state)``; ``state`` is a tuple with one entry per module (None for stateless ones).
    """

    def forward(self, x: Tensor, state: Sequence[Any] | None = None) -> tuple[Tensor, tuple[Any, ...]]:
        if not isinstance(x, Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() < 3:
            raise ValueError(f"x must have the layout [B, T, *input_shape] (at least 3 dimensions), "
                             f"got shape {list(x.shape)}")
        modules = list(self)
        if state is None:
            state = (None,) * len(modules)
        elif not isinstance(state, (tuple, list)) or len(state) != len(modules):
            raise ValueError(f"state must be None or a tuple with one entry per module ({len(modules)}), "
                             f"got {type(state).__name__} of length {len(state) if hasattr(state, '__len__') else '?'}")
        new_state = []
        for module, module_state in zip(modules, state, strict=True):
            if isinstance(module, (LIFCell, ALIFCell)):
                raise ValueError(f"SpikingSequential runs whole sequences; {type(module).__name__} is one time "
                                 f"step: use {type(module).__name__[:-4]} instead")
            if isinstance(module, _SEQUENCE_MODULES):
                x, module_state = module(x, module_state)
            else:
                batch, steps = x.shape[:2]
                y = module(x.reshape(batch * steps, *x.shape[2:]))
                x = y.reshape(batch, steps, *y.shape[1:])
                module_state = None
            new_state.append(module_state)
        return x, tuple(new_state)


# --------------------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------------------

def _check_dt(dt: object) -> float:
    if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not dt > 0 or math.isinf(dt):
        raise ValueError(f"dt must be a finite number > 0 (the length of one time step in the graph's time "
                         f"unit), got {dt!r}")
    return float(dt)


def _shape_tuple(input_shape: object) -> tuple[int, ...]:
    if isinstance(input_shape, int) and not isinstance(input_shape, bool):
        input_shape = (input_shape,)
    if isinstance(input_shape, torch.Size):
        input_shape = tuple(input_shape)
    if (not isinstance(input_shape, (tuple, list)) or not input_shape
            or not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n > 0 for n in input_shape)):
        raise ValueError("input_shape must be the shape of one time step of one sample, without batch and time "
                         f"(a positive int or a tuple of positive ints, e.g. (784,) or (1, 28, 28)), got "
                         f"{input_shape!r}")
    return tuple(int(n) for n in input_shape)


def _flatten_modules(module: nn.Module, prefix: str) -> list[tuple[str, nn.Module]]:
    if isinstance(module, nn.Sequential):
        out = []
        for name, child in module.named_children():
            out.extend(_flatten_modules(child, f"{prefix}.{name}" if prefix else name))
        return out
    return [(prefix or type(module).__name__.lower(), module)]


def _numpy(t: Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().copy()


def _neuron_arrays(module: _LIFBase | LeakyReadout, dt: float, method: str) -> dict[str, np.ndarray]:
    """NIR ``tau``, ``r`` (float64, shape ``module.size``) from the module's per-step decay (see module docstring)."""
    d = module.decay().detach().double().cpu().numpy()
    d = np.broadcast_to(d, module.size).copy()
    with np.errstate(divide="ignore"):
        r = np.where(d < 1.0, 1.0 / (1.0 - d), np.inf)
        if method == "euler":
            tau = dt / (1.0 - d)
        else:
            tau = -dt / np.log(d)
    return {"tau": tau, "r": r, "decay": d}


def _lif_node(nir, name: str, module: _LIFBase, dt: float, method: str):
    if module.reset != "hard":
        raise ValueError(f"cannot export {type(module).__name__} {name!r}: it uses reset={module.reset!r}, but NIR's "
                         f"LIF and IF only reset to v_reset (a hard reset) and cannot express the "
                         f"{'soft reset (subtract the threshold)' if module.reset == 'soft' else 'missing reset'};"
                         " build the model with reset='hard' to export it")
    arrays = _neuron_arrays(module, dt, method)
    size = module.size
    threshold = np.broadcast_to(module.threshold.detach().double().cpu().numpy(), size).copy()
    v_reset = np.full(size, module.v_reset, dtype=np.float64)
    if np.all(arrays["decay"] == 1.0):
        return nir.IF(r=np.full(size, 1.0 / dt), v_threshold=threshold, v_reset=v_reset)
    if np.any(arrays["decay"] == 1.0):
        raise ValueError(f"cannot export {type(module).__name__} {name!r}: some neurons do not leak (decay == 1) "
                         "and others do; NIR has one neuron type per node")
    return nir.LIF(tau=arrays["tau"], r=arrays["r"], v_leak=np.zeros(size), v_threshold=threshold,
                   v_reset=v_reset)


def _unsupported(name: str, module: nn.Module) -> ValueError:
    kind = type(module).__name__
    if isinstance(module, (_ALIFBase,)) or (isinstance(module, RecurrentLIF) and module.adaptive):
        why = "adaptive thresholds (ALIF) have no NIR primitive"
    elif type(module).__module__.startswith("neuroplastic.plasticity"):
        why = "plastic synapses change their weights within an episode, and NIR weights are fixed"
    else:
        why = ("export_nir supports nn.Linear, nn.Conv2d, nn.Flatten, LIF, RecurrentLIF and LeakyReadout "
               "(in an nn.Sequential or SpikingSequential); nn.Identity and nn.Dropout are skipped")
    return ValueError(f"cannot export module {name!r} of type {kind}: {why}")


def export_nir(model: nn.Module, input_shape: int | Sequence[int], dt: float = 1.0, *,
               discretization: str = "euler") -> Any:
    """Export a non-plastic spiking network to a ``nir.NIRGraph`` (see the module docstring for the mapping).

    ``model``: an ``nn.Sequential`` or :class:`SpikingSequential` (nested ones are flattened) of ``nn.Linear``
    (and :class:`~neuroplastic.neurons.spike_linear.SpikeLinear`), ``nn.Conv2d``, ``nn.Flatten``,
    :class:`~neuroplastic.neurons.modules.LIF`/``LIFCell`` with ``reset="hard"``, non-adaptive
    :class:`~neuroplastic.neurons.modules.RecurrentLIF` with ``reset="hard"`` and
    :class:`~neuroplastic.neurons.modules.LeakyReadout`; or one such module alone. ``input_shape``: the shape
    of one time step of one sample (no batch, no time), e.g. ``(784,)`` or ``(2, 34, 34)``. ``dt``: the length
    of one time step in the graph's time unit (> 0; snnTorch's importer assumes ``1e-4``).
    ``discretization``: ``"euler"`` (default; ``tau_N = dt / (1 - d)``) or ``"exact"`` (``tau_N = -dt / ln d``),
    the way the receiving simulator steps the NIR ODE; both give ``r = 1 / (1 - d)``.

    Node names are the module names (``"0"``, ``"1"``, ``"block.fc"``); a RecurrentLIF ``"rec"`` becomes the
    nodes ``"rec.input_linear"`` (Affine) and ``"rec"`` (a sub-graph with nodes ``input``, ``lif``, ``w_rec``,
    ``output``). The graph's metadata records ``dt`` and ``discretization``; :func:`import_nir` reads them back.
    Raises ``ValueError`` naming the module for parts NIR cannot express (soft reset, ALIF, plastic synapses).
    """
    nir = _nir()
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    shape = _shape_tuple(input_shape)
    dt = _check_dt(dt)
    method = check_choice("discretization", discretization, DISCRETIZATIONS)
    layers = [(n, m) for n, m in _flatten_modules(model, "") if not isinstance(m, _SKIPPED)]
    if not layers:
        raise ValueError("model has no layers to export")

    nodes: dict[str, Any] = {"input": nir.Input(input_type=np.array(shape))}
    edges: list[tuple[str, str]] = []
    previous = "input"

    def add(name: str, node: Any) -> None:
        nonlocal previous
        if name in nodes or name == "output":
            raise ValueError(f"two layers would get the NIR node name {name!r}; rename the modules")
        nodes[name] = node
        edges.append((previous, name))
        previous = name

    for name, module in layers:
        where = f"{type(module).__name__} {name!r}"
        if isinstance(module, nn.Linear):
            if shape != (module.in_features,):
                raise ValueError(f"{where} expects inputs of shape ({module.in_features},) per time step, but the "
                                 f"layer before it gives {shape}")
            weight = _numpy(module.weight)
            node = (nir.Linear(weight=weight) if module.bias is None
                    else nir.Affine(weight=weight, bias=_numpy(module.bias)))
            add(name, node)
            shape = (module.out_features,)
        elif isinstance(module, nn.Conv2d):
            if len(shape) != 3 or shape[0] != module.in_channels:
                raise ValueError(f"{where} expects inputs of shape ({module.in_channels}, H, W) per time step, "
                                 f"but the layer before it gives {shape}")
            if module.padding_mode != "zeros":
                raise ValueError(f"cannot export {where}: padding_mode={module.padding_mode!r}; NIR's Conv2d "
                                 "pads with zeros only")
            bias = (_numpy(module.bias) if module.bias is not None
                    else np.zeros(module.out_channels, dtype=_numpy(module.weight).dtype))
            padding = module.padding if isinstance(module.padding, str) else tuple(module.padding)
            add(name, nir.Conv2d(input_shape=shape[1:], weight=_numpy(module.weight), stride=tuple(module.stride),
                                 padding=padding, dilation=tuple(module.dilation), groups=module.groups,
                                 bias=bias))
            shape = _step_shape(module, shape)
        elif isinstance(module, nn.Flatten):
            # torch dims count the batch (dim 0 of [B, *shape]); NIR dims do not
            start = module.start_dim if module.start_dim >= 0 else module.start_dim + len(shape) + 1
            end = module.end_dim if module.end_dim >= 0 else module.end_dim + len(shape) + 1
            if start <= 0 or end <= 0:
                raise ValueError(f"cannot export {where}: it flattens the batch dimension (start_dim="
                                 f"{module.start_dim}, end_dim={module.end_dim}); NIR shapes have no batch")
            end = -1 if end == len(shape) else end - 1
            add(name, nir.Flatten(input_type=np.array(shape), start_dim=start - 1, end_dim=end))
            shape = _step_shape(module, shape)
        elif isinstance(module, (_ALIFBase,)) or type(module).__module__.startswith("neuroplastic.plasticity"):
            raise _unsupported(name, module)
        elif isinstance(module, (LIF, LIFCell)):
            if shape != module.size:
                raise ValueError(f"{where} has size {module.size} but the layer before it gives {shape} per "
                                 "time step")
            add(name, _lif_node(nir, name, module, dt, method))
        elif isinstance(module, LeakyReadout):
            if shape != module.size:
                raise ValueError(f"{where} has size {module.size} but the layer before it gives {shape} per "
                                 "time step")
            arrays = _neuron_arrays(module, dt, method)
            if np.any(arrays["decay"] == 1.0):
                raise ValueError(f"cannot export {where}: a readout without leak (decay == 1) is NIR's I, "
                                 "which import_nir does not read back; use a finite tau")
            add(name, nir.LI(tau=arrays["tau"], r=arrays["r"], v_leak=np.zeros(module.size)))
        elif isinstance(module, RecurrentLIF):
            if module.adaptive:
                raise _unsupported(name, module)
            if shape != (module.input_size,):
                raise ValueError(f"{where} expects inputs of shape ({module.input_size},) per time step, but the "
                                 f"layer before it gives {shape}")
            linear = module.input_linear
            weight = _numpy(linear.weight)
            add(f"{name}.input_linear", nir.Linear(weight=weight) if linear.bias is None
                else nir.Affine(weight=weight, bias=_numpy(linear.bias)))
            hidden = module.hidden_size
            sub = nir.NIRGraph(
                nodes={"input": nir.Input(input_type=np.array([hidden])),
                       "lif": _lif_node(nir, name, module.neurons, dt, method),
                       "w_rec": nir.Linear(weight=_numpy(module.recurrent_linear.weight)),
                       "output": nir.Output(output_type=np.array([hidden]))},
                edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
            )
            add(name, sub)
            shape = (hidden,)
        else:
            raise _unsupported(name, module)

    nodes["output"] = nir.Output(output_type=np.array(shape))
    edges.append((previous, "output"))
    metadata = {"generator": "neuroplastic", "dt": dt, "discretization": method}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def _step_shape(module: nn.Module, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The per-step output shape of a stateless layer, by running it on one zero sample."""
    param = next(module.parameters(), None)
    kwargs = {} if param is None else {"dtype": param.dtype, "device": param.device}
    with torch.no_grad():
        return tuple(module(torch.zeros(1, *shape, **kwargs)).shape[1:])


# --------------------------------------------------------------------------------------------------------
# Import
# --------------------------------------------------------------------------------------------------------

def _as_tuple_ints(value: Any, n: int = 2) -> tuple[int, ...] | str:
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str):
        return value
    arr = np.atleast_1d(np.asarray(value)).astype(int)
    if arr.size == 1:
        arr = np.repeat(arr, n)
    return tuple(int(v) for v in arr)


def _param(node: Any, field: str, size: tuple[int, ...], where: str) -> np.ndarray:
    value = np.asarray(getattr(node, field), dtype=np.float64)
    try:
        return np.broadcast_to(value, size).copy()
    except ValueError:
        raise ValueError(f"{where}: {field} has shape {list(value.shape)}, which does not fit the layer's size "
                         f"{list(size)}") from None


def _decay_and_gain(node: Any, size: tuple[int, ...], dt: float, method: str,
                    where: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-neuron decay ``d`` and input gain ``g`` of a NIR LIF/LI/IF node stepped with ``dt`` (module docstring)."""
    nir = _nir()
    r = _param(node, "r", size, where)
    if isinstance(node, nir.IF):
        return np.ones(size), dt * r
    tau = _param(node, "tau", size, where)
    if np.any(~(tau > 0)):
        raise ValueError(f"{where}: tau must be > 0, got {tau[~(tau > 0)].flat[0]!r}")
    v_leak = _param(node, "v_leak", size, where)
    if np.any(v_leak != 0):
        raise ValueError(f"{where}: v_leak = {v_leak[v_leak != 0].flat[0]!r}; our neurons rest at 0, so only "
                         "v_leak = 0 can be imported")
    if method == "euler":
        if np.any(dt >= tau):
            raise ValueError(f"{where}: tau = {tau.min()!r} is not larger than dt = {dt!r}: forward Euler with "
                             "this dt gives no leaky neuron (decay 1 - dt/tau <= 0); pass the dt the graph was "
                             "made for (snnTorch writes graphs for dt = 1e-4)")
        decay = 1.0 - dt / tau
        gain = dt * r / tau
    else:
        decay = np.exp(-dt / tau)
        gain = (1.0 - decay) * r
    if np.any(~(gain > 0)):
        raise ValueError(f"{where}: the input gain r * dt / tau must be > 0, got {gain[~(gain > 0)].flat[0]!r} "
                         f"(r = {r.flat[0]!r})")
    gain = np.where(np.abs(gain - 1.0) <= _GAIN_TOL, 1.0, gain)
    return decay, gain


def _tau_for_decay(decay: np.ndarray) -> Tensor:
    """The module time constant, in time steps, whose ``exp(-1 / tau)`` is ``decay``."""
    with np.errstate(divide="ignore"):
        tau = np.where(decay >= 1.0, _INTEGRATOR_TAU, -1.0 / np.log(decay))
    return torch.as_tensor(tau, dtype=torch.get_default_dtype())


def _match_decay(module: _LIFBase | LeakyReadout, decay: np.ndarray) -> None:
    """Nudge ``module.log_tau`` by ulps until ``module.decay()`` equals ``decay`` rounded to its dtype."""
    log_tau = module.log_tau
    target = torch.as_tensor(decay, dtype=log_tau.dtype).reshape(log_tau.shape)
    with torch.no_grad():
        for _ in range(16):
            current = module.decay()
            if torch.equal(current, target):
                return
            down = torch.nextafter(log_tau, torch.full_like(log_tau, -math.inf))
            up = torch.nextafter(log_tau, torch.full_like(log_tau, math.inf))
            log_tau.copy_(torch.where(current > target, down, torch.where(current < target, up, log_tau)))


def _lif_module(node: Any, size: tuple[int, ...], dt: float, method: str, where: str) -> LIF:
    decay, gain = _decay_and_gain(node, size, dt, method, where)
    threshold = _param(node, "v_threshold", size, where) / gain
    if np.any(~(threshold > 0)):
        raise ValueError(f"{where}: v_threshold must be > 0 (after dividing by the input gain), got "
                         f"{threshold[~(threshold > 0)].flat[0]!r}")
    v_reset = np.unique(_param(node, "v_reset", size, where) / gain)
    if v_reset.size != 1:
        raise ValueError(f"{where}: v_reset / gain differs between neurons ({v_reset[:3].tolist()}...); our LIF "
                         "has one v_reset per layer")
    lif = LIF(size, tau=_tau_for_decay(decay), threshold=torch.as_tensor(threshold, dtype=torch.get_default_dtype()),
              reset="hard", v_reset=float(v_reset[0]))
    _match_decay(lif, decay)
    return lif


def _recurrent_parts(nir, name: str, graph: Any) -> tuple[Any, Any]:
    """The (neuron node, recurrent weight node) of a sub-graph ``input -> lif -> output`` with ``lif <-> w_rec``."""
    where = f"sub-graph {name!r}"
    kinds = {key: node for key, node in graph.nodes.items()}
    inputs = [k for k, n in kinds.items() if isinstance(n, nir.Input)]
    outputs = [k for k, n in kinds.items() if isinstance(n, nir.Output)]
    neurons = [k for k, n in kinds.items() if isinstance(n, (nir.LIF, nir.IF))]
    weights = [k for k, n in kinds.items() if isinstance(n, (nir.Linear, nir.Affine))]
    if not (len(kinds) == 4 and len(inputs) == len(outputs) == len(neurons) == len(weights) == 1):
        raise ValueError(f"{where}: import_nir reads sub-graphs only as recurrent LIF layers (nodes Input, LIF or "
                         f"IF, Linear or Affine, Output); got nodes "
                         f"{ {k: type(n).__name__ for k, n in kinds.items()} }")
    i, o, n, w = inputs[0], outputs[0], neurons[0], weights[0]
    expected = {(i, n), (n, w), (w, n), (n, o)}
    if set(map(tuple, graph.edges)) != expected:
        raise ValueError(f"{where}: expected the edges {sorted(expected)} of a recurrent layer, got "
                         f"{sorted(map(tuple, graph.edges))}")
    return kinds[n], kinds[w]


def _fold_gain_into(module: nn.Module | None, gain: np.ndarray, where: str) -> None:
    """Scale the outputs of the ``Linear``/``Conv2d`` ``module`` by ``gain`` (per output unit)."""
    if np.all(gain == 1.0):
        return
    with torch.no_grad():
        if isinstance(module, nn.Linear) and gain.shape == (module.out_features,):
            g = torch.as_tensor(gain, dtype=module.weight.dtype)
            module.weight.mul_(g[:, None])
            if module.bias is not None:
                module.bias.mul_(g)
            return
        if isinstance(module, nn.Conv2d) and gain.ndim == 3 and gain.shape[0] == module.out_channels:
            per_channel = gain.reshape(gain.shape[0], -1)
            if np.all(per_channel == per_channel[:, :1]):
                g = torch.as_tensor(per_channel[:, 0], dtype=module.weight.dtype)
                module.weight.mul_(g[:, None, None, None])
                if module.bias is not None:
                    module.bias.mul_(g)
                return
    raise ValueError(f"{where}: its input gain r * dt / tau is not 1 ({gain.flat[0]!r}) and there is no Linear or "
                     "Conv2d right before it to fold the gain into")


def _chain(nir, graph: Any) -> tuple[list[str], dict[str, Any]]:
    """The node names of a chain graph from its Input to its Output, and flat ``LIF <-> Linear`` cycles."""
    edges = list(dict.fromkeys((str(a), str(b)) for a, b in graph.edges))
    nodes = dict(graph.nodes)
    recurrent: dict[str, Any] = {}
    for a, b in list(edges):
        if (b, a) in edges and isinstance(nodes.get(a), (nir.LIF, nir.IF)) \
                and isinstance(nodes.get(b), (nir.Linear, nir.Affine)):
            into_w = [e for e in edges if e[1] == b]
            out_of_w = [e for e in edges if e[0] == b]
            if len(into_w) == 1 and len(out_of_w) == 1:
                recurrent[a] = nodes.pop(b)
                edges = [e for e in edges if b not in e]
    inputs = [k for k, n in nodes.items() if isinstance(n, nir.Input)]
    outputs = [k for k, n in nodes.items() if isinstance(n, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(f"graph must have one Input and one Output node, got inputs {inputs} and outputs {outputs}")
    successors: dict[str, list[str]] = {k: [] for k in nodes}
    predecessors: dict[str, list[str]] = {k: [] for k in nodes}
    for a, b in edges:
        if a not in nodes or b not in nodes:
            raise ValueError(f"graph edge ({a!r}, {b!r}) names a node that does not exist")
        successors[a].append(b)
        predecessors[b].append(a)
    order = [inputs[0]]
    while order[-1] != outputs[0]:
        current = order[-1]
        nxt = successors[current]
        if len(nxt) != 1 or len(predecessors[nxt[0]]) != 1:
            branch = current if len(nxt) != 1 else nxt[0]
            raise ValueError("import_nir reads chains of layers (each node with one input and one output edge, "
                             f"plus recurrent LIF layers); node {branch!r} has inputs {predecessors[branch]} and "
                             f"outputs {successors[branch]}")
        if nxt[0] in order:
            raise ValueError(f"graph has a cycle through {nxt[0]!r} that is not a recurrent LIF layer")
        order.append(nxt[0])
    if len(order) != len(nodes):
        rest = sorted(set(nodes) - set(order))
        raise ValueError(f"graph nodes {rest} are not on the path from the Input to the Output")
    return order, recurrent


def import_nir(graph: Any, dt: float | None = None, *, discretization: str | None = None) -> SpikingSequential:
    """Rebuild a ``nir.NIRGraph`` (or a ``.nir`` file path) as a :class:`SpikingSequential` of our layers.

    Reads chains ``Input -> ... -> Output`` of ``Affine``/``Linear`` (-> ``nn.Linear``), ``Conv2d``
    (-> ``nn.Conv2d``), ``Flatten`` (-> ``nn.Flatten``, batch dimension added back), ``LIF`` and ``IF``
    (-> :class:`~neuroplastic.neurons.modules.LIF` with ``reset="hard"``; an ``IF`` is a LIF whose decay is
    exactly 1), ``LI`` (-> :class:`~neuroplastic.neurons.modules.LeakyReadout`) and recurrent layers (a
    sub-graph ``input -> lif -> output`` with ``lif <-> w_rec``, or the same cycle in the top-level graph;
    -> :class:`~neuroplastic.neurons.modules.RecurrentLIF` whose input weights are the ``Affine``/``Linear``
    right before it, else the identity). The equations are in the module docstring.

    ``dt``: the length of one time step in the graph's time unit; None takes the ``dt`` that
    :func:`export_nir` recorded in the graph's metadata, else 1.0 (snnTorch graphs need ``dt=1e-4``).
    ``discretization``: ``"euler"`` or ``"exact"``; None takes the recorded one, else ``"euler"``. The
    modules count time in steps (their ``dt`` is 1 and ``tau`` is in steps: ``d = exp(-1 / tau)``), as our
    modules do by default; a graph exported from them comes back with the same per-step decays bit for bit
    (the time constants are nudged by ulps until ``decay()`` matches). ``ValueError`` names the
    node for what has no counterpart here (``CubaLIF``, ``CubaLI``, ``Delay``, ``Threshold``, pooling,
    ``v_leak != 0``, branching graphs). Returns a float32 model on the CPU.
    """
    nir = _nir()
    if isinstance(graph, (str, Path)):
        graph = nir.read(graph)
    if not isinstance(graph, nir.NIRGraph):
        raise TypeError(f"graph must be a nir.NIRGraph or the path of a .nir file, got {type(graph).__name__}")
    metadata = graph.metadata if isinstance(graph.metadata, dict) else {}
    if dt is None:
        dt = float(metadata["dt"]) if "dt" in metadata else 1.0
    dt = _check_dt(dt)
    if discretization is None:
        recorded = metadata.get("discretization", "euler")
        discretization = recorded.decode() if isinstance(recorded, bytes) else str(recorded)
    method = check_choice("discretization", discretization, DISCRETIZATIONS)

    order, flat_recurrent = _chain(nir, graph)
    input_type = graph.nodes[order[0]].input_type["input"]
    if input_type is None:
        raise ValueError(f"graph input node {order[0]!r} has no shape")
    shape = tuple(int(n) for n in np.atleast_1d(input_type))
    modules: list[tuple[str, nn.Module]] = []
    from_linear: set[str] = set()  # names of modules built from an Affine/Linear node

    for key in order[1:-1]:
        node = graph.nodes[key]
        name = key.replace(".", "_") or "layer"
        where = f"node {key!r} ({type(node).__name__})"
        previous = modules[-1][1] if modules else None
        if isinstance(node, (nir.Affine, nir.Linear)):
            weight = np.asarray(node.weight)
            if weight.ndim != 2:
                raise ValueError(f"{where}: weight must be 2-D [out, in], got shape {list(weight.shape)}")
            if shape != (weight.shape[1],):
                raise ValueError(f"{where}: weight [out, in] = {list(weight.shape)} does not fit inputs of shape "
                                 f"{shape}")
            has_bias = isinstance(node, nir.Affine)
            module = nn.Linear(weight.shape[1], weight.shape[0], bias=has_bias)
            with torch.no_grad():
                module.weight.copy_(torch.as_tensor(weight, dtype=module.weight.dtype))
                if has_bias:
                    module.bias.copy_(torch.as_tensor(np.asarray(node.bias), dtype=module.bias.dtype))
            modules.append((name, module))
            from_linear.add(name)
            shape = (weight.shape[0],)
        elif isinstance(node, nir.Conv2d):
            weight = np.asarray(node.weight)
            if len(shape) != 3 or weight.ndim != 4 or shape[0] != weight.shape[1] * int(node.groups):
                raise ValueError(f"{where}: weight {list(weight.shape)} (groups {node.groups}) does not fit inputs "
                                 f"of shape {shape}")
            module = nn.Conv2d(weight.shape[1] * int(node.groups), weight.shape[0], tuple(weight.shape[2:]),
                               stride=_as_tuple_ints(node.stride), padding=_as_tuple_ints(node.padding),
                               dilation=_as_tuple_ints(node.dilation), groups=int(node.groups), bias=True)
            with torch.no_grad():
                module.weight.copy_(torch.as_tensor(weight, dtype=module.weight.dtype))
                module.bias.copy_(torch.as_tensor(np.asarray(node.bias), dtype=module.bias.dtype))
            modules.append((name, module))
            shape = _step_shape(module, shape)
        elif isinstance(node, nir.Flatten):
            start, end = int(node.start_dim), int(node.end_dim)
            module = nn.Flatten(start + 1 if start >= 0 else start, end + 1 if end >= 0 else end)
            modules.append((name, module))
            shape = _step_shape(module, shape)
        elif isinstance(node, (nir.LIF, nir.IF)) and key not in flat_recurrent:
            modules.append((name, _lif_module(node, shape, dt, method, where)))
        elif isinstance(node, nir.LI):
            decay, gain = _decay_and_gain(node, shape, dt, method, where)
            module = LeakyReadout(shape, tau=_tau_for_decay(decay))
            _match_decay(module, decay)
            _fold_gain_into(previous, gain, where)
            modules.append((name, module))
        elif isinstance(node, nir.NIRGraph) or key in flat_recurrent:
            if isinstance(node, nir.NIRGraph):
                neuron, w_rec = _recurrent_parts(nir, key, node)
            else:
                neuron, w_rec = node, flat_recurrent[key]
            w = np.asarray(w_rec.weight)
            hidden = w.shape[0]
            if w.shape != (hidden, hidden):
                raise ValueError(f"{where}: recurrent weight must be square [hidden, hidden], got {list(w.shape)}")
            merge = (modules and modules[-1][0] in from_linear and isinstance(previous, nn.Linear)
                     and previous.out_features == hidden)
            if not merge and shape != (hidden,):
                raise ValueError(f"{where}: a recurrent layer of {hidden} neurons needs an Affine/Linear before it "
                                 f"or inputs of shape ({hidden},), got {shape}")
            in_linear = modules.pop()[1] if merge else None
            input_size = in_linear.in_features if merge else hidden
            w_bias = np.asarray(w_rec.bias) if isinstance(w_rec, nir.Affine) else None
            has_bias = (merge and in_linear.bias is not None) or w_bias is not None
            cell_lif = _lif_module(neuron, (hidden,), dt, method, where)
            layer = RecurrentLIF(input_size, hidden, bias=has_bias, tau=cell_lif.tau.clone(),
                                 threshold=cell_lif.threshold.clone(), reset="hard",
                                 v_reset=cell_lif.v_reset)
            with torch.no_grad():
                layer.neurons.log_tau.copy_(cell_lif.log_tau)
                layer.input_linear.weight.copy_(in_linear.weight if merge else torch.eye(hidden))
                if has_bias:
                    bias = torch.zeros(hidden)
                    if merge and in_linear.bias is not None:
                        bias += in_linear.bias
                    if w_bias is not None:
                        bias += torch.as_tensor(w_bias, dtype=bias.dtype)
                    layer.input_linear.bias.copy_(bias)
                layer.recurrent_linear.weight.copy_(torch.as_tensor(w, dtype=layer.recurrent_linear.weight.dtype))
            modules.append((name, layer))
            shape = (hidden,)
        else:
            raise ValueError(f"cannot import {where}: import_nir reads Affine, Linear, Conv2d, Flatten, LIF, IF, "
                             f"LI and recurrent LIF sub-graphs; {type(node).__name__} has no counterpart among our "
                             "layers")
    names = [n for n, _ in modules]
    if len(set(names)) != len(names):
        raise ValueError(f"graph node names {names} collide once '.' is replaced by '_'")
    return SpikingSequential(OrderedDict(modules))
