"""Genetic operators: mutation, crossover, selection, elitism and per-genome seeds, against hand-computed draws."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from neuroplastic.evolution import (
    elite_indices,
    gaussian_mutation,
    genome_seed,
    genome_seeds,
    one_point_crossover,
    tournament_selection,
    truncation_selection,
    uniform_crossover,
)
from neuroplastic.evolution.operators import _splitmix64


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------- mutation
def test_gaussian_mutation_adds_std_times_the_generators_normal_draws():
    genomes = torch.arange(12, dtype=torch.float64).reshape(3, 4)
    out = gaussian_mutation(genomes, 0.5, _gen(3))
    expected = genomes + 0.5 * torch.randn(3, 4, generator=_gen(3), dtype=torch.float64)
    assert torch.equal(out, expected)
    assert out.dtype == torch.float64
    assert torch.equal(gaussian_mutation(genomes, 0.5, _gen(3)), out)  # same generator state, same children
    assert not torch.equal(gaussian_mutation(genomes, 0.5, _gen(4)), out)
    assert torch.equal(genomes, torch.arange(12, dtype=torch.float64).reshape(3, 4))  # parents untouched


def test_gaussian_mutation_per_weight_and_per_genome_scales():
    genomes = torch.zeros(3, 4)
    per_weight = torch.tensor([0.0, 1.0, 0.0, 2.0])
    out = gaussian_mutation(genomes, per_weight, _gen())
    noise = torch.randn(3, 4, generator=_gen())
    assert torch.equal(out, per_weight * noise)
    assert torch.all(out[:, [0, 2]] == 0)
    per_genome = torch.tensor([[0.0], [1.0], [3.0]]).expand(3, 4)
    out = gaussian_mutation(genomes, per_genome, _gen())
    assert torch.all(out[0] == 0) and torch.allclose(out[2], 3 * noise[2])


def test_gaussian_mutation_mean_and_std_over_many_draws():
    genomes = torch.tensor([[1.0, -2.0, 0.5]], dtype=torch.float64).expand(20000, 3)
    out = gaussian_mutation(genomes, 0.3, _gen(1))
    mean, std = out.mean(0), out.std(0)
    assert torch.allclose(mean, genomes[0], atol=4 * 0.3 / math.sqrt(20000))
    assert torch.allclose(std, torch.full((3,), 0.3, dtype=torch.float64), rtol=0.03)


def test_gaussian_mutation_refuses_bad_input(library_error):
    genomes = torch.zeros(2, 3)
    with library_error() as info:
        gaussian_mutation(genomes, -0.1, _gen())
    assert info.match("std")
    with library_error() as info:
        gaussian_mutation(genomes, float("nan"), _gen())
    assert info.match("std")
    with library_error() as info:
        gaussian_mutation(genomes, torch.ones(5), _gen())
    assert info.match(r"std must be a number or a tensor of shape \[D\]")
    with library_error() as info:
        gaussian_mutation(genomes, True, _gen())
    assert info.match("std")
    with library_error() as info:
        gaussian_mutation(torch.zeros(3), 0.1, _gen())
    assert info.match(r"genomes must have shape \[N, D\]")
    with library_error() as info:
        gaussian_mutation(genomes, 0.1, 0)
    assert info.match("generator must be a torch.Generator")


# ---------------------------------------------------------------------- crossover
def test_uniform_crossover_takes_each_gene_from_a_parent_with_the_given_probability():
    a, b = torch.zeros(500, 40), torch.ones(500, 40)
    child = uniform_crossover(a, b, _gen(), probability=0.3)
    assert torch.equal(child, (torch.rand(500, 40, generator=_gen()) < 0.3).float())
    assert abs(child.mean().item() - 0.3) < 0.01
    assert torch.equal(uniform_crossover(a, b, _gen(), probability=0.0), a)
    assert torch.equal(uniform_crossover(a, b, _gen(), probability=1.0), b)
    x, y = torch.randn(6, 9, generator=_gen(1)), torch.randn(6, 9, generator=_gen(2))
    z = uniform_crossover(x, y, _gen(5))
    assert torch.all((z == x) | (z == y))


def test_one_point_crossover_is_a_then_b_with_a_cut_in_1_to_d_minus_1():
    n, d = 400, 6
    a, b = torch.zeros(n, d), torch.ones(n, d)
    child = one_point_crossover(a, b, _gen(7))
    cut = torch.randint(1, d, (n, 1), generator=_gen(7))
    for i in range(n):  # slow reference
        c = int(cut[i])
        assert torch.equal(child[i], torch.cat([a[i, :c], b[i, c:]]))
    cuts = (child == 0).sum(1)
    assert set(cuts.tolist()) == set(range(1, d))  # every cut point occurs, never 0 or d
    one = torch.tensor([[1.0], [2.0]])
    assert torch.equal(one_point_crossover(one, -one, _gen()), one)


def test_crossover_refuses_mismatched_parents(library_error):
    with library_error() as info:
        uniform_crossover(torch.zeros(2, 3), torch.zeros(2, 4), _gen())
    assert info.match("same shape")
    with library_error() as info:
        one_point_crossover(torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.float64), _gen())
    assert info.match("dtype")
    with library_error() as info:
        uniform_crossover(torch.zeros(2, 3), torch.zeros(2, 3), _gen(), probability=1.5)
    assert info.match("probability")


# ---------------------------------------------------------------------- selection
def _reference_tournament(fitness, count, k, generator, largest):
    """One tournament at a time in Python, from the same random keys."""
    keys = torch.rand(count, fitness.shape[0], generator=generator)
    winners = []
    for row in keys:
        contestants = sorted(range(fitness.shape[0]), key=lambda j: -row[j].item())[:k]
        best = contestants[0]
        for j in contestants[1:]:
            if (fitness[j] > fitness[best]) if largest else (fitness[j] < fitness[best]):
                best = j
        winners.append(best)
    return torch.tensor(winners)


@pytest.mark.parametrize("largest", [True, False])
def test_tournament_selection_matches_a_slow_reference(largest):
    fitness = torch.tensor([0.3, -1.0, 2.0, 2.0, 0.0, float("-inf"), 5.0], dtype=torch.float64)
    got = tournament_selection(fitness, 50, 3, _gen(11), largest=largest)
    assert got.dtype == torch.int64 and got.shape == (50,)
    assert torch.equal(got, _reference_tournament(fitness, 50, 3, _gen(11), largest))


def test_tournament_of_the_whole_population_is_the_argmax_or_argmin():
    fitness = torch.randn(9, generator=_gen(2))
    assert torch.all(tournament_selection(fitness, 20, 9, _gen()) == fitness.argmax())
    assert torch.all(tournament_selection(fitness, 20, 9, _gen(), largest=False) == fitness.argmin())
    assert tournament_selection(fitness, 0, 3, _gen()).shape == (0,)


def test_tournament_win_probabilities_follow_the_rank_formula():
    # without replacement, the member of rank r (1 = best) of P wins a tournament of k with
    # probability C(P - r, k - 1) / C(P, k)
    size, k, draws = 6, 3, 30000
    fitness = torch.tensor([0.5, 3.0, -1.0, 2.0, 0.0, 1.0])
    winners = tournament_selection(fitness, draws, k, _gen(5))
    frequency = torch.bincount(winners, minlength=size).double() / draws
    rank = torch.argsort(torch.argsort(fitness, descending=True)) + 1
    expected = torch.tensor([math.comb(size - int(r), k - 1) / math.comb(size, k) for r in rank],
                            dtype=torch.float64)
    assert abs(expected.sum().item() - 1) < 1e-12
    assert torch.allclose(frequency, expected, atol=0.01)


def test_selection_refuses_nan_and_oversized_tournaments(library_error):
    fitness = torch.tensor([1.0, float("nan"), 0.0])
    with library_error() as info:
        tournament_selection(fitness, 2, 2, _gen())
    assert info.match("NaN")
    with library_error() as info:
        truncation_selection(fitness, 1)
    assert info.match("NaN")
    with library_error() as info:
        tournament_selection(torch.zeros(3), 2, 4, _gen())
    assert info.match("tournament_size must be at most the population size 3")
    with library_error() as info:
        tournament_selection(torch.zeros(3), 2, 0, _gen())
    assert info.match("tournament_size")
    with library_error() as info:
        tournament_selection(torch.zeros(3, 1), 2, 1, _gen())
    assert info.match("fitness")
    with library_error() as info:
        truncation_selection(torch.zeros(3), 4)
    assert info.match("count")


def test_truncation_and_elites_are_the_best_first_with_stable_ties():
    fitness = torch.tensor([3.0, 1.0, 4.0, 1.0, 5.0])
    assert truncation_selection(fitness, 3).tolist() == [4, 2, 0]
    assert truncation_selection(fitness, 2, largest=False).tolist() == [1, 3]
    assert elite_indices(fitness, 2).tolist() == [4, 2]
    assert elite_indices(fitness, 0).tolist() == []


# ---------------------------------------------------------------------- seeds
def test_splitmix64_matches_the_published_first_outputs():
    # SplitMix64 seeded with 0: the first output is mix(0 + golden gamma) = 0xE220A8397B1DCDAF
    assert _splitmix64(0) == 0xE220A8397B1DCDAF
    assert _splitmix64(0x9E3779B97F4A7C15) == 0x6E789E6AA1B965F4


def test_genome_seed_is_stable_distinct_and_fits_a_generator(library_error):
    seed = genome_seed(7, 3, 42)
    assert seed == genome_seed(7, 3, 42)
    assert 0 <= seed < 2**63
    torch.Generator().manual_seed(seed)
    assert len({genome_seed(7, 3, i) for i in range(2000)}) == 2000
    assert len({genome_seed(7, 3, 42), genome_seed(8, 3, 42), genome_seed(7, 4, 42), genome_seed(7, 3, 43)}) == 4
    ids, generations = torch.tensor([5, 6, 9]), torch.tensor([0, 1, 1])
    seeds = genome_seeds(7, generations, ids)
    assert seeds.dtype == torch.int64
    assert seeds.tolist() == [genome_seed(7, 0, 5), genome_seed(7, 1, 6), genome_seed(7, 1, 9)]
    with library_error() as info:
        genome_seed(-1, 0, 0)
    assert info.match("run_seed")
    with library_error() as info:
        genome_seed(0, 0, True)
    assert info.match("genome_id")


@given(st.integers(1, 12), st.integers(0, 20), st.data())
def test_property_a_tournament_winner_beats_at_least_k_minus_1_members(size, count, data):
    k = data.draw(st.integers(1, size))
    largest = data.draw(st.booleans())
    fitness = torch.tensor(data.draw(st.lists(st.integers(-3, 3), min_size=size, max_size=size)),
                           dtype=torch.float64)
    winners = tournament_selection(fitness, count, k, _gen(data.draw(st.integers(0, 100))), largest=largest)
    assert winners.shape == (count,) and bool(((winners >= 0) & (winners < size)).all())
    for w in winners.tolist():
        beaten = (fitness > fitness[w]) if largest else (fitness < fitness[w])
        assert int(beaten.sum()) <= size - k  # at most the members that were not in its tournament
