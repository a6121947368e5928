"""NIR export/import: parameters by hand, the NIR ODE stepped by hand, round trips, files, errors."""

import math
import sys

import numpy as np
import pytest
import torch
from torch import nn

from neuroplastic.neurons import ALIF, LIF, LeakyReadout, LIFCell, RecurrentLIF
from neuroplastic.neurons.nir_io import SpikingSequential, export_nir, import_nir

nir = pytest.importorskip("nir")


def _mlp(reset="hard", seed=0):
    torch.manual_seed(seed)
    model = SpikingSequential(nn.Linear(12, 16), LIF(16, tau=6.0, threshold=0.8, reset=reset),
                              nn.Linear(16, 5, bias=False), LIF(5, tau=3.0, reset=reset, v_reset=-0.2))
    with torch.no_grad():
        model[0].weight.mul_(4.0)
        model[2].weight.mul_(4.0)
    return model


def _inputs(*shape, seed=1, p=0.3):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(*shape, generator=g) < p).float()


# ---------------------------------------------------------------------------------------------------- export


def test_exported_parameters_against_hand_computed_values():
    model = SpikingSequential(nn.Linear(3, 2), LIF(2, tau=torch.tensor([2.0, 4.0]), threshold=torch.tensor([0.5, 1.5]),
                                                   reset="hard", v_reset=0.1))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]]))
        model[0].bias.copy_(torch.tensor([0.25, -0.5]))
    graph = export_nir(model, (3,), dt=1.0)
    assert set(graph.nodes) == {"input", "0", "1", "output"}
    assert graph.edges == [("input", "0"), ("0", "1"), ("1", "output")]
    assert isinstance(graph.nodes["0"], nir.Affine) and isinstance(graph.nodes["1"], nir.LIF)
    np.testing.assert_array_equal(graph.nodes["0"].weight, [[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]])
    np.testing.assert_array_equal(graph.nodes["0"].bias, [0.25, -0.5])
    lif = graph.nodes["1"]
    d = np.array([math.exp(-1 / 2), math.exp(-1 / 4)])        # 0.606531, 0.778801
    # Euler: tau_N = dt / (1 - d) = [2.541494, 4.520812]; r = 1 / (1 - d), the same numbers for dt = 1
    np.testing.assert_allclose(lif.tau, [2.541494, 4.520812], rtol=1e-6)
    np.testing.assert_allclose(lif.tau, 1.0 / (1.0 - d), rtol=1e-6)
    np.testing.assert_allclose(lif.r, 1.0 / (1.0 - d), rtol=1e-6)
    np.testing.assert_array_equal(lif.v_leak, [0.0, 0.0])
    np.testing.assert_allclose(lif.v_threshold, [0.5, 1.5])
    np.testing.assert_allclose(lif.v_reset, [0.1, 0.1])
    np.testing.assert_array_equal(graph.nodes["input"].input_type["input"], [3])
    np.testing.assert_array_equal(graph.nodes["output"].output_type["output"], [2])
    assert graph.metadata == {"generator": "neuroplastic", "dt": 1.0, "discretization": "euler"}

    # exact: tau_N = -dt / ln(d) = dt * tau / module dt; with dt = 0.5 s per step: [1.0, 2.0] s; r unchanged
    exact = export_nir(model, (3,), dt=0.5, discretization="exact").nodes["1"]
    np.testing.assert_allclose(exact.tau, [1.0, 2.0], rtol=1e-6)
    np.testing.assert_allclose(exact.r, 1.0 / (1.0 - d), rtol=1e-6)
    # Euler with dt = 1e-4 (snnTorch's step): tau_N = 1e-4 / (1 - d)
    np.testing.assert_allclose(export_nir(model, (3,), dt=1e-4).nodes["1"].tau, 1e-4 / (1.0 - d), rtol=1e-6)


