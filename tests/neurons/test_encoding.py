"""Encoders and readouts: exact latencies, rate statistics, reproducibility, errors."""

import math

import pytest
import torch

from neuroplastic.neurons import latency_encode, membrane_readout, rate_encode, spike_count


def test_rate_encode_bernoulli_rates_layout_and_reproducibility():
    x = torch.tensor([[0.0, 0.25, 1.0], [0.5, 0.75, 0.1]])
    spikes = rate_encode(x, 4000, torch.Generator().manual_seed(0))
    assert spikes.shape == (2, 4000, 3) and set(spikes.unique().tolist()) <= {0.0, 1.0}
    rates = spikes.mean(1)
    assert rates[0, 0] == 0 and rates[0, 2] == 1  # probabilities 0 and 1 are exact
    torch.testing.assert_close(rates, x, rtol=0, atol=0.03)  # 4000 draws: std <= 0.008
    again = rate_encode(x, 4000, torch.Generator().manual_seed(0))
    assert torch.equal(spikes, again)
    assert rate_encode(x, 2, max_rate=0.5, generator=torch.Generator().manual_seed(1)).shape == (2, 2, 3)


def test_rate_encode_poisson_probability_per_step():
    rate = torch.tensor([[0.0, 0.1, 2.0]])
    spikes = rate_encode(rate, 5000, torch.Generator().manual_seed(3), method="poisson", dt=0.5)
    expected = 1 - torch.exp(-rate * 0.5)  # [0, 0.0488, 0.632]
    torch.testing.assert_close(spikes.mean(1), expected, rtol=0, atol=0.02)


def test_latency_encode_by_hand():
    x = torch.tensor([[1.0, 0.5, 0.0, 0.25]])
    spikes = latency_encode(x, 5)
    # step round((1 - x) * 4): 0, 2, never (x <= threshold 0), 3
    assert spikes.shape == (1, 5, 4)
    assert spikes[0].T.tolist() == [[1, 0, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 1, 0]]
    normalized = latency_encode(torch.tensor([[2.0, 1.0]]), 3, normalize=True)
    assert normalized[0].T.tolist() == [[1, 0, 0], [0, 1, 0]]  # x / max: 1 and 0.5
    assert latency_encode(torch.tensor([[0.3]]), 4, threshold=0.3).sum() == 0


def test_readouts():
    spikes = torch.tensor([[[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]])
    assert spike_count(spikes).tolist() == [[2.0, 1.0]]
    v = torch.tensor([[[0.1, -1.0], [0.7, 0.2], [0.3, 0.5]]])
    assert membrane_readout(v, "max")[0].tolist() == pytest.approx([0.7, 0.5])
    assert membrane_readout(v, "last")[0].tolist() == pytest.approx([0.3, 0.5])
    assert membrane_readout(v, "mean")[0].tolist() == pytest.approx([1.1 / 3, -0.3 / 3])


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"x \* max_rate in \[0, 1\]"):
        rate_encode(torch.tensor([[1.5]]), 3)
    with pytest.raises(ValueError, match="rates x >= 0"):
        rate_encode(torch.tensor([[-1.0]]), 3, method="poisson")
    with pytest.raises(ValueError, match="method must be one of 'bernoulli', 'poisson'"):
        rate_encode(torch.tensor([[0.5]]), 3, method="gauss")
    with pytest.raises(ValueError, match="steps must be an int >= 1, got 0"):
        rate_encode(torch.tensor([[0.5]]), 0)
    with pytest.raises(ValueError, match="max_rate must be a finite number > 0, got 0"):
        rate_encode(torch.tensor([[0.5]]), 3, max_rate=0)
    with pytest.raises(ValueError, match="dt must be a finite number > 0, got nan"):
        rate_encode(torch.tensor([[0.5]]), 3, method="poisson", dt=float("nan"))
    with pytest.raises(ValueError, match=r"latency_encode needs x in \[0, 1\]"):
        latency_encode(torch.tensor([[2.0]]), 3)
    with pytest.raises(ValueError, match="reduce must be one of 'max', 'mean', 'last'"):
        membrane_readout(torch.zeros(1, 2, 3), "sum")
    assert math.isfinite(float(spike_count(torch.zeros(1, 2, 3)).sum()))


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_encoders_refuse_non_finite_inputs(value):
    from neuroplastic.neurons import latency_encode, rate_encode

    x = torch.tensor([[0.2, value, 0.7]])
    with pytest.raises(ValueError, match="x must be finite"):
        rate_encode(x, steps=4, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="x must be finite"):
        rate_encode(x, steps=4, method="poisson")
    with pytest.raises(ValueError, match="x must be finite"):
        latency_encode(x, steps=4, normalize=True)
