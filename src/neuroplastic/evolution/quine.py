"""Self-replicating networks: a neural network quine that outputs its own weights, and the auxiliary quine that
also classifies digits.

Chang & Lipson 2018, "Neural network quine". A network ``f_theta`` is asked, for each index ``i`` of its own
parameter vector ``theta [D]``, for the value of that parameter: the index enters as a one-hot vector through a
fixed random projection (``e_i = onehot(i) @ P = P[i]``, ``P [D, E]`` drawn once, never trained, a buffer and not
one of the replicated weights), an MLP maps ``e_i`` to one scalar ``w_hat_i``. All ``D`` predictions are made in
one batched pass over the rows of ``P``.

- Replication loss: ``L_sr = sum_i (w_hat_i - w_i)^2`` with the target ``w`` detached (gradients reach
  ``theta`` only through the prediction), :func:`replication_loss`; reported with the relative error
  ``||w_hat - w|| / ||w||`` (:func:`relative_error`) and the parameter norm ``||w||`` (a network whose weights
  are all zero replicates trivially, so a small error means nothing without the norm).
- Regeneration: ``theta <- f_theta(all indices)`` (:meth:`Quine.regenerate`): the weights are replaced by the
  network's own prediction of them, without any gradient.
- The auxiliary quine (:class:`AuxiliaryQuine`) takes ``[e_i, x]`` (index embedding and image) and outputs
  ``(w_hat_i, logits [C])``; its loss is ``L = L_sr_mean + lambda * CE(logits, y)`` (module ``AuxiliaryQuine``
  docstring). The training loops are in :mod:`neuroplastic.evolution.quine_training`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neuroplastic._checks import check_choice, check_int, check_int_tuple, check_number, check_tensor

from .genome import ParameterLayout

__all__ = [
    "ACTIVATIONS",
    "AuxiliaryLoss",
    "AuxiliaryQuine",
    "Quine",
    "index_embedding",
    "random_projection",
    "regenerate_",
    "relative_error",
    "replication_loss",
]

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": F.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid, "elu": F.elu, "linear": lambda x: x,
}
REDUCTIONS = ("sum", "mean")


# ---------------------------------------------------------------------------------------------- pure functions
def _check_pair(predicted: object, weights: object) -> tuple[Tensor, Tensor]:
    check_tensor("predicted", predicted, ("D",))
    check_tensor("weights", weights, ("D",))
    assert isinstance(predicted, Tensor) and isinstance(weights, Tensor)
    if predicted.shape != weights.shape:
        raise ValueError(f"predicted and weights must have the same shape [D], got {list(predicted.shape)} and "
                         f"{list(weights.shape)}")
    if predicted.numel() == 0:
        raise ValueError("predicted and weights must have at least one entry, got D = 0")
    return predicted, weights


def replication_loss(predicted: Tensor, weights: Tensor, reduction: str = "sum") -> Tensor:
    """The self-replication loss of a quine, the target detached.

    Chang & Lipson 2018: ``L_sr = sum_i (w_hat_i - w_i)^2`` (``reduction="sum"``), or its mean over the ``D``
    parameters (``"mean"``). ``weights`` is detached: the gradient is ``2 (w_hat - w) d w_hat / d theta`` and does
    not pull the weights towards the prediction directly.

    Args:
        predicted: ``w_hat [D]``, the quine's predictions of its parameters.
        weights: ``w [D]``, the parameters themselves (the target; detached here).
        reduction: ``"sum"`` or ``"mean"``.

    Returns:
        A scalar tensor.
    """
    predicted, weights = _check_pair(predicted, weights)
    check_choice("reduction", reduction, REDUCTIONS)
    squared = (predicted - weights.detach()).square()
    return squared.sum() if reduction == "sum" else squared.mean()


def relative_error(predicted: Tensor, weights: Tensor) -> Tensor:
    """The relative replication error ``||w_hat - w|| / ||w||`` (Euclidean norms), without gradient.

    0 when both are zero; ``inf`` when ``w = 0`` and ``w_hat != 0``. Shapes: ``predicted, weights [D]`` -> scalar.
    """
    predicted, weights = _check_pair(predicted, weights)
    with torch.no_grad():
        diff, norm = torch.linalg.vector_norm(predicted - weights), torch.linalg.vector_norm(weights)
        if float(norm) == 0.0:
            return torch.zeros_like(norm) if float(diff) == 0.0 else torch.full_like(norm, math.inf)
        return diff / norm


def random_projection(num_indices: int, dim: int, *, generator: torch.Generator | None = None,
                      dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> Tensor:
    """A fixed Gaussian random projection ``P [num_indices, dim]`` of one-hot index vectors, entries ``N(0, 1/dim)``.

    The embedding of index ``i`` is ``onehot(i) @ P = P[i]`` (:func:`index_embedding`); with entries of variance
    ``1/dim`` each embedding has expected squared norm 1 (the Gaussian random projection of the community code,
    drawn here from ``generator``). Drawn on the CPU and moved, so a seed gives the same matrix on any device.
    """
    check_int("num_indices", num_indices, minimum=1)
    check_int("dim", dim, minimum=1)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    draw = torch.randn(num_indices, dim, generator=generator, dtype=torch.float64) / math.sqrt(dim)
    return draw.to(dtype=dtype, device=device)


def index_embedding(projection: Tensor, indices: Tensor) -> Tensor:
    """The embeddings ``[B, E]`` of parameter ``indices [B]`` (long, in ``[0, D)``): ``onehot(indices) @ P``, done
    as the row lookup ``P[indices]`` of ``projection [D, E]``."""
    check_tensor("projection", projection, ("D", "E"))
    if not isinstance(indices, Tensor) or indices.dtype != torch.long or indices.dim() != 1:
        raise TypeError(f"indices must be a 1-D torch.long tensor [B], got "
                        f"{type(indices).__name__ if not isinstance(indices, Tensor) else indices.dtype}"
                        f"{'' if not isinstance(indices, Tensor) else ' of shape ' + str(list(indices.shape))}")
    if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= projection.shape[0]):
        raise ValueError(f"indices must lie in [0, {projection.shape[0]}), got values in "
                         f"[{int(indices.min())}, {int(indices.max())}]")
    return projection[indices]


def regenerate_(layout: ParameterLayout, model: nn.Module, predicted: Tensor) -> Tensor:
    """Regeneration ``theta <- w_hat``: copy ``predicted [D]`` into ``model``'s parameters (in place, no gradient);
    returns the copied vector ``[D]`` (detached)."""
    if not isinstance(layout, ParameterLayout):
        raise TypeError(f"layout must be a ParameterLayout, got {type(layout).__name__}")
    check_tensor("predicted", predicted, (layout.size,))
    predicted = predicted.detach().clone()
    layout.load(model, predicted)
    return predicted


# ---------------------------------------------------------------------------------------------- modules
def _check_generator(generator: object) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")


class _IndexedMLP(nn.Module):
    """Shared shell: Linear layers ``in -> hidden... -> out`` initialised from a generator, the layout of all their
    parameters, and the fixed projection buffer ``[D, E]``."""

    def __init__(self, in_extra: int, out_features: int, embedding_dim: int, hidden: Sequence[int],
                 activation: str, generator: torch.Generator | None, dtype: torch.dtype,
                 device: torch.device | str | None) -> None:
        super().__init__()
        self.embedding_dim = check_int("embedding_dim", embedding_dim, minimum=1)
        self.hidden = check_int_tuple("hidden", hidden, minimum=1)
        self.activation = check_choice("activation", activation, ACTIVATIONS)
        _check_generator(generator)
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
        sizes = (embedding_dim + in_extra, *self.hidden, out_features)
        self.layers = nn.ModuleList(nn.Linear(a, b, dtype=dtype, device=device)
                                    for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        with torch.no_grad():  # PyTorch's default bounds 1/sqrt(fan_in), drawn from the generator
            for layer in self.layers:
                bound = 1.0 / math.sqrt(layer.in_features)
                for p in (layer.weight, layer.bias):
                    draw = torch.rand(p.shape, generator=generator, dtype=torch.float64) * 2 - 1
                    p.copy_((bound * draw).to(p.dtype))
        self.layout = ParameterLayout(self)
        self.register_buffer("projection", random_projection(self.layout.size, embedding_dim, generator=generator,
                                                             dtype=dtype, device=device))
        self._act = ACTIVATIONS[self.activation]

    @property
    def num_parameters(self) -> int:
        """``D``: the number of replicated (trainable) parameters; the projection buffer is not one of them."""
        return self.layout.size

    def _mlp(self, x: Tensor) -> Tensor:
        for layer in self.layers[:-1]:
            x = self._act(layer(x))
        return self.layers[-1](x)

    def _indices(self, indices: Tensor | None) -> Tensor:
        if indices is None:
            return torch.arange(self.num_parameters, device=self.projection.device)
        index_embedding(self.projection, indices)  # checks
        return indices

    def flat_parameters(self) -> Tensor:
        """The parameters as one vector ``[D]`` (layout order), attached to the graph."""
        return torch.cat([p.reshape(-1) for p in self.parameters()])

    def parameter_norm(self) -> Tensor:
        """``||theta||``, the Euclidean norm of all replicated parameters (scalar, no gradient)."""
        with torch.no_grad():
            return torch.linalg.vector_norm(self.flat_parameters())


class Quine(_IndexedMLP):
    """A vanilla neural network quine: index embedding -> MLP -> one scalar per parameter.

    Chang & Lipson 2018. ``w_hat_i = MLP(P[i])`` for every index ``i`` of the ``D`` trainable parameters (all of
    the MLP's weights and biases), ``P [D, E]`` a fixed random projection (:func:`random_projection`, a buffer).

    Args:
        embedding_dim: ``E``, the width of the index embedding (the MLP's input).
        hidden: the hidden layer widths (at least one).
        activation: one of :data:`ACTIVATIONS`; the output layer is linear.
        generator: draws the initial weights (PyTorch's default bounds ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``) and
            then the projection; the global generator when None.
        dtype, device: of the parameters and the projection.
    """

    def __init__(self, embedding_dim: int = 32, hidden: Sequence[int] = (32,), activation: str = "relu", *,
                 generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None) -> None:
        super().__init__(0, 1, embedding_dim, hidden, activation, generator, dtype, device)

    def forward(self, indices: Tensor | None = None) -> Tensor:
        """The predictions ``w_hat [B]`` for parameter ``indices [B]`` (long), or ``[D]`` for all when None."""
        return self._mlp(self.projection[self._indices(indices)]).squeeze(-1)

    def predict_parameters(self) -> Tensor:
        """``w_hat = f_theta(all indices) [D]`` in one batched pass (attached to the graph)."""
        return self._mlp(self.projection).squeeze(-1)

    def replication_loss(self, indices: Tensor | None = None, reduction: str = "sum") -> Tensor:
        """:func:`replication_loss` over ``indices [B]`` (all parameters when None), the target detached."""
        if indices is None:
            return replication_loss(self.predict_parameters(), self.flat_parameters(), reduction)
        indices = self._indices(indices)
        return replication_loss(self(indices), self.flat_parameters()[indices], reduction)

    def relative_error(self) -> Tensor:
        """``||w_hat - w|| / ||w||`` over all parameters (scalar, no gradient)."""
        with torch.no_grad():
            return relative_error(self.predict_parameters(), self.flat_parameters())

    def regenerate(self) -> Tensor:
        """Regeneration ``theta <- f_theta(all indices)``, in place; returns the prediction ``[D]`` made before it
        (afterwards the parameters equal it exactly)."""
        with torch.no_grad():
            return regenerate_(self.layout, self, self.predict_parameters())


class AuxiliaryLoss(NamedTuple):
    """The auxiliary quine's loss: ``total = replication + task_weight * task`` (all scalar tensors)."""

    total: Tensor
    replication: Tensor
    task: Tensor


class AuxiliaryQuine(_IndexedMLP):
    """A quine that also classifies: ``[P[i], x] -> MLP -> (w_hat_i, logits [C])``.

    Chang & Lipson 2018, the auxiliary quine: the input is the index embedding concatenated with the image
    ``x [F]``; the output is the predicted parameter and the class logits. All trainable parameters (the whole MLP,
    both heads) are replicated. The weight prediction should not depend on the image: for the replication loss each
    index is paired with an image (``images [D, F]``, e.g. drawn at random from the training set, or one image
    ``[F]`` for all).

    Loss (:meth:`loss`): ``L = (1/D) sum_i (w_hat_i - w_i)^2 + lambda * CE(logits, y)``, the mean replication
    error plus the task weight ``lambda`` times the mean cross-entropy of a batch. The paper writes
    ``L = L_sr + lambda L_task`` with the sum-squared ``L_sr`` and ``lambda`` chosen to make both terms of similar
    magnitude; with the mean, ``lambda`` does not have to scale with ``D`` (the paper's ``lambda`` is ours times
    ``D``).

    Args:
        in_features: ``F``, the flattened image size.
        num_classes: ``C``.
        embedding_dim, hidden, activation, generator, dtype, device: as :class:`Quine`.
    """

    def __init__(self, in_features: int, num_classes: int = 10, embedding_dim: int = 32,
                 hidden: Sequence[int] = (64,), activation: str = "relu", *,
                 generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None) -> None:
        self.in_features = check_int("in_features", in_features, minimum=1)
        self.num_classes = check_int("num_classes", num_classes, minimum=2)
        super().__init__(in_features, 1 + num_classes, embedding_dim, hidden, activation, generator, dtype, device)

    def _images(self, images: object, rows: int, name: str = "images") -> Tensor:
        if isinstance(images, Tensor) and images.dim() == 1:
            check_tensor(name, images, (self.in_features,), like=self.projection, like_name="the quine's buffers")
            return images.expand(rows, -1)
        check_tensor(name, images, (rows, self.in_features), like=self.projection,
                     like_name="the quine's buffers")
        assert isinstance(images, Tensor)
        return images

    def forward(self, indices: Tensor, images: Tensor) -> tuple[Tensor, Tensor]:
        """``(w_hat [B], logits [B, C])`` for parameter ``indices [B]`` (long) paired with ``images [B, F]``."""
        indices = self._indices(indices)
        out = self._mlp(torch.cat([self.projection[indices], self._images(images, indices.shape[0])], -1))
        return out[:, 0], out[:, 1:]

    def predict_parameters(self, images: Tensor) -> Tensor:
        """``w_hat [D]`` for all indices, index ``i`` paired with ``images[i]`` (``images [D, F]``) or with one
        image ``[F]``; one batched pass, attached to the graph."""
        images = self._images(images, self.num_parameters)
        return self._mlp(torch.cat([self.projection, images], -1))[:, 0]

    def replication_loss(self, images: Tensor, reduction: str = "sum") -> Tensor:
        """:func:`replication_loss` over all parameters, index ``i`` paired with ``images[i]`` (or one image)."""
        return replication_loss(self.predict_parameters(images), self.flat_parameters(), reduction)

    def relative_error(self, images: Tensor) -> Tensor:
        """``||w_hat - w|| / ||w||`` over all parameters (scalar, no gradient)."""
        with torch.no_grad():
            return relative_error(self.predict_parameters(images), self.flat_parameters())

    def regenerate(self, images: Tensor) -> Tensor:
        """``theta <- f_theta(all indices, images)`` in place; returns the prediction ``[D]`` made before it."""
        with torch.no_grad():
            return regenerate_(self.layout, self, self.predict_parameters(images))

    def task_loss(self, indices: Tensor, images: Tensor, labels: Tensor) -> Tensor:
        """Mean cross-entropy of the logits for ``images [B, F]`` (paired with ``indices [B]``) and ``labels [B]``."""
        _, logits = self(indices, images)
        return F.cross_entropy(logits, self._labels(labels, logits.shape[0]))

    def _labels(self, labels: object, rows: int) -> Tensor:
        if not isinstance(labels, Tensor) or labels.dtype != torch.long or list(labels.shape) != [rows]:
            raise TypeError(f"labels must be a torch.long tensor of shape [{rows}], got "
                            f"{labels.dtype if isinstance(labels, Tensor) else type(labels).__name__}"
                            f"{' ' + str(list(labels.shape)) if isinstance(labels, Tensor) else ''}")
        if rows and (int(labels.min()) < 0 or int(labels.max()) >= self.num_classes):
            raise ValueError(f"labels must lie in [0, {self.num_classes}), got values in "
                             f"[{int(labels.min())}, {int(labels.max())}]")
        return labels

    def loss(self, indices: Tensor, images: Tensor, labels: Tensor, replication_images: Tensor,
             task_weight: float) -> AuxiliaryLoss:
        """``total = L_sr_mean + task_weight * CE``: the mean replication error over all ``D`` parameters (index
        ``i`` paired with ``replication_images[i]``, ``[D, F]`` or ``[F]``) and the cross-entropy of a batch
        (``indices [B]``, ``images [B, F]``, ``labels [B]``). ``task_weight`` (lambda) a finite number >= 0."""
        task_weight = float(check_number("task_weight", task_weight, minimum=0))
        replication = self.replication_loss(replication_images, reduction="mean")
        task = self.task_loss(indices, images, labels)
        return AuxiliaryLoss(replication + task_weight * task, replication, task)

    def classify(self, images: Tensor, indices: Tensor) -> Tensor:
        """The predicted classes ``[B]`` of ``images [B, F]`` paired with ``indices [B]`` (no gradient)."""
        with torch.no_grad():
            return self(indices, images)[1].argmax(-1)
