"""Surrogate gradients: hand-computed derivatives, gradcheck of grad() against smooth(), spikes forward."""

import math

import pytest
import torch

from neuroplastic.neurons.surrogates import (
    ATan,
    FastSigmoid,
    Rectangle,
    Sigmoid,
    Surrogate,
    Triangle,
    get_surrogate,
    register_surrogate,
    spike_fn,
    surrogate_names,
)


class _SmoothWithSurrogateGrad(torch.autograd.Function):
    """smooth(x) forward, grad(x) backward: gradcheck then compares grad() with smooth()'s true derivative."""

    @staticmethod
    def forward(ctx, x, surrogate):
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return surrogate.smooth(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * ctx.surrogate.grad(x), None


# (surrogate, x, d/dx by hand)
HAND = [
    (FastSigmoid(slope=2.0), 0.5, 1 / (1 + 1) ** 2),
    (FastSigmoid(slope=2.0), -1.5, 1 / (1 + 3) ** 2),
    (FastSigmoid(), 0.0, 1.0),
    (ATan(alpha=2.0), 0.0, 1.0),
    (ATan(alpha=2.0), 1 / math.pi, 0.5),  # (pi/2 * 2 * 1/pi)^2 = 1
    (ATan(alpha=4.0), -1 / (2 * math.pi), 1.0),  # 4/2 / (1 + 1)
    (Triangle(width=2.0), 1.0, 0.25),
    (Triangle(width=2.0), -1.0, 0.25),
    (Triangle(width=2.0), 3.0, 0.0),
    (Triangle(), 0.0, 1.0),
    (Sigmoid(slope=4.0), 0.0, 1.0),
    (Sigmoid(slope=1.0), math.log(3.0), 0.75 * 0.25),  # sigmoid(ln 3) = 3/4
    (Rectangle(width=0.5), 0.49, 1.0),  # 1 / (2 * 0.5) inside the window
    (Rectangle(width=0.5), -0.2, 1.0),
    (Rectangle(width=0.5), 0.5, 0.0),  # the window is open: |x| < width
    (Rectangle(width=2.0), -1.9, 0.25),
]


@pytest.mark.parametrize("surrogate, x, expected", HAND, ids=[f"{type(s).__name__}-{x:.3f}" for s, x, _ in HAND])
def test_grad_equals_the_hand_computed_derivative(surrogate, x, expected):
    got = surrogate.grad(torch.tensor([x], dtype=torch.float64)).item()
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("surrogate", [FastSigmoid(3.0), ATan(1.5), Triangle(0.7), Sigmoid(2.5),
                                       Rectangle(0.6)], ids=repr)
def test_grad_is_the_derivative_of_smooth_by_gradcheck(surrogate):
    # points away from the kinks of |x| at 0 and of the triangle at +-width
    x = torch.tensor([-2.1, -0.9, -0.3, -0.05, 0.04, 0.2, 0.45, 1.3], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: _SmoothWithSurrogateGrad.apply(t, surrogate), (x,))


@pytest.mark.parametrize("name", surrogate_names())
def test_spikes_forward_and_surrogate_backward(name):
    surrogate = get_surrogate(name)
    x = torch.tensor([-1.0, -0.1, 0.0, 0.1, 2.0], dtype=torch.float64, requires_grad=True)
    weight = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0], dtype=torch.float64)
    spikes = surrogate(x)
    assert spikes.dtype == torch.float64
    assert spikes.tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]  # H(0) = 0: a spike needs x > 0
    (spikes * weight).sum().backward()
    torch.testing.assert_close(x.grad, weight * surrogate.grad(x.detach()), rtol=0, atol=0)
    assert (x.grad[2] > 0).item()


def test_the_surrogate_backward_is_itself_differentiable():
    x = torch.tensor([-0.7, -0.2, 0.3, 0.9], dtype=torch.float64, requires_grad=True)
    for surrogate in (FastSigmoid(2.0), ATan(), Sigmoid()):
        assert torch.autograd.gradgradcheck(lambda t, s=surrogate: s(t), (x,))


def test_get_surrogate_by_name_with_parameters_and_instance_as_is():
    s = get_surrogate("fast_sigmoid", slope=10.0)
    assert isinstance(s, FastSigmoid) and s.slope == 10.0
    t = Triangle(0.5)
    assert get_surrogate(t) is t
    assert spike_fn(torch.tensor([0.3]), "atan").tolist() == [1.0]


def test_bad_names_and_parameters_are_errors_that_say_what_is_accepted():
    with pytest.raises(ValueError, match="surrogate must be .*'fast_sigmoid', 'atan', 'triangle', 'sigmoid'"):
        get_surrogate("relu")
    with pytest.raises(ValueError, match="slope must be a finite number > 0, got -1"):
        FastSigmoid(slope=-1.0)
    with pytest.raises(ValueError, match="width"):
        Triangle(width=0)
    with pytest.raises(ValueError, match="set them on the instance"):
        get_surrogate(ATan(), alpha=3.0)


def test_a_custom_surrogate_is_pluggable_and_registrable():
    class Box(Surrogate):
        def __init__(self, half_width=0.5):
            self.half_width = half_width

        def grad(self, x):
            return (x.abs() < self.half_width).to(x.dtype) / (2 * self.half_width)

    x = torch.tensor([-0.6, -0.2, 0.3, 0.8], requires_grad=True)
    Box()(x).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 0.0]
    register_surrogate("box_test", Box)
    try:
        assert isinstance(get_surrogate("box_test", half_width=0.25), Box)
        assert "box_test" in surrogate_names()
    finally:
        from neuroplastic.neurons import surrogates

        surrogates._REGISTRY.pop("box_test")
    with pytest.raises(NotImplementedError):
        Surrogate().grad(x)
