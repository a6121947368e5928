"""Check neuroplastic's continual metrics against Avalanche's stream metrics on the same accuracy matrices.

``neuroplastic.continual`` exports ``average_accuracy(R)``, ``backward_transfer(R)``, ``forward_transfer(R, b)``
and ``forgetting(R)``. Avalanche (``avalanche-lib``, never a dependency of neuroplastic) computes the same
quantities as *plugin metrics* updated from an evaluation loop. This script drives Avalanche's own plugin
metrics ``StreamAccuracy``, ``StreamForgetting``, ``StreamBWT`` and ``StreamForwardTransfer`` through the exact
sequence of callbacks a strategy with ``eval_every >= 0`` makes (an evaluation of the whole test stream at
initialisation, then one after training each experience), with a minimal stand-in for the strategy: each
evaluation experience is one minibatch of ``n`` patterns of which ``round(R[i, j] * n)`` are classified right,
so Avalanche sees per-experience accuracies equal to ``R[i, j]``. The values Avalanche emits after the last
evaluation are compared with ours on the same matrix.

Matrices: random ones (seeded, accuracies on a grid of 1/n) and a hand-made one where a task's accuracy rises
after its own training (the best accuracy comes later than ``R[j, j]``), so a forgetting defined from the best
earlier accuracy (Chaudhry et al. 2018) would differ from Avalanche's (and ours), which uses ``R[j, j]``.
One extra line, not counted in ``all_equal``, shows that Avalanche's stream accuracy pools the patterns of all
experiences (weighted by test-set size) while ACC is the unweighted mean over tasks: they agree only when the
test sets have equal sizes.

Prints one JSON line per matrix and metric (``ours``, ``avalanche``, ``abs_diff``) and a summary line
``all_equal`` (to 1e-12); without Avalanche, one ``skipped`` line.

Usage (Avalanche's own venv, see benchmarks/bench_env.sh):
    .bench-venv-avalanche/bin/python benchmarks/continual_metrics_check.py
"""

from __future__ import annotations

import argparse
import json
import sys
from types import SimpleNamespace

import numpy as np
import torch

from neuroplastic.continual import average_accuracy, backward_transfer, forgetting, forward_transfer

TOLERANCE = 1e-12


def _import_avalanche():
    """Import Avalanche's metrics, or return None (with the reason) when it is not installed or does not import.

    PyPI's Linux torchvision wheels are CUDA builds: with the CPU torch of the benchmark venvs their C extension
    cannot load and ``import torchvision`` fails registering fake kernels for ``torchvision::nms`` and friends
    ("operator torchvision::nms does not exist"). Avalanche imports torchvision at package import but its
    metrics never call a torchvision operator, so while torchvision is imported the registration of fake
    kernels for ``torchvision::`` operators that do not exist is skipped; nothing else is patched, and the
    original ``torch.library.register_fake`` is restored right after.
    """
    original = torch.library.register_fake

    def tolerant_register_fake(op, *args, **kwargs):
        if isinstance(op, str) and op.startswith("torchvision::"):
            try:
                torch._C._dispatch_find_schema_or_throw(op, "")
            except RuntimeError:
                return (lambda fn: fn) if not args and "func" not in kwargs else None
        return original(op, *args, **kwargs)

    torch.library.register_fake = tolerant_register_fake
    try:
        import avalanche
        from avalanche.evaluation.metrics import StreamAccuracy, StreamBWT, StreamForgetting, StreamForwardTransfer
    except Exception as error:  # noqa: BLE001 (any failure to import means: skip)
        return None, f"{type(error).__name__}: {error}"
    finally:
        torch.library.register_fake = original
    import torchvision
    return SimpleNamespace(version=avalanche.__version__, torchvision=torchvision.__version__,
                           StreamAccuracy=StreamAccuracy, StreamForgetting=StreamForgetting, StreamBWT=StreamBWT,
                           StreamForwardTransfer=StreamForwardTransfer), None


class _FakeStrategy:
    """The attributes Avalanche's stream metrics read from a strategy during evaluation, and nothing more."""

    def __init__(self) -> None:
        self.experience = None
        self.mb_output = None
        self.mb_y = None
        self.mb_task_id = None
        self.is_eval = False
        self.eval_every = 1
        self.clock = SimpleNamespace(train_iterations=0)

    def set_experience(self, index: int, stream: str) -> None:
        self.experience = SimpleNamespace(current_experience=index, task_labels=[0],
                                          origin_stream=SimpleNamespace(name=stream))

    def set_minibatch(self, correct: int, total: int) -> None:
        """``total`` patterns of class 0, the first ``correct`` predicted as class 0 and the rest as class 1."""
        self.mb_y = torch.zeros(total, dtype=torch.long)
        logits = torch.zeros(total, 2)
        logits[:correct, 0] = 1.0
        logits[correct:, 1] = 1.0
        self.mb_output = logits
        self.mb_task_id = torch.zeros(total, dtype=torch.long)


