"""A pattern genome compiled to a differentiable module, the coordinates of a target network's weights, and the
target's parameters produced from them in one batched pass.

Fernando et al. 2016, "Convolution by evolution: differentiable pattern producing networks" (DPPN): the weight
``W[l][o, i]`` of layer ``l`` of a target network is ``f_theta(coords(l, i, o))``, ``f_theta`` the compiled genome
with learnable connection weights and node biases ``theta``; the target's loss is differentiated with respect to
``theta`` through the produced weights (``torch.func.functional_call``).

Coordinate features (:data:`COORDINATE_FEATURES`, one row per weight, every feature in ``[-1, 1]``):
``layer`` (the layer's index among the target's Linear/Conv2d layers, normalised), ``in_x, in_y`` (the input
unit's position on its grid: a 784 input as 28 x 28), ``out_x, out_y`` (the output unit's), ``kernel_x,
kernel_y`` (a convolution's kernel offset, 0 for Linear), ``distance`` (``sqrt((in_x-out_x)^2 + (in_y-out_y)^2)
/ sqrt(8)``: lets a gaussian node make local receptive fields) and ``bias`` (1 on a bias entry, whose input
position is 0; 0 on a weight). A position ``k`` of ``n`` along an axis is ``-1 + 2k/(n-1)`` (0 when ``n = 1``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

from .._checks import check_choice, check_int_tuple, check_tensor
from .cppn import PatternGenome, check_pattern_genome

__all__ = [
    "COORDINATE_FEATURES",
    "PatternNetwork",
    "WeightCoordinates",
    "activation_function",
    "axis_positions",
    "functional_forward",
    "grid_positions",
]

ACTIVATION_ORDER: tuple[str, ...] = ("sin", "sigmoid", "tanh", "relu", "abs", "gaussian", "identity")
COORDINATE_FEATURES: tuple[str, ...] = ("layer", "in_x", "in_y", "out_x", "out_y", "kernel_x", "kernel_y",
                                        "distance", "bias")


def activation_function(name: str, x: Tensor) -> Tensor:
    """The node activation ``name`` applied to ``x`` (any shape): sin, sigmoid, tanh, relu, abs,
    gaussian ``exp(-x^2)``, identity."""
    if name == "sin":
        return torch.sin(x)
    if name == "sigmoid":
        return torch.sigmoid(x)
    if name == "tanh":
        return torch.tanh(x)
    if name == "relu":
        return torch.relu(x)
    if name == "abs":
        return torch.abs(x)
    if name == "gaussian":
        return torch.exp(-x * x)
    if name == "identity":
        return x
    raise ValueError(f"unknown activation {name!r}")


class PatternNetwork(nn.Module):
    """A :class:`~neuroplastic.evolution.cppn.PatternGenome` compiled: ``forward(coords [N, C]) -> [N, outputs]``.

    Equation, node by node in topological order: ``v_n = act_n(b_n + sum_{c: s -> n} w_c * v_s)``, inputs
    ``v_i = coords[:, i]``; each node is one vectorised operation over all ``N`` coordinates. ``weights [E]``
    (one per genome connection, in the genome's order) and ``biases [M]`` (one per node, in order) are
    parameters; :meth:`to_genome` writes them back into a copy of the genome exactly (float32 values are exact in
    the genome's Python floats, and compiling that genome gives the same parameters bit for bit).
    """

    def __init__(self, genome: PatternGenome, *, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None) -> None:
        super().__init__()
        self.genome = check_pattern_genome(genome)
        self.weights = nn.Parameter(torch.tensor([c.weight for c in genome.connections], dtype=dtype, device=device))
        self.biases = nn.Parameter(torch.tensor([n.bias for n in genome.nodes], dtype=dtype, device=device))
        position = {n.id: k for k, n in enumerate(genome.nodes)}
        depth = dict.fromkeys(range(genome.num_inputs), 0)
        for node_id in genome.topological_order():
            depth[node_id] = 1 + max((depth[c.source] for c in genome.connections if c.target == node_id), default=0)
        # nodes grouped by depth, each level's nodes grouped by activation: one matmul per level over the rows of
        # all shallower levels (blocks), then one activation call per contiguous run of rows
        slot: dict[int, tuple[int, int]] = {i: (0, i) for i in range(genome.num_inputs)}  # id -> (block, row)
        self._levels: list[dict[str, Any]] = []
        for level in range(1, max(depth.values(), default=0) + 1):
            members = [n.id for n in genome.nodes if depth[n.id] == level]
            if not members:
                continue
            members.sort(key=lambda i: ACTIVATION_ORDER.index(genome.node(i).activation))
            row = {node_id: k for k, node_id in enumerate(members)}
            blocks = []
            for block in range(len(self._levels) + 1):
                edges = [(e, slot[c.source][1], row[c.target]) for e, c in enumerate(genome.connections)
                         if c.target in row and slot[c.source][0] == block]
                if edges:
                    blocks.append((block, *(torch.tensor(x, dtype=torch.long) for x in zip(*edges, strict=True))))
            runs: list[tuple[str, int, int]] = []
            for k, node_id in enumerate(members):
                activation = genome.node(node_id).activation
                if runs and runs[-1][0] == activation:
                    runs[-1] = (activation, runs[-1][1], k + 1)
                else:
                    runs.append((activation, k, k + 1))
            self._levels.append({"size": len(members), "blocks": blocks, "runs": runs,
                                 "biases": torch.tensor([position[m] for m in members], dtype=torch.long)})
            for node_id in members:
                slot[node_id] = (len(self._levels), row[node_id])
        self._outputs = [slot[o] for o in genome.outputs]

    @property
    def num_inputs(self) -> int:
        return self.genome.num_inputs

    def forward(self, coords: Tensor) -> Tensor:
        """``coords [N, num_inputs]`` -> ``[N, num_outputs]``."""
        check_tensor("coords", coords, ("N", self.num_inputs), like=self.weights, like_name="the network's weights")
        return self.forward_features(coords.t().contiguous()).t()

    def forward_features(self, features: Tensor) -> Tensor:
        """The same map feature-major, the faster layout: ``features [num_inputs, N]`` -> ``[num_outputs, N]``."""
        check_tensor("features", features, (self.num_inputs, "N"), like=self.weights,
                     like_name="the network's weights")
        device = features.device
        blocks = [features]
        for level in self._levels:
            total = self.biases[level["biases"].to(device)].unsqueeze(1)
            for block, edges, rows, cols in level["blocks"]:
                matrix = torch.zeros(level["size"], blocks[block].shape[0], dtype=features.dtype, device=device)
                matrix = matrix.index_put((cols.to(device), rows.to(device)), self.weights[edges.to(device)])
                total = total + matrix @ blocks[block]  # [size, N]
            total = total.expand(level["size"], features.shape[1])
            if len(level["runs"]) == 1:
                blocks.append(activation_function(level["runs"][0][0], total))
            else:  # split, not slices: its backward concatenates the gradients instead of zero-filling per slice
                parts = total.split([hi - lo for _, lo, hi in level["runs"]])
                blocks.append(torch.cat([activation_function(a, x) for (a, _, _), x in
                                         zip(level["runs"], parts, strict=True)]))
        return torch.stack([blocks[b][r] for b, r in self._outputs])

    def to_genome(self) -> PatternGenome:
        """A copy of the genome holding the current weights and biases (Lamarckian write-back)."""
        genome = PatternGenome(self.genome.num_inputs, [], list(self.genome.outputs), [])
        for node, bias in zip(self.genome.nodes, self.biases.detach().cpu().tolist(), strict=True):
            genome.nodes.append(type(node)(node.id, node.activation, float(bias)))
        for conn, weight in zip(self.genome.connections, self.weights.detach().cpu().tolist(), strict=True):
            genome.connections.append(type(conn)(conn.source, conn.target, float(weight)))
        return genome


def axis_positions(n: int, *, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """``[n]`` positions ``-1 + 2k/(n-1)`` (``[0]`` when ``n = 1``)."""
    if n == 1:
        return torch.zeros(1, device=device, dtype=dtype)
    return torch.linspace(-1.0, 1.0, n, device=device, dtype=dtype)


def grid_positions(shape: Sequence[int], *, device: torch.device | str | None = None,
                   dtype: torch.dtype = torch.float32) -> Tensor:
    """``[prod(shape), 2]`` (x, y) of each unit of a side laid out row-major on ``shape``: ``(n,)`` gives
    ``(x_k, 0)``, ``(h, w)`` gives ``(x = column, y = row)``."""
    shape = check_int_tuple("shape", shape)
    if len(shape) == 1:
        x = axis_positions(shape[0], device=device, dtype=dtype)
        return torch.stack([x, torch.zeros_like(x)], 1)
    if len(shape) != 2:
        raise ValueError(f"shape must be (n,) or (height, width), got {shape}")
    y, x = torch.meshgrid(axis_positions(shape[0], device=device, dtype=dtype),
                          axis_positions(shape[1], device=device, dtype=dtype), indexing="ij")
    return torch.stack([x.reshape(-1), y.reshape(-1)], 1)


def _layer_coordinates(layer: float, in_pos: Tensor, out_pos: Tensor, kernel: Sequence[int]) -> Tensor:
    """``[out, in, kh, kw, C]`` coordinates of one weight tensor (kernel ``(1, 1)`` for Linear)."""
    n_out, n_in = out_pos.shape[0], in_pos.shape[0]
    kx = axis_positions(kernel[1], dtype=in_pos.dtype)
    ky = axis_positions(kernel[0], dtype=in_pos.dtype)
    shape = (n_out, n_in, kernel[0], kernel[1])
    f = torch.zeros(*shape, len(COORDINATE_FEATURES), dtype=in_pos.dtype)
    f[..., 0] = layer
    f[..., 1] = in_pos[:, 0].view(1, n_in, 1, 1)
    f[..., 2] = in_pos[:, 1].view(1, n_in, 1, 1)
    f[..., 3] = out_pos[:, 0].view(n_out, 1, 1, 1)
    f[..., 4] = out_pos[:, 1].view(n_out, 1, 1, 1)
    f[..., 5] = kx.view(1, 1, 1, -1)
    f[..., 6] = ky.view(1, 1, -1, 1)
    f[..., 7] = torch.sqrt((f[..., 1] - f[..., 3]) ** 2 + (f[..., 2] - f[..., 4]) ** 2) / math.sqrt(8.0)
    return f


class WeightCoordinates(nn.Module):
    """The coordinates of every weight and bias of a target's Linear and Conv2d layers, and the target's parameter
    dict produced from a :class:`PatternNetwork` in one batched pass over all of them.

    Args:
        model: the target; its Linear and Conv2d modules, in ``named_modules`` order, are layers ``0..L-1``
            (other parameters are left to the model: :meth:`parameters_from` does not produce them).
        grids: module name -> ``(in_shape, out_shape)`` grids of that layer's input and output units (e.g.
            ``{"encoder": ((28, 28), (10, 10))}``); default ``(n,)`` lines. A Conv2d's units are its channels.
        outputs: module name -> the pattern network's output that gives the layer (default: output 0 for all).
        scale: ``"fan_in"`` multiplies a layer's produced weights and biases by ``1/sqrt(fan_in)`` (fan in =
            inputs x kernel size) so that a pattern of order 1 gives activations of order 1; ``"none"``: raw.

    Buffers ``coords [N_total, C]`` and its transpose ``features [C, N_total]`` (C = ``len(COORDINATE_FEATURES)``)
    hold all rows, weight tensors then biases of each layer in order; :attr:`slots` says which rows make which
    parameter.
    """

    def __init__(self, model: nn.Module, grids: Mapping[str, tuple[Sequence[int], Sequence[int]]] | None = None, *,
                 outputs: Mapping[str, int] | None = None, scale: str = "fan_in") -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        check_choice("scale", scale, ("fan_in", "none"))
        grids, outputs = dict(grids or {}), dict(outputs or {})
        layers = [(name, m) for name, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
        if not layers:
            raise ValueError("model has no Linear or Conv2d layer whose weights could be produced")
        unknown = (set(grids) | set(outputs)) - {name for name, _ in layers}
        if unknown:
            raise ValueError(f"grids/outputs name modules that are not Linear/Conv2d layers: {sorted(unknown)}")
        reference = next(model.parameters())
        rows: list[Tensor] = []
        self.slots: list[tuple[str, tuple[int, ...], int, int, int, float]] = []  # name, shape, start, stop, out, s
        start = 0
        for index, (name, module) in enumerate(layers):
            layer = float(axis_positions(len(layers))[index])
            n_in, n_out = (module.in_features, module.out_features) if isinstance(module, nn.Linear) else (
                module.in_channels // module.groups, module.out_channels)
            kernel = (1, 1) if isinstance(module, nn.Linear) else tuple(module.kernel_size)
            in_shape, out_shape = grids.get(name, ((n_in,), (n_out,)))
            in_shape, out_shape = check_int_tuple("grid", in_shape), check_int_tuple("grid", out_shape)
            if math.prod(in_shape) != n_in or math.prod(out_shape) != n_out:
                raise ValueError(f"grids[{name!r}] = {in_shape}, {out_shape} must have {n_in} and {n_out} units")
            out_index = outputs.get(name, 0)
            factor = 1.0 / math.sqrt(n_in * kernel[0] * kernel[1]) if scale == "fan_in" else 1.0
            in_pos, out_pos = grid_positions(in_shape), grid_positions(out_shape)
            prefix = f"{name}." if name else ""
            w = _layer_coordinates(layer, in_pos, out_pos, kernel)
            rows.append(w.reshape(-1, len(COORDINATE_FEATURES)))
            self.slots.append((prefix + "weight", tuple(module.weight.shape), start, start + rows[-1].shape[0],
                               out_index, factor))
            start += rows[-1].shape[0]
            if module.bias is not None:
                b = _layer_coordinates(layer, torch.zeros(1, 2), out_pos, (1, 1)).reshape(n_out, -1)
                b[:, 8] = 1.0
                rows.append(b)
                self.slots.append((prefix + "bias", (n_out,), start, start + n_out, out_index, factor))
                start += n_out
        self.register_buffer("coords", torch.cat(rows).to(device=reference.device, dtype=reference.dtype))
        self.register_buffer("features", self.coords.t().contiguous(), persistent=False)

    @property
    def num_weights(self) -> int:
        """Rows of :attr:`coords`: the produced weights and biases."""
        return int(self.coords.shape[0])

    def parameters_from(self, network: nn.Module) -> dict[str, Tensor]:
        """The target's weights and biases, ``name -> tensor`` of the target's shapes: ``network(coords)`` in one
        pass, split by layer, times each layer's scale (differentiable with respect to ``network``'s parameters).
        """
        if isinstance(network, PatternNetwork):
            out = network.forward_features(self.features)  # [outputs, N]
        else:
            out = network(self.coords)
            if out.dim() != 2 or out.shape[0] != self.num_weights:
                raise ValueError(f"network must map [N, C] to [N, outputs], got {list(out.shape)}")
            out = out.t()
        needed = max(s[4] for s in self.slots) + 1
        if out.shape[0] < needed:
            raise ValueError(f"the layers use {needed} outputs of the pattern network, it has {out.shape[0]}")
        # unbind and split (their backward stacks and concatenates) rather than slices (zero-filled per slice)
        lengths = [b - a for _, _, a, b, _, _ in self.slots]
        pieces = [row.split(lengths) for row in out[:needed].unbind(0)]
        return {name: (pieces[k][i] * s).reshape(shape) for i, (name, shape, _, _, k, s) in enumerate(self.slots)}

    def extra_repr(self) -> str:
        return f"weights={self.num_weights}, layers={len({s[0].rsplit('.', 1)[0] for s in self.slots})}"


def functional_forward(model: nn.Module, parameters: Mapping[str, Tensor], *args: Any, **kwargs: Any) -> Any:
    """Run ``model`` with ``parameters`` (e.g. :meth:`WeightCoordinates.parameters_from`) in place of its own
    (``torch.func.functional_call``; the model's other parameters and buffers are its own)."""
    return functional_call(model, dict(parameters), args, kwargs)