@pytest.mark.parametrize("discretization", ["euler", "exact"])
def test_the_nir_ode_stepped_by_hand_gives_our_spikes(discretization):
    """Step NIR's LIF ODE  tau dv/dt = (v_leak - v) + r I  with the exported parameters, literally."""
    torch.manual_seed(3)
    model = SpikingSequential(nn.Linear(6, 8), LIF(8, tau=5.0, heterogeneous=True, reset="hard", v_reset=0.05,
                                                   generator=torch.Generator().manual_seed(0)))
    model = model.double()
    with torch.no_grad():
        model[0].weight.mul_(3.0)
    dt = 1e-3
    graph = export_nir(model, (6,), dt=dt, discretization=discretization)
    aff, lif = graph.nodes["0"], graph.nodes["1"]
    x = _inputs(2, 40, 6).double()
    ours, _ = model(x)
    v = np.zeros((2, 8))
    spikes = []
    for t in range(40):
        current = x[:, t].numpy() @ aff.weight.T + aff.bias
        if discretization == "euler":
            v = v + dt / lif.tau * ((lif.v_leak - v) + lif.r * current)
        else:
            a = np.exp(-dt / lif.tau)
            v = a * v + (1 - a) * (lif.v_leak + lif.r * current)
        z = (v > lif.v_threshold).astype(float)
        v = np.where(z == 1, lif.v_reset, v)
        spikes.append(z)
    reference = np.stack(spikes, 1)
    assert reference.sum() > 20
    np.testing.assert_array_equal(ours.detach().numpy(), reference)


# ---------------------------------------------------------------------------------------------------- round trips


def _conv_net():
    torch.manual_seed(2)
    model = SpikingSequential(nn.Conv2d(2, 4, 3, padding=1), LIF((4, 6, 6), tau=5.0, reset="hard", heterogeneous=True,
                                                                 generator=torch.Generator().manual_seed(1)),
                              nn.Flatten(), nn.Linear(144, 10), LIF(10, tau=4.0, threshold=0.6, reset="hard"))
    with torch.no_grad():
        model[0].weight.mul_(3.0)
        model[3].weight.mul_(3.0)
    return model


def _recurrent_net():
    torch.manual_seed(4)
    model = SpikingSequential(nn.Linear(12, 16), LIF(16, tau=8.0, reset="hard"),
                              RecurrentLIF(16, 10, tau=6.0, threshold=0.7, reset="hard"),
                              nn.Linear(10, 4), LeakyReadout(4, tau=torch.tensor([2.0, 3.0, 5.0, 9.0])))
    with torch.no_grad():
        model[0].weight.mul_(4.0)
        model[2].input_linear.weight.mul_(4.0)
        model[2].recurrent_linear.weight.mul_(3.0)
    return model


@pytest.mark.parametrize("dt,discretization", [(1.0, "euler"), (1e-4, "euler"), (0.01, "exact")])
@pytest.mark.parametrize("build,input_shape", [(_mlp, (12,)), (_conv_net, (2, 6, 6)), (_recurrent_net, (12,))])
def test_round_trip_gives_identical_outputs(build, input_shape, dt, discretization):
    model = build()
    graph = export_nir(model, input_shape, dt=dt, discretization=discretization)
    back = import_nir(graph)
    assert [type(m) for m in back] == [type(m) for m in model]
    x = _inputs(2, 20, *input_shape) * 1.5
    out, state = model(x)
    out_back, state_back = back(x)
    assert out.abs().sum() > 0
    torch.testing.assert_close(out_back, out, atol=1e-6, rtol=0)
    for a, b in zip(model, back, strict=True):   # the per-step decays are rebuilt bit for bit
        if isinstance(a, RecurrentLIF):
            a, b = a.neurons, b.neurons
        if hasattr(a, "decay"):
            assert torch.equal(a.decay(), b.decay())
    # every layer's output (the spikes of every spiking layer), not just the last
    for k in range(1, len(model) + 1):
        ref, _ = SpikingSequential(*list(model)[:k])(x)
        got, _ = SpikingSequential(*list(back)[:k])(x)
        torch.testing.assert_close(got, ref, atol=1e-6, rtol=0)
    if build is _recurrent_net:
        hidden, _ = SpikingSequential(*list(model)[:3])(x)
        assert 0.02 < hidden.mean() < 0.8       # the recurrent layer does spike


