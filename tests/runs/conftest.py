"""A toy experiment for the run platform's tests: linear regression trained in two phases.

Its randomness comes from every source the platform restores on resume: the global torch, NumPy and
Python generators and a tracked ``torch.Generator``; the second phase keeps training the first phase's model
(with a new optimizer), and each phase ends with an evaluation that draws from the global generator and
logs a row outside the step loop.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from neuroplastic.runs import Claim, Experiment


@dataclass
class ToyConfig:
    steps: int = 30
    lr: float = 0.05
    batch: int = 8
    noise: float = 0.1
    checkpoint_every: int = 4


def toy_run(config: ToyConfig, run_dir) -> dict:
    """Fit y = X w + noise with momentum SGD on random minibatches, in phases "pretrain" and "finetune"."""
    X = torch.randn(64, 3)
    w_true = torch.tensor([[1.5], [-2.0], [0.5]])
    y = X @ w_true
    model = torch.nn.Linear(3, 1).to(run_dir.device)
    results = {}  # computed after each phase from the model and metrics, which resume must restore
    for phase in ("pretrain", "finetune"):
        opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=0.9)
        gen = torch.Generator().manual_seed(run_dir.seed + (1 if phase == "pretrain" else 2))
        run_dir.track(model=model, optimizer=opt, generator=gen)
        run_dir.state[f"{phase}_steps"] = 0  # carried from step to step in state, reset before each phase
        for step in run_dir.steps(config.steps, phase=phase, checkpoint_every=config.checkpoint_every,
                                  desc=f"toy {phase}"):
            idx = torch.randint(0, 64, (config.batch,))
            noise = torch.randn(config.batch, 1, generator=gen) * config.noise
            scale = 1.0 + 0.01 * random.random() + 0.01 * float(np.random.rand())
            loss = torch.nn.functional.mse_loss(model(X[idx]) * scale, y[idx] + noise)
            opt.zero_grad()
            loss.backward()
            opt.step()
            run_dir.log(step, loss=loss.detach())
            run_dir.state[f"{phase}_steps"] += 1
            if step % 10 == 9:  # a column that appears mid-phase
                run_dir.log(step, weight_error=float((model.weight.detach().T - w_true).norm()))
        eval_idx = torch.randint(0, 64, (16,))
        with torch.no_grad():
            eval_loss = torch.nn.functional.mse_loss(model(X[eval_idx]), y[eval_idx]).item()
        results[f"{phase}_loss"] = eval_loss
        results[f"{phase}_recent"] = float(np.mean([row["loss"] for row in run_dir.metrics[-5:]
                                                    if "loss" in row]))
        results[f"{phase}_steps"] = run_dir.state[f"{phase}_steps"]
        run_dir.log(config.steps, eval_loss=eval_loss)
    fig = Figure(figsize=(3, 2))
    fig.add_subplot().plot([row["loss"] for row in run_dir.metrics if "loss" in row])
    run_dir.save_figure(fig, "loss_curve")
    return {**results, "weight": model.weight.detach().flatten(), "bias": model.bias.detach().squeeze()}


def _raises(metrics):
    raise RuntimeError("broken check")


TOY_CLAIMS = (
    Claim("Toy et al. 2024", "training fits the data (final evaluation loss below 1)",
          lambda m: (m["finetune_loss"] < 1.0, m["finetune_loss"])),
    Claim("Toy et al. 2024", "the loss becomes negative",
          lambda m: (m["finetune_loss"] < 0, {"finetune_loss": m["finetune_loss"]})),
    Claim("Toy et al. 2024", "a claim whose check raises", _raises),
    Claim("Toy et al. 2024", "a claim on a metric that was never measured", lambda m: (m["missing"] > 0, 0)),
)

TOY = Experiment(
    name="toy",
    paper="Toy et al. 2024",
    description="linear regression in two phases",
    config_class=ToyConfig,
    budgets={"quick": ToyConfig(), "full": ToyConfig(steps=60)},
    run=toy_run,
    claims=TOY_CLAIMS,
    quick_minutes=0.01,
)


@pytest.fixture(scope="session")
def toy() -> Experiment:
    return TOY
