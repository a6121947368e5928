"""The fused scan's interface with the cells (FusedCell), the public plastic_scan, and the import direction."""

import ast
from pathlib import Path

import pytest
import torch

import neuroplastic.plasticity.fused_scan as fused_module
import neuroplastic.plasticity.fused_trace_ops as trace_ops_module
from neuroplastic.plasticity import (
    FusedCell,
    PlasticLSTM,
    PlasticRNN,
    PlasticRNNCell,
    SynapseConfig,
    plastic_scan,
    supports_fused,
)
from neuroplastic.plasticity.fused_scan import check_fused

B, T, I, N = 2, 7, 3, 4


def grads(model):
    return [None if p.grad is None else p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("make", [PlasticRNN, PlasticLSTM])
@pytest.mark.parametrize("backprop", ["auto", "fused", "checkpoint", "autograd"])
def test_plastic_scan_is_what_the_sequence_modules_run(make, backprop):
    torch.manual_seed(0)
    model = make(I, N, modulation="simple", alpha_init=0.5, backprop=backprop, chunk_size=3, truncate_every=5)
    model = model.double()
    inputs = torch.randn(B, T, I, dtype=torch.double)
    out, state = model(inputs)
    (out.sum() + state.plastic.trace.sum()).backward()
    expected = grads(model)
    model.zero_grad()
    out2, state2 = plastic_scan(model.cell, inputs, backprop=backprop, chunk_size=3, truncate_every=5)
    (out2.sum() + state2.plastic.trace.sum()).backward()
    assert torch.equal(out, out2) and torch.equal(state.plastic.trace, state2.plastic.trace)
    assert all(torch.equal(a, b) for a, b in zip(expected, grads(model), strict=True))
    assert type(state2) is type(state)


def test_plastic_scan_checks_its_arguments():
    cell = PlasticRNNCell(I, N, rule="oja")
    with pytest.raises(ValueError, match="backprop must be one of"):
        plastic_scan(cell, torch.randn(B, T, I), backprop="magic")
    with pytest.raises(ValueError, match="use backprop='checkpoint'"):
        plastic_scan(cell, torch.randn(B, T, I), backprop="fused")
    with pytest.raises(ValueError, match=r"inputs must have shape \[B, T, 3\]"):
        plastic_scan(cell, torch.randn(B, I))
    with pytest.raises(ValueError, match="batch size 4"):
        plastic_scan(cell, torch.randn(B, T, I), cell.initial_state(4))


def test_cells_describe_themselves_to_the_fused_scan():
    cell = PlasticRNNCell(I, N, modulation="simple")
    description = cell.fused_cell()
    assert isinstance(description, FusedCell)
    assert description.synapses is cell.synapses and description.parameters == (cell.weight,)
    assert description.post_is_hidden and description.step_vjp is not None
    lstm = PlasticLSTM(I, N).cell.fused_cell()
    assert not lstm.post_is_hidden and lstm.step_vjp is not None
    for owner in (cell, description, cell.synapses, PlasticRNN(I, N)):
        assert supports_fused(owner)
    check_fused(cell)
    retroactive = PlasticRNNCell(I, N, config=SynapseConfig(modulation="retroactive"))
    assert not supports_fused(retroactive)
    with pytest.raises(ValueError, match="modulation 'retroactive': use backprop='checkpoint'"):
        check_fused(retroactive)


class Subclassed(PlasticRNNCell):
    """A subclass: the fused scan differentiates its small step with autograd, step by step."""


def test_a_subclassed_cell_takes_the_autograd_path_with_the_same_results():
    inputs = torch.randn(B, T, I, dtype=torch.double)
    results = []
    for make in (PlasticRNNCell, Subclassed):
        torch.manual_seed(0)
        cell = make(I, N, modulation="simple", alpha_init=0.5).double()
        assert (cell.fused_cell().step_vjp is None) == (make is Subclassed)
        out, state = plastic_scan(cell, inputs, backprop="fused", chunk_size=2)
        (out.pow(2).sum() + state.plastic.trace.sum()).backward()
        results.append((out.detach(), grads(cell)))
    torch.testing.assert_close(results[1][0], results[0][0], rtol=0, atol=1e-14)
    for a, b in zip(results[0][1], results[1][1], strict=True):
        if a is not None:
            torch.testing.assert_close(b, a, rtol=0, atol=1e-12)


@pytest.mark.parametrize("module", [fused_module, trace_ops_module])
def test_the_fused_scan_imports_nothing_from_the_cells(module):
    tree = ast.parse(Path(module.__file__).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert not any(name and name.startswith("neuroplastic.plasticity.recurrent") for name in imported), imported