@pytest.mark.parametrize("dt,discretization", [(1.0, "euler"), (1e-3, "exact")])
def test_imported_decays_equal_the_originals_bit_for_bit(dt, discretization):
    # 5000 time constants from 1.5 to 500 steps: without the ulp correction, 2 of them come back 1 ulp off
    lif = LIF(5000, tau=10.0, heterogeneous=True, tau_range=(1.5, 500.0), reset="hard",
              generator=torch.Generator().manual_seed(0))
    back = import_nir(export_nir(lif, 5000, dt=dt, discretization=discretization))[0]
    assert torch.equal(back.decay(), lif.decay())


def test_recurrent_layer_becomes_a_subgraph_with_a_cycle():
    graph = export_nir(_recurrent_net(), (12,))
    assert isinstance(graph.nodes["2.input_linear"], nir.Affine)
    sub = graph.nodes["2"]
    assert isinstance(sub, nir.NIRGraph)
    assert set(sub.edges) == {("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")}
    np.testing.assert_array_equal(sub.nodes["w_rec"].weight, _recurrent_net()[2].recurrent_linear.weight.detach())
    assert isinstance(graph.nodes["4"], nir.LI)


def test_a_flat_lif_linear_cycle_imports_as_the_same_recurrent_layer():
    model = _recurrent_net()
    graph = export_nir(model, (12,))
    sub = graph.nodes.pop("2")
    graph.nodes["lif"], graph.nodes["w_rec"] = sub.nodes["lif"], sub.nodes["w_rec"]
    graph.edges = [e for e in graph.edges if "2" not in e] + [("2.input_linear", "lif"), ("lif", "w_rec"),
                                                            ("w_rec", "lif"), ("lif", "3")]
    back = import_nir(graph)
    assert isinstance(back[2], RecurrentLIF)
    x = _inputs(2, 25, 12)
    torch.testing.assert_close(back(x)[0], model(x)[0], atol=1e-6, rtol=0)


def test_write_and_read_a_file(tmp_path):
    model = _conv_net()
    path = tmp_path / "conv.nir"
    nir.write(path, export_nir(model, (2, 6, 6), dt=1e-3, discretization="exact"))
    graph = nir.read(path)
    assert float(graph.metadata["dt"]) == 1e-3 and graph.metadata["discretization"] == "exact"
    np.testing.assert_array_equal(graph.nodes["0"].weight, model[0].weight.detach().numpy())
    x = _inputs(2, 20, 2, 6, 6) * 1.5
    for back in (import_nir(graph), import_nir(path), import_nir(str(path))):
        # dt and discretization come from the metadata: the same decays as the original
        assert torch.equal(back[1].decay(), model[1].decay())
        torch.testing.assert_close(back(x)[0], model(x)[0], atol=1e-6, rtol=0)


def test_a_pure_integrator_exports_as_if_and_back():
    model = SpikingSequential(nn.Linear(4, 3), LIF(3, tau=1e30, reset="hard"))
    assert torch.equal(model[1].decay(), torch.ones(3))
    graph = export_nir(model, (4,), dt=0.5)
    node = graph.nodes["1"]
    assert isinstance(node, nir.IF)
    np.testing.assert_allclose(node.r, [2.0, 2.0, 2.0])       # v_t = v_{t-1} + dt r I_t with dt r = 1
    back = import_nir(graph)
    x = _inputs(2, 30, 4) * 0.7
    assert torch.equal(back(x)[0], model(x)[0]) and model(x)[0].sum() > 0


# ------------------------------------------------------------------------------------- graphs made elsewhere


def test_import_folds_an_input_gain_into_the_threshold():
    """A graph as snnTorch writes it (dt = 1e-4), with a gain r dt / tau = 2 and thresholds 1: same spikes as
    a literal loop v = beta v + 2 I, spike v > 1, v = 0."""
    dt, tau = 1e-4, np.array([1e-3, 2e-3, 5e-4])
    w = np.array([[0.5, -0.2], [0.3, 0.4], [-0.1, 0.6]], dtype=np.float32)
    graph = nir.NIRGraph.from_list(
        nir.Affine(weight=w, bias=np.zeros(3, dtype=np.float32)),
        nir.LIF(tau=tau, r=2 * tau / dt, v_leak=np.zeros(3), v_threshold=np.ones(3), v_reset=np.zeros(3)))
    model = import_nir(graph, dt=dt)
    lif = model[1]
    torch.testing.assert_close(lif.threshold, torch.full((3,), 0.5))          # 1 / gain
    x = _inputs(2, 40, 2, p=0.5)
    beta = torch.tensor(1 - dt / tau, dtype=torch.float32)
    v, ref = torch.zeros(2, 3), []
    for t in range(40):
        v = beta * v + 2 * (x[:, t] @ torch.from_numpy(w).T)
        z = (v > 1).float()
        v = v * (1 - z)
        ref.append(z)
    ref = torch.stack(ref, 1)
    assert ref.sum() > 10
    assert torch.equal(model(x)[0], ref)


