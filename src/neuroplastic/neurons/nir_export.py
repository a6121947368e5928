"""NIR export: a chain of our non-plastic spiking layers to a ``nir.NIRGraph``.

The mapping is described in :mod:`neuroplastic.neurons.nir_io`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from torch import nn

from neuroplastic._checks import check_choice, check_number
from neuroplastic.neurons.modules import (
    LIF,
    LeakyReadout,
    LIFCell,
    RecurrentLIF,
    _ALIFBase,
    _LIFBase,
)
from neuroplastic.neurons.nir_common import (
    _DT,
    _SKIPPED,
    DISCRETIZATIONS,
    _flatten_modules,
    _nir,
    _numpy,
    _shape_tuple,
    _step_shape,
)

__all__ = ["export_nir"]


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
    dt = float(check_number(_DT, dt, minimum=0, exclusive_minimum=True))
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


