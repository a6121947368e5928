"""Quine training loops: the schedules do what they say, are deterministic, resume exactly, refuse bad input."""

from __future__ import annotations

import copy

import pytest
import torch

from neuroplastic.evolution import (
    AuxiliaryQuine,
    AuxiliaryTrainer,
    Quine,
    QuineSchedule,
    QuineTrainer,
    train_alternating,
    train_optimisation,
    train_regeneration,
)


def _quine(seed: int = 0) -> Quine:
    return Quine(4, (5,), "tanh", generator=torch.Generator().manual_seed(seed))


def _trainer(mode: str, seed: int = 0, **schedule) -> QuineTrainer:
    quine = _quine(seed)
    optimizer = None if mode == "regenerate" else torch.optim.Adam(quine.parameters(), lr=1e-2)
    return QuineTrainer(quine, optimizer, QuineSchedule(mode, **schedule),
                        generator=torch.Generator().manual_seed(seed + 1))


def test_optimisation_step_is_one_optimizer_step_on_the_sum_loss():
    quine = _quine()
    reference = copy.deepcopy(quine)
    history = train_optimisation(quine, torch.optim.SGD(quine.parameters(), lr=0.05), 1)
    loss = reference.replication_loss()
    loss.backward()
    with torch.no_grad():
        for p in reference.parameters():
            p -= 0.05 * p.grad
    torch.testing.assert_close(quine.flat_parameters(), reference.flat_parameters())
    assert history["step"] == [1] and history["regenerations"] == [0]
    torch.testing.assert_close(history["norm"][0], float(reference.parameter_norm()))
    torch.testing.assert_close(history["relative_error"][0], float(reference.relative_error()))


def test_regeneration_only_and_alternating_counts():
    quine = _quine()
    expected = copy.deepcopy(quine)
    history = train_regeneration(quine, 3)
    for _ in range(3):
        expected.regenerate()
    assert torch.equal(quine.flat_parameters(), expected.flat_parameters())
    assert history["regenerations"] == [1, 2, 3]
    quine = _quine()
    history = train_alternating(quine, torch.optim.Adam(quine.parameters(), lr=1e-3), 7, regenerate_every=3)
    assert history["regenerations"] == [0, 0, 1, 1, 1, 2, 2]
    # batches of 16 of D indices, a regeneration at the end of each epoch
    trainer = _trainer("alternate", batch_size=16)
    per_epoch = -(-trainer.module.num_parameters // 16)
    trainer.run(2 * per_epoch)
    assert trainer.history["regenerations"][per_epoch - 2:per_epoch] == [0, 1]
    assert trainer.regenerations == 2


def test_batches_cover_every_index_once_per_epoch():
    trainer = _trainer("optimise", batch_size=7)
    seen = []
    for _ in range(-(-trainer.module.num_parameters // 7)):
        batch, _ = trainer._batches.next()
        seen += batch.tolist()
    assert sorted(seen) == list(range(trainer.module.num_parameters))


@pytest.mark.parametrize("mode", ["optimise", "regenerate", "alternate"])
def test_training_is_deterministic_and_resumes_exactly(mode):
    schedule = {"batch_size": 10, "regenerate_every": 4} if mode != "regenerate" else {}
    full = _trainer(mode, **schedule)
    full.run(12)
    again = _trainer(mode, **schedule)
    again.run(12)
    assert again.history == full.history
    part = _trainer(mode, **schedule)
    part.run(5)
    state = copy.deepcopy(part.state_dict())
    resumed = _trainer(mode, seed=9, **schedule)  # another init: everything comes from the state
    resumed.load_state_dict(state)
    resumed.run(7)
    assert resumed.history == full.history
    assert torch.equal(resumed.module.flat_parameters(), full.module.flat_parameters())


def test_auxiliary_trainer_resumes_exactly_and_regenerates():
    g = torch.Generator().manual_seed(0)
    images, labels = torch.rand(20, 6, generator=g), torch.randint(3, (20,), generator=g)

    def make(seed: int = 0) -> AuxiliaryTrainer:
        aux = AuxiliaryQuine(6, 3, embedding_dim=3, hidden=(4,), generator=torch.Generator().manual_seed(seed))
        return AuxiliaryTrainer(aux, torch.optim.Adam(aux.parameters(), lr=1e-2), images, labels,
                                task_weight=0.5, batch_size=8, regenerate_every=3,
                                generator=torch.Generator().manual_seed(5))

    full = make()
    full.run(6)
    assert full.history["regenerations"] == [0, 0, 1, 1, 1, 2] and len(full.history["task_loss"]) == 6
    part = make()
    part.run(4)
    resumed = make(seed=3)
    resumed.load_state_dict(copy.deepcopy(part.state_dict()))
    resumed.run(2)
    assert resumed.history == full.history
    assert torch.equal(resumed.module.flat_parameters(), full.module.flat_parameters())


def test_bad_training_inputs_are_refused(library_error):
    quine = _quine()
    aux = AuxiliaryQuine(6, 3, embedding_dim=3, hidden=(4,))
    opt = torch.optim.SGD(aux.parameters(), lr=0.1)
    cases = [
        (lambda: QuineSchedule("evolve"), "mode must be one of"),
        (lambda: QuineSchedule(regenerate_every=0), "regenerate_every"),
        (lambda: QuineSchedule(batch_size=True), "batch_size"),
        (lambda: QuineSchedule(record_every=0), "record_every"),
        (lambda: QuineTrainer(quine, None, QuineSchedule("optimise")), "optimizer must be"),
        (lambda: QuineTrainer(aux, opt, QuineSchedule("optimise")), "quine must be a Quine"),
        (lambda: QuineTrainer(quine, None, "regenerate"), "schedule must be"),
        (lambda: QuineTrainer(quine, None, QuineSchedule("regenerate"), generator=1), "generator"),
        (lambda: QuineTrainer(quine, None, QuineSchedule("regenerate")).run(-1), "steps"),
        (lambda: AuxiliaryTrainer(aux, opt, torch.zeros(3, 5), torch.zeros(3, dtype=torch.long), task_weight=1.0),
         "images must have shape"),
        (lambda: AuxiliaryTrainer(aux, opt, torch.zeros(3, 6), torch.zeros(2, dtype=torch.long), task_weight=1.0),
         "labels must be"),
        (lambda: AuxiliaryTrainer(aux, opt, torch.zeros(3, 6), torch.zeros(3, dtype=torch.long),
                                  task_weight=float("inf")), "task_weight"),
        (lambda: AuxiliaryTrainer(aux, opt, torch.zeros(0, 6), torch.zeros(0, dtype=torch.long), task_weight=1.0),
         "at least one image"),
    ]
    for call, message in cases:
        with library_error() as info:
            call()
        assert info.match(message)