def test_import_folds_a_leaky_integrator_gain_into_the_linear_before_it():
    dt = 1.0
    tau = np.array([4.0, 8.0])
    graph = nir.NIRGraph.from_list(
        nir.Linear(weight=np.array([[1.0, 2.0], [-1.0, 0.5]], dtype=np.float32)),
        nir.LI(tau=tau, r=np.array([3.0, 3.0]), v_leak=np.zeros(2)))
    model = import_nir(graph, dt=dt)
    assert isinstance(model[1], LeakyReadout)
    x = torch.randn(2, 10, 2, generator=torch.Generator().manual_seed(0))
    beta = 1 - dt / tau
    v, ref = np.zeros((2, 2)), []
    for t in range(10):     # Euler: v = (1 - dt/tau) v + dt/tau * r * W x
        v = beta * v + dt / tau * 3.0 * (x[:, t].numpy() @ np.array([[1.0, 2.0], [-1.0, 0.5]]).T)
        ref.append(v)
    np.testing.assert_allclose(model(x)[0].detach().numpy(), np.stack(ref, 1), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("node,match", [
    (nir.CubaLIF(tau_syn=np.ones(2), tau_mem=np.ones(2) * 5, r=np.ones(2), v_leak=np.zeros(2),
                 v_threshold=np.ones(2)), "CubaLIF"),
    (nir.LIF(tau=np.ones(2) * 5, r=np.ones(2), v_leak=np.ones(2) * 0.1, v_threshold=np.ones(2)), "v_leak"),
    (nir.LIF(tau=np.ones(2) * 0.5, r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.ones(2)), "larger than dt"),
    (nir.Threshold(threshold=np.ones(2)), "Threshold"),
])
def test_import_rejects_what_has_no_counterpart(node, match):
    graph = nir.NIRGraph.from_list(nir.Linear(weight=np.eye(2, dtype=np.float32)), node)
    with pytest.raises(ValueError, match=match):
        import_nir(graph, dt=1.0)


def test_import_rejects_branches_and_bad_arguments():
    graph = nir.NIRGraph(
        nodes={"input": nir.Input(input_type=np.array([2])), "a": nir.Linear(weight=np.eye(2)),
               "b": nir.Linear(weight=np.eye(2)), "output": nir.Output(output_type=np.array([2]))},
        edges=[("input", "a"), ("input", "b"), ("a", "output"), ("b", "output")])
    with pytest.raises(ValueError, match="chains"):
        import_nir(graph)
    with pytest.raises(TypeError, match="graph must be a nir.NIRGraph"):
        import_nir({"nodes": {}})
    good = export_nir(_mlp(), (12,))
    with pytest.raises(ValueError, match=r"dt \(the length of one time step .*\) must be a finite number > 0, got 0.0"):
        import_nir(good, dt=0.0)
    with pytest.raises(ValueError, match="discretization"):
        import_nir(good, discretization="rk4")


# ---------------------------------------------------------------------------------------------------- export errors


def test_export_rejects_what_nir_cannot_express():
    with pytest.raises(ValueError, match=r"'1'.*reset='soft'.*reset='hard'"):
        export_nir(_mlp(reset="soft"), (12,))
    with pytest.raises(ValueError, match="reset='none'"):
        export_nir(_mlp(reset="none"), (12,))
    with pytest.raises(ValueError, match=r"'1' of type ALIF: adaptive thresholds"):
        export_nir(SpikingSequential(nn.Linear(3, 4), ALIF(4, reset="hard")), (3,))
    with pytest.raises(ValueError, match="adaptive thresholds"):
        export_nir(RecurrentLIF(3, 4, adaptive=True, reset="hard"), (3,))
    from neuroplastic.plasticity.layers import PlasticLinear
    with pytest.raises(ValueError, match=r"'0' of type PlasticLinear: plastic synapses"):
        export_nir(nn.Sequential(PlasticLinear(3, 4), LIF(4, reset="hard")), (3,))
    with pytest.raises(ValueError, match=r"'1' of type MaxPool2d"):
        export_nir(nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2)), (1, 8, 8))
    with pytest.raises(ValueError, match="padding_mode"):
        export_nir(nn.Conv2d(1, 2, 3, padding=1, padding_mode="circular"), (1, 8, 8))


