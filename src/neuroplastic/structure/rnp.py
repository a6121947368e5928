"""Reconstructive Neuron Pruning (RNP): expose backdoor units by unlearning then recovering, and prune them.

Li, Lyu, Ma, Koren, Lyu, Li & Jiang 2023, "Reconstructive neuron pruning for backdoor defense" (ICML);
reference code github.com/bboylyg/RNP (``main.py``), whose constants are the defaults here.

Given a trained (possibly backdoored) classifier ``f(x; theta)`` and a few clean samples D_c:

1. Unlearning, neuron level (every weight moves): gradient *ascent* on the clean loss,
   ``theta <- theta + lr * grad_theta L(f(x; theta), y)`` (SGD, momentum 0.9, weight decay 5e-4, lr 0.01
   divided by 10 after epochs 10 and 20), epoch by epoch over D_c, until the accuracy on D_c during an
   epoch falls to ``clean_threshold`` (0.2) or below. Clean features are destroyed first; the backdoor,
   which D_c never exercises, survives.
2. Recovering, filter level (weights frozen): learn one mask value per unit ``m in [0, 1]`` of the
   unlearned model, ``min_m  alpha * L(f(x; m ⊙ theta_u), y)`` with ``alpha = 0.2``, by SGD (lr 0.2,
   momentum 0.9) for 20 epochs, clipping ``m`` to [0, 1] after every step; ``m ⊙`` multiplies each unit's
   output (see :mod:`neuroplastic.structure.neuron_masks`). Restoring clean accuracy re-enables the clean
   units; units that served only the backdoor get no such push and their masks fall.
3. Pruning: in the *original* model, prune the units whose mask is <= ``pruning_threshold`` (0.2, where
   the reference's threshold sweep removes the backdoor), or the ``prune_count`` lowest, by zeroing their
   incoming weights and bias. No fine-tuning follows.

As in the reference: both phases run the model in train mode (BatchNorm normalises with the statistics of
each batch of clean samples and updates the unlearned copy's running statistics), the mask is initialised
to 1 and scales the BatchNorm weight gamma (``norm_mode="weight"``, the reference's ``MaskBatchNorm2d``), a
pruned BatchNorm channel has gamma zeroed (its output becomes the constant beta), and the pruned model is
then used in eval mode with its own, unchanged running statistics. The reference masks the BatchNorm
channels of ResNets; here the masked layers are any Linear / Conv / BatchNorm layers (default: the
BatchNorm layers if there are any, else every Linear and Conv layer but the output layer); a pruned Linear
or Conv unit has its weight row and bias zeroed, so it outputs exactly zero. The reference reads its clean
samples through a random-crop and flip transform, which ``augment`` allows.

Differences from the reference: the reference calls ``clip_grad_norm_`` *before* ``backward``, where the
gradients are still zero, so its unlearning is in effect unclipped; ``grad_clip`` defaults to None for
that reason (a number clips the ascent gradient's norm after ``backward``). The reference checks the
stopping criterion once per epoch over 500 images (4 batches); ``max_unlearning_epochs`` and the
milestones are in epochs of whatever ``clean_data`` is, so callers with other amounts of clean data choose
how to convert the schedule (:func:`rnp_schedule_epochs` converts counts of SGD updates). Caveat: recovery
in train mode does not see what removing a channel costs once the next BatchNorm layers normalise with
their stored running statistics, and in a network with few channels per layer that cost can be large, so
the masks may select channels whose pruning is expensive (measured in ``docs/results/backdoor-pruning.md``).

Shapes: clean samples ``x [N, ...]`` with labels ``y [N]`` (long), or batches ``(x [B, ...], y [B])``;
the model maps ``x [B, ...]`` to logits ``[B, K]``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from neuroplastic._checks import check_int
from neuroplastic.structure.neuron_masks import NORM_MODES, NeuronMasks, prune_units

__all__ = ["RNPConfig", "RNPReport", "ReconstructiveNeuronPruning", "reconstructive_neuron_pruning",
           "rnp_schedule_epochs"]

LossFn = Callable[[Tensor, Tensor], Tensor]
Augment = Callable[[Tensor, torch.Generator], Tensor]
Evaluate = Callable[[nn.Module], Mapping[str, float]]
# the keys of RNP's own history rows; the others are evaluate's results
_ROW_KEYS = {"unlearning": ("epoch", "loss", "accuracy", "lr"),
             "recovery": ("epoch", "loss", "accuracy", "mask_mean", "mask_min", "masks_below_threshold")}


@dataclass(frozen=True)
class RNPConfig:
    """RNP hyperparameters; the defaults are those of the reference code (``main.py``, CIFAR-10 ResNet-18).

    Attributes:
        unlearning_lr, unlearning_momentum, unlearning_weight_decay: SGD of the unlearning step.
        unlearning_milestones, unlearning_gamma: the learning rate is multiplied by ``gamma`` after these
            epochs (MultiStepLR).
        max_unlearning_epochs: unlearning stops after this many epochs even if the accuracy on the clean
            samples stays above ``clean_threshold`` (the reference allows 21).
        clean_threshold: unlearning stops after the first epoch whose accuracy on the clean samples is
            <= this.
        grad_clip: max L2 norm of the ascent gradient; None (default): no clipping, which is what the
            reference does in effect (its ``clip_grad_norm_`` runs before ``backward``, on zero gradients).
        recovery_lr, recovery_momentum, recovery_epochs: SGD on the masks.
        recovery_loss_weight: alpha, the factor on the recovery loss.
        pruning_threshold: prune units whose mask is <= this.
        prune_count: if set, prune this many units with the smallest masks instead of thresholding.
        batch_size: batch size over the clean samples (when they are given as tensors).
        norm_mode: how a mask acts on a BatchNorm layer and how its units are pruned (see
            :class:`~neuroplastic.structure.neuron_masks.NeuronMasks`): "weight" (the reference: scale
            gamma, prune by zeroing gamma) or "output" (scale the whole output, prune gamma and beta).
    """

    unlearning_lr: float = 0.01
    unlearning_momentum: float = 0.9
    unlearning_weight_decay: float = 5e-4
    unlearning_milestones: tuple[int, ...] = (10, 20)
    unlearning_gamma: float = 0.1
    max_unlearning_epochs: int = 20
    clean_threshold: float = 0.2
    grad_clip: float | None = None
    recovery_lr: float = 0.2
    recovery_momentum: float = 0.9
    recovery_epochs: int = 20
    recovery_loss_weight: float = 0.2
    pruning_threshold: float | None = 0.2
    prune_count: int | None = None
    batch_size: int = 128
    norm_mode: str = "weight"

    def __post_init__(self) -> None:
        if self.norm_mode not in NORM_MODES:
            raise ValueError(f"norm_mode must be one of {', '.join(map(repr, NORM_MODES))}; got {self.norm_mode!r}")
        for name in ("unlearning_lr", "recovery_lr", "recovery_loss_weight", "unlearning_gamma"):
            _check_number(name, getattr(self, name), positive=True)
        for name in ("unlearning_momentum", "unlearning_weight_decay", "recovery_momentum"):
            _check_number(name, getattr(self, name), positive=False)
        for name in ("max_unlearning_epochs", "batch_size"):
            check_int(name, getattr(self, name), minimum=1)
        check_int("recovery_epochs", self.recovery_epochs, minimum=0)
        _check_number("clean_threshold", self.clean_threshold, positive=False)
        if self.clean_threshold > 1:
            raise ValueError(f"clean_threshold is an accuracy in [0, 1], got {self.clean_threshold!r}")
        if self.grad_clip is not None:
            _check_number("grad_clip", self.grad_clip, positive=True)
        if not isinstance(self.unlearning_milestones, (tuple, list)):
            raise TypeError(f"unlearning_milestones must be a tuple of ints, got {self.unlearning_milestones!r}")
        for milestone in self.unlearning_milestones:
            check_int("unlearning_milestones entries", milestone, minimum=1)
        if self.pruning_threshold is None and self.prune_count is None:
            raise ValueError("pruning_threshold and prune_count are both None; set one of them")
        if self.pruning_threshold is not None:
            _check_number("pruning_threshold", self.pruning_threshold, positive=False)
        if self.prune_count is not None:
            check_int("prune_count", self.prune_count, minimum=0)


def _check_number(name: str, value: Any, *, positive: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ValueError(f"{name} must be {'> 0' if positive else '>= 0'} and finite, got {value!r}")


@dataclass
class RNPReport:
    """What RNP did: the learned masks, the pruned units, and the accuracies along the way.

    Attributes:
        masks: layer name -> the recovered mask ``[U]`` (CPU).
        pruned: layer name -> sorted indices of the pruned units (every masked layer is listed).
        keep: parameter name -> boolean keep-mask (False where :func:`prune_units` zeroed a weight).
        unlearning: one row per unlearning epoch: epoch, loss, accuracy (on the clean samples, during the
            epoch), lr, and whatever ``evaluate`` returned on the unlearned model after the epoch.
        recovery: one row per recovery epoch: epoch, loss (unweighted), accuracy, mask statistics, and
            ``evaluate``'s results on the masked unlearned model.
        reached_threshold: whether unlearning brought the clean accuracy down to ``clean_threshold``.
    """

    masks: dict[str, Tensor]
    pruned: dict[str, list[int]]
    keep: dict[str, Tensor]
    unlearning: list[dict[str, float]] = field(default_factory=list)
    recovery: list[dict[str, float]] = field(default_factory=list)
    reached_threshold: bool = False

    @property
    def num_pruned(self) -> int:
        """The total number of pruned units."""
        return sum(len(units) for units in self.pruned.values())


class _CleanData:
    """The clean samples as re-iterable batches: tensors shuffled by a generator, or the user's batches."""

    def __init__(self, data: Any, batch_size: int) -> None:
        if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, Tensor) for t in data):
            x, y = data
            if x.dim() < 1 or y.dim() != 1 or x.shape[0] != y.shape[0]:
                raise ValueError(f"clean_data must be (x [N, ...], y [N]) with the same N, got shapes "
                                 f"{list(x.shape)} and {list(y.shape)}")
            if x.shape[0] == 0:
                raise ValueError("clean_data is empty: RNP needs at least one clean sample")
            if y.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
                raise ValueError(f"clean_data labels must be integer class indices, got dtype {y.dtype}")
            self.tensors: tuple[Tensor, Tensor] | None = (x, y.long())
            self.batches: Iterable[Any] | None = None
            self.batch_size = batch_size
            self.size = int(x.shape[0])
        elif isinstance(data, Iterable) and not isinstance(data, (str, bytes, Tensor)):
            if iter(data) is data:
                raise TypeError("clean_data is an iterator, which can be read only once; RNP reads the clean "
                                "samples once per epoch: pass (x, y) tensors, a list of batches or a DataLoader")
            self.tensors = None
            self.batches = data
            self.size = -1
        else:
            raise TypeError(f"clean_data must be a pair of tensors (x, y) or a re-iterable of (x, y) batches, got "
                            f"{type(data).__name__}")

    def epoch(self, generator: torch.Generator) -> Iterable[tuple[Tensor, Tensor]]:
        if self.tensors is not None:
            x, y = self.tensors
            order = torch.randperm(self.size, generator=generator)
            for start in range(0, self.size, self.batch_size):
                index = order[start:start + self.batch_size]
                yield x[index.to(x.device)], y[index.to(y.device)]
            return
        assert self.batches is not None
        for number, batch in enumerate(self.batches):
            if not (isinstance(batch, (tuple, list)) and len(batch) >= 2 and isinstance(batch[0], Tensor)
                    and isinstance(batch[1], Tensor)):
                raise TypeError(f"batch {number} of clean_data is not an (x, y) pair of tensors")
            yield batch[0], batch[1].long()


