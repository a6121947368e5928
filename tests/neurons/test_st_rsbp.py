"""ST-RSBP: spike-train stats against a slow reference, gradients against finite differences and BPTT, memory."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn.functional import cosine_similarity

from neuroplastic.neurons import (
    LIF,
    STRSBP,
    RecurrentLIF,
    peak_tensor_bytes,
    rate_loss,
    spiking_forward,
    st_rsbp_backward,
    st_rsbp_forward,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _network(inputs: int = 12, hidden: int = 16, classes: int = 4, seed: int = 0):
    torch.manual_seed(seed)
    rec = RecurrentLIF(inputs, hidden, tau=5.0, threshold=1.0, reset="hard")
    out = nn.Sequential(nn.Linear(hidden, classes), LIF(classes, tau=5.0, threshold=1.0, reset="hard"))
    with torch.no_grad():
        rec.input_linear.weight.mul_(2.0)
        rec.input_linear.bias.add_(0.1)
        rec.recurrent_linear.weight.normal_(0.0, 0.15)
        out[0].weight.mul_(1.5)
        out[0].bias.add_(0.2)
    return [rec, out]


def _data(batch: int, steps: int, inputs: int = 12, classes: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    p = torch.rand(batch, inputs, generator=g) * 0.5
    x = (torch.rand(batch, steps, inputs, generator=g) < p[:, None]).float()
    y = torch.randint(0, classes, (batch,), generator=g)
    targets = torch.full((batch, classes), 2.0)
    targets[torch.arange(batch), y] = 10.0
    return x, targets


def _params(layers):
    rec, out = layers
    return [rec.input_linear.weight, rec.input_linear.bias, rec.recurrent_linear.weight, out[0].weight, out[0].bias]


def test_counts_match_the_modules_forward_and_spsp_matches_a_slow_reference():
    layers = _network()
    x, _ = _data(6, 20)
    stats = st_rsbp_forward(layers, x)
    hidden = layers[0](x)[0]
    assert torch.equal(stats[0].counts, hidden.sum(1))
    assert torch.equal(stats[1].counts, spiking_forward(layers, x).sum(1))
    decay = float(layers[0].neurons.decay()[0])
    # slow reference: at each post spike, PSPs of pre spikes since the last post spike (inclusive of this step)
    prev = torch.cat([torch.zeros_like(hidden[:, :1]), hidden[:, :-1]], 1)  # recurrent input at step t: s(t-1)
    for b in range(2):
        for i in range(3):
            times = [t for t in range(20) if hidden[b, t, i] > 0]
            e_in, e_rec, e_b, last = torch.zeros(12), torch.zeros(16), 0.0, -1
            for t in times:
                for tp in range(last + 1, t + 1):
                    w = decay ** (t - tp)
                    e_in += w * x[b, tp]
                    e_rec += w * prev[b, tp]
                    e_b += w
                last = t
            torch.testing.assert_close(stats[0].e_in[b, i], e_in)
            torch.testing.assert_close(stats[0].e_rec[b, i], e_rec)
            assert stats[0].e_bias[b, i].item() == pytest.approx(e_b, rel=1e-5)
    # total S-PSP over threshold >= count (each spike had h >= threshold)
    rec = layers[0]
    a = ((rec.input_linear.weight * stats[0].e_in).sum(2) + rec.input_linear.bias * stats[0].e_bias
         + (rec.recurrent_linear.weight * stats[0].e_rec).sum(2))
    assert bool((a.detach() >= stats[0].counts - 1e-4).all())


def test_gradients_agree_with_finite_differences_and_bptt():
    layers = _network()
    params = _params(layers)
    x, targets = _data(256, 30)
    STRSBP(layers).compute_grads(x, targets)
    g_st = torch.cat([p.grad.flatten() for p in params])
    for p in params:
        p.grad = None
    rate_loss(spiking_forward(layers, x).sum(1), targets).backward()
    g_bptt = torch.cat([p.grad.flatten() for p in params])
    # directional finite differences of the batch-averaged (hence nearly smooth) rate loss, common inputs
    gen = torch.Generator().manual_seed(1)
    base = [p.detach().clone() for p in params]
    proj_st, proj_bptt, fd = [], [], []
    for _ in range(24):
        d = [torch.randn(p.shape, generator=gen) for p in params]
        values = []
        for sign in (1.0, -1.0):
            with torch.no_grad():
                for p, p0, dp in zip(params, base, d, strict=True):
                    p.copy_(p0 + sign * 0.02 * dp)
                values.append(rate_loss(st_rsbp_forward(layers, x)[-1].counts, targets).item())
        flat = torch.cat([dp.flatten() for dp in d])
        fd.append((values[0] - values[1]) / 0.04)
        proj_st.append(float(g_st @ flat))
        proj_bptt.append(float(g_bptt @ flat))
    fd_t = torch.tensor(fd)
    cos_fd = cosine_similarity(torch.tensor(proj_st), fd_t, 0).item()
    cos_bptt = cosine_similarity(g_st, g_bptt, 0).item()
    assert cos_fd >= 0.9, cos_fd  # measured 0.96 (BPTT's surrogate gradient against the same FD: 0.86)
    assert cos_bptt >= 0.8, cos_bptt  # measured 0.89


def test_mlp_without_recurrence_and_optimizer_step_lowers_the_loss():
    torch.manual_seed(3)
    layers = [nn.Sequential(nn.Linear(12, 16), LIF(16, tau=5.0, reset="hard")),
              nn.Sequential(nn.Linear(16, 4), LIF(4, tau=5.0, reset="hard"))]
    with torch.no_grad():
        layers[0][0].weight.mul_(2.0)
        layers[1][0].weight.mul_(2.0)
        layers[1][0].bias.add_(0.3)
    x, targets = _data(64, 25)
    params = [p for layer in layers for p in layer.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=0.02)
    trainer = STRSBP(layers)
    losses = []
    for _ in range(15):
        opt.zero_grad()
        loss, _ = trainer.compute_grads(x, targets)
        losses.append(loss)
        opt.step()
    assert losses[-1] < 0.7 * losses[0]


def test_memory_is_flat_in_time_while_bptt_grows():
    layers = _network()
    trainer = STRSBP(layers)
    st_bytes, bptt_bytes = [], []
    for steps in (20, 80):
        x, targets = _data(8, steps)
        st_bytes.append(peak_tensor_bytes(lambda x=x, t=targets: trainer.compute_grads(x, t)))
        bptt_bytes.append(peak_tensor_bytes(
            lambda x=x, t=targets: rate_loss(spiking_forward(layers, x).sum(1), t).backward()))
    assert st_bytes[0] == st_bytes[1]
    assert bptt_bytes[1] > 3 * bptt_bytes[0]


def test_peak_tensor_bytes_counts_live_tensors():
    assert peak_tensor_bytes(lambda: torch.zeros(1000, dtype=torch.float64)) == 8000
    assert peak_tensor_bytes(lambda: [torch.zeros(10) for _ in range(5)]) == 200


def test_bad_inputs_are_refused(library_error):
    layers = _network()
    x, targets = _data(2, 5)
    with library_error() as info:
        st_rsbp_forward(layers, x[:, :, :5])
    assert info.match("inputs")
    with library_error() as info:
        st_rsbp_forward(layers, x[0])
    assert info.match(r"\[B, T, I\]")
    bad = x.clone()
    bad[0, 3, 0] = math.nan
    with library_error() as info:
        st_rsbp_forward(layers, bad)
    assert info.match("finite")
    with library_error() as info:
        st_rsbp_forward([nn.Sequential(nn.Linear(12, 4), LIF(4, reset="soft"))], x)
    assert info.match("hard")
    with library_error() as info:
        st_rsbp_forward([RecurrentLIF(12, 4, adaptive=True, reset="hard")], x)
    assert info.match("adaptive")
    with library_error() as info:
        st_rsbp_forward([nn.Linear(12, 4)], x)
    assert info.match("RecurrentLIF")
    with library_error() as info:
        st_rsbp_forward([layers[1]], x)
    assert info.match("inputs")
    with library_error() as info:
        STRSBP(layers).compute_grads(x, targets[:, :2])
    assert info.match("targets")
    with library_error() as info:
        STRSBP(layers, ridge=-1.0)
    assert info.match("ridge")
    stats = st_rsbp_forward(layers, x)
    with library_error() as info:
        st_rsbp_backward(layers, stats, torch.zeros(3, 4))
    assert info.match("grad_counts")
    with library_error() as info:
        st_rsbp_backward(layers, stats[:1], torch.zeros(2, 4))
    assert info.match("stats")
    with library_error() as info:
        peak_tensor_bytes(3)
    assert info.match("callable")