def _eval_stream(metrics, strategy: _FakeStrategy, row: np.ndarray, sizes: list[int]) -> dict:
    """One evaluation of the whole test stream, with the callbacks in the order Avalanche's eval loop calls them."""
    strategy.is_eval = True
    emitted = {}
    for metric in metrics:
        metric.before_eval(strategy)
    for j, (accuracy, total) in enumerate(zip(row, sizes, strict=True)):
        strategy.set_experience(j, "test")
        strategy.set_minibatch(int(round(float(accuracy) * total)), total)
        for metric in metrics:
            metric.before_eval_exp(strategy)
        for metric in metrics:
            metric.before_eval_iteration(strategy)
        for metric in metrics:
            metric.after_eval_iteration(strategy)
        for metric in metrics:
            metric.after_eval_exp(strategy)
    for metric in metrics:
        result = metric.after_eval(strategy)
        if result:
            emitted[str(metric)] = float(result[0].value)
    strategy.is_eval = False
    return emitted


def avalanche_stream_metrics(ava, R: np.ndarray, b: np.ndarray, sizes: list[int]) -> dict[str, float]:
    """Avalanche's stream metrics emitted after the last evaluation of a run whose accuracies are ``b`` then ``R``."""
    metrics = [ava.StreamAccuracy(), ava.StreamForgetting(), ava.StreamBWT(), ava.StreamForwardTransfer()]
    strategy = _FakeStrategy()
    _eval_stream(metrics, strategy, b, sizes)  # eval_every >= 0: the stream is evaluated before training
    emitted = {}
    for i in range(R.shape[0]):
        strategy.set_experience(i, "train")
        for metric in metrics:
            metric.before_training_exp(strategy)
        strategy.clock.train_iterations += 1
        emitted = _eval_stream(metrics, strategy, R[i], sizes)
    return {"acc": emitted["Top1_Acc_Stream"], "forgetting": emitted["StreamForgetting"],
            "bwt": emitted["StreamBWT"], "fwt": emitted["StreamForwardTransfer"]}


def ours(R: np.ndarray, b: np.ndarray) -> dict[str, float]:
    return {"acc": average_accuracy(R), "forgetting": forgetting(R), "bwt": backward_transfer(R),
            "fwt": forward_transfer(R, b)}


def random_matrix(seed: int, tasks: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Uniform random accuracies on the grid k/n (so a minibatch of n patterns gives them exactly), b below 0.2."""
    rng = np.random.default_rng(seed)
    b = rng.integers(0, n // 5, size=tasks) / n
    R = rng.integers(0, n + 1, size=(tasks, tasks)) / n
    return R, b


def hand_matrix() -> tuple[np.ndarray, np.ndarray]:
    """Task 0 peaks after task 1 (0.80 -> 0.90), task 1 after task 2: the best accuracy is not R[j, j]."""
    R = np.array([[0.80, 0.15, 0.10, 0.12],
                  [0.90, 0.70, 0.20, 0.11],
                  [0.85, 0.95, 0.60, 0.30],
                  [0.70, 0.65, 0.55, 0.90]])
    b = np.array([0.10, 0.12, 0.09, 0.11])
    return R, b


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=5, help="tasks in the random matrices")
    parser.add_argument("--patterns", type=int, default=1000, help="test patterns per experience")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args(argv)

    ava, reason = _import_avalanche()
    if ava is None:
        print(json.dumps({"skipped": True, "reason": f"avalanche not available ({reason})"}))
        return 0
    print(json.dumps({"avalanche": ava.version, "torch": torch.__version__, "torchvision": ava.torchvision,
                      "tolerance": TOLERANCE}))

    cases = [(f"random-seed{seed}-T{args.tasks}", *random_matrix(seed, args.tasks, args.patterns))
             for seed in args.seeds]
    cases.append(("hand-best-later", *hand_matrix()))
    worst: dict[str, float] = {}
    for name, R, b in cases:
        sizes = [args.patterns] * R.shape[0]
        mine, theirs = ours(R, b), avalanche_stream_metrics(ava, R, b, sizes)
        for metric in ("acc", "forgetting", "bwt", "fwt"):
            diff = abs(mine[metric] - theirs[metric])
            worst[metric] = max(worst.get(metric, 0.0), diff)
            print(json.dumps({"matrix": name, "metric": metric, "ours": mine[metric], "avalanche": theirs[metric],
                              "abs_diff": diff}))
        if name == "hand-best-later":
            best_earlier = np.array([R[: R.shape[0] - 1, j].max() - R[-1, j] for j in range(R.shape[0] - 1)])
            print(json.dumps({"matrix": name, "note": "forgetting from the best earlier accuracy (Chaudhry et al. "
                              "2018), neither ours nor Avalanche's", "value": float(best_earlier.mean())}))

    # informational, not counted: unequal test-set sizes make Avalanche's pooled stream accuracy a weighted mean
    R, b = hand_matrix()
    sizes = [100, 300, 500, 1000]
    theirs = avalanche_stream_metrics(ava, R, b, sizes)
    weighted = float(np.average(R[-1], weights=sizes))
    print(json.dumps({"matrix": "hand-best-later-unequal-test-sizes", "metric": "acc", "counted": False,
                      "ours": average_accuracy(R), "avalanche": theirs["acc"], "size_weighted_mean": weighted,
                      "abs_diff": abs(average_accuracy(R) - theirs["acc"])}))

    all_equal = all(diff <= TOLERANCE for diff in worst.values())
    print(json.dumps({"all_equal": all_equal, "max_abs_diff": worst, "matrices": len(cases)}))
    return 0 if all_equal else 1


if __name__ == "__main__":
    sys.exit(main())
