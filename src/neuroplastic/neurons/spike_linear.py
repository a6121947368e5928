"""Event-driven linear layer: ``x W^T + b`` in time proportional to the number of spikes in ``x``.

A spiking layer's input is mostly zeros (a neuron fires in a few percent of the steps), yet a dense matrix
product spends the same work on every entry. :func:`spike_linear` indexes the nonzero entries of the input
once (compressed rows), then

- forward: adds up, for every row of the input, the rows of ``W^T`` its nonzeros select (scaled by their
  values, so any input works; for spikes the values are 1);
- backward: the weight's gradient ``dW[:, i] = sum_r x[r, i] dy[r, :]`` over the rows where input ``i`` is
  nonzero (compressed columns); the input's gradient ``dy W`` is a dense product (PyTorch), computed only
  when the input requires it; the bias's is ``dy.sum(0)``.

Both sums run in C kernels (:mod:`neuroplastic.neurons.spike_kernels`) over tiles of 32 output features, so the
rows they read stay in cache and the sums stay in vector registers. The cost is about ``nnz * O`` additions
instead of ``R * I * O`` multiply-adds (measured against the dense product: ``docs/benchmarks.md``,
``benchmarks/snn_layer.py``). When the input is denser than ``max_density`` (default 0.25, where the two
cost about the same), on GPU, for other dtypes than float32/float64 or without a C
compiler, it is ``torch.nn.functional.linear``. Results equal the dense product to rounding (the sums run in
another order).

Shapes: ``x: [..., I]``, ``weight: [O, I]``, ``bias: [O]`` or None -> ``[..., O]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neuroplastic._checks import check_bool, check_int, check_number, check_same_placement
from neuroplastic.neurons.spike_kernels import SNNKernels, snn_kernels

__all__ = ["spike_linear", "SpikeLinear"]


class _SpikeLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None, kernels: SNNKernels, row_ptr: Tensor,
                cols: Tensor, vals: Tensor) -> Tensor:
        out = torch.empty(x.shape[0], weight.shape[0], dtype=x.dtype)
        # [O, I] weights, or the transpose view of [I, O] weights (the plastic layers'): read in place, no copy
        transposed = not weight.is_contiguous() and weight.t().is_contiguous()
        kernels.linear_forward(row_ptr, cols, vals, weight.t() if transposed else weight.contiguous(),
                               None if bias is None else bias.contiguous(), out, transposed)
        ctx.kernels, ctx.transposed = kernels, transposed
        ctx.shape = (x.shape[0], x.shape[1])
        ctx.save_for_backward(weight, row_ptr, cols, vals)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        weight, row_ptr, cols, vals = ctx.saved_tensors
        kernels: SNNKernels = ctx.kernels
        n_rows, n_in = ctx.shape
        grad_out = grad_out.contiguous()
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = grad_out @ weight
        if ctx.needs_input_grad[1]:
            col_ptr = torch.empty(n_in + 1, dtype=torch.int64)
            rows, cvals = torch.empty_like(cols), torch.empty_like(vals)
            kernels.csr_to_csc(n_rows, n_in, row_ptr, cols, vals, col_ptr, rows, cvals)
            if ctx.transposed:  # laid out as the weight: [I, O] memory, an [O, I] view (no copy when accumulated)
                grad_t = torch.empty(weight.shape[1], weight.shape[0], dtype=grad_out.dtype)
                kernels.linear_weight_grad(col_ptr, rows, cvals, grad_out, grad_t, transposed=True)
                grad_w = grad_t.t()
            else:
                grad_w = torch.empty(weight.shape, dtype=grad_out.dtype)
                kernels.linear_weight_grad(col_ptr, rows, cvals, grad_out, grad_w)
        if ctx.needs_input_grad[2]:
            grad_b = grad_out.sum(0)
        return grad_x, grad_w, grad_b, None, None, None, None


def spike_linear(x: Tensor, weight: Tensor, bias: Tensor | None = None, *, max_density: float = 0.25) -> Tensor:
    """``x W^T + b`` that skips the zeros of ``x`` (event-driven; see the module docstring).

    ``x: [..., I]`` (typically spikes ``[B, T, I]``), ``weight: [O, I]``, ``bias: [O]`` or None; returns
    ``[..., O]``, differentiable in all three. ``weight`` may be the transpose view ``W.t()`` of weights stored
    ``[I, O]`` (as the plastic layers store them): the kernels then read it in place and write its gradient
    in that layout, with no copy either way. Falls back to ``F.linear`` when the input's density of nonzeros
    exceeds ``max_density`` or the native kernels do not apply (GPU, other dtypes, no compiler).
    """
    if not isinstance(x, Tensor) or not isinstance(weight, Tensor):
        raise TypeError("x and weight must be tensors")
    if weight.dim() != 2 or x.dim() < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"x [..., I] and weight [O, I] must agree on I; got x {list(x.shape)}, "
                         f"weight {list(weight.shape)}")
    if bias is not None and (not isinstance(bias, Tensor) or bias.dim() != 1 or bias.shape[0] != weight.shape[0]):
        raise ValueError(f"bias must have shape [{weight.shape[0]}], got "
                         f"{list(bias.shape) if isinstance(bias, Tensor) else type(bias).__name__}")
    check_number("max_density", max_density, minimum=0, maximum=1)
    for name, tensor in (("x", x), ("weight", weight)):
        if not tensor.is_floating_point():
            raise ValueError(f"{name} must be a floating-point tensor (spikes as 0.0/1.0), got dtype {tensor.dtype}")
    check_same_placement("x", x, weight, "the weights")
    if bias is not None:
        check_same_placement("bias", bias, weight, "the weights")
    kernels = snn_kernels(x)
    usable = (kernels is not None and weight.dtype == x.dtype and weight.device.type == "cpu"
              and (bias is None or bias.dtype == x.dtype) and x.numel() > 0)
    if not usable:
        return F.linear(x, weight, bias)
    leading = x.shape[:-1]
    x2 = x.detach().reshape(-1, x.shape[-1]).contiguous()
    n_rows, n_in = x2.shape
    counts = torch.empty(n_rows, dtype=torch.int64)
    kernels.row_counts(x2, counts)
    row_ptr = torch.zeros(n_rows + 1, dtype=torch.int64)
    torch.cumsum(counts, 0, out=row_ptr[1:])
    nnz = int(row_ptr[-1])
    if nnz > max_density * n_rows * n_in:
        return F.linear(x, weight, bias)
    cols = torch.empty(nnz, dtype=torch.int32)
    vals = torch.empty(nnz, dtype=x.dtype)
    kernels.fill_csr(x2, row_ptr, cols, vals)
    out = _SpikeLinear.apply(x.reshape(-1, n_in), weight, bias, kernels, row_ptr, cols, vals)
    return out.reshape(*leading, weight.shape[0])


class SpikeLinear(nn.Linear):
    """``nn.Linear`` for spike inputs: the same parameters and results, computed by :func:`spike_linear`.

    A drop-in replacement (``weight [out, in]``, ``bias [out]``, same initialisation, same ``state_dict``)
    whose forward and backward skip the zeros of the input; ``max_density`` is the input density above which
    it uses the dense product.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, max_density: float = 0.25,
                 device=None, dtype=None) -> None:
        check_int("in_features", in_features)
        check_int("out_features", out_features)
        check_bool("bias", bias)
        super().__init__(in_features, out_features, bias, device=device, dtype=dtype)
        self.max_density = float(check_number("max_density", max_density, minimum=0, maximum=1))

    def forward(self, x: Tensor) -> Tensor:
        return spike_linear(x, self.weight, self.bias, max_density=self.max_density)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", max_density={self.max_density}"
