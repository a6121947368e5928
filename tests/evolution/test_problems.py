"""Problems as evaluators: supervised fitness and the recurrent parity task, vectorised over the population."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neuroplastic.evolution import (
    GAConfig,
    GeneticAlgorithm,
    ParityProblem,
    ProblemEvaluation,
    SequenceClassifier,
    SupervisedProblem,
)
from neuroplastic.tasks import parity_data


def _parity_solver(problem: ParityProblem, gain: float = 40.0) -> torch.Tensor:
    """A hand-set 2-layer ReLU RNN (hidden 2) that computes the running parity exactly:
    layer 1: a_t = relu(p + x_t), b_t = relu(p + x_t - 1) with p = a_{t-1} - 2 b_{t-1} (so a_t - 2 b_t = p XOR x_t);
    layer 2: relu(a_t - 2 b_t) = p_t; read-out logits gain * (0.5 - p, p - 0.5)."""
    model = problem.model
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        rnn = model.rnn
        rnn.weight_ih_l0.copy_(torch.tensor([[1.0], [1.0]]))
        rnn.bias_ih_l0.copy_(torch.tensor([0.0, -1.0]))
        rnn.weight_hh_l0.copy_(torch.tensor([[1.0, -2.0], [1.0, -2.0]]))
        rnn.weight_ih_l1.copy_(torch.tensor([[1.0, -2.0], [0.0, 0.0]]))
        model.readout.weight.copy_(torch.tensor([[-gain, 0.0], [gain, 0.0]]))
        model.readout.bias.copy_(torch.tensor([gain / 2, -gain / 2]))
    return problem.initial_genome()


@pytest.mark.parametrize("targets", ["final", "every_step"])
def test_a_hand_set_rnn_solves_parity_with_zero_loss(targets):
    problem = ParityProblem("rnn_relu", hidden_size=2, targets=targets, dtype=torch.float64)
    genome = _parity_solver(problem)
    zero = torch.zeros_like(genome)
    result = problem(torch.stack([genome, zero]), torch.tensor([3, 4]))
    assert isinstance(result, ProblemEvaluation)
    assert result.fitness.dtype == torch.float64
    assert -1e-12 < float(result.fitness[0]) <= 0 and bool(result.solved[0])
    assert float(result.metrics["accuracy"][0]) == 1.0
    assert float(result.fitness[0]) >= problem.target_fitness == -math.log(2) / (2 * problem.targets.numel())
    # all-zero weights: both classes at probability 1/2 everywhere, ties read as class 0 (half right)
    assert float(result.fitness[1]) == pytest.approx(-math.log(2))
    assert not bool(result.solved[1]) and float(result.metrics["accuracy"][1]) < 1


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_batched_fitness_equals_a_per_genome_loop_through_the_fused_module(cell):
    problem = ParityProblem(cell, hidden_size=5, seed=1)
    gen = torch.Generator().manual_seed(0)
    genomes = problem.initial_genome() + 0.5 * torch.randn(6, problem.layout.size, generator=gen)
    result = problem(genomes)
    data = parity_data(4)
    for i, genome in enumerate(genomes):
        log_probs = problem.layout.call(problem.model, genome, data.inputs)  # nn.LSTM's own kernel
        assert float(result.fitness[i]) == pytest.approx(-float(F.nll_loss(log_probs, data.targets)), abs=1e-6)
        correct = (log_probs.argmax(1) == data.targets).all()
        assert bool(result.solved[i]) == bool(correct)
    assert result.experience.shape == (6, 16, 4, 1) and torch.equal(result.experience[2], data.inputs)
    chunked = ParityProblem(cell, hidden_size=5, seed=1)
    chunked.chunk_size = 4
    torch.testing.assert_close(chunked(genomes).fitness, result.fitness)
    assert problem(genomes[:0]).fitness.shape == (0,)


def test_supervised_losses_mse_tolerance_cross_entropy_and_callables():
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    x = torch.randn(8, 2)
    y = x @ torch.tensor([[1.0], [-2.0]]) + 0.5
    exact = torch.tensor([1.0, -2.0, 0.5])  # weight then bias
    genomes = torch.stack([exact, exact + 0.1])
    mse = SupervisedProblem(model, x, y, "mse", tolerance=1e-10, experience=True)(genomes)
    assert float(mse.fitness[0]) == pytest.approx(0, abs=1e-12) and mse.solved.tolist() == [True, False]
    assert float(mse.fitness[1]) == pytest.approx(-float(((x @ (exact[:2] + 0.1) + 0.6 - y[:, 0]) ** 2).mean()))
    assert mse.experience.shape == (2, 8, 2)
    assert SupervisedProblem(model, x, y, "mse")(genomes).solved is None
    assert SupervisedProblem(model, x, y, "mse", tolerance=0.25).target_fitness == -0.25
    assert SupervisedProblem(model, x, y, "mse").target_fitness is None

    classes = torch.tensor([0, 1, 1, 0, 1, 0, 0, 1])
    logits_model = nn.Linear(2, 2)
    genomes = torch.randn(3, 6)
    ce = SupervisedProblem(logits_model, x, classes, "cross_entropy")(genomes)
    for i in range(3):
        expected = F.cross_entropy(F.linear(x, genomes[i, :4].view(2, 2), genomes[i, 4:]), classes)
        assert float(ce.fitness[i]) == pytest.approx(-float(expected), abs=1e-6)

    def l1(outputs, targets):
        return (outputs - targets).abs().flatten(1).mean(1)

    custom = SupervisedProblem(model, x, y, l1, tolerance=0.0)(torch.stack([exact, exact + 1]))
    assert custom.solved.tolist() == [True, False]


def test_a_ga_steps_on_a_problem_and_stores_its_experience():
    problem = ParityProblem("gru", hidden_size=3)
    gen = torch.Generator().manual_seed(0)
    population = problem.initial_genome() + 0.1 * torch.randn(8, problem.layout.size, generator=gen)
    ga = GeneticAlgorithm(population, GAConfig(population_size=8, tournament_size=3, mutation_std=0.05), seed=0)
    fitness = ga.step(problem)
    assert fitness.shape == (8,) and bool((fitness < 0).all())
    assert ga.population.experience[0].shape == (16, 4, 1)


def test_sequence_classifier_shapes():
    model = SequenceClassifier("lstm", 3, 4, 5, num_layers=1, every_step=True)
    out = model(torch.randn(2, 7, 3))
    assert out.shape == (2, 7, 5)
    torch.testing.assert_close(out.exp().sum(-1), torch.ones(2, 7))
    assert SequenceClassifier("gru", 3, 4, 5)(torch.randn(2, 7, 3)).shape == (2, 5)


def test_bad_arguments(library_error):
    problem = ParityProblem("rnn", hidden_size=2)
    size = problem.layout.size
    x, classes = torch.randn(4, 2), torch.tensor([0, 1, 1, 0])
    cases = [
        (lambda: problem(torch.zeros(3, size + 1)), "genomes"),
        (lambda: problem(torch.zeros(size)), "genomes"),
        (lambda: problem(torch.zeros(3, size, dtype=torch.int64)), "genomes"),
        (lambda: problem(torch.zeros(3, size), torch.zeros(3)), "seeds"),
        (lambda: problem(torch.zeros(3, size), torch.zeros(2, dtype=torch.int64)), "seeds"),
        (lambda: SupervisedProblem(nn.Linear(2, 2), x, classes, "hinge"), "loss"),
        (lambda: SupervisedProblem(nn.Linear(2, 2), x, classes.float(), "nll"), "targets"),
        (lambda: SupervisedProblem(nn.Linear(2, 2), x, classes - 1, "nll"), "targets"),
        (lambda: SupervisedProblem(nn.Linear(2, 2), x, classes, "mse"), "targets"),
        (lambda: SupervisedProblem(nn.Linear(2, 2), x, classes, "nll", tolerance=0.1), "tolerance"),
        (lambda: SupervisedProblem(nn.Linear(2, 1), x, x[:, :1], "mse", tolerance=-1.0), "tolerance"),
        (lambda: SupervisedProblem(nn.Linear(2, 2), x.long(), classes), "inputs"),
        (lambda: SupervisedProblem(nn.Linear(2, 2), x, classes[:3]), "same B"),
        (lambda: SupervisedProblem(nn.Linear(2, 2), x, classes, experience=1), "experience"),
        (lambda: SupervisedProblem(nn.Linear(2, 2), x, classes, chunk_size=0), "chunk_size"),
        (lambda: SupervisedProblem(nn.Linear(2, 3), x, classes + 3)(torch.zeros(1, 9)), "class indices"),
        (lambda: SupervisedProblem(nn.Linear(2, 2), x, classes[:, None])(torch.zeros(1, 6)), "targets' shape"),
        (lambda: SupervisedProblem(nn.Linear(2, 1), x, x, "mse")(torch.zeros(1, 3)), "targets' shape"),
        (lambda: SupervisedProblem(nn.Linear(2, 1), x, x, lambda o, t: o.sum())(torch.zeros(2, 3)), "loss callable"),
        (lambda: SupervisedProblem(nn.LSTM(2, 2), x[:, None], classes)(torch.zeros(1, 48)), "one tensor"),
        (lambda: ParityProblem("transformer"), "cell"),
        (lambda: ParityProblem(hidden_size=0), "hidden_size"),
        (lambda: ParityProblem(targets="middle"), "targets"),
    ]
    for call, match in cases:
        with library_error() as info:
            call()
        assert info.match(match)