def _model_device(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    if parameter is None:
        raise ValueError("model has no parameters: RNP needs a model with weights to unlearn and prune")
    return parameter.device


class ReconstructiveNeuronPruning:
    """RNP step by step (one epoch per call), with a ``state_dict`` for checkpoints.

    Li et al. 2023 (see the module docstring for the equations). Typical use::

        rnp = ReconstructiveNeuronPruning(model, (x_clean, y_clean), seed=0)
        while not rnp.unlearning_done:
            rnp.unlearn_epoch()
        for _ in range(rnp.config.recovery_epochs):
            rnp.recover_epoch()
        pruned_model, pruned_units = rnp.prune()

    Args:
        model: the trained classifier; left unchanged until ``prune(inplace=True)``. RNP works on a deep
            copy (``self.unlearned``) on the model's device.
        clean_data: clean samples, ``(x [N, ...], y [N])`` tensors (shuffled each epoch by the seeded
            generator, in batches of ``config.batch_size``) or a re-iterable of ``(x, y)`` batches (a list,
            a DataLoader), read once per epoch.
        config: hyperparameters (default :class:`RNPConfig`, the paper's).
        layers: names of the Linear / Conv / BatchNorm layers to mask and prune (default
            :func:`~neuroplastic.structure.neuron_masks.default_mask_layers`).
        seed: seed of the generator that shuffles the clean samples.
        loss_fn: ``loss_fn(logits [B, K], y [B]) -> scalar`` (default cross-entropy).
        evaluate: optional ``evaluate(model) -> {name: value}``, called after every epoch on the unlearned
            (during recovery: masked) model in eval mode; its results join the history rows.
        augment: optional ``augment(x [B, ...], generator) -> x'``, applied to every batch of clean samples
            in both phases with RNP's seeded generator (the reference reads its clean samples through a
            random-crop and flip transform, so each epoch sees new views of them).
    """

    def __init__(self, model: nn.Module, clean_data: Any, config: RNPConfig | None = None, *,
                 layers: Sequence[str] | None = None, seed: int = 0, loss_fn: LossFn | None = None,
                 evaluate: Evaluate | None = None, augment: Augment | None = None) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        config = RNPConfig() if config is None else config
        if not isinstance(config, RNPConfig):
            raise TypeError(f"config must be an RNPConfig, got {type(config).__name__}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {type(seed).__name__}")
        if loss_fn is not None and not callable(loss_fn):
            raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
        if evaluate is not None and not callable(evaluate):
            raise TypeError(f"evaluate must be callable, got {type(evaluate).__name__}")
        if augment is not None and not callable(augment):
            raise TypeError(f"augment must be callable, got {type(augment).__name__}")
        self.augment = augment
        self.model = model
        self.config = config
        self.device = _model_device(model)
        self.loss_fn: LossFn = F.cross_entropy if loss_fn is None else loss_fn
        self.evaluate = evaluate
        self.data = _CleanData(clean_data, config.batch_size)
        self.generator = torch.Generator().manual_seed(seed)
        self.unlearned = copy.deepcopy(model)
        self.masks = NeuronMasks(self.unlearned, layers, attach=False, norm_mode=config.norm_mode)
        weights = [p for p in self.unlearned.parameters() if p.requires_grad]
        self.unlearn_optimizer = torch.optim.SGD(weights, lr=config.unlearning_lr,
                                                 momentum=config.unlearning_momentum,
                                                 weight_decay=config.unlearning_weight_decay)
        self.unlearn_scheduler = torch.optim.lr_scheduler.MultiStepLR(
            self.unlearn_optimizer, milestones=list(config.unlearning_milestones), gamma=config.unlearning_gamma)
        self.mask_optimizer = torch.optim.SGD(self.masks.parameters(), lr=config.recovery_lr,
                                              momentum=config.recovery_momentum)
        self.unlearning_epoch = 0
        self.recovery_epoch = 0
        self.reached_threshold = False
        self.history: dict[str, list[dict[str, float]]] = {"unlearning": [], "recovery": []}

    # ------------------------------------------------------------------ phases
    @property
    def unlearning_done(self) -> bool:
        """True once an epoch's clean accuracy fell to the threshold or the epoch limit was reached."""
        return self.reached_threshold or self.unlearning_epoch >= self.config.max_unlearning_epochs

    def unlearn_epoch(self) -> dict[str, float]:
        """One epoch of gradient ascent on the clean loss over all weights; returns the epoch's row."""
        if self.unlearning_done:
            raise RuntimeError("unlearning is done (the clean accuracy reached the threshold or the epoch limit)")
        if self.recovery_epoch > 0:
            raise RuntimeError("unlearning cannot continue after recovery has started")
        model, optimizer = self.unlearned, self.unlearn_optimizer
        weights = [p for group in optimizer.param_groups for p in group["params"]]
        lr = optimizer.param_groups[0]["lr"]
        model.train()
        total_loss, correct, count, batches = 0.0, 0, 0, 0
        for x, y in self.data.epoch(self.generator):
            x, y = self._batch(x, y)
            optimizer.zero_grad()
            logits = model(x)
            loss = self.loss_fn(logits, y)
            (-loss).backward()
            if self.config.grad_clip is not None:
                nn.utils.clip_grad_norm_(weights, max_norm=self.config.grad_clip)
            optimizer.step()
            total_loss += float(loss.detach())
            correct += int((logits.detach().argmax(dim=1) == y).sum())
            count += int(y.shape[0])
            batches += 1
        if count == 0:
            raise ValueError("clean_data yielded no samples")
        self.unlearn_scheduler.step()
        self.unlearning_epoch += 1
        accuracy = correct / count
        if accuracy <= self.config.clean_threshold:
            self.reached_threshold = True
        row = {"epoch": self.unlearning_epoch, "loss": total_loss / batches, "accuracy": accuracy, "lr": lr}
        row.update(self._evaluate(model))
        self.history["unlearning"].append(row)
        return row

    def unlearn(self) -> list[dict[str, float]]:
        """Unlearn until done; returns the rows of the epochs run now."""
        rows = []
        while not self.unlearning_done:
            rows.append(self.unlearn_epoch())
        return rows

    def recover_epoch(self) -> dict[str, float]:
        """One epoch of mask learning on the frozen unlearned model (masks clipped to [0, 1] after each step)."""
        if not self.unlearning_done:
            raise RuntimeError("recover_epoch() before unlearning is done; call unlearn() first")
        model = self.unlearned
        model.requires_grad_(False)
        for parameter in model.parameters():
            parameter.grad = None  # the last ascent step's gradients; the weights are frozen from now on
        if not self.masks.attached:
            self.masks.attach(model)
        model.train()
        total_loss, correct, count, batches = 0.0, 0, 0, 0
        for x, y in self.data.epoch(self.generator):
            x, y = self._batch(x, y)
            self.mask_optimizer.zero_grad()
            logits = model(x)
            loss = self.loss_fn(logits, y)
            (self.config.recovery_loss_weight * loss).backward()
            self.mask_optimizer.step()
            self.masks.clip_(0.0, 1.0)
            total_loss += float(loss.detach())
            correct += int((logits.detach().argmax(dim=1) == y).sum())
            count += int(y.shape[0])
            batches += 1
        if count == 0:
            raise ValueError("clean_data yielded no samples")
        self.recovery_epoch += 1
        values = torch.cat([m.detach().flatten().float().cpu() for m in self.masks.masks])
        row = {"epoch": self.recovery_epoch, "loss": total_loss / batches, "accuracy": correct / count,
               "mask_mean": float(values.mean()), "mask_min": float(values.min())}
        if self.config.pruning_threshold is not None:
            row["masks_below_threshold"] = float((values <= self.config.pruning_threshold).sum())
        row.update(self._evaluate(model))
        self.history["recovery"].append(row)
        return row

    def recover(self) -> list[dict[str, float]]:
        """Run the remaining recovery epochs; returns their rows."""
        return [self.recover_epoch() for _ in range(self.config.recovery_epochs - self.recovery_epoch)]

    def _batch(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        if self.augment is not None:
            x = self.augment(x, self.generator)
        return x.to(self.device), y.to(self.device)

    def _evaluate(self, model: nn.Module) -> dict[str, float]:
        if self.evaluate is None:
            return {}
        model.eval()
        with torch.no_grad():
            results = dict(self.evaluate(model))
        model.train()
        return {name: float(value) for name, value in results.items()}

    # ------------------------------------------------------------------ pruning
    def units_to_prune(self, *, threshold: float | None = None, count: int | None = None) -> dict[str, Tensor]:
        """Per masked layer, the indices of the units to prune: the ``count`` smallest masks if a count is
        given (here or in the config), else those <= ``threshold`` (default ``config.pruning_threshold``)."""
        if threshold is not None and count is not None:
            raise ValueError(f"give threshold or count, not both (got threshold={threshold!r}, count={count!r})")
        if threshold is None and count is None:
            count = self.config.prune_count
            threshold = self.config.pruning_threshold if count is None else None
        if count is not None:
            return self.masks.lowest(count)
        assert threshold is not None
        _check_number("threshold", threshold, positive=False)
        return self.masks.below(float(threshold))

    def prune(self, *, inplace: bool = False, threshold: float | None = None,
              count: int | None = None) -> tuple[nn.Module, dict[str, Tensor], dict[str, Tensor]]:
        """Prune the chosen units from the *original* model (see :meth:`units_to_prune`).

        Returns ``(model, units, keep)``: the pruned model (``self.model`` itself if ``inplace``, else a deep
        copy), the pruned unit indices per layer, and the parameters' boolean keep-masks.
        """
        units = self.units_to_prune(threshold=threshold, count=count)
        model = self.model if inplace else copy.deepcopy(self.model)
        keep = prune_units(model, {name: index for name, index in units.items() if index.numel()},
                           norm_mode=self.config.norm_mode)
        return model, units, keep

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything that changes from epoch to epoch (the unlearned weights, masks, optimizers, generator)."""
        return {
            "unlearned": self.unlearned.state_dict(),
            "unlearn_optimizer": self.unlearn_optimizer.state_dict(),
            "unlearn_scheduler": self.unlearn_scheduler.state_dict(),
            "masks": self.masks.state_dict(),
            "mask_optimizer": self.mask_optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "unlearning_epoch": self.unlearning_epoch,
            "recovery_epoch": self.recovery_epoch,
            "reached_threshold": self.reached_threshold,
            "history": copy.deepcopy(self.history),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict` (of an instance built from the same model, data and config)."""
        self.unlearned.load_state_dict(state["unlearned"])
        self.unlearn_optimizer.load_state_dict(state["unlearn_optimizer"])
        self.unlearn_scheduler.load_state_dict(state["unlearn_scheduler"])
        self.masks.load_state_dict(state["masks"])
        self.mask_optimizer.load_state_dict(state["mask_optimizer"])
        self.generator.set_state(state["generator"])
        self.unlearning_epoch = int(state["unlearning_epoch"])
        self.recovery_epoch = int(state["recovery_epoch"])
        self.reached_threshold = bool(state["reached_threshold"])
        self.history = copy.deepcopy(state["history"])

    def summary(self, units: Mapping[str, Tensor]) -> dict[str, float]:
        """What RNP did, as flat figures (for a run's metrics), with ``units`` the pruned units per layer
        (:meth:`units_to_prune`).

        Keys: ``clean_samples`` (-1 for clean data given as batches), ``pruned_units``, ``total_units``,
        ``unlearning_epochs``, ``unlearning_reached_threshold`` (1 or 0); for the last epoch of unlearning and
        of recovery (if any), ``unlearned_train_acc`` / ``recovered_train_acc`` (the accuracy on the clean
        samples during the epoch, train mode) and ``unlearned_monitor_<key>`` / ``recovered_monitor_<key>``
        for each result of ``evaluate``; then ``pruned_fraction`` and ``pruned_layer<i>`` (the units pruned
        in the i-th masked layer).
        """
        pruned = sum(int(index.numel()) for index in units.values())
        figures: dict[str, float] = {
            "clean_samples": int(self.data.size), "pruned_units": pruned, "total_units": self.masks.num_units,
            "unlearning_epochs": self.unlearning_epoch, "unlearning_reached_threshold": int(self.reached_threshold)}
        for phase, name in (("unlearning", "unlearned"), ("recovery", "recovered")):
            if self.history[phase]:
                last = self.history[phase][-1]
                figures[f"{name}_train_acc"] = last["accuracy"]
                figures.update({f"{name}_monitor_{key}": value for key, value in last.items()
                                if key not in _ROW_KEYS[phase]})
        figures["pruned_fraction"] = pruned / max(1, self.masks.num_units)
        figures.update({f"pruned_layer{position}": int(index.numel()) for position, index in enumerate(units.values())})
        return figures

    def report(self, units: Mapping[str, Tensor], keep: dict[str, Tensor]) -> RNPReport:
        """An :class:`RNPReport` of the current masks and histories, with the given pruning result."""
        return RNPReport(masks=self.masks.values_dict(),
                         pruned={name: [int(u) for u in index] for name, index in units.items()},
                         keep=keep, unlearning=copy.deepcopy(self.history["unlearning"]),
                         recovery=copy.deepcopy(self.history["recovery"]),
                         reached_threshold=self.reached_threshold)


def reconstructive_neuron_pruning(model: nn.Module, clean_data: Any, config: RNPConfig | None = None, *,
                                  layers: Sequence[str] | None = None, seed: int = 0, inplace: bool = False,
                                  loss_fn: LossFn | None = None, evaluate: Evaluate | None = None,
                                  augment: Augment | None = None, **overrides: Any) -> tuple[nn.Module, RNPReport]:
    """Run RNP end to end: unlearn, recover the masks, prune the original model; see the module docstring.

    Li et al. 2023, "Reconstructive neuron pruning for backdoor defense".

    Args:
        model: the trained classifier (logits ``[B, K]``); pruned in place if ``inplace``, else a deep copy
            is pruned and ``model`` is left unchanged.
        clean_data: ``(x [N, ...], y [N])`` tensors or a re-iterable of ``(x, y)`` batches (e.g. 1% of the
            training set, clean).
        config: :class:`RNPConfig` (default: the paper's hyperparameters); ``overrides`` replace its fields,
            e.g. ``reconstructive_neuron_pruning(model, data, pruning_threshold=0.3)``.
        layers, seed, loss_fn, evaluate, augment: see :class:`ReconstructiveNeuronPruning`.

    Returns:
        ``(pruned_model, report)``; see :class:`RNPReport`.
    """
    config = RNPConfig() if config is None else config
    if not isinstance(config, RNPConfig):
        raise TypeError(f"config must be an RNPConfig, got {type(config).__name__}")
    if overrides:
        valid = {f.name for f in fields(RNPConfig)}
        unknown = sorted(set(overrides) - valid)
        if unknown:
            raise TypeError(f"unknown RNP hyperparameter(s) {unknown}; valid: {', '.join(sorted(valid))}")
        config = RNPConfig(**{**{f.name: getattr(config, f.name) for f in fields(RNPConfig)}, **overrides})
    rnp = ReconstructiveNeuronPruning(model, clean_data, config, layers=layers, seed=seed, loss_fn=loss_fn,
                                      evaluate=evaluate, augment=augment)
    rnp.unlearn()
    rnp.recover()
    pruned, units, keep = rnp.prune(inplace=inplace)
    rnp.masks.remove()
    return pruned, rnp.report(units, keep)


def rnp_schedule_epochs(samples: int, batch_size: int, *, max_unlearning_updates: int,
                        unlearning_milestones: Sequence[int], recovery_updates: int) -> dict[str, Any]:
    """RNP's schedule in epochs over ``samples`` clean samples, from counts of SGD updates.

    An epoch makes ``ceil(samples / batch_size)`` updates; each count becomes ``ceil(updates / that)``
    epochs. Returns ``max_unlearning_epochs``, ``unlearning_milestones`` (a tuple) and ``recovery_epochs``,
    the :class:`RNPConfig` fields. The reference's schedule (500 images in batches of 128, 4 updates per
    epoch: at most 21 unlearning epochs, milestones 10 and 20, 20 recovery epochs) is 84 / (40, 80) / 80
    updates.
    """
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples must be a positive int, got {samples!r}")
    check_int("batch_size", batch_size, minimum=1)
    batches = math.ceil(samples / batch_size)
    return {"max_unlearning_epochs": math.ceil(max_unlearning_updates / batches),
            "unlearning_milestones": tuple(math.ceil(m / batches) for m in unlearning_milestones),
            "recovery_epochs": math.ceil(recovery_updates / batches)}
