"""Task streams: permuted and split digits, from the embedded data and from MNIST IDX files."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch

from neuroplastic.continual import (
    Task,
    TaskStream,
    digits_stream,
    mnist_idx_stream,
    permuted_tasks,
    split_tasks,
    split_validation,
)


def _toy(n_train=40, n_test=20, classes=4, features=6, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x_train = torch.rand(n_train, features, generator=gen)
    x_test = torch.rand(n_test, features, generator=gen)
    return x_train, torch.arange(n_train) % classes, x_test, torch.arange(n_test) % classes


def test_permutations_are_bijections_seeded_and_task_0_optionally_unpermuted():
    data = _toy()
    stream = permuted_tasks(*data, 4, seed=3)
    assert stream.scenario == "domain-incremental" and len(stream) == 4 and stream.head_sizes == (4,)
    assert torch.equal(stream[0].x_train, data[0]) and torch.equal(stream[0].permutation, torch.arange(6))
    for task in stream:
        perm = task.permutation
        assert torch.equal(perm.sort().values, torch.arange(6))  # a bijection of the pixels
        assert torch.equal(task.x_train, data[0][:, perm]) and torch.equal(task.x_test, data[2][:, perm])
        assert torch.equal(task.y_train, data[1]) and task.head == 0 and task.num_outputs == 4
    assert len({tuple(t.permutation.tolist()) for t in stream}) == 4
    again = permuted_tasks(*data, 4, seed=3)
    assert all(torch.equal(a.x_train, b.x_train) for a, b in zip(stream, again, strict=True))
    other = permuted_tasks(*data, 4, seed=4)
    assert not torch.equal(other[1].permutation, stream[1].permutation)
    # task 0 permuted too; the other tasks do not depend on the option
    all_permuted = permuted_tasks(*data, 4, seed=3, first_identity=False)
    assert not torch.equal(all_permuted[0].permutation, torch.arange(6))
    assert torch.equal(all_permuted[2].permutation, stream[2].permutation)


def test_permuting_images_permutes_their_flattened_pixels():
    x = torch.rand(5, 1, 3, 3)
    stream = permuted_tasks(x, torch.arange(5), x, torch.arange(5), 2, seed=0)
    task = stream[1]
    assert task.x_train.shape == (5, 1, 3, 3)
    assert torch.equal(task.x_train.reshape(5, -1), x.reshape(5, -1)[:, task.permutation])


@pytest.mark.parametrize("scenario", ["task-incremental", "class-incremental"])
def test_split_classes_are_disjoint_and_cover_with_labels_remapped_within_a_task(scenario):
    data = _toy(classes=6)
    stream = split_tasks(*data, 3, scenario=scenario, seed=1, shuffle_classes=True)
    seen: list[int] = []
    for t, task in enumerate(stream):
        assert len(task.classes) == 2
        seen.extend(task.classes)
        original = torch.tensor(task.classes)
        for x, y, xs, ys in ((data[0], data[1], task.x_train, task.y_train), (data[2], data[3], task.x_test,
                                                                                  task.y_test)):
            mine = torch.isin(y, original)
            assert torch.equal(xs, x[mine])  # every example of the task's classes, in order
            if scenario == "task-incremental":
                assert task.head == t and task.num_outputs == 2
                assert torch.equal(original[ys], y[mine])  # classes[label] is the original class
                assert set(ys.tolist()) == {0, 1}
            else:
                assert task.head == 0 and task.num_outputs == 6 and torch.equal(ys, y[mine])
    assert sorted(seen) == list(range(6))  # disjoint and covering
    assert stream.head_sizes == ((2, 2, 2) if scenario == "task-incremental" else (6,))
    in_order = split_tasks(*data, 3, scenario=scenario)
    assert [t.classes for t in in_order] == [(0, 1), (2, 3), (4, 5)]
    assert [t.classes for t in split_tasks(*data, 3, scenario=scenario, seed=1, shuffle_classes=True)] == \
        [t.classes for t in stream]


def test_digits_and_mnist_sample_streams():
    split = digits_stream("split-task", 5, seed=0)
    assert split.task_incremental and [t.classes for t in split] == [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]
    assert split[0].x_train.shape[1] == 64 and sum(t.x_train.shape[0] for t in split) == 1438
    permuted = digits_stream("permuted", 2, source="mnist-sample", seed=0)
    assert permuted[0].x_train.shape == (4000, 784) and permuted[1].x_test.shape == (1000, 784)
    classes = digits_stream("split-class", 2, source="digits", seed=0)
    assert classes.scenario == "class-incremental" and classes.head_sizes == (10,)


def _write_idx(path, array):
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + np.ascontiguousarray(array, dtype=">u1").tobytes()))


def test_mnist_idx_stream(tmp_path, library_error):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 30), ("t10k", 20)):
        _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", (np.arange(n) % 10).astype(np.uint8))
    stream = mnist_idx_stream(tmp_path, "split-task", 5, seed=0)
    assert len(stream) == 5 and stream[0].x_train.shape == (6, 784) and stream[4].x_test.shape == (4, 784)
    assert torch.equal(stream[2].y_train, torch.tensor([0, 1] * 3))
    permuted = mnist_idx_stream(tmp_path, "permuted", 3, seed=0)
    assert permuted[2].x_train.shape == (30, 784) and permuted[2].x_train.max() <= 1.0
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        mnist_idx_stream(empty, "permuted", 2)
    with library_error() as info:
        mnist_idx_stream(tmp_path, "split-class", 3)
    assert info.match("num_tasks must divide the number of classes 10")


def test_bad_inputs(library_error):
    data = _toy()
    for kwargs, pattern in (({"num_tasks": 0}, "num_tasks"), ({"num_tasks": 3}, "divide"),
                            ({"num_tasks": 8}, "divide"), ({"num_tasks": 2, "scenario": "domain"}, "scenario"),
                            ({"num_tasks": 2, "seed": -1}, "seed"),
                            ({"num_tasks": 2, "shuffle_classes": 1}, "shuffle")):
        with library_error() as info:
            split_tasks(*data, **kwargs)
        assert info.match(pattern)
    with library_error() as info:
        split_tasks(data[0], data[1], data[2], torch.zeros(20, dtype=torch.long), 2)
    assert info.match("missing from one")
    with library_error() as info:
        permuted_tasks(data[0], data[1].float(), data[2], data[3], 2)
    assert info.match("y_train")
    with library_error() as info:
        permuted_tasks(data[0], data[1][:5], data[2], data[3], 2)
    assert info.match("same number")
    with library_error() as info:
        permuted_tasks(data[0], data[1], data[2][:, :3], data[3], 2)
    assert info.match("same input shape")
    with library_error() as info:
        permuted_tasks(*data, 2, first_identity="yes")
    assert info.match("first_identity")
    with library_error() as info:
        digits_stream("rotated", 2)
    assert info.match("kind")
    with library_error() as info:
        digits_stream("permuted", 2, source="cifar")
    assert info.match("source")
    with library_error() as info:
        digits_stream("split-task", 4)
    assert info.match("divide")
    task = permuted_tasks(*data, 1)[0]
    with library_error() as info:
        TaskStream((task, task), "domain-incremental", 4, 0)
    assert info.match("ids")
    with library_error() as info:
        TaskStream((task,), "rotated", 4, 0)
    assert info.match("scenario")
    assert isinstance(task, Task) and "Task(task_id=0" in repr(task)


def test_split_validation_holds_out_part_of_each_training_set(library_error):
    stream = split_tasks(*_toy(n_train=40, classes=4), 2, scenario="task-incremental")
    train, valid = split_validation(stream, 0.25, seed=1)
    for whole, t, v in zip(stream, train, valid, strict=True):
        assert t.x_train.shape[0] == 15 and v.x_test.shape[0] == 5 and torch.equal(t.x_test, whole.x_test)
        assert torch.equal(v.x_train, t.x_train) and (t.classes, t.head) == (whole.classes, whole.head)
        rows = torch.cat([t.x_train, v.x_test])  # a partition of the training set, labels kept with their rows
        order = [int((whole.x_train == r).all(1).nonzero()) for r in rows]
        assert sorted(order) == list(range(20))
        assert torch.equal(torch.cat([t.y_train, v.y_test]), whole.y_train[order])
    again = split_validation(stream, 0.25, seed=1)[1]
    assert torch.equal(again[1].x_test, valid[1].x_test)
    assert valid.scenario == stream.scenario and len(valid) == 2
    with library_error() as info:
        split_validation(stream, 1.0)
    assert info.match("fraction")
    with library_error() as info:
        split_validation([stream[0]], 0.5)
    assert info.match("TaskStream")