def test_export_checks_its_arguments_and_shapes():
    with pytest.raises(ValueError, match=r"input_shape \(the shape of one time step.*\) must be a non-empty sequence "
                                         r"of ints >= 1 or an int >= 1, got \(0,\)"):
        export_nir(_mlp(), (0,))
    with pytest.raises(ValueError, match=r"'0' expects inputs of shape \(12,\)"):
        export_nir(_mlp(), (10,))
    with pytest.raises(ValueError, match=r"dt \(the length of one time step .*\) must be a finite number > 0, got -1"):
        export_nir(_mlp(), (12,), dt=-1.0)
    with pytest.raises(ValueError, match="discretization"):
        export_nir(_mlp(), (12,), discretization="midpoint")
    with pytest.raises(ValueError, match=r"has size \(5,\)"):
        export_nir(nn.Sequential(nn.Linear(3, 4), LIF(5, reset="hard")), (3,))
    with pytest.raises(TypeError, match="model must be"):
        export_nir("model", (3,))


def test_single_modules_and_skipped_layers_export():
    graph = export_nir(LIF(4, reset="hard"), 4)
    assert [type(graph.nodes[k]).__name__ for k in ("input", "lif", "output")] == ["Input", "LIF", "Output"]
    graph = export_nir(nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), LIF(4, reset="hard")), (3,))
    assert set(graph.nodes) == {"input", "0", "2", "output"}


def test_missing_nir_package_gives_an_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "nir", None)
    with pytest.raises(ImportError, match=r"pip install neuroplastic\[nir\]"):
        export_nir(_mlp(), (12,))


# ---------------------------------------------------------------------------------------------------- SpikingSequential


def test_spiking_sequential_carries_state_across_calls():
    model = _recurrent_net()
    x = _inputs(2, 30, 12)
    whole, _ = model(x)
    first, state = model(x[:, :13])
    second, _ = model(x[:, 13:], state)
    torch.testing.assert_close(torch.cat([first, second], 1), whole, atol=1e-6, rtol=0)


def test_spiking_sequential_rejects_cells_and_bad_layouts():
    with pytest.raises(ValueError, match="LIFCell is one time step"):
        SpikingSequential(nn.Linear(3, 4), LIFCell(4))(torch.zeros(1, 5, 3))
    with pytest.raises(ValueError, match=r"\[B, T, \*input_shape\]"):
        SpikingSequential(nn.Linear(3, 4))(torch.zeros(5, 3))
    with pytest.raises(ValueError, match="one entry per module"):
        SpikingSequential(nn.Linear(3, 4))(torch.zeros(1, 5, 3), state=(None, None))


@pytest.mark.parametrize("start,end,nir_start,nir_end", [(1, -1, 0, -1), (2, 3, 1, -1), (1, 2, 0, 1), (-2, -1, 1, -1)])
def test_flatten_dims_drop_the_batch(start, end, nir_start, nir_end):
    model = nn.Sequential(nn.Flatten(start, end))
    node = export_nir(model, (2, 3, 4)).nodes["0"]
    assert (node.start_dim, node.end_dim) == (nir_start, nir_end)
    back = import_nir(export_nir(model, (2, 3, 4)))[0]
    x = torch.randn(5, 2, 3, 4)
    assert back(x).shape == model(x).shape
    with pytest.raises(ValueError, match="batch"):
        export_nir(nn.Flatten(0), (2, 3, 4))
