"""Property-based tests of :mod:`neuroplastic.evaluation`: predictions, correct masks and accuracy agree with the
arg-max of the model's logits for any batch size (N = 0 and 1 included), and bad inputs, labels and model outputs
(NaN logits, logits of another shape) are refused by the library. The plain tests at the end are the regression
tests of the defects these properties found."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from neuroplastic.evaluation import accuracy, correct_mask, count_parameters, predict_classes

LABEL_DTYPES = [torch.int64, torch.int32, torch.uint8, torch.float32, torch.bool]


def classifier(features=3, classes=4):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(features, 5), nn.ReLU(), nn.Linear(5, classes))


@given(st.integers(0, 7), st.integers(1, 4), st.sampled_from(LABEL_DTYPES), st.sampled_from(["[N]", "[N, 1]", "[N+1]"]),
       st.booleans())
def test_predictions_and_accuracy_agree_with_the_argmax_or_refuse(library_error, n, batch_size, label_dtype, shape,
                                                                   training):
    model = classifier().train(training)
    gen = torch.Generator().manual_seed(n)
    x = torch.randn(n, 3, generator=gen)
    labels = torch.randint(0, 4, (n + (shape == "[N+1]"),), generator=gen).to(label_dtype)
    if shape == "[N, 1]":
        labels = labels[:, None]
    with torch.no_grad():
        expected = model.eval()(x).argmax(dim=1) if n else torch.empty(0, dtype=torch.long)
    model.train(training)
    predicted = predict_classes(model, x, batch_size=batch_size)
    assert predicted.dtype == torch.long and torch.equal(predicted, expected)
    assert model.training == training  # the mode is restored
    valid_labels = shape == "[N]" and not label_dtype.is_floating_point and label_dtype != torch.bool
    if not valid_labels:
        with library_error():
            correct_mask(model, x, labels, batch_size=batch_size)
        return
    mask = correct_mask(model, x, labels, batch_size=batch_size)
    assert mask.dtype == torch.bool and torch.equal(mask, expected == labels.long())
    if n == 0:
        with library_error():
            accuracy(model, x, labels, batch_size=batch_size)
    else:
        assert accuracy(model, x, labels, batch_size=batch_size) == pytest.approx(float(mask.double().mean()))


OUTPUTS = {
    "logits": lambda x: x[:, :2] * 1.0,
    "nan": lambda x: torch.full((x.shape[0], 2), float("nan")),
    "one_nan": lambda x: torch.cat([x[:, :1], torch.full((x.shape[0], 1), float("nan"))], dim=1),
    "inf": lambda x: torch.cat([x[:, :1], torch.full((x.shape[0], 1), float("inf"))], dim=1),
    "1d": lambda x: x[:, 0],
    "3d": lambda x: x[:, :2, None],
    "no_classes": lambda x: x[:, :0],
    "fewer_rows": lambda x: x[:1, :2],
    "tuple": lambda x: (x[:, :2],),
}


@given(st.integers(1, 5), st.integers(1, 3), st.sampled_from(sorted(OUTPUTS)))
def test_model_outputs_other_than_logits_are_refused(library_error, n, batch_size, output):
    x = torch.randn(n, 3, generator=torch.Generator().manual_seed(n))
    labels = torch.zeros(n, dtype=torch.long)
    valid = output in ("logits", "inf") or (output == "fewer_rows" and min(batch_size, n) == 1)
    if valid:
        predicted = predict_classes(OUTPUTS[output], x, batch_size=batch_size)
        assert predicted.shape == (n,)
        if output == "inf":
            assert (predicted == 1).all()
        assert 0 <= accuracy(OUTPUTS[output], x, labels, batch_size=batch_size) <= 1
        return
    with library_error():
        predict_classes(OUTPUTS[output], x, batch_size=batch_size)
    with library_error():
        accuracy(OUTPUTS[output], x, labels, batch_size=batch_size)


@given(st.sampled_from([[[0.0] * 3], torch.tensor(1.0), "x", None, torch.zeros(2, 3)]),
       st.sampled_from([0, -1, 2.0, True, 1000]))
def test_inputs_and_batch_sizes_are_checked(library_error, inputs, batch_size):
    model = classifier()
    valid = isinstance(inputs, torch.Tensor) and inputs.dim() >= 1 and type(batch_size) is int and batch_size >= 1
    if valid:
        assert predict_classes(model, inputs, batch_size=batch_size).shape == (inputs.shape[0],)
    else:
        with library_error():
            predict_classes(model, inputs, batch_size=batch_size)


@given(st.lists(st.tuples(st.integers(1, 4), st.integers(1, 4), st.booleans()), max_size=3),
       st.sampled_from([False, True, 0, 1, None]))
def test_count_parameters_counts_entries_or_refuses(library_error, shapes, trainable_only):
    model = nn.ModuleList(nn.Linear(a, b) for a, b, _ in shapes)
    for layer, (_, _, frozen) in zip(model, shapes, strict=True):
        layer.requires_grad_(not frozen)
    if not isinstance(trainable_only, bool):
        with library_error():
            count_parameters(model, trainable_only=trainable_only)
        return
    expected = sum((a + 1) * b for a, b, frozen in shapes if not (trainable_only and frozen))
    assert count_parameters(model, trainable_only=trainable_only) == expected


# -- regression tests of the defects found by the properties ---------------------------------------------------

def test_nan_logits_are_refused_instead_of_counted_as_class_zero():
    x = torch.randn(3, 2)
    nan_model = lambda batch: torch.full((batch.shape[0], 4), float("nan"))  # noqa: E731
    with pytest.raises(ValueError, match=r"the model returned 12 NaN logits \(of 12\)"):
        accuracy(nan_model, x, torch.zeros(3, dtype=torch.long))  # was 1.0: argmax of NaN is index 0


def test_logits_of_another_shape_are_refused_instead_of_broadcast():
    x = torch.randn(2, 4)
    three_d = lambda batch: batch.view(2, 2, 2)  # noqa: E731
    with pytest.raises(ValueError, match=r"logits of shape \[n, C\] = \[2, C >= 1\] .*got \[2, 2, 2\]"):
        correct_mask(three_d, x, torch.zeros(2, dtype=torch.long))  # was a [2, 2] mask, accuracy 1.0
    with pytest.raises(ValueError, match=r"got \[2\]"):
        predict_classes(lambda batch: batch[:, 0], x)  # was an IndexError from inside argmax
    with pytest.raises(ValueError, match=r"got \[1, 4\]"):
        predict_classes(lambda batch: batch[:1], x)  # was one prediction for two inputs


def test_labels_inputs_and_models_are_checked_before_use():
    model = classifier(4, 3)
    x = torch.randn(2, 4)
    with pytest.raises(ValueError, match="labels must be class indices of an integer dtype .* got torch.float32"):
        accuracy(model, x, torch.tensor([0.5, 1.0]))  # was compared with the predictions as floats
    with pytest.raises(TypeError, match="inputs must be a torch.Tensor, got list"):
        accuracy(model, [[0.0] * 4], torch.tensor([0]))  # was an AttributeError
    with pytest.raises(TypeError, match="model must be an nn.Module or a callable returning logits, got int"):
        predict_classes(3, x)
    with pytest.raises(TypeError, match="trainable_only must be a bool, got int 1"):
        count_parameters(model, trainable_only=1)
