"""Spike-train level backpropagation for (recurrent) spiking networks (ST-RSBP), without unrolling in time.

Zhang & Li 2019, "Spike-train level backpropagation for training deep recurrent spiking neural networks"
(NeurIPS). The gradient of a rate loss is computed from quantities of whole spike trains, accumulated online
during a forward simulation run without autograd, so the memory does not grow with the number of steps T.

Neuron model: the library's discrete LIF with a hard reset to 0 (``reset="hard", v_reset=0``; the paper's
neurons reset to rest):  ``h_t = decay h'_{t-1} + sum_j w_ij s_j(t) + b_i``, spike when ``h_t >= theta``,
``h'_t = h_t (1 - s_i(t))``. For recurrent layers the inputs ``s_j`` include the layer's own spikes of step
``t - 1`` through ``W_rec``.

Spike-train level post-synaptic potential (S-PSP) of synapse ``j -> i``: the PSPs of ``j``'s spikes since
``i``'s last reset, summed over ``i``'s firing times:

    tr_ij(t) = decay_i (1 - s_i(t-1)) tr_ij(t-1) + s_j(t)          (PSP trace, reset by the post spike)
    e_ij     = sum_{t : s_i(t) = 1} tr_ij(t)                        (the S-PSP)

Then ``h_i(t) = sum_j w_ij tr_ij(t) + b_i tr_ib(t)`` exactly, and summing at the firing times
``sum_j w_ij e_ij + b_i e_ib = sum_f h_i(t_f) ~= theta_i o_i`` (each spike needs the threshold; the
overshoot is neglected), the paper's spike-count relation ``o_i ~= a_i / theta_i`` with ``a_i`` the total S-PSP.

Gradients (rate loss ``L(o_out)``; ``g = dL/do`` of a layer):

    recurrent layer:  o = (W_in*E_in 1 + W_rec*E_rec 1 + b e_b) / theta, a fixed point in o through
                      ``de_il/do_l ~= e_il / o_l``; with M_il = w_rec_il e_rec_il / (theta_i o_l):
                      lambda solves (I - M)^T lambda = g  (the linear system replaces unrolling in time)
    feed-forward:     lambda = g
    delta_i = lambda_i / theta_i;   dL/dw_ij = sum_batch delta_i e_ij;   dL/db_i = sum_batch delta_i e_ib
    to the layer below:  dL/do_j = sum_i delta_i w_ij e_ij / o_j   (0 for a silent o_j)

Approximations (as in the paper): the overshoot above the threshold is neglected; ``de_ij/do_j`` is taken as
``e_ij / o_j`` (the S-PSP grows in proportion to the presynaptic count; the reference code instead uses a
fitted polynomial "effect ratio" of the two counts); ``de_ij/do_i`` (how the post neuron's own resets
change its S-PSPs) is ignored. A silent neuron (``o_i = 0``) has ``e_ij = 0`` and so no gradient.

Layers: a :class:`~neuroplastic.neurons.modules.RecurrentLIF` (``adaptive=False``) or a feed-forward spiking
layer ``nn.Sequential(nn.Linear, LIF)`` (a spiking MLP is a list of these). Per-synapse traces make the
memory ``O(B * sum of H_l * (I_l + H_l))``, independent of T.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from neuroplastic._checks import check_number
from neuroplastic.neurons.lif import _lif_step
from neuroplastic.neurons.modules import LIF, LIFCell, RecurrentLIF

__all__ = ["SpikeTrainStats", "st_rsbp_forward", "st_rsbp_backward", "rate_loss", "spiking_forward",
           "STRSBP", "peak_tensor_bytes"]


@dataclass
class SpikeTrainStats:
    """Spike-train level quantities of one layer over a whole input (``B`` samples, ``H`` neurons, ``I`` inputs).

    ``counts: [B, H]`` spike counts; ``e_in: [B, H, I]`` input S-PSPs; ``e_bias: [B, H]`` S-PSP of the bias (a
    constant input of 1 per step); ``e_rec: [B, H, H]`` recurrent S-PSPs (None for a feed-forward layer);
    ``in_counts: [B, I]`` the input spike counts.
    """

    counts: Tensor
    e_in: Tensor
    e_bias: Tensor
    e_rec: Tensor | None
    in_counts: Tensor


def _parts(layer: nn.Module, index: int) -> tuple[nn.Linear, nn.Linear | None, nn.Module]:
    """(input linear, recurrent linear or None, neurons) of a supported layer; refuses the others."""
    if isinstance(layer, RecurrentLIF):
        if layer.adaptive:
            raise ValueError(f"layers[{index}]: ST-RSBP needs non-adaptive neurons (RecurrentLIF(adaptive=False))")
        parts = (layer.input_linear, layer.recurrent_linear, layer.neurons)
    elif (isinstance(layer, nn.Sequential) and len(layer) == 2 and isinstance(layer[0], nn.Linear)
          and isinstance(layer[1], (LIF, LIFCell))):
        parts = (layer[0], None, layer[1])
    else:
        raise TypeError(f"layers[{index}] must be a RecurrentLIF or nn.Sequential(nn.Linear, LIF), "
                        f"got {type(layer).__name__}")
    neurons = parts[2]
    if neurons.reset != "hard" or neurons.v_reset != 0.0:
        raise ValueError(f"layers[{index}]: ST-RSBP needs reset='hard' with v_reset=0 (the S-PSPs restart at each "
                         f"post spike), got reset={neurons.reset!r}, v_reset={neurons.v_reset}")
    if tuple(neurons.size) != (parts[0].out_features,):
        raise ValueError(f"layers[{index}]: the neurons' size {tuple(neurons.size)} must be (out_features,) = "
                         f"({parts[0].out_features},)")
    return parts


def _check_layers_input(layers: object, x: object) -> list[tuple[nn.Linear, nn.Linear | None, nn.Module]]:
    if not isinstance(layers, (list, tuple, nn.ModuleList, nn.Sequential)) or len(layers) == 0:
        raise TypeError("layers must be a non-empty sequence of RecurrentLIF / nn.Sequential(nn.Linear, LIF)")
    parts = [_parts(layer, k) for k, layer in enumerate(layers)]
    for k in range(1, len(parts)):
        if parts[k][0].in_features != parts[k - 1][0].out_features:
            raise ValueError(f"layers[{k}] takes {parts[k][0].in_features} inputs but layers[{k - 1}] has "
                             f"{parts[k - 1][0].out_features} neurons")
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor [B, T, I] of spikes, got {type(x).__name__}")
    if not x.is_floating_point() or x.dim() != 3 or x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"x must be a floating-point [B, T, I] tensor with B, T >= 1, got dtype {x.dtype}, "
                         f"shape {list(x.shape)}")
    if x.shape[2] != parts[0][0].in_features:
        raise ValueError(f"x has {x.shape[2]} inputs, layers[0] takes {parts[0][0].in_features}")
    weight = parts[0][0].weight
    if x.device != weight.device or x.dtype != weight.dtype:
        raise ValueError(f"x ({x.dtype}, {x.device}) must match the layers' parameters ({weight.dtype}, "
                         f"{weight.device})")
    return parts


def st_rsbp_forward(layers: Sequence[nn.Module], x: Tensor) -> list[SpikeTrainStats]:
    """Simulate the network on ``x: [B, T, I]`` without autograd, accumulating each layer's spike-train stats.

    Runs step by step through all layers at once (layer ``l`` at step ``t`` sees layer ``l - 1``'s spikes of
    step ``t``), with the same spikes as the modules' own forward. Memory independent of ``T``: per layer the
    traces and S-PSPs ``[B, H, I]`` (+ ``[B, H, H]`` if recurrent). Returns one :class:`SpikeTrainStats` per
    layer (the last layer's ``counts`` are the network's output counts).
    """
    parts = _check_layers_input(layers, x)
    batch, steps = x.shape[0], x.shape[1]
    with torch.no_grad():
        state = []
        for lin, rec, neurons in parts:
            n_out, n_in = lin.out_features, lin.in_features
            z = x.new_zeros
            state.append({
                "v": z(batch, n_out), "s": z(batch, n_out), "tr_in": z(batch, n_out, n_in), "tr_b": z(batch, n_out),
                "tr_rec": z(batch, n_out, n_out) if rec is not None else None,
                "stats": SpikeTrainStats(z(batch, n_out), z(batch, n_out, n_in), z(batch, n_out),
                                         z(batch, n_out, n_out) if rec is not None else None, z(batch, n_in)),
                "decay": neurons.decay().to(x.dtype), "theta": neurons.threshold.to(x.dtype),
            })
        for t in range(steps):
            inp = x[:, t]
            if not bool(torch.isfinite(inp).all()):  # step by step: a check over all of x would allocate O(T)
                raise ValueError(f"x must be finite (step {t} is not)")
            for (lin, rec, neurons), st in zip(parts, state, strict=True):
                stats: SpikeTrainStats = st["stats"]
                keep = st["decay"] * (1.0 - st["s"])  # decay of the traces; 0 after a post spike (hard reset)
                st["tr_in"].mul_(keep.unsqueeze(2)).add_(inp.unsqueeze(1))
                st["tr_b"].mul_(keep).add_(1.0)
                current = lin(inp)
                if rec is not None:
                    st["tr_rec"].mul_(keep.unsqueeze(2)).add_(st["s"].unsqueeze(1))
                    current = current + st["s"] @ rec.weight.t()
                spike, v = _lif_step(st["v"], current, st["decay"], st["theta"], "hard", 0.0, neurons.rectifier,
                                     False, neurons.surrogate)
                st["v"], st["s"] = v, spike
                stats.in_counts.add_(inp)
                stats.counts.add_(spike)
                fired = spike.unsqueeze(2)
                stats.e_in.addcmul_(fired, st["tr_in"])
                stats.e_bias.addcmul_(spike, st["tr_b"])
                if rec is not None:
                    stats.e_rec.addcmul_(fired, st["tr_rec"])
                inp = spike
    return [st["stats"] for st in state]


def _safe_div(num: Tensor, den: Tensor) -> Tensor:
    """``num / den`` where ``den > 0``, else 0 (``den`` broadcast to ``num``)."""
    return torch.where(den > 0, num / den.clamp_min(1.0), torch.zeros_like(num))


def st_rsbp_backward(layers: Sequence[nn.Module], stats: Sequence[SpikeTrainStats], grad_counts: Tensor, *,
                     ridge: float = 1e-3) -> list[dict[str, Tensor]]:
    """Weight gradients from spike-train stats and ``grad_counts = dL/do_out: [B, H_out]`` (see the module).

    For a recurrent layer the linear system ``(I - M)^T lambda = g`` is solved per sample (``M`` as in the
    module docstring); ``ridge`` (>= 0) is added to the diagonal of ``I - M`` scaled by its largest entry, to keep
    the solve defined when the recurrent loop gain approaches 1. Returns per layer a dict with ``"weight"``
    (``[H, I]``), ``"bias"`` (``[H]``, if the layer has one) and ``"recurrent"`` (``[H, H]``, recurrent layers),
    summed over the batch.
    """
    if not isinstance(layers, (list, tuple, nn.ModuleList, nn.Sequential)) or len(layers) == 0:
        raise TypeError("layers must be a non-empty sequence of RecurrentLIF / nn.Sequential(nn.Linear, LIF)")
    parts = [_parts(layer, k) for k, layer in enumerate(layers)]
    if not isinstance(stats, (list, tuple)) or len(stats) != len(parts) or not all(
            isinstance(s, SpikeTrainStats) for s in stats):
        raise TypeError(f"stats must be the list of {len(parts)} SpikeTrainStats of st_rsbp_forward")
    check_number("ridge", ridge, minimum=0)
    out_counts = stats[-1].counts
    if not isinstance(grad_counts, Tensor) or grad_counts.shape != out_counts.shape:
        got = list(grad_counts.shape) if isinstance(grad_counts, Tensor) else type(grad_counts).__name__
        raise ValueError(f"grad_counts must be a tensor of the output counts' shape {list(out_counts.shape)}, "
                         f"got {got}")
    if not bool(torch.isfinite(grad_counts).all()):
        raise ValueError("grad_counts must be finite")
    grads: list[dict[str, Tensor]] = [{} for _ in parts]
    g = grad_counts.to(out_counts.dtype)
    with torch.no_grad():
        for k in range(len(parts) - 1, -1, -1):
            lin, rec, neurons = parts[k]
            st = stats[k]
            theta = neurons.threshold.to(g.dtype)
            lam = g
            if rec is not None:
                m = rec.weight.unsqueeze(0) * _safe_div(st.e_rec, st.counts.unsqueeze(1)) / theta.view(1, -1, 1)
                eye = torch.eye(m.shape[1], dtype=m.dtype, device=m.device)
                a = eye - m
                if ridge > 0:
                    scale = a.abs().amax(dim=(1, 2), keepdim=True)
                    a = a + ridge * scale * eye
                lam = torch.linalg.solve(a.transpose(1, 2), g.unsqueeze(2)).squeeze(2)
            delta = lam / theta
            grads[k]["weight"] = torch.einsum("bi,bij->ij", delta, st.e_in)
            if lin.bias is not None:
                grads[k]["bias"] = (delta * st.e_bias).sum(0)
            if rec is not None:
                grads[k]["recurrent"] = torch.einsum("bi,bij->ij", delta, st.e_rec)
            if k > 0:
                g = _safe_div(torch.einsum("bi,ij,bij->bj", delta, lin.weight, st.e_in), st.in_counts)
    return grads


def rate_loss(counts: Tensor, targets: Tensor) -> Tensor:
    """The paper's rate loss: ``0.5 * sum_i (o_i - y_i)^2`` per sample, averaged over the batch.

    ``counts, targets: [B, C]`` (output spike counts and desired counts). Differentiable in ``counts``.
    """
    if not isinstance(counts, Tensor) or not isinstance(targets, Tensor):
        raise TypeError("counts and targets must be tensors")
    if counts.dim() != 2 or counts.shape != targets.shape:
        raise ValueError(f"counts and targets must both be [B, C], got {list(counts.shape)} and {list(targets.shape)}")
    return 0.5 * (counts - targets).pow(2).sum(1).mean()


def spiking_forward(layers: Sequence[nn.Module], x: Tensor) -> Tensor:
    """The network's output spikes ``[B, T, H_out]`` through the modules' own (autograd) forward: the BPTT path.

    Each layer: ``RecurrentLIF(x)`` or ``LIF(Linear(x))``; the surrogate gradients of the neurons apply.
    """
    _check_layers_input(layers, x)
    if not bool(torch.isfinite(x).all()):
        raise ValueError("x must be finite")
    for layer in layers:
        x = layer(x)[0] if isinstance(layer, RecurrentLIF) else layer[1](layer[0](x))[0]
    return x


class STRSBP:
    """Trains a spiking MLP / recurrent SNN with ST-RSBP: ``step(x, targets)`` writes ``.grad`` of every weight.

    ``layers``: the list of RecurrentLIF / ``nn.Sequential(nn.Linear, LIF)`` layers. ``ridge``: see
    :func:`st_rsbp_backward`. After ``compute_grads`` any ``torch.optim`` optimizer over the layers' parameters
    can step. Holds no state besides the layers (``state_dict`` is the layers').
    """

    def __init__(self, layers: Sequence[nn.Module], *, ridge: float = 1e-3) -> None:
        if not isinstance(layers, (list, tuple, nn.ModuleList, nn.Sequential)) or len(layers) == 0:
            raise TypeError("layers must be a non-empty sequence of RecurrentLIF / nn.Sequential(nn.Linear, LIF)")
        for k, layer in enumerate(layers):
            _parts(layer, k)
        self.layers = list(layers)
        self.ridge = float(check_number("ridge", ridge, minimum=0))

    def compute_grads(self, x: Tensor, targets: Tensor) -> tuple[float, Tensor]:
        """Forward ``x: [B, T, I]``, rate loss against ``targets: [B, C]``; accumulates the gradients into ``.grad``.

        Returns ``(loss, output counts [B, C])``.
        """
        stats = st_rsbp_forward(self.layers, x)
        counts = stats[-1].counts
        if not isinstance(targets, Tensor) or targets.shape != counts.shape:
            raise ValueError(f"targets must be a tensor of shape {list(counts.shape)} (desired output counts), got "
                             f"{list(targets.shape) if isinstance(targets, Tensor) else type(targets).__name__}")
        if not bool(torch.isfinite(targets).all()):
            raise ValueError("targets must be finite")
        targets = targets.to(counts.dtype)
        loss = rate_loss(counts, targets)
        grads = st_rsbp_backward(self.layers, stats, (counts - targets) / counts.shape[0], ridge=self.ridge)
        for layer, grad in zip(self.layers, grads, strict=True):
            lin, rec, _ = _parts(layer, 0)
            pairs = [(lin.weight, grad["weight"])]
            if lin.bias is not None:
                pairs.append((lin.bias, grad["bias"]))
            if rec is not None:
                pairs.append((rec.weight, grad["recurrent"]))
            for param, value in pairs:
                if param.grad is None:
                    param.grad = value.clone()
                else:
                    param.grad.add_(value)
        return float(loss), counts


class _PeakBytes(TorchDispatchMode):
    """Tracks the bytes of the tensor storages created inside the mode that are still alive, and their peak."""

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, int] = {}
        self.current = 0
        self.peak = 0

    def _free(self, key: int) -> None:
        self.current -= self.live.pop(key, 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        # views and in-place results share an input's storage: no new memory
        inputs = {t.untyped_storage().data_ptr() for t in tree_flatten((args, kwargs))[0] if isinstance(t, Tensor)}
        for item in tree_flatten(out)[0]:
            if isinstance(item, Tensor):
                storage = item.untyped_storage()
                key = storage.data_ptr()
                if key and key not in inputs and key not in self.live:
                    self.live[key] = storage.nbytes()
                    self.current += storage.nbytes()
                    self.peak = max(self.peak, self.current)
                    weakref.finalize(storage, self._free, key)
        return out


def peak_tensor_bytes(fn: Callable[[], object]) -> int:
    """Peak bytes of tensors created by ``fn()`` and alive at the same time (incl. those autograd saves).

    Counts the storages of every tensor an operator returns while ``fn`` runs, until they are freed; tensors
    that existed before the call (parameters, inputs) are not counted. A measure of memory, not time.
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    with _PeakBytes() as mode:
        fn()
    return mode.peak
