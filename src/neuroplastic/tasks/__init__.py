"""Environments and task generators of the reproduced papers, as batched tensors.

- :mod:`~neuroplastic.tasks.pattern_completion`: binary pattern memorisation (Miconi et al. 2018).
- :mod:`~neuroplastic.tasks.cue_reward`: cue-reward association, trained by RL (Miconi et al. 2019).
- :mod:`~neuroplastic.tasks.grid_maze`: grid maze exploration, trained by RL (Miconi et al. 2018, 2019).
- :mod:`~neuroplastic.tasks.text`: character-level language modelling data.
- :mod:`~neuroplastic.tasks.lorenz`: Lorenz time-series prediction, and the NRMSE metric (Chakraborty et al. 2024).
- :mod:`~neuroplastic.tasks.rl`: discounted returns and the advantage actor-critic loss of the RL tasks.
- :mod:`~neuroplastic.tasks.sequences`: an easy and a hard next-character sequence (Miconi 2016).
- :mod:`~neuroplastic.tasks.parity`: the recurrent parity task (Lehman et al. 2018).
- :mod:`~neuroplastic.tasks.hard_maze`: the breadcrumb hard maze, N robots stepped as tensors (Lehman et al.
  2018); ``neuroplastic.tasks.hard_maze_env`` (needs gymnasium, not imported here) registers it as the
  ``gymnasium`` environment ``neuroplastic/HardMaze-v0``.

Every random draw takes a CPU ``torch.Generator``; tensors are drawn on the CPU then moved to ``device``.
"""

from neuroplastic.tasks._common import ObservationLayout
from neuroplastic.tasks.cue_reward import CueRewardTask, draw_distinct_cues
from neuroplastic.tasks.grid_maze import MAZE_ACTIONS, GridMazeTask, episode_statistics, grid_maze_layout
from neuroplastic.tasks.hard_maze import (
    BatchedHardMaze,
    HardMazeState,
    breadcrumb_distance,
    breadcrumb_map,
    hard_maze_breadcrumb,
)
from neuroplastic.tasks.lorenz import (
    LorenzData,
    lorenz_prediction_data,
    lorenz_series,
    normalize_series,
    nrmse,
    observe_components,
    prediction_windows,
)
from neuroplastic.tasks.parity import ParityData, parity_data
from neuroplastic.tasks.pattern_completion import (
    PatternCompletionBatch,
    bit_error_rate,
    bits_wrong,
    pattern_completion_batch,
)
from neuroplastic.tasks.rl import a2c_loss, discounted_returns, policy_log_probs
from neuroplastic.tasks.sequences import easy_batch, hard_batch, task_batch
from neuroplastic.tasks.text import (
    CharVocabulary,
    bits_per_character,
    char_batches,
    read_corpus,
    sequential_batches,
    split_corpus,
    stdlib_corpus,
    stdlib_source_files,
)

__all__ = [
    "ObservationLayout",
    "PatternCompletionBatch",
    "pattern_completion_batch",
    "bits_wrong",
    "bit_error_rate",
    "CueRewardTask",
    "draw_distinct_cues",
    "GridMazeTask",
    "grid_maze_layout",
    "MAZE_ACTIONS",
    "episode_statistics",
    "discounted_returns",
    "policy_log_probs",
    "a2c_loss",
    "CharVocabulary",
    "stdlib_corpus",
    "stdlib_source_files",
    "read_corpus",
    "char_batches",
    "split_corpus",
    "sequential_batches",
    "bits_per_character",
    "LorenzData",
    "lorenz_series",
    "lorenz_prediction_data",
    "normalize_series",
    "prediction_windows",
    "observe_components",
    "nrmse",
    "easy_batch",
    "hard_batch",
    "task_batch",
    "ParityData",
    "parity_data",
    "BatchedHardMaze",
    "HardMazeState",
    "breadcrumb_distance",
    "breadcrumb_map",
    "hard_maze_breadcrumb",
]
