"""Hebbian subspace learning: lateral neurons whose weights converge to the principal subspace of their inputs.

The rule of Xiao et al. 2024 ("Hebbian learning based orthogonal projection for continual learning of spiking
neural networks", ICLR; HLOP), Oja's subspace rule (Oja 1989) with some rows held fixed:

- :func:`oja_subspace_update`: one step of ``dH = eta * mean_b y_b (x_b - H^T y_b)^T`` with ``y = H x``, i.e.
  ``dH = eta (Y^T X - Y^T Y H) / B`` (the paper's Eq. 2 with the lateral feedback ``x_hat = H^T y``), the rows
  ``[:fixed]`` (the subspaces of earlier tasks) left unchanged.
- :func:`orthonormal_rows`, :func:`complement_rows` (a basis of the orthogonal complement),
  :func:`project_out` (``g <- g - (g Q^T) Q``), :func:`principal_angle_cosines`
  (the cosines of the principal angles between two subspaces, from the singular values of ``Q_a Q_b^T``).
- :class:`SubspaceNeurons`: the lateral neurons of one layer as a module; ``weight [k, n]`` a buffer in
  ``state_dict``, grown by new rows (orthogonal to the old ones, drawn from the module's generator) and
  trained by :meth:`SubspaceNeurons.fit` with the old rows fixed.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from neuroplastic._checks import check_bool, check_finite, check_int, check_number, check_tensor

__all__ = ["oja_subspace_update", "orthonormal_rows", "complement_rows", "project_out", "principal_angle_cosines",
           "SubspaceNeurons"]


def _check_rows(name: str, weight: object, features: int | None = None) -> Tensor:
    check_tensor(name, weight, ("k", "n") if features is None else ("k", features))
    return check_finite(name, weight)  # type: ignore[arg-type]


def oja_subspace_update(weight: Tensor, x: Tensor, rate: float, *, fixed: int = 0,
                        clip: float | None = None) -> Tensor:
    """One step of Oja's subspace rule on a batch, the first ``fixed`` rows held (HLOP's lateral neurons).

    Xiao et al. 2024 (HLOP, ICLR), Eq. 2; Oja 1989::

        y_b = H x_b                      (lateral neurons' responses)
        x_hat_b = H^T y_b                (their feedback, the reconstruction)
        dH = mean_b y_b (x_b - x_hat_b)^T = (Y^T X - Y^T Y H) / B
        H' = H + rate * clamp(dH, -clip, clip),   with dH[:fixed] = 0

    Fixed points with ``dH = 0`` are the bases of the principal subspaces of ``x``; stable ones have orthonormal
    rows spanning the top-``k`` principal subspace of ``E[x x^T]`` (given the fixed rows, the subspace of the
    residual). The paper's code clamps ``dH`` to [-10, 10] (``clip``).

    Args:
        weight: ``H [k, n]``, ``k`` lateral neurons on ``n`` inputs.
        x: ``[B, n]`` inputs (presynaptic activities, e.g. spikes or rates), same dtype and device.
        rate: ``eta > 0``.
        fixed: the number of leading rows not updated (``0 <= fixed <= k``).
        clip: clamp each entry of ``dH`` to ``[-clip, clip]`` (None: no clamp).

    Returns:
        The updated ``H [k, n]`` (a new tensor).
    """
    _check_rows("weight", weight)
    check_tensor("x", x, ("B", weight.shape[1]), like=weight, like_name="weight")
    if x.shape[0] == 0:
        raise ValueError("x must hold at least one example, got shape [0, n]")
    rate = check_number("rate", rate, minimum=0.0, exclusive_minimum=True)
    fixed = check_int("fixed", fixed, minimum=0, maximum=weight.shape[0])
    if clip is not None:
        clip = check_number("clip", clip, minimum=0.0, exclusive_minimum=True)
    y = x @ weight.T
    residual = x - y @ weight  # x - x_hat: one [B, k] x [k, n] product, shared by every row
    delta = y[:, fixed:].T @ residual / x.shape[0]  # only the free rows are computed
    if clip is not None:
        delta = delta.clamp(-clip, clip)
    out = weight.clone()
    out[fixed:] += rate * delta
    return out


def orthonormal_rows(weight: Tensor, *, tolerance: float = 1e-6) -> Tensor:
    """An orthonormal basis ``Q [r, n]`` of the row space of ``weight [k, n]`` (``r`` its numerical rank).

    From the reduced QR of ``weight^T`` (Householder); a row whose ``|R_ii|`` is below ``tolerance`` times the
    largest is dropped, so ``Q Q^T = I_r`` and ``Q^T Q`` is the orthogonal projector onto the row space.
    Rows are kept in order (the span of the first ``j`` rows of ``Q`` is that of the first ``j`` of ``weight``).
    """
    _check_rows("weight", weight)
    tolerance = check_number("tolerance", tolerance, minimum=0.0)
    if weight.shape[0] == 0:
        return weight.clone()
    q, r = torch.linalg.qr(weight.T)
    diagonal = r.diagonal().abs()
    keep = diagonal > tolerance * diagonal.max().clamp_min(torch.finfo(weight.dtype).tiny)
    return q.T[keep].contiguous()


def complement_rows(basis: Tensor) -> Tensor:
    """An orthonormal basis ``C [n - k, n]`` of the orthogonal complement of the row space of ``Q [k, n]``.

    ``Q`` must have orthonormal rows (:func:`orthonormal_rows`); then ``C^T C = I - Q^T Q``, so
    ``g - (g Q^T) Q = (g C^T) C`` with ``2 (n - k)`` instead of ``2 k`` multiply-adds per row of ``g``: the cheaper
    form of :func:`project_out` when ``k > n / 2``. From the complete QR of ``Q^T`` in float64 (its last
    ``n - k`` columns), returned in ``Q``'s dtype; ``[0, n]`` when ``k = n``.
    """
    _check_rows("basis", basis)
    k, n = basis.shape
    if k > n:
        raise ValueError(f"basis must have at most n = {n} rows to be orthonormal, got {k}")
    gram = basis.double() @ basis.double().T
    if not torch.allclose(gram, torch.eye(k, dtype=torch.float64, device=basis.device),
                          atol=max(1e-6, 100 * torch.finfo(basis.dtype).eps) ** 0.5):
        raise ValueError("basis must have orthonormal rows (Q Q^T = I); build it with orthonormal_rows")
    full, _ = torch.linalg.qr(basis.double().T, mode="complete")
    return full[:, k:].T.contiguous().to(basis.dtype)


def project_out(grad: Tensor, basis: Tensor) -> Tensor:
    """Project a weight gradient orthogonal to an input subspace: ``g - (g Q^T) Q`` (HLOP's projection).

    Xiao et al. 2024 (HLOP), Eq. 3 with the converged lateral weights: ``g (I - Q^T Q)``; with orthonormal rows
    ``Q`` a step ``W <- W - lr g'`` leaves ``W x`` unchanged for every ``x`` in the span of ``Q``.

    Args:
        grad: ``g [out, n]`` (the gradient of a weight ``W [out, n]`` acting on inputs ``x [n]``).
        basis: ``Q [k, n]`` with orthonormal rows (:func:`orthonormal_rows`), same dtype and device.

    Returns:
        ``[out, n]``, a new tensor.
    """
    check_tensor("grad", grad, ("out", "n"))
    check_tensor("basis", basis, ("k", grad.shape[1]), like=grad, like_name="grad")
    return grad - (grad @ basis.T) @ basis


def principal_angle_cosines(a: Tensor, b: Tensor) -> Tensor:
    """The cosines of the principal angles between the row spaces of ``a [k, n]`` and ``b [m, n]``, descending.

    Björck & Golub 1973: the singular values of ``Q_a Q_b^T`` with ``Q`` orthonormal bases of the row spaces
    (:func:`orthonormal_rows`); ``min(rank a, rank b)`` values in [0, 1]. The last is the cosine of the largest
    principal angle (1 when one subspace contains the other).
    """
    _check_rows("a", a)
    _check_rows("b", b, a.shape[1])
    qa, qb = orthonormal_rows(a), orthonormal_rows(b.to(a.dtype))
    if qa.shape[0] == 0 or qb.shape[0] == 0:
        raise ValueError("a and b must have non-zero row spaces")
    return torch.linalg.svdvals(qa @ qb.T).clamp(0.0, 1.0)


class SubspaceNeurons(nn.Module):
    """The lateral subspace neurons of one layer (HLOP): ``weight [k, n]`` grown per task, trained by Oja's rule.

    Xiao et al. 2024 (HLOP, ICLR). ``grow(count)`` adds ``count`` rows (capped so that ``k <= n``), drawn from
    the module's generator and orthonormalised against the rows already there; ``fit(x, ...)`` runs
    :func:`oja_subspace_update` over ``x [N, n]`` in minibatches (with momentum, as the paper's code) with the
    rows that existed before the last ``grow`` fixed; ``basis()`` is an orthonormal basis of the learnt
    subspace (:func:`orthonormal_rows`), or the rows as they are with ``orthonormalize=False`` (the paper's
    ``H^T H`` projection). ``weight`` and the momentum are buffers and the generator's state is in
    ``state_dict`` (extra state), so a loaded module continues exactly.

    Args:
        features: ``n``, the layer's input size.
        seed: seed of the generator of new rows.
        orthonormalize: make :meth:`basis` orthonormal.
    """

    def __init__(self, features: int, *, seed: int = 0, orthonormalize: bool = True) -> None:
        super().__init__()
        self.features = check_int("features", features, minimum=1)
        self.orthonormalize = check_bool("orthonormalize", orthonormalize)
        self.generator = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
        self.register_buffer("weight", torch.zeros(0, self.features))
        self.register_buffer("momentum", torch.zeros(0, self.features))
        self.fixed = 0  # rows held by fit (those before the last grow)
        self.sizes: list[int] = []  # rows added by each grow

    def extra_repr(self) -> str:
        return f"features={self.features}, rows={self.weight.shape[0]}, sizes={self.sizes}"

    @property
    def rows(self) -> int:
        return int(self.weight.shape[0])

    def grow(self, count: int) -> int:
        """Add up to ``count`` new lateral neurons (orthonormal, orthogonal to the old rows); returns how many."""
        count = min(check_int("count", count, minimum=0), self.features - self.rows)
        self.fixed = self.rows
        if count:
            draw = torch.randn(self.features, self.rows + count, generator=self.generator, dtype=torch.float64)
            draw[:, : self.rows] = self.weight.T.to(torch.float64)
            q = torch.linalg.qr(draw)[0][:, self.rows:].T  # orthogonal to the old rows' span (when orthonormal)
            self.weight = torch.cat([self.weight, q.to(self.weight)])
            self.momentum = torch.cat([self.momentum, torch.zeros_like(q, dtype=self.weight.dtype)])
        self.sizes.append(count)
        return count

    @torch.no_grad()
    def fit(self, x: Tensor, *, rate: float, epochs: int = 1, batch_size: int = 256, momentum: float = 0.9,
            clip: float | None = 10.0, iterations: int = 1, min_updates: int = 0) -> None:
        """Train the rows added by the last :meth:`grow` on inputs ``x [N, n]`` (the others fixed).

        Each of ``epochs`` passes goes through ``x`` in order in batches of ``batch_size``, ``iterations``
        updates per batch (:func:`oja_subspace_update`; the fixed rows' share of the residual is computed once for
        all passes, so an update costs ``3 B n (k - fixed)`` multiply-adds instead of ``B n (3 k - fixed)``); with
        ``m = momentum`` the step is ``v <- m v + (1 - m) dH``, ``H <- H + rate v`` (the paper's code;
        ``momentum=0`` is the plain rule). More passes than ``epochs`` are made where fewer would give less than
        ``min_updates`` updates (the passes times the batches times ``iterations``). ``x`` is moved to the
        weight's device and dtype.
        """
        check_tensor("x", x, ("N", self.features))
        check_finite("x", x)
        rate = check_number("rate", rate, minimum=0.0, exclusive_minimum=True)
        epochs = check_int("epochs", epochs, minimum=1)
        batch_size = check_int("batch_size", batch_size, minimum=1)
        iterations = check_int("iterations", iterations, minimum=1)
        min_updates = check_int("min_updates", min_updates, minimum=0)
        m = check_number("momentum", momentum, minimum=0.0, maximum=1.0, exclusive_maximum=True)
        if self.rows == self.fixed or x.shape[0] == 0:
            return
        x = x.to(self.weight)
        per_pass = -(-x.shape[0] // batch_size) * iterations
        epochs = max(epochs, -(-min_updates // per_pass))
        weight, velocity = self.weight.clone(), self.momentum.clone()
        free_weight, free_velocity = weight[self.fixed:], velocity[self.fixed:]  # views, updated in place
        # the fixed rows never change: their part of the residual, x - (x H_f^T) H_f, is computed once
        fixed_rows = weight[: self.fixed]
        residual_fixed = x - (x @ fixed_rows.T) @ fixed_rows if self.fixed else x
        for _ in range(epochs):
            for start in range(0, x.shape[0], batch_size):
                batch, batch_residual = x[start:start + batch_size], residual_fixed[start:start + batch_size]
                for _ in range(iterations):
                    y = batch @ free_weight.T
                    delta = y.T @ (batch_residual - y @ free_weight) / batch.shape[0]
                    if clip is not None:
                        delta = delta.clamp(-clip, clip)
                    free_velocity.mul_(m).add_(delta, alpha=1 - m)
                    free_weight.add_(free_velocity, alpha=rate)
        self.weight, self.momentum = weight, velocity

    def basis(self) -> Tensor:
        """``[r, n]``: an orthonormal basis of the rows' span (``orthonormalize``) or the rows themselves."""
        return orthonormal_rows(self.weight) if self.orthonormalize else self.weight.clone()

    def get_extra_state(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "fixed": self.fixed, "sizes": list(self.sizes)}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        if not isinstance(state, dict) or {"generator", "fixed", "sizes"} - set(state):
            raise ValueError("the extra state of SubspaceNeurons must be a dict with generator, fixed and sizes")
        self.generator.set_state(state["generator"])
        self.fixed = check_int("state['fixed']", state["fixed"], minimum=0)
        self.sizes = [check_int("state['sizes'][i]", s, minimum=0) for s in state["sizes"]]

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs) -> None:  # noqa: ANN001 (torch's signature)
        # the buffers change size as the module grows: take the stored shapes
        for name in ("weight", "momentum"):
            value = state_dict.get(prefix + name)
            if isinstance(value, Tensor):
                if value.dim() != 2 or value.shape[1] != self.features:
                    raise ValueError(f"{prefix}{name} must have shape [k, {self.features}], got {list(value.shape)}")
                setattr(self, name, torch.empty_like(value, device=self.weight.device, dtype=self.weight.dtype))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
