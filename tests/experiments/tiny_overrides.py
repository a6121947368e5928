"""The tiny overrides of every experiment: a config small enough that a run takes a few seconds.

Shared by the experiment tests (``tests/experiments/test_<name>.py``) and the CLI fuzz test
(``tests/test_cli_fuzz.py``); importable as ``experiments.tiny_overrides`` because pytest puts ``tests`` on
``sys.path`` (``pythonpath`` in pyproject.toml). :func:`tiny` returns a fresh copy, so a test that changes its
dict changes no other test's; :func:`tiny_cli` gives the same overrides as ``--set`` arguments.
"""

from __future__ import annotations

from typing import Any

_TINY: dict[str, dict[str, Any]] = {
    "spectral-rnn": {
        "inputs": 4, "hidden": 2, "sequence_length": 20, "sample_sizes": "2000,8000", "repeats": 1,
        "square_samples": 2000, "validation_sequences": 10, "bp_steps": 20, "bp_eval_every": 5,
    },
    "continual-hlop": {
        "num_tasks": 2, "hidden": 16, "time_steps": 2, "epochs": 1, "batch_size": 256, "hlop_initial": "8,4,4",
        "hlop_growth": "2,2,2", "hebbian_epochs": 1, "hebbian_samples": 200, "replay_capacity": 50,
        "synthetic_features": 16, "synthetic_rank": 3, "synthetic_samples": 400,
    },
    "backdoor-pruning": {
        "channels": "4,8", "strides": "2,2", "epochs": 1, "batch_size": 200, "max_unlearning_updates": 3,
        "recovery_updates": 2, "ablation_fractions": "0.02", "monitor_size": 20, "sweep_thresholds": "0.2,0.5",
    },
    "continual-clnp": {
        "max_train": 40, "max_test": 30, "hidden": 16, "epochs": 1, "batch_size": 16, "tolerances": "0,5",
        "search_steps": 4, "ewc_strengths": "1,100", "ewc_fisher_samples": 8, "replay_capacity": 20,
    },
    "cue-reward": {
        "cue_size": 6, "num_trials": 3, "hidden_size": 8, "batch_size": 4, "updates": 2, "eval_episodes": 6,
        "checkpoint_every": 1,
    },
    "dormant-neurons": {
        "dataset": "digits", "train_size": 200, "hidden": 16, "depth": 2, "batch_size": 16, "phases": 3,
        "steps_per_phase": 10, "redo_every": 5, "drm_every": 10, "adapt_steps": 4, "eval_every": 5,
        "probe_size": 64,
    },
    "dppn-autoencoder": {
        "image_side": 8, "hidden_side": 3, "val_size": 50, "population_size": 3, "generations": 2, "inner_steps": 3,
        "batch_size": 16, "tournament_size": 2, "initial_hidden": 2, "max_nodes": 6, "min_compression": 1.0,
        "direct_steps": 20, "log_every": 10,
    },
    "evolved-plasticity": {
        "cue_size": 4, "num_trials": 2, "hidden_size": 4, "population": 4, "generations": 2, "episodes": 2,
        "tournament_size": 2, "finalists": 2, "validation_episodes": 2, "test_episodes": 4, "plasticity_only": True,
        "checkpoint_every": 1,
    },
    "network-quine": {
        "embedding_dim": 8, "hidden": "8", "steps": 12, "regenerate_every": 4, "repeats": 2, "log_every": 4,
        "aux_embedding_dim": 4, "aux_hidden": "8", "aux_steps": 6, "aux_batch_size": 32,
        "task_weights": "0.01,1.0", "checkpoint_every": 3,
    },
    "gradient-rewiring": {"hidden": "16", "alphas": "0.3,3.0", "epochs": 2, "batch_size": 500, "lr": 0.01},
    "gradient-activation": {
        "depth": 4, "width": 8, "steps": 20, "eval_every": 5, "repeats": 2, "loss_threshold": 2.2,
        "saddle_steps": 300,
    },
    "hybrid-simulator": {
        "id_trajectories": 1, "id_seconds": 0.1, "id_window": 20, "id_iterations": 1, "trajectory_seconds": 0.1,
        "data_sizes": "1,2", "test_trajectories": 2, "horizon_seconds": 0.1, "window": 10, "windows_per_step": 4,
        "hybrid_steps": 3, "residual_hidden": "4", "network_hidden": "8", "network_steps": 5, "network_batch": 16,
        "checkpoint_every": 1,
    },
    "grid-maze": {
        "updates": 3, "maze_size": 5, "episode_length": 12, "hidden_size": 8, "batch_size": 4, "eval_episodes": 6,
        "eval_batch": 4, "time_windows": 3, "log_every": 1, "checkpoint_every": 1,
    },
    "growing-rnn": {
        "seeds": 2, "steps": 12, "switch_steps": 8, "batch_size": 4, "seq_len": 12, "patience": 3,
        "eval_sequences": 3, "eval_length": 30, "log_every": 2, "checkpoint_every": 3,
    },
    "pattern-completion": {
        "pattern_size": 8, "num_patterns": 2, "presentations": 1, "present_steps": 2, "gap_steps": 1,
        "test_steps": 2, "batch_size": 4, "steps": 4, "eval_batches": 2, "eval_batch_size": 5, "checkpoint_every": 2,
    },
    "plastic-lm": {
        "max_chars": "12000", "embedding_dim": "8", "hidden_size": "12", "batch_size": "4", "seq_len": "16",
        "steps": "6", "eval_every": "3", "eval_batch": "4", "eval_chars": "2000", "sample_chars": "16",
    },
    "reservoir-self-organisation": {
        "units": 12, "radii": "0.5,1.0,2.0", "reservoirs": 1, "k_max": 10, "washout": 20, "measure_steps": 200,
        "ip_steps": 100, "info_units": 4,
    },
    "quantized-nets": {
        "train_size": 100, "hidden": "8,8", "channels": "2,2", "mlp_epochs": 2, "cnn_epochs": 1, "batch_size": 50,
        "ste_repeats": 2,
    },
    "safe-mutations": {
        "deep_width": 4, "parents": 1, "perturbations": 2, "hidden_size": 3, "population_size": 5, "batch_size": 2,
        "max_evaluations": 12, "repeats": 2, "report_every": 3, "checkpoint_every": 2, "gaussian_stds": "0.1",
        "divergence_methods": "gaussian,sum,abs,r", "maze_steps": 30,
    },
    "snn-lnp": {
        "neurons": 24, "train_steps": 160, "test_steps": 80, "test_series": 2, "washout": 20, "noise_steps": 120,
        "lyapunov_warmup": 20, "spectrum_steps": 60, "spectrum_k": 3, "sweep_fractions": (0.5,),
        "centrality_rounds": 2, "ridges": (1e-4, 1e-2), "gain_sweep": (0.5, 1.0),
    },
    "snn-plasticity": {
        "num_pairs": 2, "cue_size": 8, "cue_active": 2, "label_channels": 2, "present_steps": 2, "gap_steps": 1,
        "delay_steps": 1, "query_steps": 2, "hidden_size": 6, "batch_size": 4, "steps": 4, "eval_batches": 1,
        "eval_batch_size": 6, "checkpoint_every": 2, "noise_sweep": "0.0,0.1",
    },
    "snn-reset": {
        "hidden": 16, "time_steps": 3, "repeats": 2, "epochs": 2, "batch_size": 1000, "lr": 0.02,
        "surrogate": "triangle",
    },
    "st-rsbp": {"hidden": 8, "time_steps": 4, "epochs": 2, "batch_size": 500, "lr": 0.01,
                "memory_steps": "4,8,16", "memory_batch": 2},
    "snn-rewiring": {"hidden": 16, "time_steps": 4, "alphas": "0.3,3.0", "epochs": 2, "batch_size": 500, "lr": 0.01},
    "sparse-training": {
        "sparsities": [0.9, 0.98], "train_images": 96, "epochs": 2, "batch_size": 32, "delta_t": 2, "log_every": 2,
        "eval_batch_size": 200, "checkpoint_every": 1000,
    },
}

NAMES = tuple(sorted(_TINY))


def tiny(name: str) -> dict[str, Any]:
    """The tiny overrides of experiment ``name`` (a fresh dict; values as the tests pass them to the runner)."""
    return {key: list(value) if isinstance(value, list) else value for key, value in _TINY[name].items()}


def as_text(value: Any) -> str:
    """An override value as ``--set`` text: a tuple or list comma-separated, anything else ``str``."""
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value))
    return str(value)


def tiny_cli(name: str) -> list[str]:
    """The tiny overrides of experiment ``name`` as command-line arguments: ``["--set", "key=value", ...]``."""
    return [part for key, value in _TINY[name].items() for part in ("--set", f"{key}={as_text(value)}")]
