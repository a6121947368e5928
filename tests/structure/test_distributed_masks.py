"""Two DDP processes (gloo, CPU) make identical mask decisions, with random regrowth, and keep densities exact.

Each rank sees different data and has a different global torch seed, so the only things that can make
the ranks agree are the manager's shared seed, DDP's all-reduced gradients and the manager's broadcast of
rank 0's masks. The negative control (per-rank seeds, no broadcast) shows that the check can fail.
"""

import sys
import warnings
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from neuroplastic.structure.sparse_training import SET, GraNet, RigL

WORLD = 2
STEPS = 12


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 3))


def _worker(rank: int, directory: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{directory}/rendezvous", rank=rank, world_size=WORLD)
    try:
        results = {}
        variants = {
            "set": (SET, {"density": 0.2, "delta_t": 2, "end": STEPS, "fraction": 0.5, "seed": 0}),
            "rigl": (RigL, {"density": 0.2, "delta_t": 2, "end": STEPS, "seed": 0}),
            "granet": (GraNet, {"final_density": 0.1, "end": 8, "delta_t": 2, "regrowth_end": STEPS,
                                "growth": "random", "seed": 0}),
            "set_rank_seed": (SET, {"density": 0.2, "delta_t": 2, "end": STEPS, "fraction": 0.5, "seed": rank}),
            "control": (SET, {"density": 0.2, "delta_t": 2, "end": STEPS, "fraction": 0.5, "seed": rank,
                              "sync_distributed": False}),
        }
        for name, (cls, kwargs) in variants.items():
            model = _model()
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
            manager = cls(model, optimizer, **kwargs)
            with warnings.catch_warnings():  # newer PyTorch calls broadcast_buffers deprecated; it still works
                warnings.simplefilter("ignore", FutureWarning)
                ddp = nn.parallel.DistributedDataParallel(model, broadcast_buffers=False)  # masks not re-sent
            torch.manual_seed(100 + rank)  # different data on each rank
            for _ in range(STEPS):
                optimizer.zero_grad()
                nn.functional.cross_entropy(ddp(torch.randn(8, 10)), torch.randint(0, 3, (8,))).backward()
                optimizer.step()
            results[name] = {"masks": {n: m.clone() for n, m in manager.masks.items()},
                             "counts": manager.counts(), "weights": [p.detach().clone() for p in model.parameters()]}
        torch.save(results, Path(directory) / f"rank{rank}.pt")
        dist.barrier()  # both ranks leave their last collective before either tears gloo down (a lone rank's
        # teardown while its peer is still in DDP's last all-reduce aborted a worker once on a loaded machine)
    finally:
        dist.destroy_process_group()


def test_masks_are_identical_on_every_rank(tmp_path, monkeypatch):
    if not dist.is_available():
        pytest.skip("torch.distributed is not available")
    # Spawned processes import the worker by module name; pytest imports this file by path (importlib mode),
    # so make it importable under its plain name.
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    monkeypatch.setitem(sys.modules, "test_distributed_masks", sys.modules[__name__])
    monkeypatch.setattr(_worker, "__module__", "test_distributed_masks")
    mp.spawn(_worker, args=(str(tmp_path),), nprocs=WORLD, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    # ERK at 0.2: raw 26/160 and 19/48, eps = 41.6 / (26 + 19): targets 24.04 and 17.56, total round(41.6) = 42
    expected_counts = {"0.weight": 24, "2.weight": 18}
    for name in ("set", "rigl", "granet", "set_rank_seed"):
        first, second = ranks[0][name], ranks[1][name]
        for layer, mask in first["masks"].items():
            assert torch.equal(mask, second["masks"][layer]), (name, layer)
        assert first["counts"] == second["counts"]
        for a, b in zip(first["weights"], second["weights"], strict=True):
            torch.testing.assert_close(a, b, msg=lambda m, name=name: f"{name}: {m}")
    assert ranks[0]["set"]["counts"] == expected_counts and ranks[0]["rigl"]["counts"] == expected_counts
    assert sum(ranks[0]["granet"]["counts"].values()) == round(0.1 * 208)
    # negative control: per-rank seeds without the broadcast diverge, so the check above can fail
    control = [ranks[r]["control"]["masks"] for r in range(WORLD)]
    assert not all(torch.equal(control[0][layer], control[1][layer]) for layer in control[0])
