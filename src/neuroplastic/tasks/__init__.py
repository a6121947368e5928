"""Environments and task generators of the reproduced papers, as batched tensors.

- :mod:`~neuroplastic.tasks.pattern_completion`: binary pattern memorisation (Miconi et al. 2018).
- :mod:`~neuroplastic.tasks.cue_reward`: cue-reward association, trained by RL (Miconi et al. 2019).
- :mod:`~neuroplastic.tasks.grid_maze`: grid maze exploration, trained by RL (Miconi et al. 2018, 2019).
- :mod:`~neuroplastic.tasks.text`: character-level language modelling data.
- :mod:`~neuroplastic.tasks.sequences`: an easy and a hard next-character sequence (Miconi 2016).

Every random draw takes a CPU ``torch.Generator``; tensors are drawn on the CPU then moved to ``device``.
"""

from neuroplastic.tasks._common import ObservationLayout
from neuroplastic.tasks.cue_reward import CueRewardTask, draw_distinct_cues
from neuroplastic.tasks.grid_maze import MAZE_ACTIONS, GridMazeTask, grid_maze_layout
from neuroplastic.tasks.pattern_completion import (
    PatternCompletionBatch,
    bit_error_rate,
    bits_wrong,
    pattern_completion_batch,
)
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
    "CharVocabulary",
    "stdlib_corpus",
    "stdlib_source_files",
    "read_corpus",
    "char_batches",
    "split_corpus",
    "sequential_batches",
    "bits_per_character",
    "easy_batch",
    "hard_batch",
    "task_batch",
]
