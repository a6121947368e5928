"""NIR import: a ``nir.NIRGraph`` to a :class:`SpikingSequential` of our layers.

The mapping is described in :mod:`neuroplastic.neurons.nir_io`.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from neuroplastic._checks import check_choice, check_number
from neuroplastic.neurons.modules import (
    LIF,
    LeakyReadout,
    RecurrentLIF,
    _LIFBase,
)
from neuroplastic.neurons.nir_common import (
    _DT,
    _GAIN_TOL,
    _INTEGRATOR_TAU,
    DISCRETIZATIONS,
    SpikingSequential,
    _nir,
    _step_shape,
)

__all__ = ["import_nir"]


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
    dt = float(check_number(_DT, dt, minimum=0, exclusive_minimum=True))
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
