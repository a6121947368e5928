"""Networks built from the library's layers, used by the experiments and reusable on their own.

- :class:`SmallCNN` (:class:`ConvBlock` s), :class:`ResNet` (:class:`BasicBlock` s) and
  :func:`build_image_classifier`: image classifiers with BatchNorm layers (the backdoor-pruning experiment).
- :mod:`~neuroplastic.models.rnn`: the non-plastic tanh RNN (cell and sequence), the plastic RNN's control.
- :mod:`~neuroplastic.models.agents`: recurrent actor-critic agents (Backpropamine's cue-reward and grid maze)
  and a player of grid-maze episodes.
- :mod:`~neuroplastic.models.language`: character-level language models and the parameter-matched LSTM.
- :mod:`~neuroplastic.models.association_snn`: SNNs of the cue-target association task (SpikePropamine): a
  non-plastic recurrent LIF layer and a spiking network with a leaky readout.
- :mod:`~neuroplastic.models.mlp`: ReLU multilayer perceptrons (:func:`relu_mlp`).
- :mod:`~neuroplastic.models.lenet`: LeNet-300-100 and LeNet-5, He-initialised (:class:`LeNet300100`,
  :class:`LeNet5`; the sparse-training experiment).
- :mod:`~neuroplastic.models.spiking_mlp`: spiking MLPs of LIF neurons (:class:`SpikingMLP`,
  :class:`SpikingRateMLP`, :func:`spiking_activity`).
- :mod:`~neuroplastic.models.plastic_reservoir`: the local synaptic rules of ``plasticity`` applied to an
  echo-state network's recurrent weights (:func:`adapt_reservoir_weights`).

Layer: above ``neurons``, ``plasticity`` and ``dynamics`` (whose layers these networks combine); uses ``tasks``.
"""

from neuroplastic.models.agents import ActorCritic, MazeAgent, run_maze_episodes
from neuroplastic.models.association_snn import AssociationSNN, PlainRecurrentLIF
from neuroplastic.models.builder import IMAGE_ARCHITECTURES, build_image_classifier
from neuroplastic.models.cnn import ConvBlock, SmallCNN
from neuroplastic.models.language import (
    CharLanguageModel,
    detach_state,
    evaluate_bpc,
    init_like_plastic_cell,
    lstm_parameter_count,
    matched_lstm_hidden_size,
    sample_text,
)
from neuroplastic.models.lenet import LeNet5, LeNet300100
from neuroplastic.models.mlp import relu_mlp
from neuroplastic.models.plastic_reservoir import adapt_reservoir_weights
from neuroplastic.models.resnet import BasicBlock, ResNet
from neuroplastic.models.rnn import RNN, RNNCell, RNNState
from neuroplastic.models.spiking_mlp import SpikingMLP, SpikingRateMLP, spiking_activity

__all__ = [
    "ConvBlock", "SmallCNN", "BasicBlock", "ResNet", "IMAGE_ARCHITECTURES", "build_image_classifier",
    "RNNState", "RNNCell", "RNN", "ActorCritic", "MazeAgent", "run_maze_episodes",
    "CharLanguageModel", "detach_state", "lstm_parameter_count", "matched_lstm_hidden_size",
    "init_like_plastic_cell", "evaluate_bpc", "sample_text", "PlainRecurrentLIF", "AssociationSNN",
    "relu_mlp", "LeNet300100", "LeNet5", "SpikingMLP", "SpikingRateMLP", "spiking_activity",
    "adapt_reservoir_weights",
]
