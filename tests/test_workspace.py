"""The CPU buffer pool of the fused scan: a buffer is never handed out while anything still uses it."""

import pytest
import torch

from neuroplastic import _workspace as ws


@pytest.fixture(autouse=True)
def empty_pool():
    ws.clear_workspace()
    limit = ws.workspace_limit()
    yield
    ws.set_workspace_limit(limit)
    ws.clear_workspace()


def test_take_gives_the_shape_and_dtype_asked_for():
    x = ws.take((3, 4), dtype=torch.float64, device="cpu")
    assert x.shape == (3, 4) and x.dtype == torch.float64 and x.is_contiguous()


def test_a_buffer_in_use_is_not_handed_out_again():
    a = ws.take((1000,), dtype=torch.float32, device="cpu")
    b = ws.take((1000,), dtype=torch.float32, device="cpu")
    assert a.data_ptr() != b.data_ptr()
    a.fill_(1.0)
    b.fill_(2.0)
    assert torch.all(a == 1.0)


def test_a_released_buffer_is_reused_but_not_while_a_view_lives():
    a = ws.take((10, 100), dtype=torch.float32, device="cpu")
    pointer = a.data_ptr()
    view = a[3]
    del a
    b = ws.take((1000,), dtype=torch.float32, device="cpu")  # same size, but the view still holds the first
    assert b.data_ptr() != pointer
    pointers = {pointer, b.data_ptr()}
    del view, b
    c = ws.take((1000,), dtype=torch.float32, device="cpu")
    assert c.data_ptr() in pointers
    assert ws.workspace_bytes() == 2 * 1000 * 4  # two buffers pooled, no third one made


def test_a_tensor_saved_for_backward_keeps_its_buffer():
    a = ws.take((50,), dtype=torch.float64, device="cpu").fill_(3.0)
    w = torch.ones(50, dtype=torch.float64, requires_grad=True)
    y = (w * a).sum()  # autograd saves `a`
    pointer = a.data_ptr()
    del a
    b = ws.take((50,), dtype=torch.float64, device="cpu")
    assert b.data_ptr() != pointer
    y.backward()
    assert torch.all(w.grad == 3.0)


def test_limit_zero_turns_pooling_off_and_bad_limits_are_rejected():
    ws.set_workspace_limit(0)
    ws.take((100,), dtype=torch.float32, device="cpu")
    assert ws.workspace_bytes() == 0
    with pytest.raises(ValueError, match="limit_bytes"):
        ws.set_workspace_limit(-1)
    with pytest.raises(TypeError, match="limit_bytes must be an int >= 0, got float 1.5"):
        ws.set_workspace_limit(1.5)


def test_clear_frees_idle_buffers():
    ws.take((100,), dtype=torch.float32, device="cpu")
    assert ws.workspace_bytes() == 400
    ws.clear_workspace()
    assert ws.workspace_bytes() == 0
